"""The ``digitise`` flow: scan batch + inventory number → encrypted, verified, registered copy.

The flow is thin: each task calls plain functions from :mod:`flows.capture`, :mod:`flows.steps`,
:mod:`storage`, :mod:`integrity` and :mod:`catalog_sync`. Tasks take ids and paths and build their
own clients from the settings of the process they run in.

Order of stages and why: the inputs are checked, OCR'd and assembled before anything touches the
store, so a bad page leaves no trace; the bag is stored and verified before the register records
it, so a bag counts as stored only once it is whole (the register row is the commit point).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from prefect import flow, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from catalog_sync import register
from elibrary.textindex import index_copy
from flows import claims, faults, progress
from flows._exec import verapdf
from flows.capture import (
    CaptureOptions,
    DocumentMetadata,
    PageRef,
    PageResult,
    assemble_pdfa,
    load_pages,
    process_page,
)
from flows.capture.derivatives import make_access_pdf, make_reading_images
from flows.capture.languages import batch_languages
from flows.capture.model import Layout, PdfTextPolicy
from flows.errors import CopyAlreadyExists, ScratchFull
from flows.reporting import DigitiseSummary, StoredFileSummary, page_report
from flows.steps import (
    StoredBag,
    batch_fingerprint,
    package_copy,
    remove_tree,
    safe_component,
    store_bag,
)
from integrity import layout
from integrity.formats import identifier_name, pronom_ids
from qor import wiring
from qor.errors import QorError, is_retryable
from qor.settings import QorSettings, load_settings
from storage import WrappedKey, write_key_record

logger = logging.getLogger(__name__)

AGENT = "qor digitise"


def _retry_if_retryable(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry only errors that say retrying can help (store, database)."""
    try:
        state.result()
    except Exception as exc:
        return is_retryable(exc)
    return False


def capture_options(settings: QorSettings) -> CaptureOptions:
    """The capture engine's options as the operator set them (``QOR_*`` / ``qor.toml``)."""
    return CaptureOptions(
        languages=settings.ocr_languages,
        dpi_fallback=settings.dpi_fallback,
        min_dpi=settings.min_dpi or None,
        max_image_pixels=settings.max_image_pixels,
        page_timeout_s=settings.page_timeout_s,
        orientation=settings.orientation,
        osd_policy=settings.osd_policy,
        deskew=settings.deskew,
        deskew_threshold_deg=settings.deskew_threshold_deg,
        ocr_skew_tolerance_deg=settings.ocr_skew_tolerance_deg,
        clean_borders=settings.clean_borders,
        confidence_gate=settings.confidence_gate,
        access_jpeg_quality=settings.access_jpeg_quality,
        access_text_pages=settings.access_text_pages,
        pdf_raster_dpi=settings.pdf_raster_dpi,
        layout=settings.ocr_layout,
        prepare_old_print=settings.ocr_prepare_old_print,
    )


@dataclass(frozen=True)
class _ItemFacts:
    title: str
    creator: str | None
    date: str | None
    language: str | None
    next_version: int
    existing: register.CopyFacts | None


@task(name="check item")
def check_item(inventory_number: str, fingerprint: str) -> _ItemFacts:
    settings = load_settings()
    with wiring.register_session(settings) as session:
        item = register.get_item(session, inventory_number)  # ItemNotFound names the number
        record = item.record
        copies = register.digital_copies(session, inventory_number)
        same_batch = next((c for c in copies if c.batch_fingerprint == fingerprint), None)
        return _ItemFacts(
            title=record.title,
            creator="; ".join(record.authors) or None,
            date=str(record.year) if record.year else None,
            language=record.language,
            next_version=max((c.version for c in copies), default=0) + 1,
            existing=register.copy_facts(same_batch) if same_batch else (
                register.copy_facts(copies[-1]) if copies else None
            ),
        )


