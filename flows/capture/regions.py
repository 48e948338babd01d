"""Inked regions whole-page segmentation left unread, and merging their reading into the page.

Tesseract's page layout analysis drops some text outright: a line printed on a grey-shaded box
(newspaper notices), a faded line much lighter than the rest. :func:`missed_regions` finds bands
of ink no recognised word covers; the engine reads each one alone (as a block, then as a line)
and :func:`merge_region_hocr` puts what it read into the page's hOCR, in reading order, so text,
ALTO and the PDF text layer carry it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lxml import etree
from PIL import Image

from flows.capture.ocr import BBox

_SCALE_DPI = 75  # the page is searched at about this resolution
_MAX_REGIONS = 8
_LINE_CLASSES = frozenset({"ocr_line", "ocr_header", "ocr_caption", "ocr_textfloat"})


def _classes(el: etree._Element) -> set[str]:
    return set((el.get("class") or "").split())


def missed_regions(image: Image.Image, *, dpi: float, covered: list[BBox]) -> list[BBox]:
    """Bands of ink (page pixels, top to bottom) outside every box in ``covered``.

    Ink is anything clearly darker than the paper (40 grey levels under its 95th percentile),
    found on a copy reduced to about 75 dpi (which also averages sensor noise away). A band is
    a run of rows, each with residual ink over at least 2 % of the page width, between about
    0.06 and 1.5 inches tall, at least 0.3 inch wide and at least 5 % inked: text lines, not
    rules, specks or column rules. At most eight bands are returned.
    """
    grey = image if image.mode == "L" else image.convert("L")
    factor = max(1, round(dpi / _SCALE_DPI))
    small = grey.reduce(factor) if factor > 1 else grey
    a = np.asarray(small, dtype=np.float32)
    paper = float(np.percentile(a, 95))
    ink = a < paper - 40
    pad = max(1, round(0.04 * dpi / factor))
    for x0, y0, x1, y1 in covered:
        ink[max(0, y0 // factor - pad): y1 // factor + pad + 1,
            max(0, x0 // factor - pad): x1 // factor + pad + 1] = False
    h, w = ink.shape
    rows = ink.sum(axis=1) >= max(2, round(0.02 * w))
    small_dpi = dpi / factor
    min_h, max_h, min_w = 0.06 * small_dpi, 1.5 * small_dpi, 0.3 * small_dpi
    regions: list[BBox] = []
    y = 0
    while y < h and len(regions) < _MAX_REGIONS:
        if not rows[y]:
            y += 1
            continue
        top = y
        while y < h and rows[y]:
            y += 1
        bottom = y  # exclusive
        band = ink[top:bottom]
        cols = np.flatnonzero(band.any(axis=0))
        if min_h <= bottom - top <= max_h and cols.size:
            left, right = int(cols[0]), int(cols[-1]) + 1
            if right - left >= min_w and band[:, left:right].mean() >= 0.05:
                regions.append((
                    left * factor, top * factor,
                    min(grey.width, right * factor), min(grey.height, bottom * factor),
                ))
    return regions


def _overlap(a: BBox, b: BBox) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


def merge_region_hocr(page_hocr: Path, region_hocr: Path, *, offset: tuple[int, int],
                      tag: str, avoid: list[BBox], min_confidence: float = 50.0) -> int:
    """Move the text areas of ``region_hocr`` (a crop read alone) into ``page_hocr``, shifted by
    ``offset`` (the crop's top-left corner on the page) and placed before the first area that
    starts below them. Words under ``min_confidence``, and words a fifth or more of which lies on
    a box of ``avoid`` (the lines already read: a band of blur or spread ink beside a line read
    again), are dropped. Returns the words merged.

    ``tag`` prefixes the moved elements' ids so they stay unique.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    page_tree = etree.parse(str(page_hocr), parser)
    page_el = next(el for el in page_tree.getroot().iter() if "ocr_page" in _classes(el))
    region_root = etree.parse(str(region_hocr), parser).getroot()
    region_page = next(el for el in region_root.iter() if "ocr_page" in _classes(el))
    dx, dy = offset
    merged = 0
    areas = [el for el in region_page if "ocr_carea" in _classes(el)]
    for area in areas:
        for word in [el for el in area.iter() if "ocrx_word" in _classes(el)]:
            conf = _prop(word, "x_wconf")
            text = "".join(word.itertext()).strip()
            box = _bbox(word, dx, dy)
            size = max(1, (box[2] - box[0]) * (box[3] - box[1]))
            on_read = any(_overlap(box, other) * 5 >= size for other in avoid)
            if not text or conf is None or float(conf) < min_confidence or on_read:
                parent = word.getparent()
                if parent is not None:
                    parent.remove(word)
            else:
                merged += 1
        if not any("ocrx_word" in _classes(el) for el in area.iter()):
            continue
        for el in area.iter():
            _shift(el, dx, dy)
            if el.get("id"):
                el.set("id", f"{tag}_{el.get('id')}")
        # Reading order: each line goes before the first line of the page, in document order,
        # that starts below it in the same column (inside that line's paragraph); a line with
        # none below it closes the page in an area of its own.
        page_lines = [el for el in page_el.iter() if _classes(el) & _LINE_CLASSES]
        for line in [el for el in area.iter() if _classes(el) & _LINE_CLASSES]:
            if not any("ocrx_word" in _classes(el) for el in line.iter()):
                continue
            box = _bbox(line, 0, 0)
            below = next(
                (el for el in page_lines if _below_in_column(_bbox(el, 0, 0), box)), None
            )
            if below is not None:
                below.addprevious(line)
        if any(_classes(el) & _LINE_CLASSES for el in area.iter()):
            page_el.append(area)
    if merged:
        page_tree.write(str(page_hocr), xml_declaration=True, encoding="UTF-8")
    return merged


def _prop(el: etree._Element, key: str) -> str | None:
    for part in (el.get("title") or "").split(";"):
        name, _, value = part.strip().partition(" ")
        if name == key:
            return value.strip()
    return None


def _bbox(el: etree._Element, dx: int, dy: int) -> BBox:
    x0, y0, x1, y1 = (int(v) for v in (_prop(el, "bbox") or "0 0 0 0").split()[:4])
    return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)


def _below_in_column(line: BBox, new: BBox) -> bool:
    """Whether page line ``line`` starts below ``new`` and shares its columns."""
    return line[1] >= new[1] and min(line[2], new[2]) > max(line[0], new[0])


def _top(el: etree._Element) -> int | None:
    bbox = _prop(el, "bbox")
    return int(bbox.split()[1]) if bbox else None


def _shift(el: etree._Element, dx: int, dy: int) -> None:
    title = el.get("title")
    if not title:
        return
    parts = []
    for part in title.split(";"):
        part = part.strip()
        name, _, value = part.partition(" ")
        if name == "bbox":
            x0, y0, x1, y1 = (int(v) for v in value.split()[:4])
            part = f"bbox {x0 + dx} {y0 + dy} {x1 + dx} {y1 + dy}"
        parts.append(part)
    el.set("title", "; ".join(parts))
