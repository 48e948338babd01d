"""One page from scan to OCR data: prepare → orient → segment → recognise → correct → write.

:func:`process_page` is a module-level function of plain, picklable values, so it runs the same in
a thread, a process pool, a Prefect task or a Dask worker.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from PIL import Image, ImageOps

from flows._exec.tesseract import Orientation
from flows.capture import oldprint
from flows.capture.inputs import DecodedPage, decode_page
from flows.capture.languages import with_english
from flows.capture.model import (
    BookConfidence,
    CaptureOptions,
    PageChoices,
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
from flows.capture.ocr_engine import ocr_engine
from flows.capture.oldprint import PageMeasures
from flows.capture.prepare import (
    clean_borders,
    measure_skew,
    rotate_by,
    turn_clockwise,
    write_png,
)
from flows.capture.regions import merge_region_hocr, missed_regions
from flows.capture.script import Correction, correct_hocr, describe, latin_share
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
    image: Image.Image,
    base: Path,
    *,
    dpi: int,
    options: CaptureOptions,
    languages: str | None = None,
    psm: int = 3,
) -> tuple[Path, PageText]:
    source = _write_ocr_input(image, base)
    try:
        hocr = ocr_engine().recognise(
            source, base, languages=languages or options.languages, dpi=dpi,
            timeout=options.page_timeout_s, psm=psm,
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
) -> Orientation | None:
    source = _write_ocr_input(image, base.with_name(base.name + ".osd"))
    try:
        return ocr_engine().detect_orientation(source, dpi=dpi,
                                               timeout=options.page_timeout_s)
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


@dataclass
class PageWork:
    """One page on its way through the stages; each stage reads and updates it.

    ``image`` is the page image as it will be kept (upright, straightened when skewed a lot);
    ``ocr_image`` what Tesseract reads (``image`` itself, or its old-print preparation);
    ``hocr`` and ``text`` the current reading.
    """

    page: PageRef
    options: CaptureOptions
    base: Path
    started: float
    steps: dict[str, float] = field(default_factory=dict)
    clock: float = 0.0
    decoded: DecodedPage | None = None
    image: Image.Image | None = None
    ocr_image: Image.Image | None = None
    dpi: float = 0.0
    checked: Literal["osd", "ocr", "off"] = "off"
    osd_confidence: float | None = None
    rotation: int = 0
    skew: float | None = None
    corrected: bool = False
    before_ocr: bool = False
    borders: bool = False
    languages: str = ""
    preparation: str = "none"
    preparation_tried: tuple[str, ...] = ()
    measures: PageMeasures | None = None
    plan: tuple[tuple[str, int], ...] = ()
    segmentation: str = "page"
    tried: list[str] = field(default_factory=list)
    hocr: Path | None = None
    text: PageText | None = None
    corrections: tuple[Correction, ...] = ()
    osd: Orientation | None = None
    osd_ran: bool = False
    regions: int = 0

    @property
    def ocr_dpi(self) -> int:
        return round(self.dpi)

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.steps[step] = self.steps.get(step, 0.0) + round(now - self.clock, 4)
        self.clock = now

    def reading(self) -> tuple[Path, PageText]:
        assert self.hocr is not None and self.text is not None, "recognise runs first"
        return self.hocr, self.text

    def pixels(self) -> Image.Image:
        assert self.image is not None, "prepare runs first"
        return self.image


# Segmentations tried in order (name, Tesseract --psm) when the page reads as nothing.
_PAGE_PLAN = (("page", 3), ("block", 6), ("line", 7))
_LINE_PLAN = (("line", 7), ("block", 6))
_LATIN_SHARE = 0.3
# A prepared page read with less confidence than this is read as scanned too (see _read_best).
_PREPARED_CONFIDENCE = 60.0
# A reading below this confidence asks OSD whether the page is in Latin script.
_LATIN_CHECK_CONFIDENCE = 80.0
# A reading with eng added must beat the page's own models by this much to be kept.
_ENGLISH_GAIN = 10.0


def stage_prepare(work: PageWork) -> None:
    """Decode the page; with ``osd_policy="always"`` turn it upright (OSD); straighten a large
    skew; clean borders; make the OCR input (old-print preparation where the rule says so)."""
    options = work.options
    if work.decoded is None:
        work.decoded = decode_page(work.page, options=options)
        work.lap("decode")
    work.image = work.decoded.image
    work.dpi = work.decoded.dpi
    stage_orient(work)
    if options.deskew:
        # A line crop (layout="line") holds one line running across it: rows only.
        skew = measure_skew(work.image, max_angle=options.deskew_max_deg,
                            sideways=options.layout != "line")
        work.skew = skew
        work.corrected = skew is not None and abs(skew) > options.deskew_threshold_deg
        if skew is not None and work.corrected and abs(skew) > options.ocr_skew_tolerance_deg:
            # Beyond a few degrees Tesseract misreads lines: straighten first.
            work.image = rotate_by(work.image, -skew)
            work.before_ocr = True
        work.lap("deskew")
    if options.clean_borders:
        work.image, work.borders = clean_borders(work.image)
        work.lap("borders")
    work.ocr_image = work.image
    if options.prepare_old_print != "off":
        # The OCR input only: work.image (the archival page) is never touched.
        work.measures = oldprint.measure(work.image, dpi=work.dpi)
        if options.prepare_old_print == "always" or oldprint.needs_preparation(work.measures):
            work.ocr_image, work.preparation = oldprint.prepare_for_ocr(work.image, dpi=work.dpi)
        elif oldprint.needs_deblocking(oldprint.jpeg_quantisation(work.decoded.original_jpeg)):
            work.ocr_image, work.preparation = oldprint.deblock_for_ocr(work.image)
        work.lap("preparation")


def stage_orient(work: PageWork) -> None:
    """``osd_policy="always"``: run OSD first and turn the page upright. (``"when_unsure"`` is
    checked after the first reading, in :func:`stage_recognise`.)"""
    options = work.options
    if not (options.orientation and options.osd_policy == "always"):
        return
    found = _page_osd(work)
    work.checked = "osd"
    if found is not None:
        work.osd_confidence = found.confidence
        if found.rotate and found.confidence >= _MIN_OSD_CONFIDENCE:
            work.rotation = found.rotate
            work.image = turn_clockwise(work.pixels(), work.rotation)
    work.lap("orientation")


def stage_segment(work: PageWork) -> None:
    """Choose the models and the segmentations to try: ``layout="line"`` reads a line crop as
    one line; a page is segmented whole, then (``segmentation_fallback``) as a block and a line
    when that finds no text on an inked page."""
    work.languages = work.options.languages
    plan = _LINE_PLAN if work.options.layout == "line" else _PAGE_PLAN
    work.plan = plan if work.options.segmentation_fallback else plan[:1]


def _has_ink(image: Image.Image) -> bool:
    grey = image if image.mode == "L" else image.convert("L")
    small = grey.reduce(max(1, -(-max(grey.size) // 600)))
    histogram = small.histogram()
    dark = sum(histogram[:100])
    return dark / max(1, small.width * small.height) > 0.002


def _read(work: PageWork, image: Image.Image, base: Path) -> tuple[Path, PageText]:
    """Read ``image`` with the plan's segmentations in order until one finds words."""
    hocr = text = None
    work.tried = []
    for index, (name, psm) in enumerate(work.plan):
        hocr, text = _ocr(
            image, base, dpi=work.ocr_dpi, options=work.options,
            languages=work.languages, psm=psm,
        )
        work.tried.append(name)
        work.segmentation = name
        if text.words or index + 1 == len(work.plan) or not _has_ink(image):
            break
    assert hocr is not None and text is not None
    return hocr, text