@task(name="check inputs")
def check_inputs(pages: Sequence[str], options: CaptureOptions) -> list[PageRef]:
    return load_pages([Path(p) for p in pages], options=options)


# persist_result: the result (paths and confidences) goes to Prefect's result storage
# (PREFECT_LOCAL_STORAGE_PATH, a shared mount on multi-host installs), so the flow reads what a
# remote Dask worker made, and a resumed run of the same flow run (same run id, same inputs) reuses
# the pages already OCR'd instead of redoing them.
#
# The persisted result must not carry the page's text: result storage is outside the encrypted
# depository and outlives the run, so plaintext of a valuable copy (R13) would leak there. The
# text stays in the scratch folder (removed with the run) and, encrypted, in the bag.
@task(name="prepare and OCR page", task_run_name="page {page.label}", persist_result=True)
def ocr_page(page: PageRef, work_dir: Path, options: CaptureOptions) -> PageResult:
    return dataclasses.replace(process_page(page, work_dir=work_dir, options=options), text="")


@task(name="assemble PDF/A")
def make_pdfa(
    pages: Sequence[PageResult], out: Path, metadata: DocumentMetadata, options: CaptureOptions
) -> Path:
    """The archival PDF/A of the pages (checked by :func:`check_pdfa`, with the access PDF)."""
    return assemble_pdfa(pages, out=out, metadata=metadata, options=options)


@task(name="make access derivatives")
def make_derivatives(
    pages: Sequence[PageResult], work: Path, metadata: DocumentMetadata, options: CaptureOptions
) -> tuple[Path, list[Path], str]:
    """The access PDF and the pages' reading images (:mod:`.derivatives`), with a description
    of each page's encoding; the access PDF is checked by :func:`check_pdfa`."""
    made = make_access_pdf(pages, out=work / "web.pdf", metadata=metadata, options=options)
    images = make_reading_images(pages, out_dir=work / "web-pages")
    return made.path, images, made.describe()


@task(name="check PDF/A (veraPDF)")
def check_pdfa(pdf: Path, web_pdf: Path | None, web_description: str | None
               ) -> tuple[str, str | None]:
    """veraPDF's verdict on the archival PDF and, if made, the access PDF, in ONE veraPDF run:
    its JVM start costs more CPU than checking a short book, so a digitise pays it once.
    Raises :class:`PdfaInvalid` (veraPDF's rule ids and messages) for the first that fails."""
    reports = verapdf.validate_many([pdf] if web_pdf is None else [pdf, web_pdf], flavour="2u")
    reports[pdf].raise_for_failures()
    verdict = f"PDF/A-{reports[pdf].flavour.upper()} compliant (veraPDF)"
    if web_pdf is None:
        return verdict, None
    reports[web_pdf].raise_for_failures()
    return verdict, (f"PDF/A-{reports[web_pdf].flavour.upper()} compliant (veraPDF); "
                     f"{web_description}")


