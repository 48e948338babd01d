"""Reading the scanner's output: files, folders, multi-page TIFFs and scanner PDFs.

Every page is checked whole by :func:`load_pages` before anything else happens, so a bad page
(truncated, not an image, too large, encrypted or scripted PDF) stops the batch while nothing has
been stored yet; the error names the file, the page within it and the reason.

A scanner PDF's page that is exactly one image filling the page gives that image's pixels,
extracted losslessly and turned as the reader shows the page; any other page (text, vector
drawing, several images, JBIG2, masks) is rasterised by PDFium at ``pdf_raster_dpi``.

Every PDF page is also surveyed (:class:`PdfPageSurvey`: text visible or invisible, fonts,
images, drawing, XFA form): a page that already carries text keeps it by default
(``CaptureOptions.pdf_text_policy``, like OCRmyPDF's ``--skip-text``), read by PDFium with each
character's box, so it is not recognised again.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import re
import struct
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import pikepdf
import pypdfium2 as pdfium  # type: ignore[import-untyped]  # ships no type information
from PIL import Image, ImageChops, ImageOps

from flows.capture import colour
from flows.capture.model import CaptureOptions, PageRef
from flows.capture.ocr import Line, PageText, Paragraph, Word
from flows.errors import PageRejected, PagesRejected

logger = logging.getLogger(__name__)

_EXIF_ORIENTATION = 0x0112
_TIFF_ICC_PROFILE = 34675
_MIN_DPI = 50.0
_MAX_DPI = 4800.0


@dataclass(frozen=True)
class DecodedPage:
    """A page's pixels after decoding, before preparation.

    ``image`` is in mode ``1``, ``L`` or ``RGB``; ``original_jpeg`` holds the scanner's JPEG bytes
    when the page came as a plain grey/RGB JPEG (kept unchanged in the archival profile if no
    pixel change is needed). ``icc_profile`` is the ICC profile the pixels are in when it is not
    sRGB (the PDF carries it as the image's colour space; see :mod:`flows.capture.colour`);
    ``None`` for sRGB, plain grey and bitonal pages. ``conversions`` lists what was changed or
    ignored, e.g. ``"CMYK→sRGB (ICC: …)"`` or ``"ICC profile unreadable, ignored"``.
    """

    image: Image.Image
    dpi: float
    conversions: tuple[str, ...]
    original_jpeg: bytes | None
    icc_profile: bytes | None = None
    survey: PdfPageSurvey | None = None
    """What the PDF page held (``None`` for image files)."""
    text_layer: PageText | None = None
    """The PDF page's own text, in the pixels of ``image``, when the policy keeps it."""
    remarks: tuple[str, ...] = ()
    """What a person should know about the page (XFA form, empty page, text layer not kept)."""


@dataclass(frozen=True)
class PdfPageSurvey:
    """What one PDF page holds, from its content stream and the forms it draws.

    ``visible_text`` / ``invisible_text``: text drawn visibly, or invisibly (render mode 3 or 7,
    the layer OCR tools lay over a scan); ``fonts`` the fonts its resources name; ``images`` the
    images it draws (inline ones too); ``vector`` whether it paints paths; ``xfa`` whether the
    document is an XFA form (its content lives in XFA data, not on the pages).
    """

    visible_text: bool
    invisible_text: bool
    fonts: int
    images: int
    vector: bool
    xfa: bool = False

    @property
    def has_text(self) -> bool:
        return self.visible_text or self.invisible_text

    @property
    def born_digital(self) -> bool:
        """No image at all, but text or drawing: made on a computer, not scanned."""
        return not self.images and (self.has_text or self.vector)

    @property
    def kind(self) -> str:
        """``scan``, ``scan with text layer``, ``mixed``, ``born-digital`` or ``empty``."""
        if self.images:
            if self.visible_text:
                return "mixed"
            return "scan with text layer" if self.invisible_text else "scan"
        return "born-digital" if self.born_digital else "empty"


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _expand(inputs: Sequence[Path]) -> list[Path]:
    """The page files of ``inputs`` in order: a named file as given, a folder's files sorted
    naturally. Inside a folder every entry is a page or refused by name, none skipped: a
    symbolic link (it could point anywhere: links are not followed, and the target is never
    opened), a hidden file, a sub-folder, anything that is not a regular file. All refusals of
    the batch are raised together (:class:`PagesRejected`)."""
    files: list[Path] = []
    refused: list[PageRejected] = []
    for item in inputs:
        if item.is_dir():
            entries = sorted(item.iterdir(), key=_natural_key)
            if not entries:
                raise PageRejected(item, 0, "folder holds no page files")
            for entry in entries:
                reason = _not_a_page_entry(entry)
                if reason is None:
                    files.append(entry)
                else:
                    refused.append(PageRejected(entry, 0, reason))
        elif item.is_file():
            files.append(item)
        else:
            raise PageRejected(item, 0, "no such file or folder")
    if refused:
        raise refused[0] if len(refused) == 1 else PagesRejected(tuple(refused))
    return files


def _not_a_page_entry(entry: Path) -> str | None:
    """Why a folder entry cannot be a page (without following it), or None for a regular file."""
    if entry.is_symlink():
        return ("a symbolic link: links in an input folder are not followed (copy the scan "
                "into the folder)")
    if entry.is_dir():
        return "a folder inside the input folder: give it as an input of its own"
    if not entry.is_file():
        return "not a regular file"
    if entry.name.startswith("."):
        return "a hidden file (its name starts with '.'): rename it if it is a page, else remove it"
    return None


def _is_pdf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(1024).lstrip().startswith(b"%PDF")


_SIGNATURES = (
    (b"II*\0", "TIFF"),
    (b"MM\0*", "TIFF"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"\0\0\0\x0cjP  ", "JPEG 2000"),
    (b"\xffO\xffQ", "JPEG 2000"),
)


def _image_signature(path: Path) -> str | None:
    """The image format a file's first bytes announce, even when the rest is damaged."""
    with path.open("rb") as fh:
        head = fh.read(16)
    return next((kind for magic, kind in _SIGNATURES if head.startswith(magic)), None)


def _guard_pixels(path: Path, frame: int, size: tuple[int, int], options: CaptureOptions) -> None:
    pixels = size[0] * size[1]
    if pixels > options.max_image_pixels:
        raise PageRejected(
            path,
            frame,
            f"{size[0]}×{size[1]} pixels ({pixels:,}) is above the limit of "
            f"{options.max_image_pixels:,} (decompression-bomb guard)",
        )


def _dpi_of(info: Mapping[Any, Any], path: Path, frame: int, options: CaptureOptions) -> float:
    raw = info.get("dpi")
    dpi: float | None = None
    if isinstance(raw, tuple) and raw and isinstance(raw[0], numbers.Real):
        dpi = round(float(raw[0]), 2)  # PNG stores pixels per metre: 299.9994 is 300
    if dpi is None or not (_MIN_DPI <= dpi <= _MAX_DPI):
        if options.dpi_fallback is None:
            found = "none" if dpi is None else f"{dpi:g}"
            raise PageRejected(
                path,
                frame,
                f"no usable resolution in the file ({found} dpi); give the scan resolution "
                "(dpi fallback setting)",
            )
        dpi = float(options.dpi_fallback)
    if options.min_dpi is not None and dpi < options.min_dpi:
        raise PageRejected(
            path, frame,
            f"resolution {dpi:.0f} dpi is below the capture profile's minimum of "
            f"{options.min_dpi:g} dpi (text needs it to be read; QOR_MIN_DPI sets the minimum)",
        )
    return dpi


def _normalise_mode(image: Image.Image) -> tuple[Image.Image, tuple[str, ...]]:
    """Bring any decoded mode to ``1``, ``L`` or ``RGB``; say what was converted (no profile)."""
    mode = image.mode
    if mode in ("1", "L", "RGB"):
        return image, ()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grey: scale to 8 bits (Pillow's convert("L") would clip, not scale).
        scaled = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
        return scaled, ("16-bit→8-bit grey",)
    if mode == "F":
        return image.convert("L"), ("float→8-bit grey",)
    if mode == "CMYK":
        return image.convert("RGB"), ("CMYK→RGB",)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba)
        grey = mode in ("LA",)
        return (flat.convert("L") if grey else flat.convert("RGB")), (f"{mode} alpha→white",)
    if mode == "P":
        return image.convert("RGB"), ("palette→RGB",)
    return image.convert("RGB"), (f"{mode}→RGB",)


def _normalise(image: Image.Image, icc: bytes | None) -> colour.ManagedColour:
    """Bring any decoded mode to ``1``, ``L`` or ``RGB`` honouring the embedded ICC profile.

    See :mod:`flows.capture.colour`: CMYK with a CMYK profile is converted to sRGB by it; grey or
    RGB keeps its pixels and the profile (unless it is sRGB); a damaged profile is ignored and
    recorded.
    """
    profile = colour.read_profile(icc) if icc else None
    notes: tuple[str, ...] = (colour.UNREADABLE,) if icc and profile is None else ()
    if image.mode == "CMYK" and profile is not None:
        if profile.colour_space == "CMYK":
            converted = colour.to_srgb(image, profile)
            conversion = f"CMYK→sRGB (ICC: {profile.description})"
            return colour.ManagedColour(converted, (conversion,), notes, None)
        notes = (*notes, colour.ignored_note(profile, "CMYK"))
        profile = None
    normal, conversions = _normalise_mode(image)
    settled = colour.settle(normal, profile)
    return colour.ManagedColour(
        settled.image,
        conversions + settled.conversions,
        notes + settled.notes,
        settled.icc_profile,
    )


def _embedded_icc(image: Image.Image) -> bytes | None:
    """The ICC profile of the current frame, as the file carries it."""
    if image.format == "TIFF":
        # Per frame: Pillow's info keeps an earlier frame's profile after a seek.
        tags = getattr(image, "tag_v2", None)
        found = tags.get(_TIFF_ICC_PROFILE) if tags is not None else None
    else:
        found = image.info.get("icc_profile")
    return bytes(found) if isinstance(found, bytes | bytearray) and found else None


def _jp2_boxes(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """The boxes of a JPEG 2000 file between ``start`` and ``end``: (type, data start, data end)."""
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            return
        length, kind = struct.unpack(">L4s", head)
        data = pos + 8
        if length == 1:
            extended = fh.read(8)
            if len(extended) < 8:
                return
            (length,) = struct.unpack(">Q", extended)
            data = pos + 16
        elif length == 0:
            length = end - pos
        if length < data - pos:
            return
        yield kind, data, min(pos + length, end)
        pos += length


def _jp2_icc(path: Path) -> bytes | None:
    """The ICC profile of a JP2 file's first colour specification box (Pillow does not read it).

    Only methods 2 and 3 (restricted / any ICC) carry a profile; method 1 names sRGB, grey or
    sYCC, which need none.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        for kind, start, end in _jp2_boxes(fh, 0, size):
            if kind == b"jp2c":
                return None  # the codestream: the header boxes come before it
            if kind != b"jp2h":
                continue
            for sub, sub_start, sub_end in _jp2_boxes(fh, start, end):
                if sub == b"colr":
                    fh.seek(sub_start)
                    content = fh.read(sub_end - sub_start)
                    if len(content) > 3 and content[0] in (2, 3):
                        return content[3:]
                    return None
    return None


def _open_guarded(path: Path, options: CaptureOptions) -> Image.Image:
    """``Image.open`` under the decompression-bomb guard: a page over the pixel limit is refused
    (:class:`PageRejected`, page named); a file Pillow cannot open raises Pillow's own error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise PageRejected(
            path,
            0,
            f"more pixels than the limit of {options.max_image_pixels:,} "
            f"(decompression-bomb guard; {e})",
        ) from e


def _frames_of_image(
    path: Path, options: CaptureOptions, *, only: int | None = None
) -> Iterator[tuple[int, DecodedPage]]:
    try:
        image = _open_guarded(path, options)
    except (OSError, SyntaxError, ValueError) as e:
        kind = _image_signature(path)
        if kind:
            reason = f"damaged or truncated {kind} file (cannot be opened)"
        else:
            reason = "not an image (no known image format)"
        raise PageRejected(path, 0, reason) from e
    with image:
        fmt = image.format or "unknown"
        frames = getattr(image, "n_frames", 1)
        for frame in range(frames):
            if only is not None and frame != only:
                continue
            try:
                image.seek(frame)
                _guard_pixels(path, frame, image.size, options)
                dpi = _dpi_of(image.info, path, frame, options)
                image.load()
                # A frame of a multi-page file is copied out before the next seek; a single
                # image's loaded pixels outlive the closed file as they are.
                pixels = image.copy() if frames > 1 else image
                icc = _jp2_icc(path) if fmt == "JPEG2000" else _embedded_icc(image)
            except PageRejected:
                raise
            except (OSError, SyntaxError, ValueError, EOFError) as e:
                raise PageRejected(
                    path, frame, f"image data cannot be decoded: truncated or damaged {fmt} ({e})"
                ) from e
            turned = False
            if fmt in ("JPEG", "MPO") and image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
                # Cameras (not flatbeds) tag orientation instead of turning pixels.
                pixels = ImageOps.exif_transpose(pixels)
                turned = True
            managed = _normalise(pixels, icc)
            conversions = managed.conversions
            if turned:
                conversions = (*conversions, "EXIF orientation applied")
            jpeg: bytes | None = None
            if fmt == "JPEG" and not conversions and frames == 1:
                jpeg = path.read_bytes()
            yield frame, DecodedPage(
                managed.image, dpi, managed.notes + conversions, jpeg, managed.icc_profile
            )


# --- scanner PDFs --------------------------------------------------------------------------

_CONTAINERS = (pikepdf.Dictionary, pikepdf.Array, pikepdf.Stream)

# PDFium is not thread-safe, not even across documents: every call into it holds this lock.
_PDFIUM_LOCK = threading.Lock()
_DEFAULT_RASTER_DPI = 300

# Operators allowed on a page that is exactly one image: graphics state and placement, and text
# only while it is invisible (render mode 3, the OCR layer scanners and OCR tools add).
_PLACEMENT_OPS = frozenset({"q", "Q", "cm", "Do"})
_TEXT_OPS = frozenset(
    {"BT", "ET", "Tf", "Tz", "TL", "Tc", "Tw", "Ts", "Td", "TD", "Tm", "T*", "Tr"}
)
_TEXT_SHOWING_OPS = frozenset({"Tj", "TJ", "'", '"'})
_INVISIBLE_TEXT = 3
_PLAIN_SPACES = frozenset({"/DeviceGray", "/DeviceRGB", "/CalGray", "/CalRGB"})
# How far (in points) an image's edge may sit from the page's edge and still "fill the page".
_FILL_TOLERANCE_PT = 1.0
_SQUARE_PIXEL_TOLERANCE = 0.01


def _unsafe_action(pdf: pikepdf.Pdf) -> str | None:
    """What makes a PDF unsafe to open, if anything: JavaScript or an action that starts a program.

    Walks every object reachable from the trailer (document, page, annotation and form actions
    alike).
    """
    seen: set[tuple[int, int]] = set()
    stack: list[pikepdf.Object] = [pdf.trailer]
    while stack:
        obj = stack.pop()
        if obj.is_indirect:
            if obj.objgen in seen:
                continue
            seen.add(obj.objgen)
        if isinstance(obj, pikepdf.Stream):
            obj = obj.stream_dict
        if isinstance(obj, pikepdf.Dictionary):
            if "/JS" in obj or "/JavaScript" in obj or obj.get("/S") == pikepdf.Name.JavaScript:
                return "PDF contains JavaScript"
            if obj.get("/S") == pikepdf.Name.Launch:
                return "PDF contains a launch action (starts a program)"
            stack.extend(
                v for k, v in obj.items() if k != "/Parent" and isinstance(v, _CONTAINERS)
            )
        elif isinstance(obj, pikepdf.Array):
            stack.extend(v for v in obj if isinstance(v, _CONTAINERS))
    return None


def _open_pdf(path: Path) -> pikepdf.Pdf:
    try:
        pdf = pikepdf.open(path)
    except pikepdf.PasswordError as e:
        raise PageRejected(
            path, 0, "encrypted PDF (needs a password); give the unencrypted scan"
        ) from e
    except pikepdf.PdfError as e:
        raise PageRejected(path, 0, f"not a readable PDF ({e})") from e
    if pdf.is_encrypted:
        pdf.close()
        raise PageRejected(path, 0, "encrypted PDF; give the unencrypted scan")
    unsafe = _unsafe_action(pdf)
    if unsafe:
        pdf.close()
        raise PageRejected(path, 0, f"{unsafe}; refused as unsafe input")
    return pdf


class _Rasteriser:
    """A PDF as PDFium sees it, opened on first use (a page that is one scan never needs it).

    Opened only after pikepdf has found the file safe; both readers must agree on the page count.
    """

    def __init__(self, path: Path, pages: int) -> None:
        self._path = path
        self._pages = pages
        self._document: Any = None

    def document(self) -> Any:
        """The open PDFium document; call with :data:`_PDFIUM_LOCK` held."""
        if self._document is None:
            try:
                self._document = pdfium.PdfDocument(str(self._path))
            except pdfium.PdfiumError as e:
                raise PageRejected(
                    self._path, 0, f"PDF cannot be opened for rasterising ({e})"
                ) from e
            count = len(self._document)
            if count != self._pages:
                raise PageRejected(
                    self._path,
                    0,
                    f"damaged page tree: {self._pages} pages found by one reader, "
                    f"{count} by another",
                )
        return self._document

    def close(self) -> None:
        if self._document is not None:
            with _PDFIUM_LOCK:
                self._document.close()
            self._document = None


@contextmanager
def _rasteriser(path: Path, pages: int) -> Iterator[_Rasteriser]:
    rasteriser = _Rasteriser(path, pages)
    try:
        yield rasteriser
    finally:
        rasteriser.close()


def _inherited(page: pikepdf.Dictionary, key: str) -> pikepdf.Object | None:
    """A page attribute, looked up the page tree as PDF inheritance says (/Rotate, /Resources)."""
    node: pikepdf.Object | None = page
    for _depth in range(64):  # a cyclic /Parent chain must not hang the reader
        if not isinstance(node, pikepdf.Dictionary):
            return None
        if key in node:
            return node[key]
        node = node.get("/Parent")
    return None


def _page_rotation(page: pikepdf.Page) -> int:
    """The page's /Rotate as the reader applies it: clockwise 0/90/180/270.

    Not-quite-valid values are read as PDFium reads them (whole quarter turns, modulo 360).
    """
    value = _inherited(page.obj, "/Rotate")
    if value is None:
        return 0
    try:
        degrees = int(float(value))
    except (TypeError, ValueError):
        return 0
    return (int(degrees / 90) % 4) * 90


@dataclass(frozen=True)
class _SoleImage:
    """A page's only visible content: one image filling the page, and how it is turned on it.

    ``turn_cw`` is the clockwise quarter turn that brings the image's pixels upright as the page
    shows them (before /Rotate).
    """

    image: pikepdf.PdfImage
    turn_cw: int
    dpi: float


def _colour_space_plain(space: pikepdf.Object | None) -> bool:
    """Whether pikepdf gives this space's pixels as they look (grey, RGB, or a palette of them)."""
    if space is None:
        return False
    if isinstance(space, pikepdf.Name):
        return str(space) in _PLAIN_SPACES
    if isinstance(space, pikepdf.Array) and len(space) >= 2:
        family = str(space[0])
        if family in ("/CalGray", "/CalRGB"):
            return True
        if family == "/ICCBased" and isinstance(space[1], pikepdf.Stream):
            return int(space[1].get("/N", 0)) in (1, 3)
        if family == "/Indexed" and len(space) == 4:
            return _colour_space_plain(space[1])
    return False


def _image_unsuitable(raw: pikepdf.Stream) -> str | None:
    """Why an image's stored pixels are not what the reader sees on its own, if they are not."""
    if raw.get("/ImageMask"):
        return "stencil-mask image"
    if "/SMask" in raw or "/Mask" in raw:
        return "image with transparency"
    filters = raw.get("/Filter")
    names = (
        [str(f) for f in filters]
        if isinstance(filters, pikepdf.Array)
        else ([str(filters)] if filters is not None else [])
    )
    if "/JBIG2Decode" in names:
        return "JBIG2 image"
    if not _colour_space_plain(raw.get("/ColorSpace")):
        return "image colour space needs conversion"
    if int(raw.get("/BitsPerComponent", 0)) not in (1, 8):
        return "image bit depth other than 1 or 8"
    if "/Decode" in raw:
        return "image with a /Decode array"
    icc = _pdf_image_icc(raw)
    if icc is not None and colour.read_profile(icc) is None:
        # pikepdf cannot extract such an image; PDFium draws it in the /Alternate space.
        return colour.UNREADABLE
    return None


def _pdf_image_icc(raw: pikepdf.Object) -> bytes | None:
    """The bytes of an image's ``/ICCBased`` profile (also as an ``/Indexed`` base), if any."""
    space = raw.get("/ColorSpace")
    if isinstance(space, pikepdf.Array) and len(space) == 4 and str(space[0]) == "/Indexed":
        space = space[1]
    if (
        isinstance(space, pikepdf.Array)
        and len(space) >= 2
        and str(space[0]) == "/ICCBased"
        and isinstance(space[1], pikepdf.Stream)
    ):
        try:
            return bytes(space[1].read_bytes())
        except pikepdf.PdfError:
            return b"\0"  # undecodable stream: read as a damaged profile
    return None


def _quarter_turn(ctm: pikepdf.Matrix) -> int | None:
    """The clockwise quarter turn that makes an image placed by ``ctm`` upright; ``None`` when
    the placement is skewed, mirrored or degenerate."""
    a, b, c, d = ctm.a, ctm.b, ctm.c, ctm.d
    scale = max(abs(a), abs(b), abs(c), abs(d))
    if scale == 0:
        return None
    eps = scale * 1e-6
    # Image space: +u runs along the pixel rows, +v up the page from the last row to the first.
    if abs(b) <= eps and abs(c) <= eps:
        if a > 0 and d > 0:
            return 0
        if a < 0 and d < 0:
            return 180
    elif abs(a) <= eps and abs(d) <= eps:
        if b > 0 and c < 0:
            return 270  # rows run up the page: the image lies turned a quarter anticlockwise
        if b < 0 and c > 0:
            return 90
    return None


_HIDDEN_ANNOTATION = 2 | 32  # annotation flags Hidden and NoView


def _visible_annotations(page: pikepdf.Page) -> bool:
    """Whether the reader draws annotations (stamps, ink, notes) over the page."""
    annots = page.obj.get("/Annots")
    if not isinstance(annots, pikepdf.Array):
        return False
    for annot in annots:
        if not isinstance(annot, pikepdf.Dictionary) or "/AP" not in annot:
            continue
        if annot.get("/Subtype") in (pikepdf.Name.Link, pikepdf.Name.Popup):
            continue
        if not int(annot.get("/F", 0)) & _HIDDEN_ANNOTATION:
            return True
    return False


def _sole_page_image(page: pikepdf.Page) -> tuple[_SoleImage | None, str]:
    """The page's one full-page image, or ``None`` and why the page must be rasterised.

    Raises :class:`pikepdf.PdfError` when the page's content cannot be read.
    """
    # Parsed whole first, so a damaged content stream is found on every page.
    instructions = pikepdf.parse_content_stream(page)
    if _visible_annotations(page):
        return None, "page has visible annotations"
    resources = _inherited(page.obj, "/Resources")
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    ctm = pikepdf.Matrix()
    render_mode = 0
    stack: list[tuple[pikepdf.Matrix, int]] = []
    placed: list[tuple[pikepdf.Stream, pikepdf.Matrix]] = []
    for instruction in instructions:
        op = str(instruction.operator)
        if isinstance(instruction, pikepdf.ContentStreamInlineImage):
            return None, "page draws an inline image"
        operands = list(instruction.operands)
        if op == "q":
            stack.append((ctm, render_mode))
        elif op == "Q":
            if stack:
                ctm, render_mode = stack.pop()
        elif op == "cm" and len(operands) == 6:
            ctm = pikepdf.Matrix(*(float(v) for v in operands)) @ ctm
        elif op == "Tr" and operands:
            render_mode = int(operands[0])
        elif op in _TEXT_SHOWING_OPS:
            if render_mode != _INVISIBLE_TEXT:
                return None, "page has text"
        elif op == "Do" and operands:
            name = operands[0]
            target = (
                xobjects.get(name)
                if isinstance(xobjects, pikepdf.Dictionary) and isinstance(name, pikepdf.Name)
                else None
            )
            if not isinstance(target, pikepdf.Stream) or (
                target.get("/Subtype") != pikepdf.Name.Image
            ):
                return None, "page draws a form or vector content"
            placed.append((target, ctm))
        elif op not in _PLACEMENT_OPS and op not in _TEXT_OPS:
            return None, "page has vector content"
    if not placed:
        return None, "page holds no image"
    if len(placed) > 1:
        return None, f"page has {len(placed)} images"
    raw, where = placed[0]
    unsuitable = _image_unsuitable(raw)
    if unsuitable:
        return None, unsuitable
    turn = _quarter_turn(where)
    if turn is None:
        return None, "image is skewed or mirrored on the page"
    corners = [where.transform((u, v)) for u in (0.0, 1.0) for v in (0.0, 1.0)]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    box = [float(v) for v in page.cropbox]
    x0, x1 = sorted((box[0], box[2]))
    y0, y1 = sorted((box[1], box[3]))
    if max(abs(min(xs) - x0), abs(max(xs) - x1), abs(min(ys) - y0), abs(max(ys) - y1)) > (
        _FILL_TOLERANCE_PT
    ):
        return None, "image does not fill the page"
    image = pikepdf.PdfImage(raw)
    # Points along the image's rows and columns (its width and height as placed).
    across = math.hypot(where.a, where.b)
    down = math.hypot(where.c, where.d)
    dpi_x = int(image.width) * 72.0 / across
    dpi_y = int(image.height) * 72.0 / down
    if abs(dpi_x - dpi_y) > dpi_x * _SQUARE_PIXEL_TOLERANCE:
        return None, f"pixels not square ({dpi_x:.0f}×{dpi_y:.0f} dpi)"
    if not (_MIN_DPI <= dpi_x <= _MAX_DPI):
        return None, f"image resolution {dpi_x:.0f} dpi is outside {_MIN_DPI:g}–{_MAX_DPI:g}"
    return _SoleImage(image, turn, round(dpi_x, 2)), ""


_TRANSPOSE_CW = {
    90: Image.Transpose.ROTATE_270,  # Pillow's turns are anticlockwise
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


def _extract_sole_image(
    path: Path, frame: int, sole: _SoleImage, rotate: int, options: CaptureOptions
) -> DecodedPage | None:
    """The scan's own pixels, turned as the page shows them; resolution from image and page.

    ``None`` when pikepdf cannot extract this kind of image (the page is rasterised instead).
    """
    best = sole.image
    _guard_pixels(path, frame, (int(best.width), int(best.height)), options)
    try:
        pixels = best.as_pil_image()
        pixels.load()
    except (pikepdf.UnsupportedImageTypeError, NotImplementedError):
        return None
    except (pikepdf.PikepdfError, OSError, ValueError) as e:
        raise PageRejected(path, frame, f"page image cannot be decoded ({e})") from e
    managed = _normalise(pixels, _pdf_image_icc(best.obj))
    normal, conversions = managed.image, managed.conversions
    if sole.turn_cw:
        conversions = (*conversions, f"turned {sole.turn_cw} by the image's placement")
    if rotate:
        conversions = (*conversions, f"rotated {rotate} by /Rotate")
    turn = (sole.turn_cw + rotate) % 360
    if turn:
        normal = normal.transpose(_TRANSPOSE_CW[turn])
    jpeg: bytes | None = None
    if best.filters == ["/DCTDecode"] and not conversions:
        jpeg = best.obj.read_raw_bytes()
    return DecodedPage(normal, sole.dpi, managed.notes + conversions, jpeg, managed.icc_profile)


def _raster_dpi(options: CaptureOptions) -> int:
    return options.pdf_raster_dpi or options.dpi_fallback or _DEFAULT_RASTER_DPI


def _neutral_as_grey(image: Image.Image) -> Image.Image:
    """An RGB rendering whose every pixel is neutral, as 8-bit grey (exactly: R = G = B)."""
    red, green, blue = image.split()
    if ImageChops.difference(red, green).getbbox() or ImageChops.difference(green, blue).getbbox():
        return image
    return red


def _rasterise(
    path: Path,
    frame: int,
    rasteriser: _Rasteriser,
    why: str,
    rotate: int,
    options: CaptureOptions,
    *,
    render: bool,
) -> DecodedPage | None:
    """Render the page as the reader shows it (/Rotate applied) at the raster resolution.

    The pixel limit is checked on the size the page box gives, before a pixel is drawn. With
    ``render`` false only the checks run (the page loads, its size is within the limit).
    """
    dpi = _raster_dpi(options)
    scale = dpi / 72.0
    with _PDFIUM_LOCK:
        page = _pdfium_page(rasteriser, path, frame)
        try:
            width_pt, height_pt = page.get_size()  # the visible box, /Rotate applied
            size = (math.ceil(width_pt * scale), math.ceil(height_pt * scale))
            if size[0] <= 0 or size[1] <= 0:
                raise PageRejected(path, frame, "page box is empty")
            _guard_pixels(path, frame, size, options)
            if not render:
                return None
            try:
                bitmap = page.render(scale=scale, rev_byteorder=True, may_draw_forms=False)
            except pdfium.PdfiumError as e:
                raise PageRejected(path, frame, f"page cannot be rasterised ({e})") from e
            try:
                # Copied out: the bitmap's memory is freed with it, under the lock.
                image = bitmap.to_pil().convert("RGB")
            finally:
                bitmap.close()
        finally:
            page.close()
    conversions = [f"rasterised at {dpi} dpi ({why})"]
    if rotate:
        conversions.append(f"rotated {rotate} by /Rotate")
    return DecodedPage(_neutral_as_grey(image), float(dpi), tuple(conversions), None)


_PAINT_OPS = frozenset({"f", "F", "f*", "S", "s", "B", "B*", "b", "b*", "sh"})
_INVISIBLE_MODES = frozenset({3, 7})
_MAX_FORM_DEPTH = 8


def _is_xfa(pdf: pikepdf.Pdf) -> bool:
    form = pdf.Root.get("/AcroForm")
    return isinstance(form, pikepdf.Dictionary) and "/XFA" in form


def survey_pdf_page(page: pikepdf.Page, *, xfa: bool = False) -> PdfPageSurvey:
    """What ``page`` draws: text (visible or not), fonts, images, paths; forms followed.

    Raises :class:`pikepdf.PdfError` when a content stream cannot be read.
    """
    found = {"visible": False, "invisible": False, "vector": False}
    images = 0
    fonts: set[tuple[int, int] | str] = set()

    def walk(instructions: Sequence[Any], resources: pikepdf.Object | None, depth: int) -> None:
        nonlocal images
        res = resources if isinstance(resources, pikepdf.Dictionary) else pikepdf.Dictionary()
        font_res = res.get("/Font")
        if isinstance(font_res, pikepdf.Dictionary):
            for name, font in font_res.items():
                fonts.add(font.objgen if font.is_indirect else f"{depth}:{name}")
        xobjects = res.get("/XObject")
        mode = 0
        stack: list[int] = []
        for instruction in instructions:
            if isinstance(instruction, pikepdf.ContentStreamInlineImage):
                images += 1
                continue
            op = str(instruction.operator)
            operands = list(instruction.operands)
            if op == "q":
                stack.append(mode)
            elif op == "Q":
                mode = stack.pop() if stack else 0
            elif op == "Tr" and operands:
                mode = int(operands[0])
            elif op in _TEXT_SHOWING_OPS:
                found["invisible" if mode in _INVISIBLE_MODES else "visible"] = True
            elif op in _PAINT_OPS:
                found["vector"] = True
            elif op == "Do" and operands and isinstance(xobjects, pikepdf.Dictionary):
                target = xobjects.get(operands[0])
                if not isinstance(target, pikepdf.Stream):
                    continue
                if target.get("/Subtype") == pikepdf.Name.Image:
                    images += 1
                elif target.get("/Subtype") == pikepdf.Name.Form and depth < _MAX_FORM_DEPTH:
                    walk(pikepdf.parse_content_stream(target), target.get("/Resources", res),
                         depth + 1)

    walk(pikepdf.parse_content_stream(page), _inherited(page.obj, "/Resources"), 0)
    return PdfPageSurvey(found["visible"], found["invisible"], len(fonts), images,
                         found["vector"], xfa)


def _keeps_text(survey: PdfPageSurvey, options: CaptureOptions) -> bool:
    policy = options.pdf_text_policy
    if policy == "force-ocr" or not survey.has_text:
        return False
    if policy == "redo-ocr":
        return survey.visible_text  # an invisible (OCR) layer only is read again
    return True


def _page_text_layer(
    path: Path, frame: int, rasteriser: _Rasteriser, *, scale: float, size: tuple[int, int]
) -> PageText:
    """The page's own text as PDFium reads it, each word boxed in pixels at ``scale`` px/pt.

    Lines are PDFium's (it ends each with CR LF), words are split at whitespace; each word is
    boxed by the union of its characters' boxes, clipped to the ``size`` of the page image.
    """
    width, height = size
    with _PDFIUM_LOCK:
        page = _pdfium_page(rasteriser, path, frame)
        try:
            left, _bottom, _right, top = page.get_bbox()  # the visible (crop) box
            textpage = page.get_textpage()
            try:
                count = textpage.count_chars()
                whole = textpage.get_text_range() if count else ""
                chars: list[tuple[str, tuple[float, float, float, float]]] = []
                for i in range(count):
                    ch = whole[i] if len(whole) == count else textpage.get_text_range(i, 1)
                    chars.append((ch, textpage.get_charbox(i, loose=True)))
            finally:
                textpage.close()
        finally:
            page.close()

    def px(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = box
        return (max(0, min(width, math.floor((x0 - left) * scale))),
                max(0, min(height, math.floor((top - y1) * scale))),
                max(0, min(width, math.ceil((x1 - left) * scale))),
                max(0, min(height, math.ceil((top - y0) * scale))))

    lines: list[Line] = []
    words: list[Word] = []
    current: list[tuple[str, tuple[int, int, int, int]]] = []

    def end_word() -> None:
        if current:
            text = "".join(c for c, _ in current)
            boxes = [b for _, b in current]
            words.append(Word(text, (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                     max(b[2] for b in boxes), max(b[3] for b in boxes)), 100.0))
            current.clear()

    def end_line() -> None:
        end_word()
        if words:
            box = (min(w.bbox[0] for w in words), min(w.bbox[1] for w in words),
                   max(w.bbox[2] for w in words), max(w.bbox[3] for w in words))
            lines.append(Line(box, (0.0, 0.0), 0.0, tuple(words)))
            words.clear()

    for ch, box in chars:
        if ch in "\r\n":
            end_line()
        elif ch.isspace() or ch == "\x00":
            end_word()
        else:
            current.append((ch, px(box)))
    end_line()
    if not lines:
        return PageText(width, height, ())
    box = (min(ln.bbox[0] for ln in lines), min(ln.bbox[1] for ln in lines),
           max(ln.bbox[2] for ln in lines), max(ln.bbox[3] for ln in lines))
    return PageText(width, height, (Paragraph(box, None, tuple(lines)),))


def _with_text(
    decoded: DecodedPage,
    survey: PdfPageSurvey,
    path: Path,
    frame: int,
    rasteriser: _Rasteriser,
    options: CaptureOptions,
    *,
    turned: bool,
) -> DecodedPage:
    """``decoded`` with the page's survey, its kept text layer (when the policy keeps it) and
    remarks for a person."""
    remarks: list[str] = []
    if survey.xfa:
        remarks.append("XFA form: its content is XFA data that the pages do not show; only what "
                       "the pages draw was captured")
    if survey.kind == "empty":
        remarks.append("empty page: no text, image or drawing on it")
    layer: PageText | None = None
    if _keeps_text(survey, options):
        if turned:
            remarks.append("text layer not kept: the page is shown turned; it was recognised "
                           "again")
        else:
            scale = decoded.dpi / 72.0
            layer = _page_text_layer(path, frame, rasteriser, scale=scale,
                                     size=decoded.image.size)
            if not layer.words:
                layer = None  # text operators that draw no characters: recognise the page
    return replace(decoded, survey=survey, text_layer=layer, remarks=tuple(remarks))


def _pdfium_page(rasteriser: _Rasteriser, path: Path, frame: int) -> Any:
    """Page ``frame`` of the rasteriser's document (call with ``_PDFIUM_LOCK`` held); a page
    PDFium cannot load is refused by name."""
    try:
        return rasteriser.document()[frame]
    except pdfium.PdfiumError as e:
        raise PageRejected(path, frame, f"damaged page, cannot be loaded ({e})") from e


def _pdf_page(
    path: Path,
    frame: int,
    page: pikepdf.Page,
    rasteriser: _Rasteriser,
    options: CaptureOptions,
    *,
    render: bool = True,
    xfa: bool = False,
) -> DecodedPage | None:
    """One page of a scanner PDF: its scan extracted losslessly when the page is exactly one
    full-page image, otherwise the page rasterised (see :func:`_rasterise`); surveyed, and its
    own text layer kept when the policy says so (see :func:`_with_text`)."""
    try:
        sole, why = _sole_page_image(page)
        survey = survey_pdf_page(page, xfa=xfa)
    except (pikepdf.PikepdfError, ValueError, TypeError) as e:
        raise PageRejected(path, frame, f"damaged page, its content cannot be read ({e})") from e
    rotate = _page_rotation(page)
    if sole is not None:
        extracted = _extract_sole_image(path, frame, sole, rotate, options)
        if extracted is not None:
            turned = bool((sole.turn_cw + rotate) % 360)
            return _with_text(extracted, survey, path, frame, rasteriser, options,
                              turned=turned)
        why = "image kind not extractable"
    if _keeps_text(survey, options) and why == "page has text":
        why = "page has text; its text layer is kept"
    decoded = _rasterise(path, frame, rasteriser, why, rotate, options, render=render)
    if decoded is None:
        return None
    return _with_text(decoded, survey, path, frame, rasteriser, options, turned=bool(rotate))


def _pdf_frames(path: Path, options: CaptureOptions) -> list[int]:
    """Check every page of a PDF as :func:`decode_page` would, without rasterising; its pages."""
    with _open_pdf(path) as pdf:
        if len(pdf.pages) == 0:
            raise PageRejected(path, 0, "PDF has no pages")
        with _rasteriser(path, len(pdf.pages)) as rasteriser:
            for frame, page in enumerate(pdf.pages):
                _pdf_page(path, frame, page, rasteriser, options, render=False)
        return list(range(len(pdf.pages)))


def _frames(path: Path, options: CaptureOptions) -> list[int]:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise PageRejected(path, 0, f"cannot be read ({e.strerror})") from e
    if size == 0:
        raise PageRejected(path, 0, "empty file (0 bytes)")
    if _is_pdf(path):
        return _pdf_frames(path, options)
    return [frame for frame, _decoded in _frames_of_image(path, options)]


def _png_whole(path: Path, options: CaptureOptions) -> bool:
    """Check a single-image PNG without decoding it; ``False`` when it needs the full decode.

    A PNG carries a CRC-32 over every chunk and ends with an ``IEND`` chunk, so reading the
    chunks and checking their CRCs (milliseconds, against ~0.1 s to inflate and unfilter an
    A4 page) finds truncated and damaged files. Raises :class:`PageRejected` as the full decode
    would: pixel limit, missing resolution, damaged or truncated file.
    """
    try:
        image = _open_guarded(path, options)
    except (OSError, SyntaxError, ValueError):
        return False  # the full decode names the reason
    with image:
        if image.format != "PNG" or getattr(image, "n_frames", 1) != 1:
            return False  # animated PNG: every frame gets decoded
        _guard_pixels(path, 0, image.size, options)
        _dpi_of(image.info, path, 0, options)
        try:
            image.verify()
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise PageRejected(
                path, 0, f"damaged or truncated PNG file (chunk check failed: {e})"
            ) from e
    return True


def _label(path: Path, frame: int, frames_in_file: int) -> str:
    return path.stem if frames_in_file == 1 else f"{path.stem}-{frame + 1:04d}"


def _set_pillow_guard(options: CaptureOptions) -> None:
    # Pillow's decompression-bomb guard is process-wide; Qor sets it from its setting and turns
    # Pillow's warning (above the limit) into a refusal, so the setting is the bound.
    Image.MAX_IMAGE_PIXELS = options.max_image_pixels


def load_pages(inputs: Sequence[Path], *, options: CaptureOptions) -> list[PageRef]:
    """Every page of ``inputs`` (files, folders sorted naturally, multi-page TIFF/PDF), in order.

    Each page is checked whole here, so a bad one is found before any work is stored: raises
    :class:`flows.errors.PageRejected` naming the file, the page and the reason. Pages are
    decoded fully, except PDF pages that need rasterising (their content is parsed, the page
    loaded in the rasteriser and its size checked against the pixel limit; :func:`decode_page`
    draws it) and single PNGs, whose per-chunk CRCs and end chunk are checked instead
    (as sure a test of a damaged or truncated file, at a fiftieth of the cost). Only a crafted
    PNG with valid checksums over bad compressed data passes that; :func:`process_page`, which
    decodes with the same checks, then refuses it — still before anything is stored.
    """
    _set_pillow_guard(options)
    files = _expand(inputs)

    def frames_of(path: Path) -> list[int]:
        if _image_signature(path) == "PNG" and _png_whole(path, options):
            return [0]
        return _frames(path, options)

    # Decoding is mostly C code that releases the interpreter lock: threads overlap it.
    workers = options.load_workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qor-load") as pool:
        futures = [pool.submit(frames_of, path) for path in files]
        # Every bad page is named, in input order, so the operator fixes the batch in one go.
        rejected = [f.exception() for f in futures]
        problems = tuple(e for e in rejected if isinstance(e, PageRejected))
        if problems:
            raise problems[0] if len(problems) == 1 else PagesRejected(problems)
        per_file = [future.result() for future in futures]
    refs: list[PageRef] = []
    labels: set[str] = set()
    for path, frames in zip(files, per_file, strict=True):
        for frame in frames:
            label = _label(path, frame, len(frames))
            # Two folders may both hold page-0001.tif: labels name output files, keep them unique.
            unique, n = label, 1
            while unique in labels:
                n += 1
                unique = f"{label}-{n}"
            labels.add(unique)
            refs.append(PageRef(path, frame, unique))
    if not refs:
        raise PageRejected(inputs[0] if inputs else Path(), 0, "no pages given")
    return refs


def decode_page(page: PageRef, *, options: CaptureOptions) -> DecodedPage:
    """Decode one page again (in the worker that prepares it); same checks as :func:`load_pages`."""
    _set_pillow_guard(options)
    if _is_pdf(page.source):
        with _open_pdf(page.source) as pdf:
            if page.frame >= len(pdf.pages):
                raise PageRejected(page.source, page.frame, "no such page in the PDF")
            with _rasteriser(page.source, len(pdf.pages)) as rasteriser:
                decoded = _pdf_page(
                    page.source, page.frame, pdf.pages[page.frame], rasteriser, options,
                    xfa=_is_xfa(pdf),
                )
        assert decoded is not None  # rendering was asked for
        return decoded
    for frame, decoded in _frames_of_image(page.source, options, only=page.frame):
        if frame == page.frame:
            return decoded
    raise PageRejected(page.source, page.frame, "no such page in the file")


