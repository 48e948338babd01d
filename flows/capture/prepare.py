"""Page preparation steps: skew measurement and correction, quarter turns, border cleaning.

Each step is a small pure function on a Pillow image; :mod:`flows.capture.engine` decides which run
and records what they did. Orientation itself is found by Tesseract OSD
(:func:`flows._exec.tesseract.detect_orientation`); here is only the lossless quarter turn.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from array import array
from pathlib import Path

from PIL import Image, ImageFilter, ImageOps

_MEASURE_WIDTH = 1000  # longest side, pixels: fine enough for 0.05°, small enough to be quick


def _ink_mask(image: Image.Image) -> Image.Image:
    """Downscaled 8-bit image where ink is bright (255) and paper dark (0)."""
    grey = image.convert("L")
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
    return float(sum((a - b) ** 2 for a, b in itertools.pairwise(profile))) / max(1, len(profile))


def measure_skew(image: Image.Image, *, max_angle: float = 10.0) -> float | None:
    """The page content's skew in degrees (counter-clockwise positive), or ``None`` if blank.

    Rotating the page by ``-skew`` straightens it. Searched in 1°, then 0.2°, then 0.05° steps,
    on rows and on columns, so pages lying on their side are measured too.
    """
    mask = _ink_mask(image)
    if mask.getbbox() is None:
        return None
    best_score, best_angle = -1.0, 0.0
    # Columns of a page on its side are the rows of its transpose (same skew sense, mirrored).
    for view, sign in ((mask, 1.0), (mask.transpose(Image.Transpose.TRANSPOSE), -1.0)):
        strips, width = _strip_profiles(view)

        def search(center: float, span: float, step: float) -> tuple[float, float]:
            steps = round(span / step)
            scored = [
                (_shear_score(strips, width, center + i * step), center + i * step)  # noqa: B023
                for i in range(-steps, steps + 1)
            ]
            return max(scored)

        _, coarse = search(0.0, max_angle, 1.0)
        _, middle = search(coarse, 1.0, 0.2)
        score, fine = search(middle, 0.2, 0.05)
        if score > best_score:
            best_score, best_angle = score, sign * fine
    return round(best_angle, 2) + 0.0


def _paper_colour(image: Image.Image) -> int | tuple[int, ...]:
    """The most frequent bright value: what to fill uncovered corners with."""
    if image.mode == "1":
        return 1
    grey = image.convert("L")
    hist = grey.histogram()
    level = max(range(128, 256), key=lambda v: hist[v])
    if image.mode == "RGB":
        return (level, level, level)
    return level


def rotate_by(image: Image.Image, degrees: float) -> Image.Image:
    """Rotate the content by ``degrees`` (counter-clockwise), keeping the page size."""
    fill = _paper_colour(image)
    if image.mode == "1":
        turned = image.convert("L").rotate(
            degrees, resample=Image.Resampling.BICUBIC, fillcolor=255
        )
        return turned.point(lambda v: 255 if v >= 128 else 0).convert("1")
    # Bilinear: for small skew angles indistinguishable from bicubic on text, at 2.5× the speed.
    return image.rotate(degrees, resample=Image.Resampling.BILINEAR, fillcolor=fill)


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
    """Write a 1-bit/8-bit grey or RGB image as PNG, fast: no row filters, zlib RLE level 1.

    Scans are mostly noise (nothing for a slow deflate to find) or long runs of paper (which RLE
    finds): this is 5–10× faster than Pillow's PNG writer at about the same size. The compressed
    data goes into the PDF as it is (Flate with PNG predictors), so it is written once.
    """
    if image.mode not in ("1", "L", "RGB"):
        raise ValueError(f"write_png takes 1, L or RGB images, not {image.mode}")
    width, height = image.size
    depth, colour, row_bytes = {
        "1": (1, 0, (width + 7) // 8),
        "L": (8, 0, width),
        "RGB": (8, 2, width * 3),
    }[image.mode]
    raw = image.tobytes()
    # PNG rows each start with a filter-type byte; 0 = none.
    rows = b"".join(
        b"\0" + raw[i * row_bytes : (i + 1) * row_bytes] for i in range(height)
    )
    compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = compressor.compress(rows) + compressor.flush()
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