@task(name="encrypt and bag")
def make_bag(
    *,
    dest: Path,
    bag_id: str,
    pages: Sequence[PageResult],
    pdf: Path,
    sources: Sequence[Path],
    metadata: DocumentMetadata,
    version: int,
    fingerprint: str,
    pdfa_verdict: str,
    confidence_gate: float,
    languages: str | None = None,
    web_pdf: Path | None = None,
    web_pages: Sequence[Path] = (),
    web_pdf_verdict: str | None = None,
) -> tuple[Path, WrappedKey]:
    settings = load_settings()
    checkpoint = bag_checkpoint(dest)
    if checkpoint.is_file() and dest.is_dir():
        # A bag finished by an earlier attempt of this copy (a worker killed during the upload):
        # reuse its exact bytes, so the retried upload finds identical objects and skips them. A
        # fresh encryption would differ in every byte (random data key, salts and nonces) and
        # could never complete the half-stored bag.
        logger.info("reusing bag %s built by an earlier attempt (%s)", bag_id, dest)
        return dest, WrappedKey.from_json(json.loads(checkpoint.read_text("utf-8")))
    remove_tree(dest)
    bag_key = wiring.keyring(settings).new_bag_key()
    dest.parent.mkdir(parents=True, exist_ok=True)
    package_copy(
        dest=dest, bag_id=bag_id, pages=pages, pdf=pdf, sources=sources, metadata=metadata,
        version=version, bag_key=bag_key, library_name=settings.library_name,
        fingerprint=fingerprint, pdfa_verdict=pdfa_verdict,
        languages=languages or settings.ocr_languages, confidence_gate=confidence_gate,
        web_pdf=web_pdf, web_pages=web_pages, web_pdf_verdict=web_pdf_verdict,
    )
    # Written last and renamed into place: its presence means the bag beside it is whole. It
    # holds only the wrapped (encrypted) data key, like the task result Prefect may persist;
    # the plaintext data key never reaches disk.
    partial = checkpoint.with_name(checkpoint.name + ".partial")
    partial.write_text(json.dumps(bag_key.wrapped.to_json()), encoding="utf-8")
    partial.replace(checkpoint)
    return dest, bag_key.wrapped


def bag_checkpoint(bag_dir: Path) -> Path:
    """The file that marks ``bag_dir`` as completely built (beside it, not inside the bag)."""
    return bag_dir.with_name(bag_dir.name + ".wrapped-key.json")


def copy_bag_id(inventory_number: str, version: int, fingerprint: str) -> str:
    """The bag id of one copy: the same for every attempt at the same copy of the same batch.

    Derived, not random, so a retried or re-submitted run (another worker, after a crash)
    names the same bag, reuses the same work folder and resumes the same upload; the register
    refuses a second row with this id, so a copy can never be stored twice under two ids.
    """
    return f"{safe_component(inventory_number)}.v{version}.{fingerprint[:12]}"


@task(name="store and verify", retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=_retry_if_retryable)
def upload_bag(
    bag_dir: Path, bag_id: str, wrapped: WrappedKey
) -> tuple[StoredBag, StoredBag | None]:
    settings = load_settings()

    def on_file(done: int, total: int) -> None:
        progress.report("store", done, total)
        if done == 1:  # the bag's first object stored, the others not yet
            faults.reached("uploading")

    primary = wiring.primary_store(settings)
    stored = store_bag(bag_dir, bag_id=bag_id, store=primary, on_file=on_file)
    # The wrapped data key is also kept beside the bags (not inside: the bag stays valid), so
    # the register's links can be rebuilt from the store alone.
    write_key_record(primary, bag_id, wrapped)
    replica_store = wiring.replica_store(settings)
    replica = None
    if replica_store is not None:
        replica = store_bag(bag_dir, bag_id=bag_id, store=replica_store)
        write_key_record(replica_store, bag_id, wrapped)
    return stored, replica


@task(name="register copy", retries=2, retry_delay_seconds=5,
      retry_condition_fn=_retry_if_retryable)