def _read_best(work: PageWork) -> tuple[Path, PageText]:
    """Read the OCR input; a prepared input that reads poorly (worn ink the binarisation broke
    up) is checked against the page as scanned, and the reading Tesseract is surer of kept."""
    image = work.ocr_image
    assert image is not None
    hocr, text = _read(work, image, work.base)
    if work.preparation == "none" or text.mean_confidence() >= _PREPARED_CONFIDENCE:
        return hocr, text
    tried, segmentation = list(work.tried), work.segmentation
    plain_base = work.base.with_name(work.base.name + ".plain")
    plain_hocr, plain_text = _read(work, work.pixels(), plain_base)
    if plain_text.mean_confidence() > text.mean_confidence():
        work.preparation_tried = (work.preparation,)
        work.preparation = "none"
        work.ocr_image = work.pixels()
        return plain_hocr.replace(hocr), plain_text
    plain_hocr.unlink(missing_ok=True)
    work.tried, work.segmentation = tried, segmentation
    return hocr, text


def _page_osd(work: PageWork) -> Orientation | None:
    """Tesseract OSD of the page, run at most once a page (script and orientation)."""
    if not work.osd_ran:
        work.osd = _osd(work.pixels(), work.base, dpi=work.ocr_dpi, options=work.options)
        work.osd_ran = True
    return work.osd


