"""CLI commands of the fund register: accounting books (R9), stocktakes (R14), the audit log,
MARC21 exchange.

    qor books summary --year Y [--out DIR]
    qor books inventory [--from N] [--to M] [--out DIR]
    qor stocktake start --reason R --responsible NAME --scope LOCATION
    qor stocktake scan [ID] [FILE]          (standard input when FILE is omitted or "-")
    qor stocktake close [ID] [--mark-missing] [--out DIR]
    qor register verify-log [--anchor FILE]
    qor marc export FILE [--format iso2709|marcxml]
    qor marc import FILE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from qor.cli._common import (
    JsonOpt,
    LangOpt,
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

books_app = typer.Typer(
    help="Accounting books (R9): summary book (КСУ) and inventory book (инвентарная книга).",
    no_args_is_help=True,
)
stocktake_app = typer.Typer(
    help="Stocktakes (R14): салыстырмалы тексеру / сверка фонда.", no_args_is_help=True
)
marc_app = typer.Typer(help="MARC21 exchange (ISO 2709 and MARCXML).", no_args_is_help=True)

OutOpt = Annotated[Path, typer.Option("--out", help="Folder for the HTML and CSV files.")]
StocktakeIdArg = Annotated[
    int | None, typer.Argument(help="Stocktake id (default: the one that is open).")
]


def install(main: typer.Typer, register_app: typer.Typer) -> None:
    """Add ``qor books``, ``qor stocktake``, ``qor marc`` and ``qor register verify-log``."""
    main.add_typer(books_app, name="books")
    main.add_typer(stocktake_app, name="stocktake")
    main.add_typer(marc_app, name="marc")
    register_app.command("verify-log")(verify_log)


# --- books -----------------------------------------------------------------------------------


@books_app.command("summary")
def books_summary(
    year: Annotated[int, typer.Option(help="The accounting year.")],
    out: OutOpt = Path(),
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the summary accounting book of a year: receipts and write-offs by batch and act,
    counts and value by material type and source, the fund's running balance."""
    settings = cli_settings()
    language = report_language(lang, settings)
    from catalog_sync.books import summary_book, write_summary_book
    from qor import wiring

    try:
        with wiring.register_session(settings) as session:
            book = summary_book(session, year=year)
            html, csv = write_summary_book(book, out, library_name=settings.library_name,
                                           language=language)
    except QorError as e:
        raise fail(e) from e
    _written(html, csv, as_json=as_json)


