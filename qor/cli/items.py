"""``qor items …``: items of the fund register (кітапхана қоры / библиотечный фонд)."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qor.cli._common import (
    JsonOpt,
    cli_settings,
    console,
    current_actor,
    emit_json,
    fail,
    report_language,
)
from qor.errors import QorError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(help="Items of the fund register (кітапхана қоры / библиотечный фонд).",
                  no_args_is_help=True)

@app.command("add")
def items_add(
    inventory: Annotated[str, typer.Argument(help="The inventory number (never changes, R14).")],
    title: Annotated[str, typer.Option(help="Title of the bibliographic record.")],
    author: Annotated[list[str] | None, typer.Option(help="Author (repeat for several).")] = None,
    year: Annotated[int | None, typer.Option(help="Year of publication.")] = None,
    language: Annotated[str | None, typer.Option(help="Language code, e.g. kk, ru.")] = None,
    source: Annotated[str | None, typer.Option(
        help="Source of acquisition (R5): purchase, exchange, donation, state_order, "
             "legal_deposit (national libraries only).")] = None,
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
                                     source=source, actor=current_actor())
            data = {"inventory_number": item.inventory_number, "title": title,
                    "status": str(item.status)}
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json(data)
    else:
        console.print(f"Entered item [bold]{inventory}[/]: {title}")


def _session() -> AbstractContextManager[Session]:
    from qor import wiring

    return wiring.register_session(cli_settings())


@app.command("show")
def items_show(
    inventory: Annotated[str, typer.Argument(help="Inventory number.")],
    as_json: JsonOpt = False,
) -> None:
    """An item, its record, and every logged change (who, when, old → new)."""
    from catalog_sync import items

    try:
        with _session() as session:
            card = items.show_item(session, inventory)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json({**card.item.as_dict(), "history": [
            {"seq": h.seq, "at": h.at, "actor": h.actor, "action": h.action,
             "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in h.changes]}
            for h in card.history]})
        return
    for name, value in card.item.as_dict().items():
        console.print(f"{name:>16}: {value if value not in (None, '', []) else '—'}",
                      highlight=False, markup=False)
    console.print("history:")
    for h in card.history:
        what = ", ".join(f"{c.field} {c.old!r} → {c.new!r}" for c in h.changes)
        console.print(f"  {h.at} {h.actor} {h.action}: {what}", highlight=False, markup=False)


@app.command("list")
def items_list(
    fund: Annotated[str | None, typer.Option(
        help="Part of the fund (R2.4): printed, audiovisual, electronic, legal_deposit.")] = None,
    status: Annotated[str | None, typer.Option(
        help="received, processed, available, on_loan, in_repair, missing, written_off.")] = None,
    location: Annotated[str | None, typer.Option(
        help="A location and everything under it (Hall-A takes Hall-A/S1).")] = None,
    receipt_act: Annotated[str | None, typer.Option(help="Receipt act (batch) number.")] = None,
    source: Annotated[str | None, typer.Option(help="Acquisition source (R5).")] = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    csv_out: Annotated[Path | None, typer.Option(
        "--csv", help="Write the list as CSV to this file ('-' for stdout).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Items of the register, filtered; a table, JSON (--json) or CSV (--csv)."""
    from catalog_sync import items

    try:
        with _session() as session:
            rows = items.list_items(session, fund=fund, status=status, location=location,
                                    receipt_act=receipt_act, source=source, limit=limit)
    except QorError as e:
        raise fail(e) from e
    if csv_out is not None:
        text = items.items_csv(rows)
        if str(csv_out) == "-":
            sys.stdout.write(text)
        else:
            csv_out.write_text(text, encoding="utf-8")
            if not as_json:
                console.print(f"{len(rows)} item(s) written to {csv_out}")
    if as_json:
        emit_json([r.as_dict() for r in rows])
    elif csv_out is None:
        for r in rows:
            console.print(f"{r.inventory_number}  {r.status:<11} {r.location or '—':<16} "
                          f"{r.barcode or '—':<14} {r.title}", highlight=False, markup=False)
        console.print(f"{len(rows)} item(s)")


def _parse_set(pairs: list[str]) -> dict[str, object]:
    changes: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r}: expected FIELD=VALUE", param_hint="--set")
        name = name.strip()
        parsed: object = value.strip() or None
        if name == "authors":
            parsed = [a.strip() for a in value.split(";") if a.strip()]
        elif name == "year" and parsed is not None:
            try:
                parsed = int(value)
            except ValueError as e:
                raise typer.BadParameter(f"year {value!r} is not a number",
                                         param_hint="--set") from e
        changes[name] = parsed
    return changes


@app.command("edit")
def items_edit(
    inventory: Annotated[str, typer.Argument(help="Inventory number (never editable, R14).")],
    set_: Annotated[list[str], typer.Option(
        "--set", help="FIELD=VALUE (repeat). Item: location, shelf_mark, condition, barcode, "
                      "rfid, price, status; record: title, authors (';'-separated), publisher, "
                      "year, language, isbn, issn. An empty VALUE clears the field.")],
    as_json: JsonOpt = False,
) -> None:
    """Correct an item or its bibliographic record; every change logged with old and new."""
    from catalog_sync import items

    changes = _parse_set(set_)
    try:
        with _session() as session:
            item = items.edit_item(session, inventory, actor=current_actor(), changes=changes)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json(item.as_dict())
    else:
        console.print(f"item [bold]{inventory}[/] changed: {', '.join(changes)}")