def _latin(work: PageWork) -> bool:
    """Whether the page holds Latin script its models do not read.

    Read without ``eng``, Latin text comes out either as Latin letters (``kaz`` knows some) or
    as low-confidence Cyrillic garbage (``Боок$ ап4``); in the second case OSD's script
    detection decides, so pages that read well never pay for it.
    """
    _, text = work.reading()
    if latin_share([w.text for w in text.words]) > _LATIN_SHARE:
        return True
    if (
        not text.words
        or text.mean_confidence() >= _LATIN_CHECK_CONFIDENCE
        or work.options.layout == "line"  # OSD cannot tell the script of a single line
    ):
        return False
    found = _page_osd(work)
    return found is not None and found.script == "Latin"


def _read_with_english(work: PageWork) -> None:
    """Read the page again with ``eng`` added; keep that reading only if it reads Latin and
    clearly better (OSD's script guess on worn Cyrillic can say Latin too, and ``eng`` must not
    then win)."""
    hocr, text = work.reading()
    kept = hocr.with_name(hocr.name + ".kept")
    hocr.replace(kept)
    before = (work.languages, list(work.tried), work.segmentation, work.preparation,
              work.preparation_tried, work.ocr_image)
    work.languages = with_english(work.languages)
    # The OCR input stays as chosen (prepared or as scanned): one more reading, not two.
    assert work.ocr_image is not None
    hocr2, text2 = _read(work, work.ocr_image, work.base)
    if (
        latin_share([w.text for w in text2.words]) > _LATIN_SHARE
        and text2.mean_confidence() >= text.mean_confidence() + _ENGLISH_GAIN
    ):
        kept.unlink()
        work.hocr, work.text = hocr2, text2
        return
    kept.replace(hocr)
    (work.languages, work.tried, work.segmentation, work.preparation,
     work.preparation_tried, work.ocr_image) = before
    work.hocr, work.text = hocr, text


def stage_recognise(work: PageWork) -> None:
    """Read the OCR input (see :func:`_read_best`); re-read with ``eng`` when Latin script
    shows; with ``osd_policy="when_unsure"`` check the reading is upright, else turn the page
    (OSD)."""
    options = work.options
    work.hocr, work.text = _read_best(work)
    if options.latin_detection and "eng" not in work.languages.split("+") and _latin(work):
        _read_with_english(work)
    work.lap("ocr")
    if options.orientation and options.osd_policy == "when_unsure" and options.layout == "page":
        work.checked = "ocr"
        if not _reads_upright(work.text):
            _turn_when_unsure(work)
            work.lap("orientation")
    if options.segmentation_fallback and options.layout == "page" and work.text.words:
        _read_missed_regions(work)
        work.lap("ocr")


def _region_crops(
    image: Image.Image, box: tuple[int, int, int, int], *, pad: int, dpi: float
) -> Iterator[tuple[Image.Image, tuple[int, int]]]:
    """Two ways to show a missed band to Tesseract, each with its offset on the page: the band
    alone, flattened against its own background (a shaded box becomes paper) and binarised; then
    the band with the paper around it, as scanned (a faded line on plain paper)."""
    x0, y0, x1, y1 = box
    tight = image.crop(box).convert("L")
    prepared, _ = oldprint.prepare_for_ocr(tight, dpi=dpi)
    yield ImageOps.expand(prepared.convert("L"), pad, fill=255), (x0 - pad, y0 - pad)
    wx0, wy0 = max(0, x0 - pad), max(0, y0 - pad)
    wide = image.crop((wx0, wy0, min(image.width, x1 + pad), min(image.height, y1 + pad)))
    yield wide.convert("L"), (wx0, wy0)


def _read_region(work: PageWork, crop: Image.Image, base: Path) -> tuple[Path, PageText]:
    """A band read as one block, then as one line."""
    for psm in (6, 7):
        hocr, text = _ocr(crop, base, dpi=work.ocr_dpi, options=work.options,
                          languages=work.languages, psm=psm)
        if text.words:
            break
    return hocr, text


