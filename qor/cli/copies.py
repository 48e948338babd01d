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
    err_console,
    fail,
    flow_run_context,
    flow_settings,
    load_prefect,
    run_label,
    stage_progress,
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


@app.command("derive")
def copies_derive(
    inventory: Annotated[list[str] | None, typer.Argument(
        help="Inventory numbers whose latest copy to derive.")] = None,
    bag: Annotated[list[str] | None, typer.Option(
        "--bag", help="Derive this bag id (repeat for several).")] = None,
    every: Annotated[bool, typer.Option(
        "--all", help="Every copy in the register (those already derived are skipped).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Give stored copies their access derivatives (access PDF, reading images for IIIF).

    For copies stored without them (digitised before they existed, or with
    QOR_ACCESS_DERIVATIVES=false): the archival PDF's page images are decrypted, the derivatives
    made and encrypted into the bag, manifests, PREMIS and METS get new versions (the store
    keeps the old ones). A copy already derived is left as it is.
    """
    if not inventory and not bag and not every:
        err_console.print("[bold red]error:[/] name inventory numbers, --bag IDs or --all")
        raise typer.Exit(2)
    flow_settings(quiet=as_json)  # before Prefect loads: it reads its API address on import
    load_prefect()
    from flows import progress
    from flows.derive import run_derive

    with stage_progress({"derive-copies": "Copies", "derive-derive": "Pages derived",
                         "derive-store": "Objects stored"}, hidden=as_json) as on_progress:
        try:
            with progress.listening(on_progress), flow_run_context():
                results = run_derive(inventory_numbers=inventory or [], bag_ids=bag or [],
                                     every=every, run_label=run_label())
        except QorError as e:
            raise fail(e) from e
    if as_json:
        emit_json(results)
        return
    if not results:
        console.print("No digital copies to derive.")
    for r in results:
        if r["status"] == "already derived":
            console.print(f"{r['inventory_number']} ({r['bag_id']}): already derived",
                          highlight=False)
            continue
        console.print(f"{r['inventory_number']} ({r['bag_id']}): derived, "
                      f"{len(r['files'])} file(s), {r['stored_bytes']:,} bytes stored; "
                      f"access PDF {r['pdfa_verdict']}", highlight=False)
        for n, choice in enumerate(r["encodings"], start=1):
            console.print(f"  page {n}: {choice}", highlight=False)
