"""``qor``: the command line of Qor.

For digitisation operators, preservation officers and librarians.

Heavy imports (Prefect, pikepdf, boto3) happen inside the commands so ``qor --help`` stays quick.
Every refusal prints one line saying what was refused and why, and exits with the error's
``exit_code`` (1 refused input, 3 environment/service problem, 4 integrity failure).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from qor.errors import QorError

if TYPE_CHECKING:
    from flows.digitise import DigitiseSummary
    from qor.settings import QorSettings

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
items_app = typer.Typer(help="Items of the fund register (кітапхана қоры / библиотечный фонд).",
                        no_args_is_help=True)
copies_app = typer.Typer(help="Digital copies (цифрлық көшірме / цифровая копия) of items.",
                         no_args_is_help=True)
bag_app = typer.Typer(help="BagIt packages in the depository store.", no_args_is_help=True)
keys_app = typer.Typer(help="Key-encryption keys that protect every stored copy (R13).",
                       no_args_is_help=True)
app.add_typer(items_app, name="items")
app.add_typer(copies_app, name="copies")
app.add_typer(bag_app, name="bag")
app.add_typer(keys_app, name="keys")

console = Console()
err_console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]

F = TypeVar("F", bound=Callable[..., Any])


def _prepare_environment(settings: QorSettings) -> None:
    """Point Prefect at Qor's data dir (embedded) or the configured server, before it loads."""
    os.environ.setdefault("PREFECT_HOME", str(settings.data_dir / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS",
                          "qor,flows,storage,integrity,catalog_sync")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    if settings.prefect_api_url:
        os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url)


def _settings() -> QorSettings:
    from qor.settings import load_settings

    try:
        settings = load_settings()
    except QorError as e:
        raise _fail(e) from e
    _prepare_environment(settings)
    return settings


def _fail(exc: QorError) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def _emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More log output (-v info, -vv debug).")] = 0,
) -> None:
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    from rich.logging import RichHandler

    logging.basicConfig(level=level, format="%(name)s: %(message)s",
                        handlers=[RichHandler(console=err_console, show_path=False)])


# --- digitise --------------------------------------------------------------------------------


def _print_summary(summary: DigitiseSummary) -> None:
    head = "Stored a new digital copy" if summary.status == "created" else (
        "This batch is already stored — nothing new was made")
    console.print(f"[bold green]{head}[/] of [bold]{summary.inventory_number}[/]")
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column(overflow="fold")
    info.add_row("bag", summary.bag_id)
    info.add_row("version", str(summary.version))
    info.add_row("stored at", summary.bag_location)
    info.add_row("pages", str(summary.pages))
    info.add_row("PDF/A", summary.pdfa_verdict)
    conf = "n/a" if summary.mean_confidence is None else f"{summary.mean_confidence:.1f}"
    info.add_row("mean OCR confidence",
                 conf + ("  [yellow](below the gate: marked for review)[/]"
                         if summary.needs_review else ""))
    info.add_row("bytes stored", f"{summary.total_bytes:,}")
    if summary.pages_text_kept or summary.pages_born_digital or summary.remarks:
        info.add_row("PDF text", f"{summary.text_policy}: text layer kept on "
                     f"{len(summary.pages_text_kept)} page(s), born-digital "
                     f"{len(summary.pages_born_digital)}; " + "; ".join(summary.remarks))
    console.print(info)
    if summary.files:
        files = Table(title="Files in the bag (payload encrypted)", show_lines=False)
        files.add_column("path")
        files.add_column("bytes", justify="right")
        for f in summary.files:
            files.add_row(f.path, f"{f.size:,}")
        console.print(files)
    if summary.stage_seconds:
        stages = Table(title="Time per stage")
        stages.add_column("stage")
        stages.add_column("seconds", justify="right")
        for name, secs in summary.stage_seconds.items():
            stages.add_row(name, f"{secs:.2f}")
        console.print(stages)


def _run_digitise(
    pages: list[Path], *, inventory: str, title: str | None, new_version: bool,
    workers: int | None, as_json: bool, text_policy: str = "skip-text",
) -> DigitiseSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows import progress
    from flows.digitise import run_digitise

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, disable=as_json,
                  transient=True) as bar:
        tasks: dict[str, Any] = {}
        labels = {"ocr": "OCR pages", "store": "Storing bag objects"}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        with progress.listening(on_progress):
            return run_digitise(pages, inventory_number=inventory, title=title,
                                new_version=new_version, workers=workers,
                                text_policy=text_policy)  # type: ignore[arg-type]


