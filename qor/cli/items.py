"""``qor items …``: items of the fund register (кітапхана қоры / библиотечный фонд)."""

from __future__ import annotations

from typing import Annotated

import typer

from qor.cli._common import (
    JsonOpt,
    cli_settings,
    console,
    current_actor,
    emit_json,
    fail,
)
from qor.errors import QorError

app = typer.Typer(help="Items of the fund register (кітапхана қоры / библиотечный фонд).",
                  no_args_is_help=True)

@app.command("add")
def items_add(
    inventory: Annotated[str, typer.Argument(help="The inventory number (never changes, R14).")],
    title: Annotated[str, typer.Option(help="Title of the bibliographic record.")],
    author: Annotated[list[str] | None, typer.Option(help="Author (repeat for several).")] = None,
    year: Annotated[int | None, typer.Option(help="Year of publication.")] = None,
    language: Annotated[str | None, typer.Option(help="Language code, e.g. kk, ru.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Enter an item with an explicit inventory number (e.g. from a paper inventory book)."""
    settings = cli_settings()
    from catalog_sync import register
    from qor import wiring

    try:
        with wiring.register_session(settings) as session:
            item = register.add_item(session, inventory_number=inventory, title=title,
                                     authors=tuple(author or ()), year=year, language=language,
                                     actor=current_actor())
            data = {"inventory_number": item.inventory_number, "title": title,
                    "status": str(item.status)}
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json(data)
    else:
        console.print(f"Entered item [bold]{inventory}[/]: {title}")
