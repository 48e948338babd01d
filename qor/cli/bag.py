"""``qor bag …``: BagIt packages, in a folder or in a store (RFC 8493)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qor.cli._common import (
    JsonOpt,
    console,
    emit_json,
    err_console,
    problem_dict,
)

app = typer.Typer(help="BagIt packages in the depository store.", no_args_is_help=True)

@app.command("validate")
def bag_validate(
    path: Annotated[str, typer.Argument(help="A bag folder.")],
    as_json: JsonOpt = False,
) -> None:
    """Check a bag against RFC 8493 and its manifests. Exit 0 when valid, 1 when not."""
    from integrity.source import FileSystemBagSource
    from integrity.validate import problems

    bag_path = Path(path)
    if not bag_path.is_dir():
        err_console.print(f"[bold red]error:[/] {path}: no such bag folder")
        raise typer.Exit(2)
    found = problems(FileSystemBagSource(bag_path))
    if as_json:
        emit_json({"bag": str(bag_path), "valid": not found,
                    "problems": [problem_dict(p) for p in found]})
    elif not found:
        console.print(f"[bold green]valid[/]: {path}")
    else:
        console.print(f"[bold red]invalid[/]: {path} — {len(found)} problem(s)")
        for p in found:
            console.print(f"  • {p}", highlight=False)
    raise typer.Exit(0 if not found else 1)
