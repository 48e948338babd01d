"""Values passed between the capture steps: options, page references, results, metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Profile = Literal["archival", "access"]
OsdPolicy = Literal["always", "when_unsure"]
PdfTextPolicy = Literal["skip-text", "redo-ocr", "force-ocr"]
"""What to do with a PDF page that already carries text (as OCRmyPDF's options of those names):

* ``skip-text`` (default) — keep the page's own text layer (born-digital text, or an earlier
  OCR) and do not recognise the page again; the choice is recorded per page;
* ``redo-ocr`` — recognise again pages whose only text is an invisible OCR layer; pages with
  visible (born-digital) text keep it;
* ``force-ocr`` — rasterise and recognise every page, discarding any text it had.
"""
Layout = Literal["page", "line"]
PreparationPolicy = Literal["auto", "always", "off"]
AccessTextPages = Literal["bitonal", "grey", "off"]


@dataclass(frozen=True)
class CaptureOptions:
    """How pages are checked, prepared, recognised and assembled. Plain values; no globals.

    * ``languages`` — Tesseract languages, ``kaz+rus+eng`` (Kazakh, Russian, English).
    * ``dpi_fallback`` — resolution to assume when a file carries none; ``None`` refuses such
      a page.
    * ``max_image_pixels`` — decompression-bomb guard: a page with more pixels is refused.
    * ``pdf_raster_dpi`` — resolution at which a scanner PDF's page is rasterised when it is not
      exactly one full-page image (text or vector content, several images, JBIG2, masks);
      ``None`` uses ``dpi_fallback``, or 300 dpi when that is unset too.
    * ``page_timeout_s`` — limit for each Tesseract run on one page.
    * ``orientation`` — turn pages upright (0/90/180/270) with Tesseract OSD. ``osd_policy``
      ``"always"`` runs OSD on every page first; ``"when_unsure"`` (default, faster) runs it only
      when the page does not read upright (low confidence, vertical lines, too few words), then
      turns it and recognises it again.
    * ``deskew`` — straighten pages skewed by more than ``deskew_threshold_deg`` (up to
      ``deskew_max_deg``).
    * ``ocr_skew_tolerance_deg`` — pages skewed up to this are recognised as scanned and their
      OCR geometry (word and line boxes, baselines) is turned with the straightened image;
      pages skewed more are straightened before OCR. Tesseract finds text lines on pages
      skewed a few degrees as accurately as on straight ones (measured: same character error
      rate up to 3°, worse from 4–5°), and a resampled page costs it about 6 % more work, so
      straightening first pays only beyond this. ``0`` always straightens first.
    * ``clean_borders`` — paint dark scanner borders at the page edges with the paper colour.
    * ``profile`` — ``"archival"`` keeps page images lossless (or the scanner's own JPEG,
      unchanged);
      ``"access"`` re-encodes grey/colour pages as JPEG at ``access_jpeg_quality``, downsampled to
      ``access_max_dpi`` if finer; ``access_text_pages`` says what becomes of *text* pages
      there (:mod:`flows.capture.access`): ``"bitonal"`` (default) thresholds them to 1-bit
      Group 4 at up to 300 dpi, ``"grey"`` keeps them grey JPEG at 150 dpi, ``"off"`` treats
      them like pictures.
    * ``load_workers`` — threads decoding pages in :func:`load_pages` (default: CPU count).
    * ``min_dpi`` — image pages below this resolution (recorded or fallback) are refused by name;
      None: no minimum (the digitise flow sets the capture profile's, 200 dpi by default).
    * ``pdf_text_policy`` — PDF pages that already carry text: see :data:`PdfTextPolicy`.
    * ``confidence_gate`` — a page whose mean word confidence (0–100) is below this marks the copy
      for review by a person (it is not silently accepted).
    * ``layout`` — ``"page"`` (default) segments whole pages (columns, blocks, lines);
      ``"line"`` treats every input as one text line (line or region crops, for ground-truth
      work: Tesseract ``--psm 7``).
    * ``latin_detection`` — when ``languages`` has no ``eng``, a page whose reading holds Latin
      words (see :func:`flows.capture.script.latin_share`) is read again with ``eng`` added.
    * ``script_consistency`` — Latin look-alike letters inside Cyrillic words become Cyrillic
      and the reverse (:mod:`flows.capture.script`), recorded per page.
    * ``segmentation_fallback`` — when whole-page segmentation finds no text on a page that
      has ink, read it again as one block (``--psm 6``), then as one line (``--psm 7``).
    * ``prepare_old_print`` — image preparation of the OCR input for old print (adaptive
      binarisation, background and bleed-through suppression, despeckle; the archival image is
      never altered): ``"auto"`` applies it to pages whose measured contrast or noise says so
      (:func:`flows.capture.oldprint.needs_preparation`), ``"always"`` to every page,
      ``"off"`` never.
    """

    languages: str = "kaz+rus+eng"
    dpi_fallback: int | None = None
    max_image_pixels: int = 400_000_000
    pdf_raster_dpi: int | None = None
    page_timeout_s: float = 300.0
    orientation: bool = True
    osd_policy: OsdPolicy = "when_unsure"
    deskew: bool = True
    deskew_threshold_deg: float = 0.1
    deskew_max_deg: float = 10.0
    ocr_skew_tolerance_deg: float = 3.0
    clean_borders: bool = False
    profile: Profile = "archival"
    access_jpeg_quality: int = 45
    access_max_dpi: int = 200
    access_text_pages: AccessTextPages = "bitonal"
    confidence_gate: float = 70.0
    load_workers: int | None = None
    min_dpi: float | None = None
    pdf_text_policy: PdfTextPolicy = "skip-text"
    layout: Layout = "page"
    latin_detection: bool = True
    script_consistency: bool = True
    segmentation_fallback: bool = True
    prepare_old_print: PreparationPolicy = "auto"


@dataclass(frozen=True)
class PageRef:
    """One page of the input: ``frame`` is its 0-based index within a multi-page TIFF or PDF.

    ``label`` names the page for people (file stem, plus page number inside a multi-page file).
    """

    source: Path
    frame: int
    label: str


@dataclass(frozen=True)
class PagePreparation:
    """What page preparation found and did, for the page's technical metadata.

    ``orientation_checked`` says how orientation was established: ``"osd"`` (Tesseract OSD ran),
    ``"ocr"`` (the page read upright, OSD was not needed) or ``"off"``. ``rotation_applied`` is
    the clockwise quarter-turn applied (0/90/180/270). ``skew_angle_deg`` is the skew measured
    (counter-clockwise positive) and ``skew_corrected`` whether the page was turned back by it;
    ``deskewed_before_ocr`` whether that happened before OCR (a large skew) or after it, with the
    OCR geometry turned along (see ``CaptureOptions.ocr_skew_tolerance_deg``).
    ``conversions`` lists colour/bit-depth changes (e.g. ``"CMYK→RGB"`` without a profile,
    ``"CMYK→sRGB (ICC: <profile description>)"`` with one) and profiles ignored (``"ICC profile
    unreadable, ignored"``).

    ``text_source`` is ``"ocr"`` (Tesseract read the page) or ``"kept"`` (the PDF page's own text
    layer was kept, see :data:`PdfTextPolicy`). ``pdf_page`` is what a PDF page held (see
    :class:`flows.capture.inputs.PdfPageSurvey`: ``"scan"``, ``"scan with text layer"``,
    ``"born-digital"`` (text, no image — туған цифрлық / изначально цифровой), ``"mixed"``,
    ``"drawing"``, ``"empty"``); ``None`` for image files. ``remarks`` says what a person should
    know (an XFA form whose content is not on its pages, an empty page, a text layer not kept).
    """

    orientation_checked: Literal["osd", "ocr", "off"]
    osd_confidence: float | None
    rotation_applied: int
    skew_angle_deg: float | None
    skew_corrected: bool
    borders_cleaned: bool
    conversions: tuple[str, ...] = ()
    deskewed_before_ocr: bool = False
    text_source: Literal["ocr", "kept"] = "ocr"
    pdf_page: str | None = None
    remarks: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageChoices:
    """What the OCR chose for one page, for the digitise summary, ``--json`` and PREMIS.

    * ``languages`` — the Tesseract models the page's text was read with (e.g. ``kaz+rus``;
      ``+eng`` when Latin was detected on the page).
    * ``segmentation`` — the page segmentation the text came from: ``"page"`` (automatic,
      ``--psm 3``), ``"block"`` (``--psm 6``) or ``"line"`` (``--psm 7``);
      ``segmentation_tried`` every one tried, in order.
    * ``preparation`` — the image preparation of the OCR input: ``"none"`` or the steps applied
      (e.g. ``"background+sauvola+despeckle"``), with the measures that decided it:
      ``contrast`` (ink/paper separation, 0–1) and ``noise`` (share of isolated specks).
    * ``script_corrections`` — words whose Latin look-alikes were made Cyrillic (or the
      reverse), see :mod:`flows.capture.script`.
    * ``regions_read`` — inked bands the page's segmentation left without words, read alone
      and merged into the page (see :mod:`flows.capture.regions`).
    """

    languages: str
    segmentation: str = "page"
    segmentation_tried: tuple[str, ...] = ("page",)
    preparation: str = "none"
    preparation_tried: tuple[str, ...] = ()
    contrast: float | None = None
    ghost: float | None = None
    noise: float | None = None
    script_corrections: int = 0
    regions_read: int = 0

    def describe(self) -> str:
        """One line for people and PREMIS event details, e.g. ``languages kaz+rus;
        segmentation block (tried page, block); preparation background+sauvola+despeckle;
        script corrections 3``."""
        segmentation = self.segmentation
        if tuple(self.segmentation_tried) != (self.segmentation,):
            segmentation += f" (tried {', '.join(self.segmentation_tried)})"
        preparation = self.preparation
        rejected = [p for p in self.preparation_tried if p != self.preparation]
        if rejected:
            preparation += f" ({', '.join(rejected)} tried, read worse)"
        return (
            f"languages {self.languages}; segmentation {segmentation}; "
            f"preparation {preparation}; script corrections {self.script_corrections}"
            + (f"; regions read alone {self.regions_read}" if self.regions_read else "")
        )

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready values (tuples as lists)."""
        return {
            "languages": self.languages,
            "segmentation": self.segmentation,
            "segmentation_tried": list(self.segmentation_tried),
            "preparation": self.preparation,
            "preparation_tried": list(self.preparation_tried),
            "contrast": self.contrast,
            "ghost": self.ghost,
            "noise": self.noise,
            "script_corrections": self.script_corrections,
            "regions_read": self.regions_read,
        }


@dataclass(frozen=True)
class PageResult:
    """One prepared and recognised page; every path is inside the ``work_dir`` given.

    ``image_path`` is the prepared page image as it goes into the PDF (PNG, or the scanner's
    JPEG when unchanged); ``text`` is the OCR text (lines by ``\\n``, paragraphs by a blank line),
    identical to the file at ``text_path`` and to the PDF's text layer. ``mean_confidence`` is the
    mean Tesseract word confidence, 0–100 (0 for a page without words). ``seconds`` is the
    page's wall time, ``step_seconds`` its split by step (decode, orientation, deskew, ocr,
    outputs). ``icc_profile_path`` is the ICC profile (цветовой профиль / түс профілі) the page
    image's colours are in, written beside it as ``<stem>.icc``, when the scan carried one that
    is not sRGB; ``None`` means sRGB (or plain grey, or bitonal). The PDF embeds it as the image's
    ``/ICCBased`` colour space (see :mod:`flows.capture.colour`). ``choices`` records the
    languages, segmentation, image preparation and script corrections of the OCR
    (:class:`PageChoices`).
    """

    page: PageRef
    image_path: Path
    dpi: float
    width_px: int
    height_px: int
    text: str
    text_path: Path
    hocr_path: Path
    alto_path: Path
    mean_confidence: float
    word_count: int
    preparation: PagePreparation
    seconds: float = 0.0
    step_seconds: tuple[tuple[str, float], ...] = ()
    icc_profile_path: Path | None = None
    choices: PageChoices | None = None

    def below_gate(self, gate: float) -> bool:
        """Whether this page needs a person's review under confidence gate ``gate``."""
        return self.word_count > 0 and self.mean_confidence < gate


@dataclass(frozen=True)
class DocumentMetadata:
    """Descriptive metadata written into the PDF's XMP (Dublin Core) and document info.

    ``identifier`` is the item's inventory number (инвентарный номер / түгендеу нөмірі);
    ``language`` a BCP 47 code such as ``"kk"`` or ``"ru"``; ``date`` as ``YYYY`` or
    ``YYYY-MM-DD``; ``page_labels`` optional per-page outline titles (one per page, in order).
    """

    title: str
    identifier: str
    creator: str | None = None
    date: str | None = None
    language: str | None = None
    page_labels: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class BookConfidence:
    """Confidence over a whole copy: mean of page means (weighted by words), and the pages under
    the gate. ``needs_review`` is true when any page is under the gate."""

    mean_confidence: float
    word_count: int
    pages_below_gate: tuple[str, ...]

    @property
    def needs_review(self) -> bool:
        return bool(self.pages_below_gate)