def _read_missed_regions(work: PageWork) -> None:
    """Read inked bands the page's segmentation left without words (text on a shaded box, a
    faded line) alone, as a block, then as a line, and merge what reads into the page."""
    hocr, text = work.reading()
    image = work.ocr_image
    assert image is not None
    covered = [w.bbox for w in text.words] + [ln.bbox for ln in text.lines]
    found = missed_regions(image, dpi=work.dpi, covered=covered)
    pad = max(4, round(work.dpi / 20))
    for index, box in enumerate(found, 1):
        base = work.base.with_name(f"{work.base.name}.region{index}")
        for crop, offset in _region_crops(image, box, pad=pad, dpi=work.dpi):
            region_hocr, region_text = _read_region(work, crop, base)
            if region_text.words and merge_region_hocr(
                hocr, region_hocr, offset=offset, tag=f"region{index}",
                avoid=[ln.bbox for ln in text.lines],
            ):
                work.regions += 1
                region_hocr.unlink(missing_ok=True)
                break
            region_hocr.unlink(missing_ok=True)
    if work.regions:
        work.text = parse_hocr(hocr)


def _turn_when_unsure(work: PageWork) -> None:
    options = work.options
    _, text = work.reading()
    image = work.ocr_image
    assert image is not None
    found = _page_osd(work)
    work.checked = "osd"
    if found is None:
        return
    work.osd_confidence = found.confidence
    if not (found.rotate and found.confidence >= _MIN_OSD_CONFIDENCE):
        return
    turned = turn_clockwise(image, found.rotate)
    hocr2, text2 = _ocr(
        turned, work.base, dpi=work.ocr_dpi, options=options, languages=work.languages,
        psm=dict(work.plan).get(work.segmentation, 3),
    )
    # Accept the turn when the turned page reads at least about as well, or the first reading
    # ran down the page (Tesseract reads sideways lines too, but the page image must be upright
    # for people).
    sideways = text.vertical_line_share() >= 0.2
    if text2.words and (sideways or text2.mean_confidence() >= text.mean_confidence() - 5.0):
        work.image = turn_clockwise(work.pixels(), found.rotate)
        work.ocr_image = turned
        work.hocr, work.text, work.rotation = hocr2, text2, found.rotate
    else:
        # OSD was wrong: keep the first reading (and recreate its hOCR).
        work.hocr, work.text = _ocr(
            image, work.base, dpi=work.ocr_dpi, options=options, languages=work.languages,
            psm=dict(work.plan).get(work.segmentation, 3),
        )


def stage_correct(work: PageWork) -> None:
    """Script consistency over the hOCR (in place): text, ALTO and the PDF text layer follow."""
    if not work.options.script_consistency:
        return
    hocr, _ = work.reading()
    work.corrections = correct_hocr(hocr)
    if work.corrections:
        work.text = parse_hocr(hocr)
    work.lap("correct")


