"""Reading the scanner's output: files, folders, multi-page TIFFs and scanner PDFs.

Every page is checked whole by :func:`load_pages` before anything else happens, so a bad page
(truncated, not an image, too large, encrypted or scripted PDF) stops the batch while nothing has
been stored yet; the error names the file, the page within it and the reason.
"""

from __future__ import annotations

import logging
import numbers
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pikepdf
from PIL import Image, ImageOps

from flows.capture.model import CaptureOptions, PageRef
from flows.errors import PageRejected

logger = logging.getLogger(__name__)

_EXIF_ORIENTATION = 0x0112
_MIN_DPI = 50.0
_MAX_DPI = 4800.0


@dataclass(frozen=True)
class DecodedPage:
    """A page's pixels after decoding, before preparation.

    ``image`` is in mode ``1``, ``L`` or ``RGB``; ``original_jpeg`` holds the scanner's JPEG bytes
    when the page came as a plain grey/RGB JPEG (kept unchanged in the archival profile if no
    pixel change is needed).
    """

    image: Image.Image
    dpi: float
    conversions: tuple[str, ...]
    original_jpeg: bytes | None


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _expand(inputs: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            children = [p for p in item.iterdir() if p.is_file() and not p.name.startswith(".")]
            if not children:
                raise PageRejected(item, 0, "folder holds no page files")
            files.extend(sorted(children, key=_natural_key))
        elif item.is_file():
            files.append(item)
        else:
            raise PageRejected(item, 0, "no such file or folder")
    return files


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
    return dpi


def _normalise(image: Image.Image) -> tuple[Image.Image, tuple[str, ...]]:
    """Bring any decoded mode to ``1``, ``L`` or ``RGB``; say what was converted."""
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


def _frames_of_image(
    path: Path, options: CaptureOptions, *, only: int | None = None
) -> Iterator[tuple[int, DecodedPage]]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise PageRejected(
            path,
            0,
            f"more pixels than the limit of {options.max_image_pixels:,} "
            f"(decompression-bomb guard; {e})",
        ) from e
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
            normal, conversions = _normalise(pixels)
            if turned:
                conversions = (*conversions, "EXIF orientation applied")
            jpeg: bytes | None = None
            if fmt == "JPEG" and not conversions and frames == 1:
                jpeg = path.read_bytes()
            yield frame, DecodedPage(normal, dpi, conversions, jpeg)


_CONTAINERS = (pikepdf.Dictionary, pikepdf.Array, pikepdf.Stream)


def _has_javascript(pdf: pikepdf.Pdf) -> bool:
    """Whether any object reachable from the trailer is a JavaScript action or name tree."""
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
                return True
            stack.extend(
                v for k, v in obj.items() if k != "/Parent" and isinstance(v, _CONTAINERS)
            )
        elif isinstance(obj, pikepdf.Array):
            stack.extend(v for v in obj if isinstance(v, _CONTAINERS))
    return False


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
    if _has_javascript(pdf):
        pdf.close()
        raise PageRejected(path, 0, "PDF contains JavaScript; refused as unsafe input")
    return pdf


def _pdf_page_image(
    path: Path, frame: int, page: pikepdf.Page, options: CaptureOptions
) -> DecodedPage:
    """The largest image on a scanner PDF's page, extracted losslessly, with its resolution."""
    candidates: list[tuple[int, pikepdf.PdfImage]] = []
    for _name, raw in page.get_images().items():
        if not isinstance(raw, pikepdf.Stream):
            continue
        try:
            img = pikepdf.PdfImage(raw)
        except (pikepdf.PdfError, NotImplementedError, ValueError):
            continue
        candidates.append((int(img.width) * int(img.height), img))
    if not candidates:
        raise PageRejected(path, frame, "PDF page holds no scanned image (born-digital PDF?)")
    _, best = max(candidates, key=lambda c: c[0])
    _guard_pixels(path, frame, (int(best.width), int(best.height)), options)
    try:
        pixels = best.as_pil_image()
        pixels.load()
    except (pikepdf.PdfError, NotImplementedError, OSError, ValueError) as e:
        raise PageRejected(path, frame, f"page image cannot be decoded ({e})") from e
    box = page.mediabox
    width_pt = float(box[2]) - float(box[0])
    dpi = pixels.width / (width_pt / 72.0) if width_pt > 0 else 0.0
    if not (_MIN_DPI <= dpi <= _MAX_DPI):
        dpi = _dpi_of({}, path, frame, options)
    normal, conversions = _normalise(pixels)
    jpeg: bytes | None = None
    if best.filters == ["/DCTDecode"] and not conversions:
        jpeg = best.obj.read_raw_bytes()
    return DecodedPage(normal, round(dpi, 2), conversions, jpeg)


def _frames_of_pdf(path: Path, options: CaptureOptions) -> Iterator[tuple[int, DecodedPage]]:
    pdf = _open_pdf(path)
    with pdf:
        if len(pdf.pages) == 0:
            raise PageRejected(path, 0, "PDF has no pages")
        for frame, page in enumerate(pdf.pages):
            yield frame, _pdf_page_image(path, frame, page, options)


def _frames(path: Path, options: CaptureOptions) -> Iterator[tuple[int, DecodedPage]]:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise PageRejected(path, 0, f"cannot be read ({e.strerror})") from e
    if size == 0:
        raise PageRejected(path, 0, "empty file (0 bytes)")
    if _is_pdf(path):
        yield from _frames_of_pdf(path, options)
    else:
        yield from _frames_of_image(path, options)


def _png_whole(path: Path, options: CaptureOptions) -> bool:
    """Check a single-image PNG without decoding it; ``False`` when it needs the full decode.

    A PNG carries a CRC-32 over every chunk and ends with an ``IEND`` chunk, so reading the
    chunks and checking their CRCs (milliseconds, against ~0.1 s to inflate and unfilter an
    A4 page) finds truncated and damaged files. Raises :class:`PageRejected` as the full decode
    would: pixel limit, missing resolution, damaged or truncated file.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise PageRejected(
            path,
            0,
            f"more pixels than the limit of {options.max_image_pixels:,} "
            f"(decompression-bomb guard; {e})",
        ) from e
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
    decoded fully, except single PNGs, whose per-chunk CRCs and end chunk are checked instead
    (as sure a test of a damaged or truncated file, at a fiftieth of the cost). Only a crafted
    PNG with valid checksums over bad compressed data passes that; :func:`process_page`, which
    decodes with the same checks, then refuses it — still before anything is stored.
    """
    _set_pillow_guard(options)
    files = _expand(inputs)

    def frames_of(path: Path) -> list[int]:
        if _image_signature(path) == "PNG" and _png_whole(path, options):
            return [0]
        return [frame for frame, _decoded in _frames(path, options)]

    # Decoding is mostly C code that releases the interpreter lock: threads overlap it.
    workers = options.load_workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qor-load") as pool:
        futures = [pool.submit(frames_of, path) for path in files]
        # Results in input order; the first bad page (in order) is the one reported.
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
        pdf = _open_pdf(page.source)
        with pdf:
            if page.frame >= len(pdf.pages):
                raise PageRejected(page.source, page.frame, "no such page in the PDF")
            return _pdf_page_image(page.source, page.frame, pdf.pages[page.frame], options)
    for frame, decoded in _frames_of_image(page.source, options, only=page.frame):
        if frame == page.frame:
            return decoded
    raise PageRejected(page.source, page.frame, "no such page in the file")


