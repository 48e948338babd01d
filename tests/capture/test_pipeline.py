"""The capture engine end to end on generated scans: accuracy, text layer, ALTO, PDF/A (R13)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pikepdf
import pypdf
import pytest
from PIL import Image

from flows._exec import verapdf
from flows.capture import (
    CaptureOptions,
    DocumentMetadata,
    PagePreparation,
    PageRef,
    PageResult,
    assemble_pdfa,
    book_confidence,
    character_error_rate,
)
from flows.capture.ocr import alto_errors, parse_hocr
from flows.capture.samples import KAZAKH_SENTENCE, normalise_text
from flows.errors import PdfaInvalid

from .conftest import ProcessedPdf


def pdf_text(pdf: Path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(pdf).pages]


def test_ocr_of_clean_set_is_within_one_percent_cer(processed_batch: ProcessedPdf) -> None:
    for result, truth in zip(processed_batch.results, processed_batch.truth, strict=True):
        assert character_error_rate(truth, result.text) <= 0.01, result.page.label


def test_pdf_text_layer_equals_ocr_text_so_cer_is_unchanged(processed_batch: ProcessedPdf) -> None:
    # R13: the digital copy's text must be the text read, not a folded approximation of it.
    texts = pdf_text(processed_batch.pdf)
    for result, page_text, truth in zip(
        processed_batch.results, texts, processed_batch.truth, strict=True
    ):
        assert normalise_text(page_text) == normalise_text(result.text)
        assert character_error_rate(truth, page_text) == character_error_rate(truth, result.text)
        assert character_error_rate(truth, page_text) <= 0.01


def test_kazakh_sentence_survives_into_the_pdf(processed_batch: ProcessedPdf) -> None:
    text = normalise_text(" ".join(pdf_text(processed_batch.pdf)))
    assert KAZAKH_SENTENCE in text
    assert all(letter in text for letter in "әғқңөұүһі")


HOCR_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title></title></head><body>
<div class='ocr_page' id='page_1' title='image "x"; bbox 0 0 {w} {h}; ppageno 0'>
<div class='ocr_carea' id='block_1_1' title="bbox 100 100 1500 300">
<p class='ocr_par' id='par_1_1' lang='rus' title="bbox 100 100 1500 300">
{lines}
</p></div></div></body></html>
"""


def _hocr_with(words_by_line: list[list[str]], width: int, height: int) -> str:
    lines = []
    for li, words in enumerate(words_by_line):
        y0, y1 = 100 + li * 60, 140 + li * 60
        spans = []
        x = 100
        for wi, word in enumerate(words):
            x1 = x + 30 * len(word)
            spans.append(
                f"<span class='ocrx_word' id='w_{li}_{wi}' title='bbox {x} {y0} {x1} {y1}; "
                f"x_wconf 91'>{word}</span>"
            )
            x = x1 + 25
        lines.append(
            f"<span class='ocr_line' id='l_{li}' title=\"bbox 100 {y0} {x} {y1}; "
            f"baseline 0 -8; x_size 40\">{' '.join(spans)}</span>"
        )
    return HOCR_TEMPLATE.format(w=width, h=height, lines="\n".join(lines))


def test_text_layer_keeps_every_character_exactly(tmp_path: Path) -> None:
    """"№", Kazakh letters, ligatures and non-BMP characters extract exactly as recognised
    (OCRmyPDF's text layer turns "№" into "No"; Qor's must not)."""
    width, height = 1800, 600
    lines = [["Акт", "№", "17", "«әғқңөұүһі»"], ["ﬁrst", "½", "𝔄𝔅", "Ӏ", "—", "ё"]]
    image = tmp_path / "page.png"
    Image.new("L", (width, height), 250).save(image, dpi=(300, 300))
    hocr = tmp_path / "page.hocr"
    hocr.write_text(_hocr_with(lines, width, height), encoding="utf-8")
    expected = "\n".join(" ".join(line) for line in lines) + "\n"
    result = PageResult(
        page=PageRef(image, 0, "page"), image_path=image, dpi=300.0, width_px=width,
        height_px=height, text=expected, text_path=tmp_path / "page.txt", hocr_path=hocr,
        alto_path=tmp_path / "page.xml", mean_confidence=91.0, word_count=10,
        preparation=PagePreparation("off", None, 0, None, False, False),
    )
    assert parse_hocr(hocr).text() == expected
    pdf = assemble_pdfa([result], out=tmp_path / "t.pdf",
                        metadata=DocumentMetadata(title="t", identifier="KZ-1"),
                        options=CaptureOptions())
    assert normalise_text(pdf_text(pdf)[0]) == normalise_text(expected)


