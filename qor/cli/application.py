"""The ``qor`` Typer application: every command, one module per area (see :mod:`qor.cli`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from qor.cli import (
    bag,
    compliance,
    config,
    copies,
    digitise,
    elibrary,
    fixity,
    items,
    jobs,
    keys,
    library,
    ops,
    register,
    server,
    sip2,
)
from qor.cli._common import configure_logging, err_console, fail_unexpected
from qor.errors import QorError

app = typer.Typer(
    name="qor",
    help=(
        "Qor — digitisation and digital depository of the library fund.\n\n"
        "Scans become searchable PDF/A (Kazakh, Russian, English OCR), encrypted into BagIt "
        "packages in the depository store with fixity checks, each linked to its item's "
        "inventory number in the fund register."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More log output (-v info, -vv debug).")] = 0,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show tracebacks and Prefect's run logs on stderr.")] = False,
) -> None:
    configure_logging(verbosity=verbose, debug=debug)


digitise.install(app)
app.add_typer(items.app, name="items")
app.add_typer(copies.app, name="copies")
app.add_typer(bag.app, name="bag")
app.add_typer(keys.app, name="keys")
app.command("settings")(config.show_settings)
app.add_typer(server.app, name="server")
app.command("jobs")(jobs.jobs)
library.install(app)  # readers, loans, gate, debts, deposit, select
app.add_typer(ops.app, name="doctor")
app.add_typer(ops.automations_app, name="automations")
fixity.install(app, bag.app)  # fixity, register rebuild-links, bag validate-stored
app.add_typer(elibrary.app, name="elibrary")
register.install(app, fixity.register_app)  # books, stocktake, marc, register verify-log
sip2.install(app)  # qor sip2 serve | hash-password
app.add_typer(compliance.app, name="compliance")


def run() -> None:
    """Run the command in this process: a Qor error is one line and its exit code; any other error
    one line and exit 70 (the traceback with ``--debug``)."""
    try:
        app(standalone_mode=True)
    except QorError as e:  # raised outside a command's own handler (settings, start-up)
        err_console.print(f"[bold red]error:[/] {e.message}", highlight=False)
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        sys.exit(fail_unexpected(e))
