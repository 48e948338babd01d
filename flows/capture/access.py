"""How each page of an access PDF is encoded: a measured, per-page rule (issue 16).

Archival PDFs keep every page lossless; the access PDF readers get is sized for the web. A
text page (print on paper, no pictures) gains nothing from grey levels or colour, and a
scanned page's sensor noise is what a JPEG spends most of its bytes on (measured on the
bench's 300 dpi A4 pages: grey JPEG at 200 dpi, quality 45, 314–334 KiB a page, most of it
paper grain). Such pages are therefore made **bitonal**: thresholded at the page's own
ink/paper split (Otsu) at up to :data:`TEXT_MAX_DPI` and coded CCITT Group 4, 62–76 KiB a page
with crisper letters than the JPEG at any zoom. Pages with pictures, colour, or ink too faint
to separate from the paper keep the JPEG route (``access_jpeg_quality`` at
``access_max_dpi``), so illustrations are never thresholded.

The rule, :func:`choose_encoding`, looks at the page at half resolution (2×2 mean: sensor noise
halves, strokes stay):

* **colour** — the 99th percentile of each pixel's chroma (max − min of R, G, B) is at least
  :data:`CHROMA_LIMIT`: a colour page (a red rubric would turn black) → JPEG;
* **contrast** — Otsu's threshold splits ink from paper; their medians must differ by at least
  :data:`MIN_CONTRAST` grey levels, else the print is too faint to threshold → JPEG;
* **pictures** — the page is cut into :data:`TILE_PX` tiles; a tile is pictorial when more than
  :data:`MID_TONE_LIMIT` of its pixels are mid-tones (a quarter of the ink–paper range away
  from both) or more than :data:`DARK_LIMIT` are not paper (photographs, engravings, big dark
  areas). Text has mid-tones only at letter edges (at most 11 % of a tile on the bench pages).
  More than :data:`PICTURE_SHARE_LIMIT` of the tiles pictorial → JPEG.

``text_pages="grey"`` keeps text pages grey instead, as JPEG at :data:`GREY_TEXT_DPI` dpi
(211 KiB a bench page at quality 45): for collections whose readers need grey levels.
``"off"`` treats every page like a picture (the former behaviour). Every choice is recorded
(:class:`AccessEncoding`) and goes into the copy's PREMIS event of the access derivatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

#: Highest resolution a bitonal text page keeps (finer scans are reduced to it).
TEXT_MAX_DPI = 300
#: Resolution of grey text pages when ``text_pages="grey"``.
GREY_TEXT_DPI = 150
#: Chroma (0–255) at the 99th percentile from which a page counts as colour.
CHROMA_LIMIT = 24
#: Least ink/paper separation (grey levels) for thresholding a page.
MIN_CONTRAST = 60
#: Tile edge (pixels at half resolution) of the picture measure.
TILE_PX = 32
#: A tile with more mid-tone pixels than this is pictorial.
MID_TONE_LIMIT = 0.25
#: A tile with more non-paper pixels than this is pictorial (photographs, solid areas).
DARK_LIMIT = 0.7
#: A page with more pictorial tiles than this share is not a text page.
PICTURE_SHARE_LIMIT = 0.005

TextPages = Literal["bitonal", "grey", "off"]
PageKind = Literal["bitonal scan", "text", "picture", "colour", "faint"]


@dataclass(frozen=True)
class PageMeasure:
    """What :func:`measure` found on a page (``chroma`` is ``0`` for grey images)."""

    chroma: float
    threshold: int
    contrast: int
    picture_share: float


@dataclass(frozen=True)
class AccessEncoding:
    """How one page went into the access PDF, and why (the rule's measures)."""

    kind: PageKind
    codec: Literal["CCITT G4", "JPEG"]
    dpi: float
    quality: int | None = None
    threshold: int | None = None
    measure: PageMeasure | None = None

    def describe(self) -> str:
        """One phrase for PREMIS and people, e.g. ``text page (pictures 0.0 %, contrast 145):
        1-bit CCITT G4, 300 dpi, threshold 169``."""
        why = ""
        if self.measure is not None:
            m = self.measure
            why = (f" (pictures {m.picture_share * 100:.1f} %, contrast {m.contrast}"
                   + (f", chroma {m.chroma:.0f}" if m.chroma else "") + ")")
        how = (f"1-bit CCITT G4, {self.dpi:g} dpi"
               + (f", threshold {self.threshold}" if self.threshold is not None else "")
               if self.codec == "CCITT G4"
               else f"JPEG quality {self.quality}, {self.dpi:g} dpi")
        return f"{self.kind} page{why}: {how}"

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready values."""
        return {
            "kind": self.kind, "codec": self.codec, "dpi": self.dpi, "quality": self.quality,
            "threshold": self.threshold,
            "picture_share": None if self.measure is None else self.measure.picture_share,
            "contrast": None if self.measure is None else self.measure.contrast,
            "chroma": None if self.measure is None else self.measure.chroma,
        }


def _otsu(hist: np.ndarray) -> int:
    p = hist / max(1, int(hist.sum()))
    w = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    between = (mu[-1] * w - mu) ** 2 / (w * (1.0 - w) + 1e-12)
    return int(np.argmax(between))


def _half(image: Image.Image) -> Image.Image:
    return image.reduce(2) if min(image.size) >= 2 * TILE_PX else image


def measure(image: Image.Image) -> PageMeasure:
    """The rule's measures of a grey or RGB page (see the module docstring)."""
    small = _half(image)
    chroma = 0.0
    if small.mode == "RGB":
        rgb = np.asarray(small, dtype=np.int16)
        chroma = float(np.percentile(rgb.max(axis=2) - rgb.min(axis=2), 99))
        grey = np.asarray(small.convert("L"), dtype=np.int16)
    else:
        grey = np.asarray(small.convert("L"), dtype=np.int16)
    threshold = _otsu(np.bincount(grey.ravel(), minlength=256))
    paper_px, ink_px = grey[grey > threshold], grey[grey <= threshold]
    if not paper_px.size or not ink_px.size:  # a blank page: nothing but paper (or ink)
        return PageMeasure(chroma=chroma, threshold=threshold, contrast=0, picture_share=0.0)
    paper, ink = int(np.median(paper_px)), int(np.median(ink_px))
    quarter = (paper - ink) // 4
    mid = (grey > ink + quarter) & (grey < paper - quarter)
    not_paper = grey < paper - quarter
    rows, cols = grey.shape[0] // TILE_PX, grey.shape[1] // TILE_PX
    if rows == 0 or cols == 0:
        share = 0.0
    else:
        h, w = rows * TILE_PX, cols * TILE_PX

        def per_tile(mask: np.ndarray) -> np.ndarray:
            tiles: np.ndarray = mask[:h, :w].reshape(rows, TILE_PX, cols, TILE_PX).mean(
                axis=(1, 3))
            return tiles

        pictorial = (per_tile(mid) > MID_TONE_LIMIT) | (per_tile(not_paper) > DARK_LIMIT)
        share = float(pictorial.mean())
    return PageMeasure(chroma=chroma, threshold=threshold, contrast=paper - ink,
                       picture_share=round(share, 4))


def choose_encoding(image: Image.Image, *, dpi: float, text_pages: TextPages,
                    jpeg_quality: int, max_dpi: int) -> AccessEncoding:
    """The encoding of one page of the access PDF (``image`` in sRGB or grey)."""
    if image.mode == "1":
        return AccessEncoding(kind="bitonal scan", codec="CCITT G4", dpi=dpi)
    picture = AccessEncoding(kind="picture", codec="JPEG", dpi=min(dpi, max_dpi),
                             quality=jpeg_quality)
    if text_pages == "off":
        return picture
    found = measure(image)
    if found.chroma >= CHROMA_LIMIT:
        return AccessEncoding(kind="colour", codec="JPEG", dpi=min(dpi, max_dpi),
                              quality=jpeg_quality, measure=found)
    if found.contrast < MIN_CONTRAST:
        return AccessEncoding(kind="faint", codec="JPEG", dpi=min(dpi, max_dpi),
                              quality=jpeg_quality, measure=found)
    if found.picture_share > PICTURE_SHARE_LIMIT:
        return AccessEncoding(kind="picture", codec="JPEG", dpi=min(dpi, max_dpi),
                              quality=jpeg_quality, measure=found)
    if text_pages == "grey":
        return AccessEncoding(kind="text", codec="JPEG", dpi=min(dpi, GREY_TEXT_DPI),
                              quality=jpeg_quality, measure=found)
    return AccessEncoding(kind="text", codec="CCITT G4", dpi=min(dpi, TEXT_MAX_DPI),
                          threshold=found.threshold, measure=found)


def resample(image: Image.Image, *, dpi: float, to_dpi: float) -> Image.Image:
    """``image`` (at ``dpi``) reduced to ``to_dpi`` (never enlarged)."""
    if to_dpi >= dpi:
        return image
    scale = to_dpi / dpi
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def bitonal(image: Image.Image, *, dpi: float, encoding: AccessEncoding) -> Image.Image:
    """The 1-bit page of a ``"text"`` G4 encoding: grey, reduced to its dpi, thresholded."""
    if encoding.threshold is None:
        raise ValueError("a bitonal encoding needs its threshold")
    grey = resample(image.convert("L"), dpi=dpi, to_dpi=encoding.dpi)
    cut = encoding.threshold
    return grey.point([0 if v <= cut else 255 for v in range(256)]).convert(
        "1", dither=Image.Dither.NONE)