def _bulk(operation: str, path: Path, as_json: bool) -> None:
    from catalog_sync import items

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        console.print(f"[bold red]error:[/] {path}: {e}")
        raise typer.Exit(2) from e
    try:
        rows = items.read_bulk_csv(text, operation=operation)
        with _session() as session:
            done = items.bulk_apply(session, rows, operation=operation, actor=current_actor())
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json({"operation": operation, "items": [d.as_dict() for d in done]})
    else:
        console.print(f"{operation}: {len(done)} item(s) from {path}")


@app.command("process")
def items_process(
    inventory: Annotated[str | None, typer.Argument(help="Inventory number.")] = None,
    barcode: Annotated[str | None, typer.Option(help="Barcode to assign.")] = None,
    rfid: Annotated[str | None, typer.Option(help="RFID tag id to assign.")] = None,
    location: Annotated[str | None, typer.Option(help="Shelf location, e.g. Hall-A/S1.")] = None,
    shelf_mark: Annotated[str | None, typer.Option(help="Shelf mark (шифр хранения).")] = None,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv", help="Process every row of this CSV (inventory_number, barcode, rfid, "
                      "location, shelf_mark); all or nothing.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """R8: library processing — barcode/RFID, location, shelf mark — then on the shelf
    (available), so the desk can lend it."""
    if csv_file is not None:
        if inventory is not None:
            raise typer.BadParameter("give an inventory number or --csv, not both")
        _bulk("process", csv_file, as_json)
        return
    if inventory is None:
        raise typer.BadParameter("give an inventory number or --csv FILE")
    from catalog_sync import items

    try:
        with _session() as session:
            item = items.process_for_use(session, inventory, actor=current_actor(),
                                         barcode=barcode, rfid=rfid, location=location,
                                         shelf_mark=shelf_mark)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json(item.as_dict())
    else:
        console.print(f"item [bold]{inventory}[/] processed and available at {item.location}")


@app.command("move")
def items_move(
    inventory: Annotated[str | None, typer.Argument(help="Inventory number.")] = None,
    location: Annotated[str | None, typer.Option(help="New location.")] = None,
    shelf_mark: Annotated[str | None, typer.Option(help="New shelf mark.")] = None,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv", help="Move every row of this CSV (inventory_number, location, shelf_mark); "
                      "all or nothing.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Place an item (or a CSV file of items) elsewhere."""
    if csv_file is not None:
        if inventory is not None:
            raise typer.BadParameter("give an inventory number or --csv, not both")
        _bulk("move", csv_file, as_json)
        return
    if inventory is None or location is None:
        raise typer.BadParameter("give an inventory number and --location, or --csv FILE")
    from catalog_sync import items

    try:
        with _session() as session:
            item = items.move(session, inventory, actor=current_actor(), location=location,
                              shelf_mark=shelf_mark)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json(item.as_dict())
    else:
        console.print(f"item [bold]{inventory}[/] moved to {item.location}")


@app.command("write-off")
def items_write_off(
    inventories: Annotated[list[str], typer.Argument(help="Inventory numbers of the act.")],
    act: Annotated[str, typer.Option(help="Write-off act number (акт списания).")],
    reason: Annotated[str, typer.Option(
        help="worn, lost, obsolete, duplicate, out_of_profile, damaged, other (needs --note).")],
    act_date: Annotated[str | None, typer.Option(
        "--date", help="Date of the act, YYYY-MM-DD (default today).")] = None,
    note: Annotated[str | None, typer.Option(help="Note written on the act.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the act's HTML and CSV.")] = Path(),
    language: Annotated[str | None, typer.Option(
        "--lang", "--language", help="Language of the act's HTML: kk, ru, en (default: the "
        "report_language setting, or en); the CSV keeps English keys.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write items off the fund by one act (R3–R4: they stay in the register, written off) and
    write the act as HTML and CSV."""
    from datetime import date

    from catalog_sync import items

    try:
        on = date.fromisoformat(act_date) if act_date else date.today()
    except ValueError as e:
        raise typer.BadParameter(f"{act_date!r} is not a YYYY-MM-DD date",
                                 param_hint="--date") from e
    lang = report_language(language, cli_settings())
    try:
        with _session() as session:
            doc = items.write_off_items(session, act_number=act, act_date=on, reason=reason,
                                        inventory_numbers=inventories, actor=current_actor(),
                                        note=note)
    except QorError as e:
        raise fail(e) from e
    out.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in act)
    html = out / f"write-off-{safe}.html"
    csv = out / f"write-off-{safe}.csv"
    html.write_text(items.write_off_html(doc, language=lang), encoding="utf-8")
    csv.write_text(items.write_off_csv(doc), encoding="utf-8")
    if as_json:
        emit_json({"act": act, "items": [i.inventory_number for i in doc.items],
                   "total_price": doc.total_price, "files": [str(html), str(csv)]})
    else:
        console.print(f"write-off act {act}: {len(doc.items)} item(s); {html}, {csv}")
