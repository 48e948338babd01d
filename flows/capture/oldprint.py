"""Image preparation of the OCR input for old print: measured per page, applied only when needed.

Old print (старая печать / ескі баспа) comes on yellowed, stained paper with the reverse page
showing through, faded or spread ink and dust. Tesseract binarises a page with one global
threshold (Otsu), which on such a sheet turns stains into black blobs and bleed-through into
letters. :func:`prepare_for_ocr` gives it a cleaner input instead:

1. **background** — the paper's own tone, estimated by a wide grey-level closing of a reduced
   copy, is divided out (flat field): stains, gradients and faint bleed-through fade to white;
2. **Sauvola** — adaptive binarisation (J. Sauvola, M. Pietikäinen, 2000): each pixel is ink
   when darker than ``m · (1 + k · (s / R − 1))`` of its neighbourhood's mean ``m`` and
   standard deviation ``s``;
3. **despeckle** — ink pixels with at most one ink neighbour (dust, sensor noise) are removed.

Only the image Tesseract reads is prepared: the page image kept in the archival PDF and the
bag is never altered. :func:`measure` gives the numbers the per-page rule
(:func:`needs_preparation`) decides on; both are recorded with the page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class PageMeasures:
    """What decides preparation, each 0–1: ``contrast`` is the ink/paper separation (the grey
    distance between the 2nd and 98th percentiles, over 255); ``ghost`` the share of the page
    in mid-grey away from any ink — bleed-through, stains, faded patches (a clean scan's grey
    lies only at the edges of letters); ``noise`` the share of ink pixels that are isolated
    specks."""

    contrast: float
    ghost: float
    noise: float


# The rule's thresholds, set on the degraded ground-truth set (bench/ocr_quality.py): clean,
# blurred, spread, JPEG and 150 dpi pages and worn ink measure ghost ≤ 0.002 and noise ≤ 0.04;
# bleed-through ≥ 0.017, old newspapers ≥ 0.024, stains ≥ 0.18 ghost; heavy noise ≥ 0.18 noise.
GHOST_LIMIT = 0.008
NOISE_LIMIT = 0.15
CONTRAST_LIMIT = 0.45


def needs_preparation(measures: PageMeasures) -> bool:
    """The per-page rule: prepare pages with bleed-through, stains or worn ink, noisy scans and
    faint print; leave clean pages to Tesseract's own binarisation."""
    return (
        measures.ghost > GHOST_LIMIT
        or measures.noise > NOISE_LIMIT
        or measures.contrast < CONTRAST_LIMIT
    )


# JPEG damage: a scan saved with a luminance quantisation step this coarse on average (about
# quality 25 and below; quality 75 averages ~12) rings and blocks around small marks, and
# Tesseract's rus model reads a full stop in that ringing as a colon or a stray "по.". A 3×3
# median on the OCR input removes the ringing and keeps strokes (on the degraded set's
# ``jpeg`` class, quality 6–10: "литературы:" → "литературы.", "ноголовье" → "поголовье").
JPEG_QUANT_LIMIT = 40.0


def jpeg_quantisation(data: bytes | None) -> float | None:
    """Mean step of a JPEG's luminance quantisation table (``None`` if not a JPEG): its
    compression, read from the header (the pixels are not decoded)."""
    if data is None:
        return None
    try:
        with Image.open(io.BytesIO(data)) as jpeg:
            tables = getattr(jpeg, "quantization", None)
    except (OSError, ValueError):
        return None
    if not tables or 0 not in tables:
        return None
    table = list(tables[0])
    return float(sum(table)) / len(table)


def needs_deblocking(quantisation: float | None) -> bool:
    """The per-page rule for JPEG damage: a heavily compressed JPEG source."""
    return quantisation is not None and quantisation > JPEG_QUANT_LIMIT


def deblock_for_ocr(image: Image.Image) -> tuple[Image.Image, str]:
    """The OCR input of a heavily compressed JPEG page: grey, 3×3 median (``image`` is not
    changed). Returns ``(prepared, "deblock")``."""
    out = _grey(image).filter(ImageFilter.MedianFilter(3))
    return out, "deblock"


def _grey(image: Image.Image) -> Image.Image:
    return image if image.mode == "L" else image.convert("L")


def _background(grey: Image.Image, dpi: float) -> np.ndarray:
    """Paper tone under every pixel: a grey-level closing (max then min) wider than letters and
    line gaps, on a copy reduced to about 25 dpi, smoothed and scaled back up."""
    factor = max(1, round(dpi / 25))
    small = grey.reduce(factor) if factor > 1 else grey
    size = 7  # about 0.3 inch at 25 dpi: wider than a letter, a line gap
    closed = small.filter(ImageFilter.MaxFilter(size)).filter(ImageFilter.MinFilter(size))
    closed = closed.filter(ImageFilter.GaussianBlur(2)).resize(
        grey.size, Image.Resampling.BILINEAR
    )
    return np.asarray(closed, dtype=np.float32)