def register_copy(
    *,
    inventory_number: str,
    stored: StoredBag,
    replica: StoredBag | None,
    version: int,
    wrapped: WrappedKey,
    pdfa_verdict: str,
    pages: Sequence[PageResult],
    fingerprint: str,
    needs_review: bool,
    formats: dict[str, str] | None = None,
) -> None:
    settings = load_settings()
    confidences = [p.mean_confidence for p in pages]
    with wiring.register_session(settings) as session:
        copy = register.add_digital_copy(
            session,
            inventory_number=inventory_number,
            bag_id=stored.bag_id,
            store_uri=stored.store_uri,
            version=version,
            kek_id=wrapped.kek_id,
            wrapped_key=wrapped.wrapped,
            pdfa_verdict=pdfa_verdict,
            ocr_confidence=sum(confidences) / len(confidences) if confidences else None,
            payload_bytes=stored.total_bytes,
            file_count=len(stored.files),
            page_count=len(pages),
            batch_fingerprint=fingerprint,
            needs_review=needs_review,
            actor=AGENT,
        )
        register.record_copy_event(
            session, copy=copy, event_type="ingestion", outcome="success",
            detail=f"{len(stored.files)} objects verified in {stored.store_uri}", agent=AGENT,
        )
        if formats:
            # What metadata/premis.xml records per file, so `qor copies show` needs no store.
            register.record_copy_event(
                session, copy=copy, event_type="format identification", outcome="success",
                detail=json.dumps({"identifier": identifier_name(), "pronom": formats},
                                  ensure_ascii=False, sort_keys=True),
                agent=AGENT,
            )
        if replica is not None:
            register.record_copy_event(
                session, copy=copy, event_type="replication", outcome="success",
                detail=f"{len(replica.files)} objects verified in {replica.store_uri}",
                agent=AGENT,
            )
        # R6: the copy becomes findable in the e-library within the same transaction, so a
        # registered copy is never missing from search (its rights decide who may read it).
        index_copy(session, settings, stored.bag_id)


class _Stages:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current = "check"

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self.current = name
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


def _existing_summary(
    facts: register.CopyFacts, inventory_number: str, stages: _Stages
) -> DigitiseSummary:
    return DigitiseSummary(
        status="existing", inventory_number=inventory_number, bag_id=facts.bag_id,
        version=facts.version, store_uri=facts.store_uri,
        bag_location=layout.bag_location(facts.store_uri, facts.bag_id),
        pages=facts.page_count, files=(), total_bytes=facts.payload_bytes,
        pdfa_verdict=facts.pdfa_verdict, mean_confidence=facts.ocr_confidence,
        needs_review=facts.needs_review, stage_seconds=stages.seconds,
    )


def _publish(summary: DigitiseSummary) -> None:
    rows = [{"file": f.path, "bytes": f.size} for f in summary.files]
    create_table_artifact(
        key=artifact_key(summary.inventory_number),
        table=rows or [{"file": "(existing copy)", "bytes": summary.total_bytes}],
        description=f"Files of bag {summary.bag_id}",
    )
    page_rows = "\n".join(
        f"| {p.label} | {p.rotation}° | {p.deskew_deg:+.2f}° | {p.mean_confidence:.1f} | "
        f"{'**below gate**' if p.below_gate else ''} {'; '.join(p.remarks)} |"
        for p in summary.page_reports)
    pages_md = ("\n| page | rotation | deskew | OCR confidence | remarks |\n|---|---|---|---|---|\n"
                + page_rows + "\n") if page_rows else ""
    timings = "\n".join(f"| {k} | {v:.2f} s |" for k, v in summary.stage_seconds.items())
    timings += "".join(f"\n| **{k}** | {v} |" for k, v in throughput(summary).items())
    conf = "n/a" if summary.mean_confidence is None else f"{summary.mean_confidence:.1f}"
    create_markdown_artifact(
        key="digitise-summary",
        markdown=(
            f"# Digital copy of {summary.inventory_number} — {summary.status}\n\n"
            f"* bag: `{summary.bag_id}` (version {summary.version})\n"
            f"* stored at: `{summary.bag_location}`\n"
            f"* pages: {summary.pages}, bytes stored: {summary.total_bytes}\n"
            f"* PDF/A: {summary.pdfa_verdict}\n* mean OCR confidence: {conf}"
            f"{' — **marked for review**' if summary.needs_review else ''}\n\n"
            f"| stage | time |\n|---|---|\n{timings}\n{pages_md}"
        ),
        description="What the digitise run made and how long each stage took",
    )


