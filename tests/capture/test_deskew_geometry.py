"""Deskew and OCR geometry: small skews are recognised as scanned and the boxes turned with the
straightened image; large skews are straightened before OCR. Either way the page image kept is
straight and the words, lines and text layer sit where that image shows them (R13)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
from lxml import etree

from flows.capture import CaptureOptions, PageResult, load_pages, process_pages
from flows.capture.ocr import Word, parse_hocr, turn_hocr

from .conftest import small_page, tesseracts_own_reading

SMALL_SKEW = 2.0  # within CaptureOptions.ocr_skew_tolerance_deg: OCR first, then turn
LARGE_SKEW = -5.0  # beyond it: straighten first


@pytest.fixture(scope="session")
def skewed_pages(tools_present: None, capture_root: Path) -> dict[float, PageResult]:
    """Two small pages skewed by 2° and −5°, processed with the default options."""
    folder = capture_root / "skew-geometry"
    folder.mkdir()
    paths = []
    for angle, seed in ((SMALL_SKEW, 5), (LARGE_SKEW, 6)):
        path = folder / f"skew{angle:+.0f}.png"
        small_page(angle=angle, seed=seed).save(path, dpi=(300, 300))
        paths.append(path)
    options = CaptureOptions()
    results = process_pages(load_pages(paths, options=options), work_dir=folder / "work",
                            options=options, workers=2)
    return dict(zip((SMALL_SKEW, LARGE_SKEW), results, strict=True))


def _centre(word: Word) -> tuple[float, float]:
    x0, y0, x1, y1 = word.bbox
    return (x0 + x1) / 2, (y0 + y1) / 2


def test_small_skew_is_recognised_as_scanned_and_large_skew_straightened_first(
    skewed_pages: dict[float, PageResult],
) -> None:
    small, large = skewed_pages[SMALL_SKEW].preparation, skewed_pages[LARGE_SKEW].preparation
    assert small.skew_corrected and not small.deskewed_before_ocr
    assert large.skew_corrected and large.deskewed_before_ocr
    assert small.skew_angle_deg is not None and abs(small.skew_angle_deg - SMALL_SKEW) < 0.3
    assert large.skew_angle_deg is not None and abs(large.skew_angle_deg - LARGE_SKEW) < 0.3


@pytest.mark.parametrize("angle", [SMALL_SKEW, LARGE_SKEW])
def test_kept_page_image_is_straight_by_tesseracts_own_reading(
    skewed_pages: dict[float, PageResult], tmp_path: Path, angle: float
) -> None:
    own = tesseracts_own_reading(skewed_pages[angle], tmp_path)
    lines = [ln for ln in own.lines if len(ln.words) >= 4]
    assert len(lines) >= 5
    residual = statistics.median(math.degrees(math.atan(ln.baseline[0])) for ln in lines)
    assert abs(residual) < 0.3


def test_turned_words_sit_where_the_straightened_image_shows_them(
    skewed_pages: dict[float, PageResult], tmp_path: Path
) -> None:
    result = skewed_pages[SMALL_SKEW]
    ours = parse_hocr(result.hocr_path)
    own = tesseracts_own_reading(result, tmp_path)
    assert len(ours.words) >= 30
    off: list[float] = []
    height_gaps: list[int] = []
    for word in ours.words:
        same = [w for w in own.words if w.text == word.text]
        if not same:  # the two readings may differ in a letter; such words are not compared
            continue
        cx, cy = _centre(word)
        nearest = min(same, key=lambda w: math.dist(_centre(w), (cx, cy)))
        off.append(math.dist(_centre(nearest), (cx, cy)))
        height_gaps.append(abs((word.bbox[3] - word.bbox[1]) - (nearest.bbox[3] - nearest.bbox[1])))
    assert len(off) >= 0.9 * len(ours.words)
    # At 300 dpi, 6 px is half a millimetre; a box left as the upright box around the tilted
    # word would be about 2° · word width (≈ 10 px for a long word) too tall.
    assert statistics.median(off) <= 3 and max(off) <= 8, sorted(off)[-5:]
    assert statistics.median(height_gaps) <= 3, sorted(height_gaps)[-5:]
    # The line baselines came out level with the image.
    slopes = [math.degrees(math.atan(ln.baseline[0])) for ln in ours.lines if len(ln.words) >= 3]
    assert max(abs(s) for s in slopes) < 0.3


def test_hocr_names_the_page_image_kept(skewed_pages: dict[float, PageResult]) -> None:
    for result in skewed_pages.values():
        root = etree.parse(str(result.hocr_path)).getroot()
        page = next(el for el in root.iter() if el.get("class") == "ocr_page")
        assert page.get("title", "").startswith(f'image "{result.image_path.name}";')


def _hocr_with_one_word(path: Path, *, bbox: tuple[int, int, int, int], baseline: str) -> Path:
    x0, y0, x1, y1 = bbox
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body>'
        "<div class='ocr_page' id='page_1' title='image \"scan.pgm\"; bbox 0 0 2000 1000'>"
        f"<div class='ocr_carea' title='bbox {x0} {y0} {x1} {y1}'>"
        f"<p class='ocr_par' title='bbox {x0} {y0} {x1} {y1}'>"
        f"<span class='ocr_line' title='bbox {x0} {y0} {x1} {y1}; baseline {baseline}; x_size 40'>"
        f"<span class='ocrx_word' title='bbox {x0} {y0} {x1} {y1}; x_wconf 95'>қазына</span>"
        "</span></p></div></div></body></html>",
        encoding="utf-8",
    )
    return path


def test_turning_undoes_the_tilt_of_a_word_of_known_size(tmp_path: Path) -> None:
    # A 400 × 50 px word centred at (1000, 500), the page centre, tilted 3° counter-clockwise:
    # its upright box is 400·cos + 50·sin wide and 400·sin + 50·cos tall.
    theta = math.radians(3.0)
    w = 400 * math.cos(theta) + 50 * math.sin(theta)
    h = 400 * math.sin(theta) + 50 * math.cos(theta)
    box = (round(1000 - w / 2), round(500 - h / 2), round(1000 + w / 2), round(500 + h / 2))
    # Its baseline runs up to the right: y falls by tan 3° per pixel (y points down).
    hocr = _hocr_with_one_word(tmp_path / "p.hocr", bbox=box,
                               baseline=f"{-math.tan(theta):.5f} -{round(h / 2 - 10)}")
    turned = turn_hocr(hocr, degrees=-3.0, image_name="page.png")
    assert parse_hocr(hocr) == turned  # what was written reads back the same
    x0, y0, x1, y1 = turned.words[0].bbox
    assert abs((x1 - x0) - 400) <= 2 and abs((y1 - y0) - 50) <= 2
    assert abs((x0 + x1) / 2 - 1000) <= 1 and abs((y0 + y1) / 2 - 500) <= 1
    slope, _offset = turned.lines[0].baseline
    assert abs(slope) < 0.002
    assert 'image &quot;page.png&quot;' in hocr.read_text(encoding="utf-8")
    assert turned.text() == "қазына\n"


def test_a_word_off_centre_moves_with_the_page(tmp_path: Path) -> None:
    # Turning the page clockwise by 2° about (1000, 500) carries a point 600 px right of the
    # centre down by 600·sin 2° (y down) and left by 600·(1 − cos 2°).
    hocr = _hocr_with_one_word(tmp_path / "p.hocr", bbox=(1580, 480, 1620, 520), baseline="0 -5")
    turned = turn_hocr(hocr, degrees=-2.0)
    x0, y0, x1, y1 = turned.words[0].bbox
    expected_x = 1000 + 600 * math.cos(math.radians(2.0))
    expected_y = 500 + 600 * math.sin(math.radians(2.0))
    assert abs((x0 + x1) / 2 - expected_x) <= 1
    assert abs((y0 + y1) / 2 - expected_y) <= 1
