"""OCR of old, degraded print (R13: the valuable fund is mostly old Kazakh and Russian print).

Real Tesseract on generated pages of the degraded ground-truth set (flows.capture.degraded):
languages from the item, script consistency (homoglyphs), segmentation fallback, columns in
reading order, old-print preparation that never alters the master, line layout.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pypdf
import pytest
from lxml import etree
from PIL import Image, ImageDraw, ImageFont, ImageOps

from flows.capture import (
    CaptureOptions,
    DocumentMetadata,
    PageRef,
    assemble_pdfa,
    character_error_rate,
    process_page,
)
from flows.capture.degraded import _FONTS, CLASSES, write_degraded_set
from flows.capture.engine import (
    PageWork,
    stage_correct,
    stage_prepare,
    stage_recognise,
    stage_segment,
    stage_write,
)
from flows.capture.languages import models_for
from flows.capture.ocr import ALTO_NS
from flows.capture.samples import normalise_text, render_page
from flows.capture.script import consistent_word, correct_hocr

# --- the ground-truth set ---------------------------------------------------------------------


def test_degraded_set_is_reproducible_and_has_every_class(tmp_path: Path) -> None:
    first = write_degraded_set(tmp_path / "a", per_class=1, lines_per_class=1)
    again = write_degraded_set(tmp_path / "b", per_class=1, lines_per_class=1)
    assert [s.path.read_bytes() for s in first] == [s.path.read_bytes() for s in again]
    assert {s.degradation for s in first} == set(CLASSES)
    assert {s.language for s in first} == {"kk", "ru"}
    assert {s.level for s in first} == {"page", "line"}
    by_name = {s.path.name: s for s in first}
    assert by_name["low_dpi-p01.png"].dpi == 150
    assert Image.open(by_name["low_dpi-p01.png"].path).info["dpi"][0] == pytest.approx(150, abs=0.1)
    assert Image.open(by_name["jpeg-p01.jpg"].path).format == "JPEG"
    # Column pages: the truth is column by column, several paragraphs.
    assert by_name["columns3-p01.png"].text.count("\n\n") >= 3
    with pytest.raises(ValueError, match="unknown degradation class 'smudge'"):
        write_degraded_set(tmp_path / "c", classes=["smudge"])


# --- languages from the register ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "models"),
    [("kk", "kaz+rus"), ("kaz", "kaz+rus"), ("ru", "rus"), ("ru-RU", "rus"),
     ("kk,en", "kaz+rus+eng"), ("ru;kk", "rus+kaz"), (None, "kaz+rus"), ("fr", "kaz+rus")],
)
def test_item_language_chooses_the_models(language: str | None, models: str) -> None:
    assert models_for(language) == models


def test_latin_on_a_page_adds_english(tmp_path: Path) -> None:
    # An item catalogued as Russian whose page is English: the reading holds Latin, so the page
    # is read again with eng, and the choice is recorded.
    text = ("The library keeps rare books and manuscripts in a special store. Readers may "
            "order digital copies of them through the catalogue.")
    image = render_page(text, size_mm=(105, 60), noise=4, seed=2)
    image.save(tmp_path / "en.png", dpi=(300, 300))
    result = process_page(PageRef(tmp_path / "en.png", 0, "en"), work_dir=tmp_path / "w",
                          options=CaptureOptions(languages="rus"))
    assert result.choices is not None
    assert result.choices.languages == "rus+eng"
    assert character_error_rate(text, result.text) < 0.03


def test_worn_cyrillic_page_is_not_read_with_english(tmp_path: Path) -> None:
    # On this worn Kazakh newspaper page Tesseract OSD says "Script: Latin"; the eng reading
    # is tried, is not clearly better, and the page stays with its own models.
    sample = write_degraded_set(tmp_path / "set", per_class=1, classes=["old_newspaper"])[0]
    assert sample.language == "kk"
    result = process_page(PageRef(sample.path, 0, "old"), work_dir=tmp_path / "w",
                          options=CaptureOptions(languages=models_for(sample.language)))
    assert result.choices is not None
    assert result.choices.languages == "kaz+rus"
    assert not any(ch.isascii() and ch.isalpha() for ch in result.text)


# --- script consistency -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("read", "expected"),
    [("KOЛXOЗ", "КОЛХОЗ"), ("қызмeт", "қызмет"), ("Bep-", "Вер-"), ("ceнiм", "сенім")],
)
def test_latin_lookalikes_in_a_cyrillic_word_become_cyrillic(read: str, expected: str) -> None:
    fix = consistent_word(read, context="cyrillic")
    assert fix is not None and fix.corrected == expected and fix.script == "cyrillic"


@pytest.mark.parametrize(("read", "expected"), [("Неllo", "Hello"), ("Stаlin", "Stalin")])
def test_cyrillic_lookalikes_in_a_latin_word_become_latin(read: str, expected: str) -> None:
    fix = consistent_word(read, context="cyrillic")
    assert fix is not None and fix.corrected == expected and fix.script == "latin"


@pytest.mark.parametrize(
    "word",
    ["колхоз", "Москва", "Hello", "Marx", "http://kitap.kz/kk", "info@nlrk.kz", "H2O", "CO2",
     "КамАЗ-5320", "x=y+1", "Jилы", "iPhone"],
)
def test_pure_and_genuinely_mixed_words_are_left_alone(word: str) -> None:
    # Pure Cyrillic, pure Latin (in a Cyrillic line), URLs, e-mail, formulas, words with
    # unambiguous letters of both scripts (Jилы): never touched.
    assert consistent_word(word, context="cyrillic") is None


def test_lookalike_only_word_follows_its_line() -> None:
    assert consistent_word("COK", context="cyrillic") is not None
    assert consistent_word("COK", context="latin") is None
    assert consistent_word("СОК", context="latin") is not None


def test_corrections_reach_text_hocr_alto_and_pdf_text_layer(tmp_path: Path) -> None:
    # A worn Cyrillic page as the eng model reads it: Latin look-alikes put into Tesseract's
    # hOCR (injected at the tool seam), then Qor's correct and write stages.
    truth = "Колхоз имени Кирова закончил уборку. Хозяйство получило премию."
    render_page(truth, size_mm=(105, 40), noise=3, seed=4).save(tmp_path / "p.png",
                                                                 dpi=(300, 300))
    work = PageWork(page=PageRef(tmp_path / "p.png", 0, "p"), options=CaptureOptions(
        languages="rus"), base=tmp_path / "w" / "p", started=0.0)
    (tmp_path / "w").mkdir()
    stage_prepare(work)
    stage_segment(work)
    stage_recognise(work)
    hocr, _ = work.reading()
    data = hocr.read_text("utf-8")
    assert "Колхоз" in data and "Хозяйство" in data
    hocr.write_text(data.replace("Колхоз", "Koлxoз").replace("Хозяйство", "Xoзяйcтвo"),
                    "utf-8")
    stage_correct(work)
    result = stage_write(work)
    assert result.choices is not None and result.choices.script_corrections == 2
    root = etree.parse(str(hocr)).getroot()
    hocr_words = " ".join(
        "".join(w.itertext()) for w in root.iter() if w.get("class") == "ocrx_word"
    )
    for text in (result.text, result.text_path.read_text("utf-8"), hocr_words):
        assert "Колхоз" in text and "Хозяйство" in text
        assert "Koлxoз" not in text and "Xoзяйcтвo" not in text
    alto = etree.parse(str(result.alto_path))
    contents = [s.get("CONTENT") for s in alto.iter(f"{{{ALTO_NS}}}String")]
    assert "Колхоз" in contents and "Хозяйство" in contents
    settings = "".join(alto.getroot().itertext())
    assert "script corrections=2" in settings and "Koлxoз→Колхоз" in settings
    pdf = assemble_pdfa([result], out=tmp_path / "p.pdf",
                        metadata=DocumentMetadata(title="t", identifier="KZ-1"),
                        options=CaptureOptions())
    layer = pypdf.PdfReader(pdf).pages[0].extract_text()
    assert "Колхоз" in layer and "Хозяйство" in layer


def test_correct_hocr_records_what_it_changed(tmp_path: Path) -> None:
    hocr = tmp_path / "x.hocr"
    hocr.write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<html xmlns='http://www.w3.org/1999/xhtml'><head><title></title></head><body>"
        "<div class='ocr_page' title='bbox 0 0 100 20'><p class='ocr_par' title='bbox 0 0 100 20'>"
        "<span class='ocr_line' title='bbox 0 0 100 20'>"
        "<span class='ocrx_word' title='bbox 0 0 40 20; x_wconf 90'>KOЛXOЗ</span> "
        "<span class='ocrx_word' title='bbox 45 0 70 20; x_wconf 90'>Marx</span> "
        "<span class='ocrx_word' title='bbox 75 0 100 20; x_wconf 90'>жиналысы</span>"
        "</span></p></div></body></html>", "utf-8")
    fixes = correct_hocr(hocr)
    assert [(f.original, f.corrected) for f in fixes] == [("KOЛXOЗ", "КОЛХОЗ")]
    root = etree.parse(str(hocr)).getroot()
    words = ["".join(w.itertext()) for w in root.iter() if w.get("class") == "ocrx_word"]
    assert words == ["КОЛХОЗ", "Marx", "жиналысы"]
    meta = next(m for m in root.iter() if m.get("name") == "qor-script-corrections")
    assert meta.get("content") == "KOЛXOЗ→КОЛХОЗ"


# --- segmentation -------------------------------------------------------------------------------


def _line_crop_with_border(path: Path) -> str:
    """A newspaper line cut out with bits of its neighbours and a dark scanner edge: Tesseract's
    whole-page segmentation finds no text on it (measured with Tesseract 5.3, rus)."""
    lines = ["Колхозники артели имени Кирова досрочно",
             "закончили уборку урожая. Правление колхоза",
             "премировало лучших трактористов и комбайнеров."]
    font = ImageFont.truetype(_FONTS["DejaVuSerif"][0], 48)
    image = Image.new("L", (1400, 48 * 3 + 40), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((10, 10 + i * 48), line, font=font, fill=0)
    crop = image.crop((0, 10 + 48 - 7, 1400, 10 + 2 * 48 + 4))
    ImageOps.expand(crop, 6, fill=0).save(path, dpi=(300, 300))
    return lines[1]


def test_line_empty_at_page_level_is_read_by_the_fallback(tmp_path: Path) -> None:
    truth = _line_crop_with_border(tmp_path / "line.png")
    ref = PageRef(tmp_path / "line.png", 0, "line")
    bare = process_page(ref, work_dir=tmp_path / "bare", options=CaptureOptions(
        languages="rus", segmentation_fallback=False, orientation=False))
    assert bare.word_count == 0  # the failure the fallback exists for
    result = process_page(ref, work_dir=tmp_path / "w", options=CaptureOptions(
        languages="rus", orientation=False))
    assert result.choices is not None
    assert result.choices.segmentation_tried[0] == "page"
    assert result.choices.segmentation in ("block", "line")
    assert character_error_rate(truth, result.text) < 0.1
    assert f"segmentation {result.choices.segmentation} (tried page" in result.choices.describe()


def _page_with_a_shaded_notice(path: Path) -> tuple[str, str, str]:
    """Two paragraphs with a notice printed on a grey box between them: Tesseract's page
    segmentation reads the paragraphs and drops the notice (measured with Tesseract 5.3, rus)."""
    font = ImageFont.truetype(_FONTS["DejaVuSerif"][0], 40)
    page = Image.new("L", (1600, 600), 250)
    draw = ImageDraw.Draw(page)
    before = "Колхозники артели имени Кирова досрочно закончили уборку урожая."
    notice = "Объявление правления колхоза"
    after = "Сельская школа получила новые учебники и наглядные пособия."
    draw.text((60, 40), before, font=font, fill=20)
    draw.rectangle((40, 130, 1560, 200), fill=110)
    draw.text((60, 142), notice, font=font, fill=10)
    draw.text((60, 260), after, font=font, fill=20)
    page.save(path, dpi=(300, 300))
    return before, notice, after


def test_text_the_page_segmentation_drops_is_read_alone_in_reading_order(tmp_path: Path) -> None:
    before, notice, after = _page_with_a_shaded_notice(tmp_path / "notice.png")
    ref = PageRef(tmp_path / "notice.png", 0, "notice")
    bare = process_page(ref, work_dir=tmp_path / "bare", options=CaptureOptions(
        languages="rus", segmentation_fallback=False))
    assert "Объявление" not in bare.text  # what the fallback is for
    result = process_page(ref, work_dir=tmp_path / "w", options=CaptureOptions(languages="rus"))
    assert result.choices is not None and result.choices.regions_read == 1
    alto = etree.parse(str(result.alto_path))
    alto_text = " ".join(s.get("CONTENT") or "" for s in alto.iter(f"{{{ALTO_NS}}}String"))
    pdf = assemble_pdfa([result], out=tmp_path / "n.pdf",
                        metadata=DocumentMetadata(title="t", identifier="KZ-3"),
                        options=CaptureOptions())
    layer = pypdf.PdfReader(pdf).pages[0].extract_text()
    for name, text in (("text", result.text), ("ALTO", alto_text), ("PDF", layer)):
        flat = normalise_text(text)
        assert character_error_rate(" ".join((before, notice, after)), flat) < 0.03, name
        assert flat.index("Колхозники") < flat.index("Объявление") < flat.index("Сельская"), name


def test_blank_page_is_not_read_again(tmp_path: Path) -> None:
    # No ink, no fallback: a blank sheet (or the back of a leaf) costs one reading, not three.
    Image.new("L", (1200, 1600), 235).save(tmp_path / "blank.png", dpi=(300, 300))
    result = process_page(PageRef(tmp_path / "blank.png", 0, "blank"), work_dir=tmp_path / "w",
                          options=CaptureOptions(languages="rus", orientation=False))
    assert result.word_count == 0
    assert result.choices is not None and result.choices.segmentation_tried == ("page",)


def test_line_layout_reads_a_line_crop_as_one_line(tmp_path: Path) -> None:
    truth = _line_crop_with_border(tmp_path / "line.png")
    result = process_page(PageRef(tmp_path / "line.png", 0, "line"), work_dir=tmp_path / "w",
                          options=CaptureOptions(languages="rus", layout="line"))
    assert result.choices is not None
    assert result.choices.segmentation == "line"
    assert result.choices.segmentation_tried == ("line",)
    assert character_error_rate(truth, result.text) < 0.1


def test_two_column_page_in_reading_order_in_text_alto_and_pdf(tmp_path: Path) -> None:
    sample = next(s for s in write_degraded_set(tmp_path / "set", classes=["columns2"])
                  if s.level == "page")
    result = process_page(PageRef(sample.path, 0, "cols"), work_dir=tmp_path / "w",
                          options=CaptureOptions(languages=models_for(sample.language)))
    first, *rest = sample.text.split("\n\n")
    last = rest[-1]
    alto = etree.parse(str(result.alto_path))
    alto_text = " ".join(s.get("CONTENT") or "" for s in alto.iter(f"{{{ALTO_NS}}}String"))
    pdf = assemble_pdfa([result], out=tmp_path / "c.pdf",
                        metadata=DocumentMetadata(title="t", identifier="KZ-2"),
                        options=CaptureOptions())
    layer = pypdf.PdfReader(pdf).pages[0].extract_text()
    for name, text in (("text", result.text), ("ALTO", alto_text), ("PDF", layer)):
        # Read across the columns, the text would be interleaved line by line: far off.
        assert character_error_rate(sample.text, text) < 0.03, name
        flat = normalise_text(text)
        assert flat.index(normalise_text(first)[:40]) < flat.index(normalise_text(last)[:40]), name


# --- preparation for old print ------------------------------------------------------------------


def test_preparation_reads_a_stained_page_and_leaves_the_master_alone(tmp_path: Path) -> None:
    sample = next(s for s in write_degraded_set(tmp_path / "set", classes=["stain"])
                  if s.level == "page")
    master = sample.path.read_bytes()
    digest = hashlib.sha256(master).hexdigest()
    ref = PageRef(sample.path, 0, "stain")
    options = CaptureOptions(languages=models_for(sample.language), deskew=False)
    result = process_page(ref, work_dir=tmp_path / "w", options=options)
    plain = process_page(ref, work_dir=tmp_path / "plain",
                         options=CaptureOptions(languages=options.languages, deskew=False,
                                                prepare_old_print="off"))
    assert result.choices is not None and plain.choices is not None
    assert result.choices.preparation == "background+sauvola+despeckle"
    assert result.choices.ghost is not None and result.choices.ghost > 0.01
    assert plain.choices.preparation == "none"
    assert character_error_rate(sample.text, result.text) < 0.02
    assert character_error_rate(sample.text, result.text) < character_error_rate(
        sample.text, plain.text)
    # The master (scan file) is byte for byte the same; the page image kept for the archival
    # PDF is the scan's own grey pixels, not the binarised OCR input.
    assert hashlib.sha256(sample.path.read_bytes()).hexdigest() == digest
    kept = Image.open(result.image_path)
    assert kept.mode == "L"
    assert np.array_equal(np.asarray(kept), np.asarray(Image.open(sample.path).convert("L")))


def test_clean_page_is_not_prepared(tmp_path: Path) -> None:
    sample = next(s for s in write_degraded_set(tmp_path / "set", classes=["clean"])
                  if s.level == "page")
    result = process_page(PageRef(sample.path, 0, "clean"), work_dir=tmp_path / "w",
                          options=CaptureOptions(languages=models_for(sample.language)))
    assert result.choices is not None
    assert result.choices.preparation == "none" and result.choices.preparation_tried == ()
    assert result.choices.regions_read == 0
    assert result.choices.as_dict()["languages"] == models_for(sample.language)


def test_worn_ink_keeps_the_scan_when_the_prepared_input_reads_worse(tmp_path: Path) -> None:
    sample = next(s for s in write_degraded_set(tmp_path / "set", classes=["ink_dropout"])
                  if s.level == "page")
    # Worn type's faded strokes are as light as bleed-through: binarisation breaks the letters
    # up, Tesseract reads the prepared input with low confidence, and the scan is read instead.
    result = process_page(PageRef(sample.path, 0, "worn"), work_dir=tmp_path / "w",
                          options=CaptureOptions(languages=models_for(sample.language),
                                                 prepare_old_print="always"))
    assert result.choices is not None
    assert result.choices.preparation_tried == ("background+sauvola+despeckle",)
    assert result.choices.preparation == "none"
    assert character_error_rate(sample.text, result.text) < 0.05
    assert "preparation none (background+sauvola+despeckle tried, read worse)" in (
        result.choices.describe()
    )


def test_a_heavily_compressed_jpeg_page_is_deblocked_for_ocr_only(tmp_path: Path) -> None:
    """JPEG damage (quality 8) is measured from the file's quantisation table and the OCR input
    median-filtered ("deblock", recorded); a quality-90 JPEG is left as scanned; the kept page
    image is the scanner's JPEG, byte for byte."""
    image = Image.new("L", (800, 300), 255)
    font = ImageFont.truetype(_FONTS["DejaVuSerif"][0], 40)
    ImageDraw.Draw(image).text((20, 100), "Первый поезд пройдёт по новому участку.", font=font,
                               fill=0)
    for quality, expected in ((8, "deblock"), (90, "none")):
        path = tmp_path / f"q{quality}.jpg"
        image.save(path, format="JPEG", quality=quality, dpi=(200, 200))
        result = process_page(PageRef(path, 0, f"q{quality}"), work_dir=tmp_path / f"out{quality}",
                              options=CaptureOptions(languages="rus"))
        assert result.choices is not None
        assert result.choices.preparation == expected
        assert result.image_path.read_bytes() == path.read_bytes()
        assert "поезд" in result.text
