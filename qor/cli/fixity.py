"""CLI commands of the integrity area: fixity audits and reports, rebuilding register links,
validating a bag in a store.

    qor fixity audit [--mode deep|quick] [--bag ID]… [--due] [--no-repair] [--restart]
    qor fixity report --out DIR [--days N]
    qor fixity schedule [LOCATION --every-days N | --default]
    qor register rebuild-links [--store URI] [--no-create-items]
    qor bag validate-stored URI

Installed into the main app by :func:`install` (one line in ``qor/cli.py``). Heavy modules are
imported inside the commands so ``qor --help`` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qor.cli._common import (
    JsonOpt,
    LangOpt,
    cli_settings,
    console,
    current_actor,
    emit_json,
    err_console,
    fail,
    flow_run_context,
    flow_settings,
    load_prefect,
    problem_dict,
    report_language,
    run_label,
    stage_progress,
)
from qor.errors import QorError

if TYPE_CHECKING:
    from integrity.audit import AuditRun

app = typer.Typer(help="Fixity audits (сақталуын тексеру / проверка сохранности) of stored bags.",
                  no_args_is_help=True)
register_app = typer.Typer(help="Maintenance of the fund register.", no_args_is_help=True)



def install(main: typer.Typer, bag_app: typer.Typer) -> None:
    """Add ``qor fixity …``, ``qor register rebuild-links`` and ``qor bag validate-stored``."""
    main.add_typer(app, name="fixity")
    main.add_typer(register_app, name="register")
    bag_app.command("validate-stored")(bag_validate_stored)


def _print_run(run: AuditRun) -> None:
    from rich.table import Table


    table = Table(title=f"Fixity audit {run.run_id} ({run.mode}"
                        f"{', resumed' if run.resumed else ''})")
    for col in ("inventory", "bag", "objects", "bytes", "outcome"):
        table.add_column(col)
    for b in run.bags:
        colour = {"success": "green", "repaired": "yellow"}.get(b.outcome, "bold red")
        table.add_row(b.inventory_number or "?", b.bag_id, str(b.files_checked),
                      f"{b.bytes_checked:,}", f"[{colour}]{b.outcome}[/]")
    console.print(table)
    for b in run.bags:
        for f in b.failures:
            fixed = f.key() not in {r.key() for r in b.remaining}
            mark = "[yellow]repaired[/]" if fixed else "[bold red]NOT REPAIRED[/]"
            console.print(f"  {mark} bag {b.bag_id}: {f.message}", highlight=False)
        for r in b.repairs:
            console.print(f"    repair {r.path}: {r.detail}", highlight=False)
    for uri, bag in run.orphans:
        console.print(f"  [yellow]unregistered bag[/] {bag} in {uri} "
                      "(see qor register rebuild-links)", highlight=False)
    verdict = "[bold green]all intact[/]" if run.ok else f"[bold red]{len(run.failed)} bag(s) " \
              "DAMAGED[/]"
    console.print(f"{len(run.bags)} bag(s), {run.files_checked} object(s), "
                  f"{run.bytes_checked:,} bytes checked: {verdict}")


@app.command("audit")
def fixity_audit(
    mode: Annotated[str, typer.Option(
        help="deep: re-hash every object; quick: compare the store's checksums and sizes "
             "without downloading.")] = "deep",
    bag: Annotated[list[str] | None, typer.Option(
        "--bag", help="Audit only this bag id (repeat for several).")] = None,
    due: Annotated[bool, typer.Option(
        "--due", help="Deep mode: only today's share (each bag at its location's interval, "
                      "`qor fixity schedule`; else every QOR_FIXITY_DEEP_EVERY_DAYS days).")
        ] = False,
    no_repair: Annotated[bool, typer.Option(
        "--no-repair", help="Report damage without restoring from the replica.")] = False,
    restart: Annotated[bool, typer.Option(
        "--restart", help="Start afresh instead of resuming an interrupted audit.")] = False,
    workers: Annotated[int | None, typer.Option(help="Objects hashed at once.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Audit stored bags. Exit 0 when every bag is intact (or repaired), 4 when damage remains
    (after alerting), 3 when a store or the register is unreachable (rerun to resume)."""
    if mode not in ("deep", "quick"):
        err_console.print(f"[bold red]error:[/] --mode must be deep or quick, not {mode!r}")
        raise typer.Exit(2)
    flow_settings(quiet=as_json)  # before Prefect loads: it reads its API address on import
    load_prefect()
    from flows import progress
    from flows.fixity import run_fixity_audit
    from integrity.audit import AuditRun, BagAudit
    from integrity.errors import FixityAuditFailed

    failed: FixityAuditFailed | None = None
    with stage_progress({"fixity-bags": "Bags", "fixity-files": "Objects of this bag"},
                        hidden=as_json) as on_progress:
        try:
            with progress.listening(on_progress), flow_run_context():
                data = run_fixity_audit(mode=mode, bag_ids=bag or None, scheduled=due,
                                        repair=not no_repair, resume=not restart,
                                        workers=workers, run_label=run_label())
        except FixityAuditFailed as e:
            failed = e
            data = e.result.as_dict() if isinstance(e.result, AuditRun) else {}
        except QorError as e:
            raise fail(e) from e
    if as_json:
        emit_json(data)
    elif data:
        run = AuditRun(
            run_id=data["run_id"], mode=data["mode"], started_at=_dt(data["started_at"]),
            finished_at=_dt(data["finished_at"]),
            bags=tuple(BagAudit.from_dict(b) for b in data["bags"]),
            orphans=tuple((o["store_uri"], o["bag_id"]) for o in data["orphans"]),
            resumed=data["resumed"], checked_here=tuple(data["checked_here"]))
        _print_run(run)
    if failed is not None:
        raise fail(failed)


