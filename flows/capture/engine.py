"""One page from scan to OCR data: decode → orientation → deskew → OCR → text, hOCR, ALTO.

:func:`process_page` is a module-level function of plain, picklable values, so it runs the same in
a thread, a process pool, a Prefect task or a Dask worker.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Literal

from PIL import Image

from flows._exec import tesseract
from flows.capture.inputs import DecodedPage, decode_page
from flows.capture.model import (
    BookConfidence,
    CaptureOptions,
    PagePreparation,
    PageRef,
    PageResult,
)
from flows.capture.ocr import (
    PageText,
    alto_errors,
    name_hocr_image,
    official_alto_schema,
    parse_hocr,
    turn_hocr,
    write_alto,
    write_hocr,
)
from flows.capture.prepare import (
    clean_borders,
    measure_skew,
    rotate_by,
    turn_clockwise,
    write_png,
)
from flows.errors import AltoInvalid

logger = logging.getLogger(__name__)

# A page "reads upright" when Tesseract is this sure of its words and its lines run across.
_UPRIGHT_CONFIDENCE = 60.0
_MIN_WORDS = 5
_MIN_OSD_CONFIDENCE = 2.0


def _safe_stem(page: PageRef) -> str:
    # No dots: the stem gets suffixes (.png, .hocr, .alto.xml) appended.
    keep = "".join(c if c.isalnum() or c in "-_" else "_" for c in page.label)
    return keep or f"page-{page.frame + 1:04d}"


def _write_ocr_input(image: Image.Image, base: Path) -> Path:
    """Uncompressed PNM for Tesseract: written and read in milliseconds, unlike PNG."""
    suffix = {"1": ".pbm", "L": ".pgm"}.get(image.mode, ".ppm")
    path = base.with_name(base.name + ".ocr" + suffix)
    image.save(path)
    return path


def _ocr(
    image: Image.Image, base: Path, *, dpi: int, options: CaptureOptions
) -> tuple[Path, PageText]:
    source = _write_ocr_input(image, base)
    try:
        hocr = tesseract.recognise(
            source, base, languages=options.languages, dpi=dpi, timeout=options.page_timeout_s
        )
    finally:
        source.unlink(missing_ok=True)
    return hocr, parse_hocr(hocr)


def _reads_upright(text: PageText) -> bool:
    return (
        len(text.words) >= _MIN_WORDS
        and text.mean_confidence() >= _UPRIGHT_CONFIDENCE
        and text.vertical_line_share() < 0.2
    )


def _osd(
    image: Image.Image, base: Path, *, dpi: int, options: CaptureOptions
) -> tesseract.Orientation | None:
    source = _write_ocr_input(image, base.with_name(base.name + ".osd"))
    try:
        return tesseract.detect_orientation(source, dpi=dpi, timeout=options.page_timeout_s)
    finally:
        source.unlink(missing_ok=True)


@cache
def _warn_without_alto_schema() -> None:
    logger.warning(
        "the official ALTO 4.4 schema is not installed (infra/install-system fetches it; or set "
        "QOR_ALTO_SCHEMA): ALTO files are written but not validated"
    )


def _check_alto(alto: Path) -> None:
    # Every page's ALTO is checked against the official schema where it is installed (about a
    # millisecond a page): files other systems would refuse never reach the bag.
    schema = official_alto_schema()
    if schema is None:
        _warn_without_alto_schema()
        return
    errors = alto_errors(alto, schema=schema)
    if errors:
        raise AltoInvalid(alto, tuple(errors))


def process_page(page: PageRef, *, work_dir: Path, options: CaptureOptions) -> PageResult:
    """Prepare and recognise one page; write its image, ``.txt``, ``.hocr`` and ALTO ``.xml``.

    Files are named after ``page.label`` inside ``work_dir`` (created if needed). Raises
    :class:`flows.errors.PageRejected` for an unreadable page and :class:`flows.errors.ToolFailed`
    / :class:`flows.errors.ToolTimeout` when Tesseract fails or runs past ``page_timeout_s``.
    Where the official ALTO 4.4 schema is installed every ALTO file is validated against it
    (:class:`flows.errors.AltoInvalid` if it fails).
    """
    started = time.monotonic()
    steps: dict[str, float] = {}
    clock = [started]

    def lap(step: str) -> None:
        now = time.monotonic()
        steps[step] = steps.get(step, 0.0) + round(now - clock[0], 4)
        clock[0] = now

    work_dir.mkdir(parents=True, exist_ok=True)
    base = work_dir / _safe_stem(page)
    decoded: DecodedPage = decode_page(page, options=options)
    lap("decode")
    if decoded.text_layer is not None:
        return _page_with_kept_text(page, decoded, decoded.text_layer, base=base,
                                    started=started, steps=steps, lap=lap)
    image = decoded.image
    dpi = decoded.dpi
    ocr_dpi = round(dpi)

    checked: Literal["osd", "ocr", "off"] = "off"
    osd_confidence: float | None = None
    rotation = 0
    if options.orientation and options.osd_policy == "always":
        found = _osd(image, base, dpi=ocr_dpi, options=options)
        checked = "osd"
        if found is not None:
            osd_confidence = found.confidence
            if found.rotate and found.confidence >= _MIN_OSD_CONFIDENCE:
                rotation = found.rotate
                image = turn_clockwise(image, rotation)
        lap("orientation")

    skew: float | None = None
    corrected = before_ocr = False
    if options.deskew:
        skew = measure_skew(image, max_angle=options.deskew_max_deg)
        corrected = skew is not None and abs(skew) > options.deskew_threshold_deg
        if skew is not None and corrected and abs(skew) > options.ocr_skew_tolerance_deg:
            # Beyond a few degrees Tesseract misreads lines: straighten first.
            image = rotate_by(image, -skew)
            before_ocr = True
        lap("deskew")

    borders = False
    if options.clean_borders:
        image, borders = clean_borders(image)
        lap("borders")

    hocr, text = _ocr(image, base, dpi=ocr_dpi, options=options)
    lap("ocr")
    if options.orientation and options.osd_policy == "when_unsure":
        checked = "ocr"
        if not _reads_upright(text):
            found = _osd(image, base, dpi=ocr_dpi, options=options)
            checked = "osd"
            if found is not None:
                osd_confidence = found.confidence
                if found.rotate and found.confidence >= _MIN_OSD_CONFIDENCE:
                    turned = turn_clockwise(image, found.rotate)
                    hocr2, text2 = _ocr(turned, base, dpi=ocr_dpi, options=options)
                    # Accept the turn when the turned page reads at least about as well, or the
                    # first reading ran down the page (Tesseract reads sideways lines too, but
                    # the page image must be upright for people).
                    sideways = text.vertical_line_share() >= 0.2
                    if text2.words and (
                        sideways or text2.mean_confidence() >= text.mean_confidence() - 5.0
                    ):
                        image, hocr, text, rotation = turned, hocr2, text2, found.rotate
                    else:
                        # OSD was wrong: keep the first reading (and recreate its hOCR).
                        hocr, text = _ocr(image, base, dpi=ocr_dpi, options=options)
            lap("orientation")

    unchanged = not (rotation or corrected or borders)
    # The scanner's JPEG goes into the archival PDF untouched when no pixel had to change.
    original_jpeg = (
        decoded.original_jpeg if unchanged and options.profile == "archival" else None
    )
    image_path = base.with_suffix(".jpg" if original_jpeg is not None else ".png")
    if skew is not None and corrected and not before_ocr:
        # A small skew: the scan was recognised as it is (as accurately, and cheaper than a
        # resampled page); now straighten the image and carry the OCR geometry along with it.
        image = rotate_by(image, -skew)
        text = turn_hocr(hocr, degrees=-skew, image_name=image_path.name)
        lap("deskew")
    else:
        name_hocr_image(hocr, image_path.name)
    if original_jpeg is not None:
        image_path.write_bytes(original_jpeg)
    else:
        write_png(image, image_path, dpi=dpi)
    icc_path: Path | None = None
    if decoded.icc_profile is not None:
        # The colours' meaning travels beside the image (PageResult stays small and picklable).
        icc_path = base.with_suffix(".icc")
        icc_path.write_bytes(decoded.icc_profile)

    plain = text.text()
    text_path = base.with_suffix(".txt")
    text_path.write_text(plain, encoding="utf-8")
    alto_path = write_alto(
        text,
        base.with_suffix(".alto.xml"),
        image_name=image_path.name,
        page_number=page.frame + 1,
        software_version=tesseract.version(),
        settings=(
            f"languages={options.languages}; rotation={rotation}; "
            f"skew={skew if skew is not None else 'n/a'}; deskewed={corrected}"
        ),
    )
    _check_alto(alto_path)
    lap("outputs")
    preparation = PagePreparation(
        orientation_checked=checked,
        osd_confidence=osd_confidence,
        rotation_applied=rotation,
        skew_angle_deg=skew,
        skew_corrected=corrected,
        deskewed_before_ocr=before_ocr,
        borders_cleaned=borders,
        conversions=decoded.conversions,
        pdf_page=decoded.survey.kind if decoded.survey is not None else None,
        remarks=decoded.remarks,
    )
    result = PageResult(
        page=page,
        image_path=image_path,
        dpi=dpi,
        width_px=image.width,
        height_px=image.height,
        text=plain,
        text_path=text_path,
        hocr_path=hocr,
        alto_path=alto_path,
        mean_confidence=round(text.mean_confidence(), 2),
        word_count=len(text.words),
        preparation=preparation,
        seconds=round(time.monotonic() - started, 3),
        step_seconds=tuple(steps.items()),
        icc_profile_path=icc_path,
    )
    logger.info(
        "page %s: %d words, confidence %.1f, rotation %d, skew %s, %.2f s",
        page.label, result.word_count, result.mean_confidence, rotation, skew, result.seconds,
    )
    return result


def _page_with_kept_text(
    page: PageRef,
    decoded: DecodedPage,
    text: PageText,
    *,
    base: Path,
    started: float,
    steps: dict[str, float],
    lap: Callable[[str], None],
) -> PageResult:
    """A PDF page whose own text layer is kept (``pdf_text_policy`` ``skip-text``/``redo-ocr``):
    no orientation, deskew or OCR — the page as the file shows it, its words where the file
    draws them; hOCR and ALTO written from them, each word at confidence 100 (not a guess)."""
    image = decoded.image
    image_path = base.with_suffix(".jpg" if decoded.original_jpeg is not None else ".png")
    if decoded.original_jpeg is not None:
        image_path.write_bytes(decoded.original_jpeg)
    else:
        write_png(image, image_path, dpi=decoded.dpi)
    icc_path: Path | None = None
    if decoded.icc_profile is not None:
        icc_path = base.with_suffix(".icc")
        icc_path.write_bytes(decoded.icc_profile)
    hocr = write_hocr(text, base.with_suffix(".hocr"), image_name=image_path.name,
                      origin="text layer of the source PDF (kept, not recognised)")
    plain = text.text()
    text_path = base.with_suffix(".txt")
    text_path.write_text(plain, encoding="utf-8")
    alto_path = write_alto(
        text, base.with_suffix(".alto.xml"), image_name=image_path.name,
        page_number=page.frame + 1, software_version="text layer of the source PDF",
        settings="pdf_text_policy: text layer kept",
    )
    _check_alto(alto_path)
    lap("outputs")
    survey = decoded.survey
    preparation = PagePreparation(
        orientation_checked="off", osd_confidence=None, rotation_applied=0,
        skew_angle_deg=None, skew_corrected=False, borders_cleaned=False,
        conversions=decoded.conversions, text_source="kept",
        pdf_page=survey.kind if survey is not None else None, remarks=decoded.remarks,
    )
    result = PageResult(
        page=page, image_path=image_path, dpi=decoded.dpi, width_px=image.width,
        height_px=image.height, text=plain, text_path=text_path, hocr_path=hocr,
        alto_path=alto_path, mean_confidence=100.0, word_count=len(text.words),
        preparation=preparation, seconds=round(time.monotonic() - started, 3),
        step_seconds=tuple(steps.items()), icc_profile_path=icc_path,
    )
    logger.info("page %s: text layer of the PDF kept (%d words), %.2f s", page.label,
                result.word_count, result.seconds)
    return result


def process_pages(
    pages: Sequence[PageRef],
    *,
    work_dir: Path,
    options: CaptureOptions,
    workers: int | None = None,
    on_page: Callable[[PageResult], None] | None = None,
) -> list[PageResult]:
    """Process ``pages`` in parallel (one Tesseract process per worker), results in page order.

    Threads suffice: the heavy work happens in Tesseract processes and in Pillow, which releases
    the interpreter lock. ``workers`` defaults to the number of CPUs.
    """
    count = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="qor-page") as pool:
        futures = [
            pool.submit(process_page, page, work_dir=work_dir, options=options) for page in pages
        ]
        results: list[PageResult] = []
        for future in futures:
            result = future.result()
            if on_page is not None:
                on_page(result)
            results.append(result)
    return results


def book_confidence(results: Sequence[PageResult], *, gate: float) -> BookConfidence:
    """Confidence of a whole copy (word-weighted mean) and the pages under ``gate``."""
    words = sum(r.word_count for r in results)
    mean = sum(r.mean_confidence * r.word_count for r in results) / words if words else 0.0
    below = tuple(r.page.label for r in results if r.below_gate(gate))
    return BookConfidence(round(mean, 2), words, below)
