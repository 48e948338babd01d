"""Page preparation steps: skew measurement and correction, quarter turns, border cleaning.

Each step is a small pure function on a Pillow image; :mod:`flows.capture.engine` decides which run
and records what they did. Orientation itself is found by Tesseract OSD
(:func:`flows._exec.tesseract.detect_orientation`); here is only the lossless quarter turn.
"""

from __future__ import annotations

import math
import operator
import struct
import zlib
from array import array
from pathlib import Path

from isal import isal_zlib
from PIL import Image, ImageFilter, ImageOps

_MEASURE_WIDTH = 1000  # longest side, pixels: fine enough for 0.05°, small enough to be quick


def _ink_mask(image: Image.Image) -> Image.Image:
    """Downscaled 8-bit image where ink is bright (255) and paper dark (0)."""
    grey = image if image.mode == "L" else image.convert("L")
    factor = max(1, -(-max(grey.size) // _MEASURE_WIDTH))
    small = grey.reduce(factor) if factor > 1 else grey
    small = ImageOps.autocontrast(small, cutoff=1)
    # Otsu would be nicer; for printed text a fixed cut after autocontrast is robust enough.
    return small.point(lambda v: 255 if v < 128 else 0)


_STRIPS = 48  # vertical strips whose row profiles are shifted against each other


def _strip_profiles(mask: Image.Image) -> tuple[Image.Image, float]:
    """Row ink profile of each of ``_STRIPS`` vertical strips (a float image _STRIPS × height)."""
    strips = mask.convert("F").resize((_STRIPS, mask.height), Image.Resampling.BOX)
    return strips, mask.width / _STRIPS


def _shear_score(strips: Image.Image, strip_width: float, angle: float) -> float:
    """Sharpness of the page's row profile if its content were turned by ``angle`` degrees.

    For the small angles of skew a turn is, to within a fraction of a pixel, a vertical shear:
    each strip's profile slides by (strip centre x) · tan(angle). Shearing the tiny strip image
    and summing its columns replaces rotating the whole page for each candidate angle. Straight
    text lines make rows all ink or all paper, so the summed squared differences between
    neighbouring rows peak at the right angle.
    """
    shift = strip_width * math.tan(math.radians(angle))
    centre = strips.width / 2
    sheared = strips.transform(
        strips.size,
        Image.Transform.AFFINE,
        (1, 0, 0, -shift, 1, shift * centre),
        resample=Image.Resampling.BILINEAR,
    )
    profile = array("f", sheared.resize((1, sheared.height), Image.Resampling.BOX).tobytes())
    steps = list(map(operator.sub, profile[1:], profile[:-1]))
    return float(sum(map(operator.mul, steps, steps))) / max(1, len(profile))


def measure_skew(
    image: Image.Image, *, max_angle: float = 10.0, sideways: bool = True
) -> float | None:
    """The page content's skew in degrees (counter-clockwise positive), or ``None`` if blank.

    ``sideways=False`` searches rows only: a line crop's one line runs across it, and the
    search on columns (for pages lying on their side) would be a third of the work for nothing.

    Rotating the page by ``-skew`` straightens it. Searched in 1° steps on rows and on columns
    (so pages lying on their side are measured too), then in 0.2° and 0.05° steps in the
    direction whose lines came out sharper: text lines make one direction's profile far sharper
    than the other's at any angle, so refining only that one loses nothing and halves the work.
    """
    mask = _ink_mask(image)
    if mask.getbbox() is None:
        return None

    def search(
        strips: Image.Image, width: float, center: float, span: float, step: float
    ) -> tuple[float, float]:
        steps = round(span / step)
        scored = [
            (_shear_score(strips, width, center + i * step), center + i * step)
            for i in range(-steps, steps + 1)
        ]
        return max(scored)

    # Columns of a page on its side are the rows of its transpose (same skew sense, mirrored).
    # The 1° search runs on profiles of half the height (a quarter of the work): at that step
    # the peak is found as surely, and the finer searches use the full profiles.
    coarse: list[tuple[float, float, float, Image.Image, float]] = []
    views = [(mask, 1.0)]
    if sideways:
        views.append((mask.transpose(Image.Transpose.TRANSPOSE), -1.0))
    for view, sign in views:
        strips, width = _strip_profiles(view)
        halved = strips.resize((strips.width, max(1, strips.height // 2)), Image.Resampling.BOX)
        # Halving the rows halves every shift in rows: the strip width, in rows, halves too.
        score, angle = search(halved, width / 2, 0.0, max_angle, 1.0)
        coarse.append((score, angle, sign, strips, width))
    _, angle, sign, strips, width = max(coarse, key=lambda c: c[0])
    _, middle = search(strips, width, angle, 1.0, 0.2)
    _, fine = search(strips, width, middle, 0.2, 0.05)
    return round(sign * fine, 2) + 0.0


def _paper_colour(image: Image.Image) -> int | tuple[int, ...]:
    """The most frequent bright value: what to fill uncovered corners with."""
    if image.mode == "1":
        return 1
    grey = image if image.mode == "L" else image.convert("L")
    hist = grey.histogram()
    level = max(range(128, 256), key=lambda v: hist[v])
    if image.mode == "RGB":
        return (level, level, level)
    return level


def rotate_by(image: Image.Image, degrees: float) -> Image.Image:
    """Rotate the content by ``degrees`` (counter-clockwise), keeping the page size.

    Nearest-neighbour: every output pixel is a copy of a scanned one, never a blend, so the
    archival master keeps the scanner's grey levels (and a bitonal page stays bitonal) and text
    edges are not blurred; the cost is one-pixel steps along straight edges, invisible at
    scanning resolutions. It is also 7× faster than bilinear here. Corners uncovered by the turn
    are filled with the paper colour.
    """
    if degrees == 0:
        return image.copy()
    return image.rotate(
        degrees, resample=Image.Resampling.NEAREST, fillcolor=_paper_colour(image)
    )


def turn_clockwise(image: Image.Image, quarter_degrees: int) -> Image.Image:
    """Lossless quarter turn clockwise by 0, 90, 180 or 270 degrees."""
    ops = {
        90: Image.Transpose.ROTATE_270,
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_90,
    }
    if quarter_degrees % 360 == 0:
        return image
    return image.transpose(ops[quarter_degrees % 360])


def clean_borders(image: Image.Image, *, max_fraction: float = 0.08) -> tuple[Image.Image, bool]:
    """Paint dark bands along the page edges (scanner lid shadow) with the paper colour.

    Looks at most ``max_fraction`` of the width/height in from each edge; a row/column band
    counts as border while it is mostly dark. Returns the image and whether anything changed.
    """
    grey = image.convert("L").filter(ImageFilter.MedianFilter(3))
    w, h = grey.size
    cols = grey.resize((w, 1), Image.Resampling.BOX).tobytes()
    rows = grey.resize((1, h), Image.Resampling.BOX).tobytes()

    def band(profile: bytes, limit: int) -> int:
        n = 0
        while n < limit and profile[n] < 100:
            n += 1
        return n

    left = band(cols, int(w * max_fraction))
    right = band(cols[::-1], int(w * max_fraction))
    top = band(rows, int(h * max_fraction))
    bottom = band(rows[::-1], int(h * max_fraction))
    if not (left or right or top or bottom):
        return image, False
    out = image.copy()
    fill = _paper_colour(image)
    for box in ((0, 0, left, h), (w - right, 0, w, h), (0, 0, w, top), (0, h - bottom, w, h)):
        if box[2] > box[0] and box[3] > box[1]:
            out.paste(fill, box)
    return out, True


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))
    )


def write_png(image: Image.Image, path: Path, *, dpi: float) -> Path:
    """Write a 1-bit/8-bit grey or RGB image as PNG, fast: no row filters, ISA-L deflate level 1.

    Scans are mostly noise (nothing for a slow deflate to find) or long runs of paper: Intel's
    ISA-L deflate at level 1 is about 4× faster than zlib's fastest settings here at sizes within
    a few percent, and 10× faster than Pillow's PNG writer. Its output is a standard zlib stream.
    The compressed data goes into the PDF as it is (Flate with PNG predictors), so it is written
    once.
    """
    if image.mode not in ("1", "L", "RGB"):
        raise ValueError(f"write_png takes 1, L or RGB images, not {image.mode}")
    width, height = image.size
    depth, colour, row_bytes = {
        "1": (1, 0, (width + 7) // 8),
        "L": (8, 0, width),
        "RGB": (8, 2, width * 3),
    }[image.mode]
    # PNG rows each start with a filter-type byte; 0 = none. One zeroed buffer, rows copied in
    # by slice: a single pass over the pixels.
    raw = memoryview(image.tobytes())
    stride = row_bytes + 1
    rows = bytearray(stride * height)
    for i in range(height):
        rows[i * stride + 1 : (i + 1) * stride] = raw[i * row_bytes : (i + 1) * row_bytes]
    data = isal_zlib.compress(rows, 1)
    ppm = round(dpi / 0.0254)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">LLBBBBB", width, height, depth, colour, 0, 0, 0))
        + _png_chunk(b"pHYs", struct.pack(">LLB", ppm, ppm, 1))
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path