@flow(name="digitise", log_prints=False, validate_parameters=True)
def digitise(
    pages: list[str],
    inventory_number: str,
    title: str | None = None,
    new_version: bool = False,
    text_policy: PdfTextPolicy = "skip-text",
    languages: str | None = None,
    layout: Layout | None = None,
) -> DigitiseSummary:
    """Digitise one item: scans → OCR → PDF/A → encrypted bag → store → register.

    ``pages`` are image files, folders of them, multi-page TIFFs or scanner PDFs. A rerun of the
    same batch for the same item reports the existing copy; a different batch for an item that
    already has a copy is refused unless ``new_version`` is set. ``text_policy`` says what to do
    with PDF pages that already carry text (kept by default, like OCRmyPDF's ``--skip-text``).
    ``languages`` (Tesseract models, e.g. ``rus``) sets the OCR languages for this batch; by
    default they follow the item's language in the register
    (:func:`flows.capture.languages.batch_languages`). ``layout="line"`` reads every input as
    one text line (line or region crops); default: the ``ocr_layout`` setting.
    """
    settings = load_settings()
    options = dataclasses.replace(capture_options(settings), pdf_text_policy=text_policy)
    if layout is not None:
        options = dataclasses.replace(options, layout=layout)
    # First of all, before reading the register or touching the scratch folder: a second run
    # of the same item (same batch: same bag id and scratch folder) is refused here, naming
    # the run that holds the item (R13: one digital fund copy per batch, stored once).
    with claims.claim_item(settings, inventory_number, run=flow_run.get_name()):
        return _digitise_claimed(
            settings, options, pages=pages, inventory_number=inventory_number, title=title,
            new_version=new_version, text_policy=text_policy, languages=languages)