def stage_write(work: PageWork) -> PageResult:
    """Straighten a small skew (turning the OCR geometry along), write the page image, text,
    ALTO; return the page's result."""
    options, page, base = work.options, work.page, work.base
    hocr, text = work.reading()
    decoded = work.decoded
    assert decoded is not None
    image = work.pixels()
    skew, corrected = work.skew, work.corrected
    unchanged = not (work.rotation or corrected or work.borders)
    # The scanner's JPEG goes into the archival PDF untouched when no pixel had to change.
    original_jpeg = (
        decoded.original_jpeg if unchanged and options.profile == "archival" else None
    )
    image_path = base.with_suffix(".jpg" if original_jpeg is not None else ".png")
    if skew is not None and corrected and not work.before_ocr:
        # A small skew: the scan was recognised as it is (as accurately, and cheaper than a
        # resampled page); now straighten the image and carry the OCR geometry along with it.
        image = rotate_by(image, -skew)
        text = turn_hocr(hocr, degrees=-skew, image_name=image_path.name)
        work.lap("deskew")
    else:
        name_hocr_image(hocr, image_path.name)
    if original_jpeg is not None:
        image_path.write_bytes(original_jpeg)
    else:
        write_png(image, image_path, dpi=work.dpi)
    icc_path: Path | None = None
    if decoded.icc_profile is not None:
        # The colours' meaning travels beside the image (PageResult stays small and picklable).
        icc_path = base.with_suffix(".icc")
        icc_path.write_bytes(decoded.icc_profile)

    plain = text.text()
    text_path = base.with_suffix(".txt")
    text_path.write_text(plain, encoding="utf-8")
    choices = PageChoices(
        languages=work.languages,
        segmentation=work.segmentation,
        segmentation_tried=tuple(work.tried),
        preparation=work.preparation,
        preparation_tried=work.preparation_tried or (
            (work.preparation,) if work.preparation != "none" else ()
        ),
        contrast=work.measures.contrast if work.measures else None,
        ghost=work.measures.ghost if work.measures else None,
        noise=work.measures.noise if work.measures else None,
        script_corrections=len(work.corrections),
        regions_read=work.regions,
    )
    settings = (
        f"languages={work.languages}; segmentation={work.segmentation}; "
        f"preparation={work.preparation}; rotation={work.rotation}; "
        f"skew={skew if skew is not None else 'n/a'}; deskewed={corrected}; "
        f"script corrections={len(work.corrections)}"
    )
    if work.corrections:
        settings += f" ({describe(work.corrections)})"
    alto_path = write_alto(
        text,
        base.with_suffix(".alto.xml"),
        image_name=image_path.name,
        page_number=page.frame + 1,
        software_version=ocr_engine().version(),
        settings=settings,
    )
    _check_alto(alto_path)
    work.lap("outputs")
    preparation = PagePreparation(
        orientation_checked=work.checked,
        osd_confidence=work.osd_confidence,
        rotation_applied=work.rotation,
        skew_angle_deg=skew,
        skew_corrected=corrected,
        deskewed_before_ocr=work.before_ocr,
        borders_cleaned=work.borders,
        conversions=decoded.conversions,
        pdf_page=decoded.survey.kind if decoded.survey is not None else None,
        remarks=decoded.remarks,
    )
    return PageResult(
        page=page,
        image_path=image_path,
        dpi=work.dpi,
        width_px=image.width,
        height_px=image.height,
        text=plain,
        text_path=text_path,
        hocr_path=hocr,
        alto_path=alto_path,
        mean_confidence=round(text.mean_confidence(), 2),
        word_count=len(text.words),
        preparation=preparation,
        seconds=round(time.monotonic() - work.started, 3),
        step_seconds=tuple(work.steps.items()),
        icc_profile_path=icc_path,
        choices=choices,
    )


STAGES: tuple[Callable[[PageWork], object], ...] = (
    stage_prepare, stage_segment, stage_recognise, stage_correct,
)
"""The stages before :func:`stage_write`, in order (orientation runs inside prepare, or after
the first reading with ``osd_policy="when_unsure"``)."""


def process_page(page: PageRef, *, work_dir: Path, options: CaptureOptions) -> PageResult:
    """Prepare and recognise one page; write its image, ``.txt``, ``.hocr`` and ALTO ``.xml``.

    Files are named after ``page.label`` inside ``work_dir`` (created if needed). Raises
    :class:`flows.errors.PageRejected` for an unreadable page and :class:`flows.errors.ToolFailed`
    / :class:`flows.errors.ToolTimeout` when Tesseract fails or runs past ``page_timeout_s``.
    Where the official ALTO 4.4 schema is installed every ALTO file is validated against it
    (:class:`flows.errors.AltoInvalid` if it fails).

    The work runs in named stages — :func:`stage_prepare` (decode, orientation, deskew, OCR
    input), :func:`stage_segment`, :func:`stage_recognise`, :func:`stage_correct` (script
    consistency) and :func:`stage_write` — each a function of the page's :class:`PageWork`.
    """
    started = time.monotonic()
    work_dir.mkdir(parents=True, exist_ok=True)
    work = PageWork(
        page=page, options=options, base=work_dir / _safe_stem(page), started=started,
        clock=started,
    )
    work.decoded = decode_page(page, options=options)
    work.lap("decode")
    if work.decoded.text_layer is not None:  # a PDF page whose own text is kept
        return _page_with_kept_text(page, work.decoded, work.decoded.text_layer, base=work.base,
                                    started=started, steps=work.steps, lap=work.lap)
    for stage in STAGES:
        stage(work)
    result = stage_write(work)
    logger.info(
        "page %s: %d words, confidence %.1f, rotation %d, skew %s, %s, %s, %.2f s",
        page.label, result.word_count, result.mean_confidence, work.rotation, work.skew,
        work.segmentation, work.preparation, result.seconds,
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