def test_text_layer_sits_on_the_words(processed_batch: ProcessedPdf) -> None:
    """Each word's invisible text starts at the word's left edge, on its line's baseline."""
    result = processed_batch.results[0]
    lines = parse_hocr(result.hocr_path).lines
    placed = [(line, word) for line in lines for word in line.words]
    k = 72.0 / result.dpi
    with pikepdf.open(processed_batch.pdf) as pdf:
        ops = pikepdf.parse_content_stream(pdf.pages[0])
        starts = [
            (float(inst.operands[4]), float(inst.operands[5]))
            for inst in ops
            if str(inst.operator) == "Tm"
        ]
        modes = [int(inst.operands[0]) for inst in ops if str(inst.operator) == "Tr"]
    assert modes == [3]  # invisible
    assert len(starts) == len(placed) > 100
    for (x_pt, y_pt), (line, word) in zip(starts, placed, strict=True):
        _lx0, ly0, _lx1, ly1 = line.bbox
        assert abs(x_pt - word.bbox[0] * k) < 0.5
        assert (result.height_px - ly1) * k - 0.5 <= y_pt <= (result.height_px - ly0) * k


def test_alto_is_valid_alto4_and_boxes_lie_inside_the_page(
    processed_batch: ProcessedPdf, official_alto_schema: Path
) -> None:
    from lxml import etree

    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    for result in processed_batch.results:
        assert alto_errors(result.alto_path, schema=official_alto_schema) == []
        root = etree.parse(str(result.alto_path)).getroot()
        page = root.find(".//a:Page", ns)
        assert page is not None
        width, height = float(page.get("WIDTH", "0")), float(page.get("HEIGHT", "0"))
        assert (width, height) == (result.width_px, result.height_px)
        strings = root.findall(".//a:String", ns)
        assert len(strings) == result.word_count > 50
        for s in strings:
            x, y = float(s.get("HPOS", "-1")), float(s.get("VPOS", "-1"))
            w, h = float(s.get("WIDTH", "-1")), float(s.get("HEIGHT", "-1"))
            assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
            assert 0.0 <= float(s.get("WC", "-1")) <= 1.0
        assert " ".join(s.get("CONTENT", "") for s in strings) == normalise_text(result.text)


def test_alto_of_every_input_kind_is_valid_alto4(
    processed_kinds: dict[str, ProcessedPdf], official_alto_schema: Path
) -> None:
    errors = {
        f"{kind} {r.page.label}": alto_errors(r.alto_path, schema=official_alto_schema)
        for kind, processed in processed_kinds.items()
        for r in processed.results
    }
    assert len(errors) >= 10
    assert {page: e for page, e in errors.items() if e} == {}


@pytest.mark.parametrize(
    ("pattern", "replacement", "named"),
    [
        (r'WC="[^"]*"', 'WC="7.5"', "WC"),  # a word confidence above 1
        (r' CONTENT="[^"]*"', "", "CONTENT"),  # a String without its text
        (r"<String ", "<Word ", "Word"),  # an element ALTO does not have
    ],
    ids=["word-confidence-above-1", "string-without-content", "unknown-element"],
)
def test_official_schema_rejects_what_alto4_forbids(
    tmp_path: Path,
    processed_batch: ProcessedPdf,
    official_alto_schema: Path,
    pattern: str,
    replacement: str,
    named: str,
) -> None:
    data = processed_batch.results[0].alto_path.read_text(encoding="utf-8")
    broken_data, n = re.subn(pattern, replacement, data, count=1)
    assert n == 1
    broken = tmp_path / "broken.alto.xml"
    broken.write_text(broken_data, encoding="utf-8")
    errors = alto_errors(broken, schema=official_alto_schema)
    assert len(errors) == 1 and named in errors[0], errors