def _digitise_claimed(
    settings: QorSettings,
    options: CaptureOptions,
    *,
    pages: list[str],
    inventory_number: str,
    title: str | None,
    new_version: bool,
    text_policy: PdfTextPolicy,
    languages: str | None,
) -> DigitiseSummary:
    """The body of :func:`digitise`, run while this run holds the item's claim."""
    stages = _Stages()

    with stages("check"):
        refs = check_inputs(pages, options)
        sources = list(dict.fromkeys(r.source for r in refs))
        fingerprint = batch_fingerprint(sources)
        facts = check_item(inventory_number, fingerprint)
        if facts.existing is not None and not new_version:
            if facts.existing.batch_fingerprint == fingerprint:
                # a run killed after registering may have left its scratch folder behind
                remove_tree(settings.work_dir / facts.existing.bag_id)
                summary = _existing_summary(facts.existing, inventory_number, stages)
                _publish(summary)
                return summary
            raise CopyAlreadyExists(inventory_number=inventory_number,
                                    version=facts.existing.version,
                                    bag_id=facts.existing.bag_id)

    options = dataclasses.replace(options, languages=batch_languages(
        languages, item_language=facts.language, from_item=settings.ocr_languages_from_item,
        configured=settings.ocr_languages,
    ))
    version = facts.next_version
    bag_id = copy_bag_id(inventory_number, version, fingerprint)
    # Not emptied: a resumed attempt at this copy finds the earlier attempt's finished bag here.
    work = settings.work_dir / bag_id
    upload_started = False
    try:
        with stages("ocr"):
            page_dir = work / "pages"
            page_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            progress_id = cast(UUID, create_progress_artifact(
                progress=0.0, description=f"OCR of {len(refs)} page(s)"
            ))
            futures = ocr_page.map(refs, work_dir=page_dir, options=options)
            progress.report("ocr", 0, len(refs))
            last_update = 0.0
            for done, _ in enumerate(as_completed(futures), start=1):
                progress.report("ocr", done, len(refs))
                # At most one API call a second: a 500-page book would otherwise make 500.
                if done == len(refs) or time.monotonic() - last_update >= 1.0:
                    update_progress_artifact(progress_id, progress=100.0 * done / len(refs))
                    last_update = time.monotonic()
            results: list[PageResult] = [f.result() for f in futures]
        faults.reached("after-ocr")
        needs_review = any(p.mean_confidence < options.confidence_gate for p in results)

        metadata = DocumentMetadata(
            title=title or facts.title, identifier=inventory_number, creator=facts.creator,
            date=facts.date, language=facts.language,
        )
        with stages("pdfa"):
            pdf = make_pdfa(results, work / "access.pdf", metadata, options)
            web_pdf: Path | None = None
            web_pages: list[Path] = []
            web_description: str | None = None
            if settings.access_derivatives:  # else: `qor copies derive` adds them later
                web_pdf, web_pages, web_description = make_derivatives(results, work, metadata,
                                                                       options)
            verdict, web_verdict = check_pdfa(pdf, web_pdf, web_description)
        faults.reached("after-pdfa")
        with stages("package"):
            bag_dir, wrapped = make_bag(
                dest=work / "bag" / bag_id, bag_id=bag_id, pages=results, pdf=pdf,
                sources=sources, metadata=metadata, version=version,
                fingerprint=fingerprint, pdfa_verdict=verdict, languages=options.languages,
                confidence_gate=options.confidence_gate,
                web_pdf=web_pdf, web_pages=web_pages, web_pdf_verdict=web_verdict,
            )
        formats = pronom_ids((bag_dir / "metadata" / "premis.xml").read_bytes())
        upload_started = True
        with stages("store"):
            stored, replica = upload_bag(bag_dir, bag_id, wrapped)
        faults.reached("before-register")
        with stages("register"):
            register_copy(
                inventory_number=inventory_number, stored=stored, replica=replica,
                version=version, wrapped=wrapped, pdfa_verdict=verdict,
                pages=results, fingerprint=fingerprint, needs_review=needs_review,
                formats=formats,
            )
    except BaseException as exc:
        full = _disk_full(exc) if not upload_started else None
        if full is not None:
            # A full scratch disk (issue 15): the run's scratch folder goes, freeing what it
            # took; nothing was stored or registered. Said as such, not as bad input.
            remove_tree(work)
            raise ScratchFull(path=Path(full.filename) if full.filename else work,
                              stage=stages.current, reason=full.strerror or str(full)) from exc
        # Bad input leaves no scratch behind. Kept, so that a rerun resumes the same bag:
        # after a transient fault (store or database away); when the run was stopped
        # (SIGTERM, Ctrl-C: not an Exception); and once the upload began, whatever the error,
        # since only this bag's bytes can complete the objects already stored (a bag built
        # again differs in every byte and would be refused against them, issue 15).
        if isinstance(exc, Exception) and not is_retryable(exc) and not upload_started:
            remove_tree(work)
        raise
    remove_tree(work)

    confidences = [p.mean_confidence for p in results]
    summary = DigitiseSummary(
        status="created", inventory_number=inventory_number, bag_id=bag_id, version=version,
        store_uri=stored.store_uri, bag_location=f"{stored.store_uri.rstrip('/')}/{stored.prefix}/",
        pages=len(results),
        files=tuple(StoredFileSummary(path=f.bag_path, size=f.size) for f in stored.files),
        total_bytes=stored.total_bytes, pdfa_verdict=verdict,
        mean_confidence=round(sum(confidences) / len(confidences), 2) if confidences else None,
        needs_review=needs_review, stage_seconds=stages.seconds,
        page_reports=tuple(page_report(p, confidence_gate=options.confidence_gate)
                           for p in results),
        text_policy=text_policy,
        pages_text_kept=tuple(p.page.label for p in results
                              if p.preparation.text_source == "kept"),
        pages_born_digital=tuple(p.page.label for p in results
                                 if p.preparation.pdf_page == "born-digital"),
        remarks=tuple(f"{p.page.label}: {r}" for p in results for r in p.preparation.remarks),
        page_choices=tuple(
            {"label": p.page.label, **p.choices.as_dict()} for p in results if p.choices
        ),
    )
    _publish(summary)
    return summary