@books_app.command("inventory")
def books_inventory(
    from_number: Annotated[str | None, typer.Option("--from", help="First inventory number.")]
    = None,
    to_number: Annotated[str | None, typer.Option("--to", help="Last inventory number.")] = None,
    out: OutOpt = Path(),
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the inventory book: one line per item in inventory-number order, written-off
    items included and marked."""
    settings = cli_settings()
    language = report_language(lang, settings)
    from catalog_sync.books import write_inventory_book
    from qor import wiring

    try:
        with wiring.register_session(settings) as session:
            html, csv = write_inventory_book(session, out, library_name=settings.library_name,
                                             from_number=from_number, to_number=to_number,
                                             language=language)
    except QorError as e:
        raise fail(e) from e
    _written(html, csv, as_json=as_json)


def _written(*paths: Path, as_json: bool) -> None:
    if as_json:
        emit_json([str(p) for p in paths])
    else:
        for p in paths:
            console.print(f"wrote {p}")


# --- stocktake -------------------------------------------------------------------------------

Reason = Literal["change-of-responsible-person", "loss", "reorganisation", "liquidation"]


@stocktake_app.command("start")
def stocktake_start(
    reason: Annotated[Reason, typer.Option(help="Why the check is made (R14).")],
    responsible: Annotated[str, typer.Option(help="The materially responsible person.")],
    scope: Annotated[str, typer.Option(help="The location checked (and everything below it).")],
    as_json: JsonOpt = False,
) -> None:
    """Open a stocktake over a location; scans are then fed with ``qor stocktake scan``."""
    settings = cli_settings()
    from catalog_sync.stocktake import start_stocktake
    from qor import wiring

    try:
        with wiring.register_session(settings) as session:
            st = start_stocktake(session, reason=reason, responsible=responsible, scope=scope,
                                 actor=current_actor())
            stocktake_id = st.id
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json({"stocktake": stocktake_id, "scope": scope, "reason": reason})
    else:
        console.print(f"stocktake [bold]{stocktake_id}[/] open over {scope} ({reason}); "
                      f"feed scans with: qor stocktake scan {stocktake_id} FILE")


def _open_stocktake(session: Session, stocktake_id: int | None) -> int:
    from sqlalchemy import select

    from catalog_sync.errors import RegisterError
    from catalog_sync.models import Stocktake

    if stocktake_id is not None:
        return stocktake_id
    open_ids = list(session.scalars(select(Stocktake.id).where(Stocktake.closed_at.is_(None))))
    if len(open_ids) != 1:
        raise RegisterError(
            "no stocktake is open" if not open_ids else
            f"{len(open_ids)} stocktakes are open ({', '.join(map(str, open_ids))}): name one"
        )
    return open_ids[0]


@stocktake_app.command("scan")
def stocktake_scan(
    stocktake_id: StocktakeIdArg = None,
    source: Annotated[str, typer.Argument(help="File of barcodes/RFID ids, one per line; "
                                               "'-' for standard input.")] = "-",
    location: Annotated[str | None, typer.Option(help="Where these scans were made.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a stream of scanned barcodes/RFID ids; every line is kept or reported back."""
    settings = cli_settings()
    from catalog_sync import db
    from catalog_sync.stocktake import ingest_scan_stream
    from qor import wiring

    try:
        with wiring.register_session(settings) as session:
            target = _open_stocktake(session, stocktake_id)
        sessions = db.session_factory(wiring.register_engine(settings))
        stream = sys.stdin if source == "-" else Path(source).open(encoding="utf-8")  # noqa: SIM115
        try:
            result = ingest_scan_stream(sessions, target, stream, actor=current_actor(),
                                        location=location)
        finally:
            if stream is not sys.stdin:
                stream.close()
    except OSError as e:
        console.print(f"[bold red]error:[/] {source}: {e.strerror}")
        raise typer.Exit(1) from e
    except QorError as e:
        raise fail(e) from e
    data = {"stocktake": target, "read": result.read, "stored": result.stored,
            "refused": [{"line": n, "reason": why} for n, why in result.refused]}
    if as_json:
        emit_json(data)
        return
    console.print(f"stocktake {target}: {result.stored} of {result.read} scan(s) recorded")
    for line_no, why in result.refused:
        console.print(f"  line {line_no}: {why}", highlight=False)


@stocktake_app.command("close")
def stocktake_close(
    stocktake_id: StocktakeIdArg = None,
    mark_missing: Annotated[bool, typer.Option(
        "--mark-missing", help="Give items found missing the status 'missing'.")] = False,
    out: OutOpt = Path(),
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close the stocktake and write its act: missing, unexpected and misplaced items."""
    settings = cli_settings()
    language = report_language(lang, settings)
    from catalog_sync.stocktake import close_stocktake, write_stocktake_act
    from qor import wiring

    try:
        with wiring.register_session(settings) as session:
            target = _open_stocktake(session, stocktake_id)
            act = close_stocktake(session, target, actor=current_actor(), mark_missing=mark_missing)
            html, csv = write_stocktake_act(act, out, library_name=settings.library_name,
                                            language=language)
    except QorError as e:
        raise fail(e) from e
    counts = {"missing": len(act.missing), "unexpected": len(act.unexpected),
              "misplaced": len(act.misplaced)}
    if as_json:
        emit_json({"stocktake": target, **counts, "files": [str(html), str(csv)]})
        return
    console.print(f"stocktake {target} closed: {counts['missing']} missing, "
                  f"{counts['unexpected']} unexpected, {counts['misplaced']} misplaced")
    _written(html, csv, as_json=False)


# --- audit log -------------------------------------------------------------------------------


def verify_log(
    anchor: Annotated[Path | None, typer.Option(
        help="A JSON file saved earlier from --save-anchor ({seq, hash, entries, chains}; "
             "an older {seq, hash} still works), kept outside the database: detects a "
             "rewritten tail too.")] = None,
    save_anchor: Annotated[Path | None, typer.Option(
        help="After a clean check, write the log's current head to this file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the register's hash-chained audit log, and every loan row against its last logged
    state: exit 0 when intact, 4 when any entry was altered or removed or a loan row was
    changed, inserted or deleted outside the register."""
    settings = cli_settings()
    from catalog_sync.audit import ChainHead, LogAnchor, log_head, verify_loans
    from catalog_sync.audit import verify_log as verify
    from qor import wiring

    try:
        given = None
        if anchor is not None:
            raw = json.loads(anchor.read_text(encoding="utf-8"))
            given = LogAnchor(
                seq=int(raw["seq"]), hash=str(raw["hash"]), entries=int(raw.get("entries", 0)),
                chains=tuple(ChainHead(chain=int(c["chain"]), position=int(c["position"]),
                                       seq=int(c["seq"]), hash=str(c["hash"]))
                             for c in raw.get("chains", [])))
        with wiring.register_session(settings) as session:
            found = verify(session, anchor=given) + verify_loans(session)
            head = log_head(session)
    except (OSError, ValueError, KeyError) as e:
        console.print(f"[bold red]error:[/] anchor {anchor}: {e}")
        raise typer.Exit(2) from e
    except QorError as e:
        raise fail(e) from e
    if not found and save_anchor is not None:
        save_anchor.write_text(json.dumps({
            "seq": head.seq, "hash": head.hash, "entries": head.entries,
            "chains": [{"chain": c.chain, "position": c.position, "seq": c.seq, "hash": c.hash}
                       for c in head.chains]}), encoding="utf-8")
    if as_json:
        emit_json({"intact": not found, "entries": head.entries,
                    "problems": [{"seq": p.seq, "kind": p.kind, "detail": p.detail}
                                 for p in found]})
    elif not found:
        console.print(f"[bold green]audit log intact[/]: {head.entries} entries")
    else:
        console.print(f"[bold red]audit log damaged[/]: {len(found)} problem(s)")
        for p in found:
            console.print(f"  entry {p.seq}: {p.kind} — {p.detail}", highlight=False)
    raise typer.Exit(0 if not found else 4)


# --- MARC ------------------------------------------------------------------------------------


@marc_app.command("export")
def marc_export(
    path: Annotated[Path, typer.Argument(
        help="File to write: .mrc/.marc/.iso ISO 2709, .xml MARCXML.")],
    fmt: Annotated[str | None, typer.Option(
        "--format", help="iso2709 or marcxml (default: from the extension; must agree).")] = None,
    links: Annotated[bool, typer.Option(
        "--links/--no-links", help="856 to each digital copy's page at QOR_ELIBRARY_BASE_URL.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Export every bibliographic record with its items."""
    settings = cli_settings()
    from catalog_sync.marc import export_marc, format_for
    from elibrary.config import load_elibrary_settings
    from qor import wiring

    try:
        chosen = format_for(path, fmt)
        base = load_elibrary_settings().elibrary_base_url if links else None
        with wiring.register_session(settings) as session:
            count = export_marc(session, path, fmt=chosen, elibrary_url=base)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json({"file": str(path), "format": chosen, "records": count})
    else:
        console.print(f"exported {count} record(s) to {path} ({chosen})")


@marc_app.command("import")
def marc_import(
    path: Annotated[Path, typer.Argument(help="ISO 2709 or MARCXML file.")],
    fmt: Annotated[str | None, typer.Option(
        "--format", help="iso2709 or marcxml (default: from the extension, else the content)."
    )] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import records with their items (idempotent); every record refused is reported."""
    settings = cli_settings()
    from catalog_sync.marc import EXTENSIONS, format_for, import_marc
    from qor import wiring

    try:
        chosen = (format_for(path, fmt)
                  if fmt is not None or path.suffix.lower() in EXTENSIONS else None)
        with wiring.register_session(settings) as session:
            report = import_marc(session, path, actor=current_actor(), fmt=chosen)
    except QorError as e:
        raise fail(e) from e
    problems = [{"position": p.position, "control_number": p.control_number,
                 "reason": p.reason} for p in report.problems]
    if as_json:
        emit_json({"added": report.records_added, "present": report.records_present,
                    "items_added": report.items_added, "problems": problems})
    else:
        console.print(f"{report.records_added} record(s) added, "
                      f"{report.records_present} already present, "
                      f"{report.items_added} item(s) added")
        for p in problems:
            console.print(f"  record {p['position']} ({p['control_number'] or 'no 001'}): "
                          f"{p['reason']}", highlight=False)
    raise typer.Exit(0 if not problems else 1)
