"""``qor copies …``: digital copies (цифрлық көшірме / цифровая копия) of items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from qor.cli._common import (
    JsonOpt,
    cli_settings,
    console,
    emit_json,
    fail,
)
from qor.errors import QorError

app = typer.Typer(help="Digital copies (цифрлық көшірме / цифровая копия) of items.",
                  no_args_is_help=True)

@app.command("show")
def copies_show(
    inventory: Annotated[str, typer.Argument(help="Inventory number of the item.")],
    as_json: JsonOpt = False,
) -> None:
    """List the digital copies of an item: versions, where they are stored, their events."""
    settings = cli_settings()
    from catalog_sync import register
    from qor import wiring

    try:
        with wiring.register_session(settings) as session:
            register.get_item(session, inventory)
            rows = [register.copy_facts(c) for c in register.digital_copies(session, inventory)]
            events = {c.bag_id: register.copy_events(session, c.bag_id) for c in rows}
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json([{**r.as_dict(), "events": [ev.as_dict() for ev in events[r.bag_id]]}
                    for r in rows])
        return
    if not rows:
        console.print(f"{inventory} has no digital copy yet.")
        return
    table = Table(title=f"Digital copies of {inventory}")
    for col in ("version", "bag", "stored in", "pages", "PDF/A", "OCR conf.", "created"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.version), r.bag_id, r.store_uri, str(r.page_count), r.pdfa_verdict,
                      "n/a" if r.ocr_confidence is None else f"{r.ocr_confidence:.1f}",
                      r.created_at.isoformat(timespec="seconds"))
    console.print(table)
    for r in rows:  # the PRONOM format of each stored file, as its PREMIS object records it
        for ev in events[r.bag_id]:
            if ev.event_type == "format identification":
                found = json.loads(ev.detail).get("pronom", {})
                console.print(f"formats of {r.bag_id} (PRONOM): " + ", ".join(
                    f"{p.removeprefix('data/')} {k}" for p, k in sorted(found.items())),
                    highlight=False)


@app.command("export")
def copies_export(
    inventory: Annotated[str, typer.Argument(help="Inventory number of the item.")],
    to: Annotated[Path, typer.Option("--to", help="Folder to write the decrypted files into.")],
    version: Annotated[int | None, typer.Option(help="Copy version (default: newest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Decrypt a copy's PDF and OCR text into a folder.

    Every file is authenticated before anything is written: if any byte of the stored copy fails
    authentication, nothing is written and the command exits 4.
    """
    settings = cli_settings()
    from flows.export import export_copy

    try:
        written = export_copy(settings, inventory_number=inventory, dest=to, version=version)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json([{"path": str(p), "bytes": p.stat().st_size} for p in written])
        return
    for p in written:
        console.print(f"{p}  ({p.stat().st_size:,} bytes)")