def _disk_full(exc: BaseException) -> OSError | None:
    """The "no space left" (or quota) error behind ``exc``, if that is what it is: raised as
    such, or wrapped (a bag that could not be written is a :class:`BagBuildError`)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, QorError) and cur.retryable:
            return None  # a full store or database disk is theirs to report (StoreUnavailable)
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, errno.EDQUOT):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def artifact_key(inventory_number: str) -> str:
    """A Prefect artifact key for an item: Prefect allows only lowercase letters, digits and
    dashes, so every other character becomes a dash (``KZ_01.a`` → ``digitise-kz-01-a``)."""
    slug = "".join(c if c.isascii() and c.isalnum() else "-" for c in inventory_number.lower())
    return "digitise-" + ("-".join(part for part in slug.split("-") if part) or "item")


def run_digitise(
    pages: Sequence[str | Path],
    *,
    inventory_number: str,
    title: str | None = None,
    new_version: bool = False,
    workers: int | None = None,
    run_label: str | None = None,
    text_policy: PdfTextPolicy = "skip-text",
    languages: str | None = None,
    layout: Layout | None = None,
) -> DigitiseSummary:
    """Run the flow in this process with ``workers`` pages at once (default: the setting).

    ``run_label`` is added to the flow run's name (``KZ-000123 · <label>``); the CLI puts its pid
    there, so ``qor jobs`` can tell a run whose command died.

    With ``dask_scheduler_address`` set, pages go to that Dask cluster instead (``workers`` is
    then the cluster's business: one Tesseract per Dask worker thread).
    """
    settings = load_settings()
    configured = digitise.with_options(
        task_runner=task_runner(settings, workers=workers),
        flow_run_name=f"{inventory_number} · {run_label}" if run_label else None,
    )
    result: DigitiseSummary = configured(
        pages=[str(p) for p in pages], inventory_number=inventory_number, title=title,
        new_version=new_version, text_policy=text_policy, languages=languages, layout=layout,
    )
    return result


def throughput(summary: DigitiseSummary) -> dict[str, str]:
    """Pages per second of OCR and of the whole run, bytes per second stored (for the artifact)."""
    out: dict[str, str] = {}
    total = sum(summary.stage_seconds.values())
    ocr = summary.stage_seconds.get("ocr")
    store = summary.stage_seconds.get("store")
    if summary.status == "created" and summary.pages:
        if ocr:
            out["OCR throughput"] = f"{summary.pages / ocr:.2f} pages/s"
        if total:
            out["run throughput"] = f"{summary.pages / total:.2f} pages/s"
        if store and summary.total_bytes:
            out["store throughput"] = f"{summary.total_bytes / store / 1e6:.2f} MB/s"
    return out


def task_runner(settings: QorSettings, *, workers: int | None = None) -> TaskRunner[Any]:
    """Where the page tasks run: the Dask cluster of ``dask_scheduler_address``, else threads."""
    if settings.dask_scheduler_address:
        from prefect_dask.task_runners import DaskTaskRunner

        runner: TaskRunner[Any] = DaskTaskRunner(address=settings.dask_scheduler_address)
        return runner
    return ThreadPoolTaskRunner(max_workers=workers or settings.workers)


def _deployed_task_runner() -> TaskRunner[Any]:
    try:
        return task_runner(load_settings())
    except QorError as e:  # the flow itself reports bad settings, with the same message
        logger.warning("settings unreadable when the flow was loaded: %s", e)
        return ThreadPoolTaskRunner()


digitise_deployed = digitise.with_options(task_runner=_deployed_task_runner())
"""The entrypoint of the ``digitise`` deployment (``infra/prefect.yaml``).

A worker imports this module in the flow run's own process, so the task runner follows that
process's settings: ``QOR_DASK_SCHEDULER_ADDRESS`` set on the worker sends pages to Dask.
"""