@app.command()
def digitise(
    pages: Annotated[list[Path], typer.Argument(
        help="Scans: image files (TIFF, PNG, JPEG, JPEG 2000), folders of them, "
             "multi-page TIFFs or scanner PDFs, in page order.")],
    inventory: Annotated[str, typer.Option(
        "--inventory", "-i", help="Inventory number of the item (инвентарный номер).")],
    title: Annotated[str | None, typer.Option(
        help="Title for the PDF; default: the register's.")] = None,
    new_version: Annotated[bool, typer.Option(
        "--new-version", help="Store a new version even though the item has a copy.")] = False,
    workers: Annotated[int | None, typer.Option(
        help="Pages OCR'd at once (default: cores).")] = None,
    redo_ocr: Annotated[bool, typer.Option(
        "--redo-ocr", help="PDF pages whose only text is an OCR layer are recognised again "
                           "(born-digital text is kept).")] = False,
    force_ocr: Annotated[bool, typer.Option(
        "--force-ocr", help="Every PDF page is rasterised and recognised; its text is "
                            "discarded.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Digitise one item: OCR → PDF/A → encrypted BagIt bag → store → register.

    PDF pages that already carry text keep it by default (like OCRmyPDF's --skip-text).
    """
    _settings()
    if redo_ocr and force_ocr:
        err_console.print("[bold red]error:[/] --redo-ocr and --force-ocr: give one of them")
        raise typer.Exit(2)
    policy = "force-ocr" if force_ocr else "redo-ocr" if redo_ocr else "skip-text"
    try:
        summary = _run_digitise(pages, inventory=inventory, title=title,
                                new_version=new_version, workers=workers, as_json=as_json,
                                text_policy=policy)
    except QorError as e:
        raise _fail(e) from e
    if as_json:
        _emit_json(summary.as_dict())
    else:
        _print_summary(summary)


DEMO_INVENTORY = "DEMO-000001"
DEMO_TITLE = "Қор туралы / О фонде библиотеки (Qor sample scans)"


@app.command()
def demo(
    as_json: JsonOpt = False,
    workers: Annotated[int | None, typer.Option(
        help="Pages OCR'd at once (default: cores).")] = None,
) -> None:
    """Digitise Qor's own sample scans (Kazakh and Russian) on the embedded defaults.

    Generates the sample pages into the data directory, enters the demo item in the register if
    it is not there yet, and runs ``digitise``. A second run reports the copy already stored.
    """
    settings = _settings()
    from flows.capture.samples import write_sample_batch

    try:
        sample_dir = settings.data_dir / "samples"
        samples = write_sample_batch(sample_dir)
        _ensure_item(settings, DEMO_INVENTORY, DEMO_TITLE)
        if not as_json:
            console.print(f"Sample scans: {len(samples)} page(s) in {sample_dir}")
        summary = _run_digitise([s.path for s in samples], inventory=DEMO_INVENTORY, title=None,
                                new_version=False, workers=workers, as_json=as_json)
    except QorError as e:
        raise _fail(e) from e
    if as_json:
        _emit_json(summary.as_dict())
    else:
        _print_summary(summary)
        console.print(f"\nRead it back: [bold]qor copies export {DEMO_INVENTORY} --to ./out[/]")


def _ensure_item(settings: QorSettings, inventory: str, title: str) -> None:
    from catalog_sync import register
    from catalog_sync.errors import ItemNotFound
    from qor import wiring

    with wiring.register_session(settings) as session:
        try:
            register.get_item(session, inventory)
        except ItemNotFound:
            register.add_item(session, inventory_number=inventory, title=title, actor="qor demo")


# --- items -----------------------------------------------------------------------------------


@items_app.command("add")
def items_add(
    inventory: Annotated[str, typer.Argument(help="The inventory number (never changes, R14).")],
    title: Annotated[str, typer.Option(help="Title of the bibliographic record.")],
    author: Annotated[list[str] | None, typer.Option(help="Author (repeat for several).")] = None,
    year: Annotated[int | None, typer.Option(help="Year of publication.")] = None,
    language: Annotated[str | None, typer.Option(help="Language code, e.g. kk, ru.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Enter an item with an explicit inventory number (e.g. from a paper inventory book)."""
    settings = _settings()
    from catalog_sync import register
    from qor import wiring

    try:
        with wiring.register_session(settings) as session:
            item = register.add_item(session, inventory_number=inventory, title=title,
                                     authors=tuple(author or ()), year=year, language=language,
                                     actor=_actor())
            data = {"inventory_number": item.inventory_number, "title": title,
                    "status": str(item.status)}
    except QorError as e:
        raise _fail(e) from e
    if as_json:
        _emit_json(data)
    else:
        console.print(f"Entered item [bold]{inventory}[/]: {title}")


def _actor() -> str:
    import getpass

    return os.environ.get("QOR_ACTOR") or getpass.getuser()


# --- copies ----------------------------------------------------------------------------------


@copies_app.command("show")
def copies_show(
    inventory: Annotated[str, typer.Argument(help="Inventory number of the item.")],
    as_json: JsonOpt = False,
) -> None:
    """List the digital copies of an item: versions, where they are stored, their events."""
    settings = _settings()
    from catalog_sync import register
    from qor import wiring

    try:
        with wiring.register_session(settings) as session:
            register.get_item(session, inventory)
            rows = [register.copy_facts(c) for c in register.digital_copies(session, inventory)]
            events = {c.bag_id: register.copy_events(session, c.bag_id) for c in rows}
    except QorError as e:
        raise _fail(e) from e
    if as_json:
        _emit_json([{**r.as_dict(), "events": [ev.as_dict() for ev in events[r.bag_id]]}
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


@copies_app.command("export")
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
    settings = _settings()
    from flows.export import export_copy

    try:
        written = export_copy(settings, inventory_number=inventory, dest=to, version=version)
    except QorError as e:
        raise _fail(e) from e
    if as_json:
        _emit_json([{"path": str(p), "bytes": p.stat().st_size} for p in written])
        return
    for p in written:
        console.print(f"{p}  ({p.stat().st_size:,} bytes)")


# --- bags ------------------------------------------------------------------------------------


@bag_app.command("validate")
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
        _emit_json({"bag": str(bag_path), "valid": not found,
                    "problems": [_problem_dict(p) for p in found]})
    elif not found:
        console.print(f"[bold green]valid[/]: {path}")
    else:
        console.print(f"[bold red]invalid[/]: {path} — {len(found)} problem(s)")
        for p in found:
            console.print(f"  • {p}", highlight=False)
    raise typer.Exit(0 if not found else 1)


def _problem_dict(problem: object) -> dict[str, object]:
    import dataclasses

    fields = (dataclasses.asdict(problem)
              if dataclasses.is_dataclass(problem) and not isinstance(problem, type) else {})
    return {"problem": type(problem).__name__, "message": str(problem), **fields}


# --- keys ------------------------------------------------------------------------------------


@keys_app.command("init")
def keys_init(as_json: JsonOpt = False) -> None:
    """Create the local keyring (0700 folder, 0600 key file) if there is none; show the current key.

    Keep a copy of the key folder somewhere safe and separate: without it no copy can be read.
    """
    settings = _settings()
    from qor import wiring

    try:
        keyring = wiring.keyring(settings)
        current = keyring.current_kek_id
        ids = list(keyring.kek_ids())
    except QorError as e:
        raise _fail(e) from e
    if as_json:
        _emit_json({"key_dir": str(settings.effective_key_dir), "current": current, "keys": ids})
    else:
        console.print(f"keyring {settings.effective_key_dir}: current key [bold]{current}[/]"
                      f" ({len(ids)} key(s))")


@keys_app.command("rotate")
def keys_rotate(
    retire_old: Annotated[bool, typer.Option(
        "--retire-old", help="Delete the old key files once every bag is re-wrapped.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a new key the current one and re-wrap every bag's data key under it.

    No stored object is rewritten (they may be under retention): only the wrapping of each
    bag's data key changes, in the register and as a key record beside the bags.
    """
    settings = _settings()
    from flows.keys import rotate_all

    try:
        report = rotate_all(settings, actor=_actor(), retire_old=retire_old)
    except QorError as e:
        raise _fail(e) from e
    if as_json:
        _emit_json({"new_kek_id": report.new_kek_id, "rewrapped": list(report.rewrapped),
                    "already_current": list(report.already_current),
                    "retired": list(report.retired)})
        return
    console.print(f"new current key [bold]{report.new_kek_id}[/]; "
                  f"{len(report.rewrapped)} bag(s) re-wrapped; payloads untouched")
    if report.retired:
        console.print(f"retired: {', '.join(report.retired)}")


# --- settings --------------------------------------------------------------------------------


@app.command("settings")
def show_settings(as_json: JsonOpt = False) -> None:
    """Show the settings in force (secrets masked) and where the data lives."""
    settings = _settings()
    data = settings.redacted()
    data.update(effective_database_url=settings.effective_database_url,
                effective_store_uri=settings.effective_store_uri,
                effective_key_dir=str(settings.effective_key_dir))
    if as_json:
        _emit_json(data)
        return
    table = Table(title="Qor settings (QOR_* variables, qor.toml)")
    table.add_column("setting")
    table.add_column("value")
    for k, v in data.items():
        table.add_row(k, "" if v is None else str(v))
    console.print(table)


# --- commands of other areas -----------------------------------------------------------------
# Each area keeps its commands in qor/commands_<area>.py as a Typer app; one line each here.
from qor import commands_library  # noqa: E402

commands_library.install(app)  # readers, loans, gate, debts, deposit, select
from qor import commands_ops  # noqa: E402

app.add_typer(commands_ops.app, name="doctor")
app.add_typer(commands_ops.automations_app, name="automations")
from qor import commands_fixity  # noqa: E402

commands_fixity.install(app, bag_app)  # fixity, register rebuild-links, bag validate-stored
from qor import commands_elibrary  # noqa: E402

app.add_typer(commands_elibrary.app, name="elibrary")
from qor import commands_register  # noqa: E402

commands_register.install(app, commands_fixity.register_app)  # books, stocktake, marc, verify-log


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except QorError as e:  # raised while reading settings, before a command's own handler
        err_console.print(f"[bold red]error:[/] {e.message}")
        sys.exit(e.exit_code)