def test_every_pdf_passes_verapdf_pdfa_2u(
    all_pdfa_reports: dict[Path, verapdf.PdfaReport],
) -> None:
    produced = {p: r for p, r in all_pdfa_reports.items() if p.name != "plain.pdf"}
    assert len(produced) >= 11
    failing = {p.name: r.failures for p, r in produced.items() if not r.compliant}
    assert failing == {}


def test_verapdf_failure_is_reported_with_rule_ids(
    all_pdfa_reports: dict[Path, verapdf.PdfaReport],
) -> None:
    control = next(r for p, r in all_pdfa_reports.items() if p.name == "plain.pdf")
    assert not control.compliant
    assert any(f.rule_id.startswith("6.") for f in control.failures)
    with pytest.raises(PdfaInvalid) as err:
        control.raise_for_failures()
    assert err.value.failures == control.failures
    assert "plain.pdf" in str(err.value) and control.failures[0].rule_id in str(err.value)


def test_xmp_carries_dublin_core_and_pdfa_identification(processed_batch: ProcessedPdf) -> None:
    with pikepdf.open(processed_batch.pdf) as pdf:
        meta = pdf.open_metadata()
        assert meta["pdfaid:part"] == "2" and meta["pdfaid:conformance"] == "U"
        assert meta["dc:identifier"] == "KZ-000123"
        assert meta["dc:title"] == "Қор туралы"
        assert list(meta["dc:creator"]) == ["Ұлттық кітапхана"]
        assert meta["dc:language"] == {"kk"}
        intent = pdf.Root.OutputIntents[0]
        assert intent.S == pikepdf.Name.GTS_PDFA1
        assert intent.DestOutputProfile.N == 3
        with pdf.open_outline() as outline:
            assert [item.title for item in outline.root] == ["1", "2", "3"]


def test_pages_are_sized_from_image_resolution(processed_batch: ProcessedPdf) -> None:
    with pikepdf.open(processed_batch.pdf) as pdf:
        for page, result in zip(pdf.pages, processed_batch.results, strict=True):
            box = [float(v) for v in page.mediabox]
            assert math.isclose(box[2], result.width_px * 72 / 300, abs_tol=0.01)
            assert math.isclose(box[3], result.height_px * 72 / 300, abs_tol=0.01)
            assert math.isclose(box[2] / 72 * 25.4, 148.0, abs_tol=0.2)  # A5 at 300 dpi


def test_archival_images_are_lossless_and_access_images_are_smaller(
    processed_batch: ProcessedPdf, access_pdf: Path
) -> None:
    with pikepdf.open(processed_batch.pdf) as pdf:
        for page, result in zip(pdf.pages, processed_batch.results, strict=True):
            (raw,) = page.get_images().values()
            assert isinstance(raw, pikepdf.Stream)
            embedded = pikepdf.PdfImage(raw).as_pil_image()
            with Image.open(result.image_path) as original:
                assert embedded.tobytes() == original.tobytes()
    with pikepdf.open(access_pdf) as pdf:
        for page in pdf.pages:
            # Text pages (issue 16's per-page rule, flows.capture.access): 1-bit Group 4.
            (raw,) = page.get_images().values()
            assert raw.Filter == pikepdf.Name.CCITTFaxDecode and raw.BitsPerComponent == 1
    assert access_pdf.stat().st_size < processed_batch.pdf.stat().st_size / 3


def test_confidence_gate_marks_the_copy_for_review(processed_batch: ProcessedPdf) -> None:
    results: list[PageResult] = processed_batch.results
    passing = book_confidence(results, gate=CaptureOptions().confidence_gate)
    assert not passing.needs_review and passing.mean_confidence > 85
    strict = book_confidence(results, gate=100.0)
    assert strict.needs_review
    assert strict.pages_below_gate == tuple(r.page.label for r in results)
