"""Every scanner input kind, page orientation, deskew, and hostile inputs refused (R13)."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import pytest

from flows.capture import CaptureOptions, PageResult, character_error_rate, load_pages, process_page
from flows.errors import PageRejected, ToolTimeout

from .conftest import (
    SMALL_TEXT,
    ProcessedPdf,
    small_page,
    tesseracts_own_reading,
    write_hostile_inputs,
)


def test_every_input_kind_is_read_and_recognised(
    processed_kinds: dict[str, ProcessedPdf],
) -> None:
    assert set(processed_kinds) == {
        "g4-bitonal", "grey-lzw", "rgb-jpeg", "cmyk-tiff", "palette-png-alpha", "jpeg2000",
        "grey-16bit", "multipage-tiff", "scanner-pdf",
    }
    for kind, processed in processed_kinds.items():
        for result, truth in zip(processed.results, processed.truth, strict=True):
            assert character_error_rate(truth, result.text) <= 0.03, (kind, result.text)
    assert len(processed_kinds["multipage-tiff"].results) == 2
    assert len(processed_kinds["scanner-pdf"].results) == 2


def test_colour_and_depth_conversions_are_recorded(
    processed_kinds: dict[str, ProcessedPdf],
) -> None:
    def conversions(kind: str) -> tuple[str, ...]:
        return processed_kinds[kind].results[0].preparation.conversions

    assert conversions("cmyk-tiff") == ("CMYK→RGB",)
    assert conversions("grey-16bit") == ("16-bit→8-bit grey",)
    assert conversions("palette-png-alpha") == ("P alpha→white",)
    assert conversions("grey-lzw") == ()


def test_resolution_comes_from_the_file_or_the_operator(
    processed_kinds: dict[str, ProcessedPdf], input_kinds: dict[str, Path]
) -> None:
    assert all(r.dpi == 300 for p in processed_kinds.values() for r in p.results)
    # The JPEG 2000 file carries no resolution: without a fallback it is refused, by name.
    with pytest.raises(PageRejected, match=r"06-scan\.jp2.*resolution"):
        load_pages([input_kinds["jpeg2000"]], options=CaptureOptions())


def test_folder_pages_come_in_natural_order(tmp_path: Path, input_kinds: dict[str, Path]) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    source = input_kinds["grey-lzw"].read_bytes()
    for name in ("p10.tif", "p2.tif", "p1.tif"):
        (folder / name).write_bytes(source)
    pages = load_pages([folder], options=CaptureOptions())
    assert [p.label for p in pages] == ["p1", "p2", "p10"]


def test_multipage_tiff_frames_are_separate_pages(input_kinds: dict[str, Path]) -> None:
    pages = load_pages([input_kinds["multipage-tiff"]], options=CaptureOptions())
    assert [(p.frame, p.label) for p in pages] == [(0, "08-multi-0001"), (1, "08-multi-0002")]


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_orientation_is_corrected(rotated_pages: dict[int, PageResult], rotation: int) -> None:
    result = rotated_pages[rotation]
    # The page was turned counter-clockwise by `rotation`; fixing it is the same turn clockwise.
    assert result.preparation.rotation_applied == rotation
    assert result.preparation.orientation_checked == "osd"
    upright = small_page()
    assert (result.width_px, result.height_px) == upright.size  # the right way up again
    assert "Шаһардағы оқырмандар үшін" in " ".join(result.text.split())


def test_upright_page_skips_osd_but_says_so(processed_kinds: dict[str, ProcessedPdf]) -> None:
    prep = processed_kinds["grey-lzw"].results[0].preparation
    assert prep.orientation_checked == "ocr" and prep.rotation_applied == 0


def test_deskew_brings_three_degrees_under_a_third(
    deskewed_page: PageResult, tmp_path: Path
) -> None:
    prep = deskewed_page.preparation
    assert prep.skew_corrected and prep.skew_angle_deg is not None
    assert abs(prep.skew_angle_deg - 3.0) < 0.3
    # Residual skew measured independently: Tesseract run afresh on the page image kept (the
    # hOCR kept with the page may have been turned by Qor, so it cannot be the witness).
    lines = [ln for ln in tesseracts_own_reading(deskewed_page, tmp_path).lines
             if len(ln.words) >= 4]
    assert len(lines) >= 5
    slopes = sorted(math.degrees(math.atan(ln.baseline[0])) for ln in lines)
    assert abs(slopes[len(slopes) // 2]) < 0.3


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # the truncated TIFF
def test_hostile_inputs_are_refused_with_page_and_reason(
    tmp_path: Path, input_kinds: dict[str, Path]
) -> None:
    hostile = write_hostile_inputs(tmp_path / "hostile", input_kinds["grey-lzw"])
    good = input_kinds["grey-lzw"]
    for kind, (path, reason) in hostile.items():
        with pytest.raises(PageRejected) as err:
            load_pages([good, path], options=CaptureOptions())
        assert err.value.path == path, kind
        assert path.name in str(err.value) and reason in str(err.value), (kind, str(err.value))
        assert not err.value.retryable


def test_png_with_valid_checksums_over_bad_data_is_refused_before_ocr(tmp_path: Path) -> None:
    # load_pages checks a PNG by its chunk CRCs; a crafted file with recomputed CRCs over a
    # broken deflate stream passes that, so process_page (which decodes) must refuse it.
    path = tmp_path / "crafted.png"
    small_page().save(path, dpi=(300, 300))
    data = bytearray(path.read_bytes())
    pos = data.index(b"IDAT") - 4
    length = struct.unpack(">L", data[pos : pos + 4])[0]
    body = pos + 8
    data[body + 2 : body + length] = bytes(length - 2)  # keep the zlib header, zero the rest
    data[body + length : body + length + 4] = struct.pack(
        ">L", zlib.crc32(bytes(data[pos + 4 : body + length]))
    )
    path.write_bytes(bytes(data))
    (page,) = load_pages([path], options=CaptureOptions())
    with pytest.raises(PageRejected) as err:
        process_page(page, work_dir=tmp_path / "work", options=CaptureOptions())
    assert err.value.path == path and "cannot be decoded" in str(err.value)
    assert not list((tmp_path / "work").glob("*.hocr"))


def test_refusal_in_the_middle_of_a_multipage_file_names_the_page(tmp_path: Path) -> None:
    from PIL import TiffImagePlugin

    path = tmp_path / "book.tif"
    first = small_page()
    first.save(path, compression="tiff_lzw", dpi=(300, 300), save_all=True,
               append_images=[small_page(seed=5)])
    data = path.read_bytes()
    with TiffImagePlugin.TiffImageFile(path) as im:
        im.seek(1)
        second_strip = min(im.tag_v2[273])  # StripOffsets of page 2
    path.write_bytes(data[:second_strip] + b"\xff" * 64 + data[second_strip + 64 :])
    with pytest.raises(PageRejected) as err:
        load_pages([path], options=CaptureOptions())
    assert err.value.frame == 1 and "book.tif (page 2)" in str(err.value)


def test_ocr_timeout_fails_the_page_as_retryable(
    tmp_path: Path, input_kinds: dict[str, Path]
) -> None:
    options = CaptureOptions(page_timeout_s=0.001, orientation=False, deskew=False)
    (page,) = load_pages([input_kinds["grey-lzw"]], options=options)
    with pytest.raises(ToolTimeout) as err:
        process_page(page, work_dir=tmp_path / "work", options=options)
    assert err.value.retryable and "tesseract" in str(err.value)


def test_pixel_limit_comes_from_the_setting(input_kinds: dict[str, Path]) -> None:
    page = input_kinds["grey-lzw"]  # 1240 × 1181 pixels
    assert load_pages([page], options=CaptureOptions(max_image_pixels=2_000_000))
    limit = r"02-grey-lzw\.tif: more pixels than the limit of 1,000,000"
    with pytest.raises(PageRejected, match=limit):
        load_pages([page], options=CaptureOptions(max_image_pixels=1_000_000))


def test_osd_first_policy_turns_the_page_before_ocr(tmp_path: Path) -> None:
    path = tmp_path / "upside-down.png"
    small_page(rotation=180, seed=6).save(path, dpi=(300, 300))
    options = CaptureOptions(osd_policy="always")
    (page,) = load_pages([path], options=options)
    result = process_page(page, work_dir=tmp_path / "work", options=options)
    assert result.preparation.orientation_checked == "osd"
    assert result.preparation.rotation_applied == 180
    assert character_error_rate(SMALL_TEXT, result.text) <= 0.03


def test_switched_off_steps_do_nothing_and_say_so(tmp_path: Path) -> None:
    path = tmp_path / "skewed.png"
    small_page(angle=2.0, seed=8).save(path, dpi=(300, 300))
    options = CaptureOptions(orientation=False, deskew=False)
    (page,) = load_pages([path], options=options)
    result = process_page(page, work_dir=tmp_path / "work", options=options)
    prep = result.preparation
    assert (prep.orientation_checked, prep.rotation_applied) == ("off", 0)
    assert prep.skew_angle_deg is None and not prep.skew_corrected


def test_border_cleaning_paints_scanner_shadow_with_paper() -> None:
    from PIL import ImageDraw

    from flows.capture.prepare import clean_borders

    page = small_page(seed=2)
    ImageDraw.Draw(page).rectangle((0, 0, 40, page.height), fill=20)  # lid shadow on the left
    cleaned, changed = clean_borders(page)
    assert changed
    assert min(cleaned.crop((0, 0, 40, page.height)).tobytes()) > 200
    untouched, changed_again = clean_borders(small_page(seed=2))
    assert not changed_again and untouched.tobytes() == small_page(seed=2).tobytes()


def test_same_file_names_in_two_folders_get_distinct_labels(
    tmp_path: Path, input_kinds: dict[str, Path]
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "page-0001.tif").write_bytes(input_kinds["grey-lzw"].read_bytes())
    pages = load_pages([tmp_path / "a", tmp_path / "b"], options=CaptureOptions())
    assert [p.label for p in pages] == ["page-0001", "page-0001-2"]