def _dt(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)


@app.command("report")
def fixity_report(
    out: Annotated[Path, typer.Option("--out", help="Folder for fixity-report.html/.csv/.json.")],
    days: Annotated[int | None, typer.Option(help="Only the last N days (default: all).")] = None,
    lang: LangOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the fixity report (HTML for people in ``--lang``; CSV and JSON with English keys)
    from the register's events."""
    from flows.fixity import report_from_register

    settings = cli_settings()
    language = report_language(lang, settings)
    try:
        report = report_from_register(settings, days=days)
    except QorError as e:
        raise fail(e) from e
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "fixity-report.html", "csv": out / "fixity-report.csv",
             "json": out / "fixity-report.json"}
    report.write_html(paths["html"], language)
    report.write_csv(paths["csv"])
    report.write_json(paths["json"])
    if as_json:
        emit_json({"ok": report.ok, "totals": report.totals(),
                    "files": {k: str(v) for k, v in paths.items()}})
        return
    t = report.totals()
    console.print(f"{t['bags']} bag(s), {t['checks']} check(s), {t['failures']} failure(s) "
                  f"({t['not_repaired']} not repaired)")
    for p in paths.values():
        console.print(f"wrote {p}")


@app.command("schedule")
def fixity_schedule(
    location: Annotated[str | None, typer.Argument(
        help="A storage location (store URI, as `qor copies show` gives it); none: list "
             "every location's schedule.")] = None,
    every_days: Annotated[int | None, typer.Option(
        "--every-days", min=1, max=3650,
        help="Deep-check this location's bags at least every N days.")] = None,
    default: Annotated[bool, typer.Option(
        "--default", help="Make the location follow QOR_FIXITY_DEEP_EVERY_DAYS again.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List or set the deep-check interval of each storage location (`--due` audits follow
    it; a location without its own follows QOR_FIXITY_DEEP_EVERY_DAYS)."""
    from rich.table import Table

    from integrity.schedules import location_schedules, set_schedule
    from qor import wiring

    if location is not None and (every_days is None) == (not default):
        err_console.print("[bold red]error:[/] give --every-days N or --default with a location")
        raise typer.Exit(2)
    if location is None and (every_days is not None or default):
        err_console.print("[bold red]error:[/] name the storage location to schedule")
        raise typer.Exit(2)
    settings = cli_settings()
    try:
        with wiring.register_session(settings) as session:
            if location is not None:
                set_schedule(session, location, None if default else every_days,
                             actor=current_actor())
                session.flush()
            rows = location_schedules(session,
                                      default_every_days=settings.fixity_deep_every_days)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json([{"store_uri": r.store_uri, "every_days": r.every_days, "own": r.own,
                    "bags": r.bags,
                    "next_due": r.next_due.isoformat() if r.next_due else None,
                    "set_by": r.set_by} for r in rows])
        return
    table = Table(title="Deep-check schedule per storage location")
    for col in ("location", "every (days)", "bags", "next due (UTC)", "set by"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.store_uri, f"{r.every_days}" + ("" if r.own else " (setting)"),
                      str(r.bags), r.next_due.strftime("%Y-%m-%d") if r.next_due else "—",
                      r.set_by or "—")
    console.print(table)


@register_app.command("rebuild-links")
def rebuild_links_command(
    store: Annotated[str | None, typer.Option(
        help="Store to read the bags from (default: the primary store).")] = None,
    no_create_items: Annotated[bool, typer.Option(
        "--no-create-items", help="Do not re-enter items missing from the register.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the digital-copy rows (item ↔ copy links) from the bags in the store."""
    from rich.table import Table

    from integrity.rebuild import rebuild_links
    from qor import wiring

    settings = cli_settings()
    try:
        target = (wiring.store_for_uri(settings, store) if store
                  else wiring.primary_store(settings))
        keyring = wiring.keyring(settings)
        known = set(keyring.kek_ids())
        with wiring.register_session(settings) as session:
            links = rebuild_links(session, target, actor=current_actor(),
                                  kek_usable=lambda k: k in known,
                                  create_items=not no_create_items)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json([link.as_dict() for link in links])
        return
    table = Table(title=f"Register links rebuilt from {target.uri}")
    for col in ("bag", "inventory", "version", "action", "reason"):
        table.add_column(col)
    for link in links:
        table.add_row(link.bag_id, link.inventory_number or "?", str(link.version or "?"),
                      link.action + (" (+item)" if link.item_created else ""), link.reason)
    console.print(table)


def split_bag_uri(uri: str) -> tuple[str, str]:
    """``<store-uri>/bags/<id>/`` → (store URI, ``bags/<id>/``); an S3 URI without ``/bags/``
    → (the bucket, the rest as the bag's prefix)."""
    from urllib.parse import urlsplit

    marker = uri.rstrip("/").rfind("/bags/")
    if marker > 0:
        return uri[:marker], uri[marker + 1:].rstrip("/") + "/"
    parts = urlsplit(uri)
    if parts.scheme == "s3" and parts.path.strip("/"):
        return f"s3://{parts.netloc}", parts.path.strip("/") + "/"
    raise typer.BadParameter(f"{uri}: give the bag's location, e.g. s3://bucket/bags/<bag-id>/ "
                             "or file:///store/bags/<bag-id>/")


def bag_validate_stored(
    uri: Annotated[str, typer.Argument(
        help="A bag in a store: s3://bucket[/prefix]/bags/<bag-id>/ or "
             "file:///store/bags/<bag-id>/.")],
    as_json: JsonOpt = False,
) -> None:
    """Check a stored bag against RFC 8493, streaming every object and re-hashing it.
    Exit 0 when valid, 1 when not, 3 when the store cannot be read."""
    from integrity.store_source import StoreBagSource
    from integrity.validate import problems
    from qor import wiring

    settings = cli_settings()
    store_uri, prefix = split_bag_uri(uri)
    try:
        source = StoreBagSource(wiring.store_for_uri(settings, store_uri), prefix)
        if not source.files():
            from integrity.errors import BagUnreadableError

            raise BagUnreadableError(f"{uri}: no bag there (no object under {prefix})")
        found = problems(source)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json({"bag": uri, "valid": not found,
                    "problems": [problem_dict(p) for p in found]})
    elif not found:
        console.print(f"[bold green]valid[/]: {uri}")
    else:
        console.print(f"[bold red]invalid[/]: {uri} — {len(found)} problem(s)")
        for p in found:
            console.print(f"  • {p}", highlight=False)
    raise typer.Exit(0 if not found else 1)
