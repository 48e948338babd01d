"""Access derivatives (қолжетімді көшірмелер / производные для доступа) of a digitised copy.

The archival masters and the archival PDF/A stay lossless; readers get lighter files made from
the same prepared page images:

* the **access PDF** (``data/web/<inventory number>.pdf``): the capture engine's ``"access"``
  profile — the same invisible text layer; each page encoded by the measured rule of
  :mod:`flows.capture.access` (text pages 1-bit Group 4 at up to 300 dpi, pictures and colour
  pages JPEG at ``access_jpeg_quality``, downsampled to ``access_max_dpi``), every choice
  recorded; PDF/A-2u, validated by veraPDF like the archival one;
* one **reading image** per page (``data/web/pages/NNNN.jpg``, NNNN the page number), its long
  side at most :data:`WEB_LONG_SIDE` pixels, sRGB or grey baseline JPEG: the source the
  e-library's IIIF Image API cuts its regions and tiles from.

Plain functions; the digitise flow and ``qor copies derive`` call them.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from flows.capture import colour
from flows.capture.access import AccessEncoding
from flows.capture.model import CaptureOptions, DocumentMetadata, PageResult
from flows.capture.pdfa import assemble_pdfa_encoded

#: Long side of a page's reading image, in pixels (a 300 dpi A4 page's long side is 3508).
WEB_LONG_SIDE = 2400
#: JPEG quality of the reading images (tiles are cut from them and re-encoded at this).
WEB_JPEG_QUALITY = 80


def access_options(options: CaptureOptions) -> CaptureOptions:
    """The capture options with the ``"access"`` profile selected (JPEG pages)."""
    return dataclasses.replace(options, profile="access")


@dataclass(frozen=True)
class AccessPdf:
    """The access PDF written, and how each of its pages was encoded (in page order)."""

    path: Path
    encodings: tuple[AccessEncoding, ...]

    def describe(self) -> str:
        """The per-page choices in one line for PREMIS: runs of pages encoded alike, e.g.
        ``pages 1-3: text page (…): 1-bit CCITT G4, 300 dpi, threshold 160``."""
        runs: list[tuple[int, int, str]] = []
        for number, encoding in enumerate(self.encodings, start=1):
            text = encoding.describe()
            if runs and runs[-1][2] == text and runs[-1][1] == number - 1:
                runs[-1] = (runs[-1][0], number, text)
            else:
                runs.append((number, number, text))
        return "; ".join(f"page {a}: {t}" if a == b else f"pages {a}-{b}: {t}"
                         for a, b, t in runs)


def make_access_pdf(
    pages: Sequence[PageResult], *, out: Path, metadata: DocumentMetadata,
    options: CaptureOptions,
) -> AccessPdf:
    """The access PDF/A-2u of ``pages`` at ``out`` (validate it with veraPDF)."""
    path, encodings = assemble_pdfa_encoded(pages, out=out, metadata=metadata,
                                            options=access_options(options))
    return AccessPdf(path=path, encodings=tuple(e for e in encodings if e is not None))


def reading_image(image: Image.Image, *, long_side: int = WEB_LONG_SIDE,
                  icc: bytes | None = None, quality: int = WEB_JPEG_QUALITY) -> bytes:
    """One page's reading image as JPEG bytes: grey stays grey, everything else sRGB, the long
    side reduced to ``long_side`` (never enlarged)."""
    im = image
    if icc is not None:
        profile = colour.read_profile(icc)
        if profile is not None:
            im = colour.to_srgb(
                im if im.mode in ("L", "RGB", "CMYK") else im.convert("RGB"), profile)
    if im.mode == "1" or im.mode.startswith("I") or im.mode == "LA":
        im = im.convert("L")
    elif im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    scale = long_side / max(im.width, im.height)
    if scale < 1:
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        im = im.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def make_reading_images(pages: Sequence[PageResult], *, out_dir: Path) -> list[Path]:
    """``out_dir/NNNN.jpg`` for every page, in order (NNNN the 1-based page number)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for number, page in enumerate(pages, start=1):
        icc = page.icc_profile_path.read_bytes() if page.icc_profile_path else None
        with Image.open(page.image_path) as im:
            im.load()
            data = reading_image(im, icc=icc)
        path = out_dir / f"{number:04d}.jpg"
        path.write_bytes(data)
        written.append(path)
    return written