def _isolated(ink: np.ndarray) -> np.ndarray:
    """Ink pixels with at most one ink neighbour (of eight)."""
    padded = np.pad(ink.astype(np.uint8), 1)
    h, w = ink.shape
    neighbours = sum(
        padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )
    return ink & (neighbours <= 1)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels (a box blur is linear time; a max filter is not)."""
    image = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
    return np.asarray(image.filter(ImageFilter.BoxBlur(radius))) > 0


def measure(image: Image.Image, *, dpi: float) -> PageMeasures:
    """Measure contrast, ghost print and noise of a page (a few tens of ms a page).

    Ghost and noise are measured on a full-resolution crop of the page's centre (up to 600 ×
    600 pixels): specks and thin grey vanish when a page is reduced.
    """
    grey = _grey(image)
    cw, ch = min(grey.width, 600), min(grey.height, 600)
    x0, y0 = (grey.width - cw) // 2, (grey.height - ch) // 2
    crop = grey.crop((x0, y0, x0 + cw, y0 + ch))
    a = np.asarray(crop, dtype=np.float32)
    low, high = (float(v) for v in np.percentile(a, (2, 98)))
    contrast = (high - low) / 255.0
    ink = a < (low + high) / 2
    total = int(ink.sum())
    noise = float(_isolated(ink).sum() / total) if total else 0.0
    # Ghost: mid-grey (darker than a quarter of the way from paper to ink) farther than about
    # 0.03 inch from any ink, measured after a slight blur evens out sensor noise. Worn type's
    # faded strokes lie within a letter of its dark ones and stay under this; bleed-through and
    # stains spread into the gaps between lines and words.
    smooth = np.asarray(crop.filter(ImageFilter.GaussianBlur(1)), dtype=np.float32)
    dark = smooth < (low + high) / 2
    near_ink = _dilate(dark, max(1, round(dpi / 30)))
    ghost = float(((smooth < high - 0.25 * (high - low)) & ~near_ink).mean())
    return PageMeasures(round(contrast, 3), round(ghost, 3), round(noise, 3))


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)² window around each pixel (edges padded by their own values), by an
    integral image."""
    size = 2 * radius + 1
    padded = np.pad(values.astype(np.float64), radius, mode="edge")
    integral = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1), dtype=np.float64)
    np.cumsum(padded, axis=0, out=integral[1:, 1:])
    np.cumsum(integral[1:, 1:], axis=1, out=integral[1:, 1:])
    sums = (
        integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size]
        + integral[:-size, :-size]
    )
    return np.asarray(sums / (size * size))


def sauvola(grey: np.ndarray, *, radius: int, k: float = 0.2, r: float = 128.0) -> np.ndarray:
    """Sauvola's threshold map of a grey image (array, 0–255): ink where ``grey <`` it."""
    g = grey.astype(np.float64)
    mean = _box_mean(g, radius)
    var = np.maximum(_box_mean(g * g, radius) - mean * mean, 0.0)
    return np.asarray(mean * (1.0 + k * (np.sqrt(var) / r - 1.0)))


def _sauvola_map(grey: np.ndarray, *, radius: int, k: float) -> np.ndarray:
    """:func:`sauvola` at full size, computed on a copy reduced so the window is ~4 pixels
    (window means and deviations are smooth at that scale) and scaled back up: a tenth of the
    work on a 300 dpi page."""
    factor = max(1, radius // 4)
    if factor == 1:
        return sauvola(grey, radius=radius, k=k)
    image = Image.fromarray(grey.astype(np.float32), mode="F")
    small = np.asarray(
        image.resize((max(1, image.width // factor), max(1, image.height // factor)),
                     Image.Resampling.BOX),
        dtype=np.float32,
    )
    threshold = sauvola(small, radius=max(1, round(radius / factor)), k=k)
    up = Image.fromarray(threshold.astype(np.float32), mode="F").resize(
        image.size, Image.Resampling.BILINEAR
    )
    return np.asarray(up, dtype=np.float32)


def prepare_for_ocr(image: Image.Image, *, dpi: float) -> tuple[Image.Image, str]:
    """The OCR input for an old-print page (bitonal, mode ``"1"``) and the steps applied.

    ``image`` is not changed. Returns ``(prepared, "background+sauvola+despeckle")``.
    """
    grey = _grey(image)
    a = np.asarray(grey, dtype=np.float32)
    paper = np.maximum(_background(grey, dpi), 1.0)
    flat = np.clip(a / paper * 255.0, 0, 255)
    radius = max(7, round(dpi / 20))  # a window of about a tenth of an inch: a few letters
    ink = flat < _sauvola_map(flat, radius=radius, k=0.2)
    # Bleed-through and stains pass Sauvola where a window holds no real ink: real ink is also
    # darker than halfway between the print's own tone and the paper's.
    print_tone = float(np.percentile(flat[::4, ::4], 1))
    ink &= flat < (print_tone + 255.0) / 2
    ink &= ~_isolated(ink)
    out = Image.fromarray(np.where(ink, 0, 255).astype(np.uint8), mode="L").convert("1")
    out.info["dpi"] = (dpi, dpi)
    return out, "background+sauvola+despeckle"
