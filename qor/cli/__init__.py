"""``qor``: the command line of Qor, for digitisation operators, preservation officers and
librarians.

One module per area (``qor.cli.digitise``, ``.copies``, ``.fixity``, ``.library``…), each a Typer
app or an ``install(app)``, assembled in :mod:`qor.cli.application`; shared helpers in
:mod:`qor.cli._common`. Nothing imports this package: it sits on top of every other (the import
contract in ``pyproject.toml`` says so).

Every refusal prints one line saying what was refused and why, and exits with the error's
``exit_code`` (1 refused input, 2 usage, 3 environment/service problem, 4 integrity failure);
``--debug`` adds the traceback.

This package's own module imports nothing: the entry point first offers a register command to
the resident runner (:mod:`qor.cli.delegate`) and loads the application only when it runs the
command itself.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    app: typer.Typer


def main() -> None:
    """Console-script entry point (``qor``)."""
    from qor.cli.delegate import try_delegate

    code = try_delegate(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from qor.cli.application import run

    run()


def __getattr__(name: str) -> Any:
    # ``from qor.cli import app`` (tests, embedding) loads the application on first use.
    if name == "app":
        from qor.cli.application import app

        return app
    raise AttributeError(name)
