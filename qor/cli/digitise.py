"""``qor digitise`` and ``qor demo``: scans → OCR → PDF/A → encrypted bag → store → register.

For digitisation operators (цифрландыру операторы / оператор оцифровки). The flow runs in this
process and reports to the orchestration server (``qor jobs`` and the Prefect UI show it).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.table import Table

from qor.cli._common import (
    JsonOpt,
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
from qor.cli.delegate import IN_RUNNER
from qor.errors import QorError

if TYPE_CHECKING:
    from flows.capture.model import Layout, PdfTextPolicy
    from flows.reporting import DigitiseSummary
    from qor.orchestration import Orchestration
    from qor.settings import QorSettings

logger = logging.getLogger(__name__)

DEMO_INVENTORY = "DEMO-000001"
DEMO_TITLE = "Қор туралы / О фонде библиотеки (Qor sample scans)"


def print_summary(summary: DigitiseSummary) -> None:
    """The operator's view of one run: where the copy went, what was done to each page."""
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
    if summary.page_reports:
        pages = Table(title="Pages (what was done to each)")
        for col in ("page", "source", "rotation", "deskew", "OCR conf.", "words", "remarks"):
            pages.add_column(col, justify="right" if col in ("OCR conf.", "words") else "left")
        for p in summary.page_reports:
            conf_cell = f"{p.mean_confidence:.1f}"
            if p.below_gate:
                conf_cell = f"[yellow]{conf_cell} (below gate)[/]"
            pages.add_row(p.label, p.source, f"{p.rotation}°" if p.rotation else "—",
                          f"{p.deskew_deg:+.2f}°" if p.deskew_deg else "—", conf_cell,
                          str(p.words),
                          "; ".join([*p.remarks, *([p.ocr_choices] if p.ocr_choices else [])])
                          or "—")
        console.print(pages)
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


def run_digitise_with_progress(
    pages: list[Path], *, inventory: str, title: str | None, new_version: bool,
    workers: int | None, as_json: bool, settings: QorSettings, orchestration: Orchestration,
    text_policy: PdfTextPolicy = "skip-text", languages: str | None = None,
    layout: Layout | None = None,
) -> DigitiseSummary:
    """Run the digitise flow with a Rich progress bar on stderr (none with ``--json``): in the
    resident runner on the embedded defaults (warm: no second of imports), else here."""
    from flows.reporting import DigitiseSummary

    with stage_progress({"ocr": "OCR pages", "store": "Storing bag objects"},
                        hidden=as_json) as on_progress:
        absolute = [str(p.absolute()) for p in pages]
        label = run_label()
        args = {"pages": absolute, "inventory": inventory, "title": title,
                "new_version": new_version, "workers": workers, "run_label": label,
                "text_policy": text_policy, "languages": languages, "layout": layout}
        # In the runner's own child (a delegated command, qor.cli.delegate) the flow runs
        # right here: this process is the warm one.
        if orchestration.mode == "local" and not os.environ.get(IN_RUNNER):
            from qor.cli import runner

            sock = runner.ensure_runner(settings, orchestration.api_url)
            if sock is not None:
                try:
                    return DigitiseSummary.from_dict(
                        runner.submit(sock, "digitise", args, on_progress))
                except runner.RunnerUnavailable as e:  # nothing started: run it here
                    logger.info("resident runner unavailable (%s): running here", e)
        load_prefect()
        from flows import progress
        from flows.digitise import run_digitise

        with progress.listening(on_progress), flow_run_context():
            return run_digitise([Path(p) for p in absolute], inventory_number=inventory,
                                title=title, new_version=new_version, workers=workers,
                                run_label=label, text_policy=text_policy,
                                languages=languages, layout=layout)


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
    languages: Annotated[str | None, typer.Option(
        help="Tesseract models for this batch, e.g. rus or kaz+rus (default: from the item's "
             "language in the register).")] = None,
    layout: Annotated[str | None, typer.Option(
        help="line: every input is one text line or region crop (ground-truth work); "
             "default: whole pages.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Digitise one item: OCR → PDF/A → encrypted BagIt bag → store → register.

    PDF pages that already carry text keep it by default (like OCRmyPDF's --skip-text).
    """
    if redo_ocr and force_ocr:
        err_console.print("[bold red]error:[/] --redo-ocr and --force-ocr: give one of them")
        raise typer.Exit(2)
    policy: PdfTextPolicy = "force-ocr" if force_ocr else "redo-ocr" if redo_ocr else "skip-text"
    if layout not in (None, "page", "line"):
        err_console.print(f"[bold red]error:[/] --layout must be page or line, not {layout!r}")
        raise typer.Exit(2)
    settings, orch = flow_settings(quiet=as_json)
    try:
        summary = run_digitise_with_progress(pages, inventory=inventory, title=title,
                                             new_version=new_version, workers=workers,
                                             as_json=as_json, settings=settings,
                                             orchestration=orch, text_policy=policy,
                                             languages=languages,
                                             layout=cast("Layout | None", layout))
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json(summary.as_dict())
    else:
        print_summary(summary)


def demo(
    as_json: JsonOpt = False,
    workers: Annotated[int | None, typer.Option(
        help="Pages OCR'd at once (default: cores).")] = None,
) -> None:
    """Digitise Qor's own sample scans (Kazakh and Russian) on the embedded defaults.

    Generates the sample pages into the data directory, enters the demo item in the register if
    it is not there yet, and runs ``digitise``. A second run reports the copy already stored.
    """
    settings, orch = flow_settings(quiet=as_json)
    from flows.capture.samples import write_sample_batch

    try:
        sample_dir = settings.data_dir / "samples"
        samples = write_sample_batch(sample_dir)
        ensure_item(settings, DEMO_INVENTORY, DEMO_TITLE)
        if not as_json:
            console.print(f"Sample scans: {len(samples)} page(s) in {sample_dir}")
        summary = run_digitise_with_progress(
            [s.path for s in samples], inventory=DEMO_INVENTORY, title=None,
            new_version=False, workers=workers, as_json=as_json, settings=settings,
            orchestration=orch)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json(summary.as_dict())
    else:
        print_summary(summary)
        console.print(f"\nRead it back: [bold]qor copies export {DEMO_INVENTORY} --to ./out[/]")


def ensure_item(settings: QorSettings, inventory: str, title: str) -> None:
    """Enter ``inventory`` in the register with ``title`` unless it is there already."""
    from catalog_sync import register
    from catalog_sync.errors import ItemNotFound
    from qor import wiring

    with wiring.register_session(settings) as session:
        try:
            register.get_item(session, inventory)
        except ItemNotFound:
            register.add_item(session, inventory_number=inventory, title=title,
                              actor="qor demo")


def install(app: typer.Typer) -> None:
    """Add ``qor digitise`` and ``qor demo``."""
    app.command("digitise")(digitise)
    app.command("demo")(demo)
