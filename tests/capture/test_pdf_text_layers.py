"""PDFs that already carry text: born-digital, already OCR'd, mixed, XFA forms and empty ones.

By default a page's own text layer is kept (like OCRmyPDF's ``--skip-text``): not recognised
again, its text byte for byte as a PDF reader (PDFium) reads it, in the archival PDF/A too;
``redo-ocr`` recognises again pages whose only text is an OCR layer, ``force-ocr`` every page.
Pages without any image are flagged born-digital; XFA forms and empty pages get a remark.
Every PDF is generated here (fpdf2, pikepdf); Tesseract and veraPDF are the real tools.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.enums import TextMode
from PIL import Image, ImageDraw, ImageFont

from flows._exec import verapdf
from flows.capture import (
    CaptureOptions,
    DocumentMetadata,
    PageResult,
    assemble_pdfa,
    character_error_rate,
    load_pages,
    process_page,
)
from flows.capture.samples import FONT_DIRS, KAZAKH_SENTENCE, RUSSIAN_SENTENCE, SANS_FONT

TRUTH = f"{KAZAKH_SENTENCE}\n{RUSSIAN_SENTENCE}"
FONT = str(FONT_DIRS[0] / SANS_FONT)


def reader_text(pdf: Path) -> list[str]:
    """Each page's text as a PDF reader (PDFium) extracts it."""
    doc = pdfium.PdfDocument(str(pdf))
    try:
        out = []
        for page in doc:
            textpage = page.get_textpage()
            out.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return out
    finally:
        doc.close()


def _doc(size: tuple[float, float] = (120, 60)) -> FPDF:
    doc = FPDF(unit="mm", format=size)
    doc.set_auto_page_break(auto=False)
    doc.add_font("DejaVu", fname=FONT)
    return doc


def born_digital_pdf(path: Path) -> Path:
    """Vector text only: Kazakh and Russian sentences in DejaVu Sans, no image."""
    doc = _doc()
    doc.add_page()
    doc.set_font("DejaVu", size=11)
    doc.set_xy(8, 12)
    doc.multi_cell(104, 7, TRUTH)
    doc.output(str(path))
    return path


def scan_image(path: Path) -> Path:
    """A 200 dpi grey 'scan' of the two sentences (120 × 60 mm)."""
    image = Image.new("L", (945, 472), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 30)
    lines = TRUTH.replace(" құнды", "\nқұнды").replace(" подписан", "\nподписан")
    draw.multiline_text((63, 60), lines, font=font, fill=0, spacing=24)
    image.save(path, dpi=(200, 200))
    return path


def ocrd_scan_pdf(path: Path, work: Path) -> Path:
    """A scan with an earlier OCR's invisible text layer over it (what OCR tools write)."""
    doc = _doc()
    doc.add_page()
    doc.image(str(scan_image(work / "scan.png")), x=0, y=0, w=120, h=60)
    doc.text_mode = TextMode.INVISIBLE
    doc.set_font("DejaVu", size=11)
    doc.set_xy(8, 12)
    doc.multi_cell(104, 7, TRUTH)
    doc.output(str(path))
    return path


def mixed_pdf(path: Path, work: Path) -> Path:
    """Visible text and a photograph-like image on one page."""
    photo = Image.effect_noise((200, 120), 40).convert("L")
    photo.save(work / "photo.png", dpi=(150, 150))
    doc = _doc((120, 90))
    doc.add_page()
    doc.set_font("DejaVu", size=11)
    doc.set_xy(8, 8)
    doc.multi_cell(104, 7, TRUTH)
    doc.image(str(work / "photo.png"), x=30, y=45, w=60)
    doc.output(str(path))
    return path


def xfa_pdf(path: Path, work: Path) -> Path:
    """An XFA form: its content in XFA data, its one page only a placeholder message."""
    doc = _doc()
    doc.add_page()
    doc.set_font("DejaVu", size=11)
    doc.set_xy(8, 12)
    doc.multi_cell(104, 7, "Please wait... this document is an XFA form.")
    doc.output(str(work / "placeholder.pdf"))
    with pikepdf.open(work / "placeholder.pdf") as pdf:
        xdp = pikepdf.Stream(pdf, b'<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/">'
                                  b"<template/></xdp:xdp>")
        pdf.Root.AcroForm = pdf.make_indirect(pikepdf.Dictionary(
            Fields=pikepdf.Array(), XFA=pdf.make_indirect(xdp)))
        pdf.save(path)
    return path


def empty_pdf(path: Path) -> Path:
    doc = _doc()
    doc.add_page()
    doc.output(str(path))
    return path


def one_page(pdf: Path, work: Path, **options: object) -> tuple[PageResult, Path]:
    """Process the PDF's only page and assemble the archival PDF/A of it."""
    opts = CaptureOptions(orientation=False, **options)  # type: ignore[arg-type]
    (page,) = load_pages([pdf], options=opts)
    result = process_page(page, work_dir=work / "pages", options=opts)
    out = assemble_pdfa([result], out=work / "out.pdf",
                        metadata=DocumentMetadata(title="t", identifier="KZ-T"), options=opts)
    return result, out


def test_born_digital_page_keeps_its_text_byte_for_byte(tmp_path: Path,
                                                        tools_present: None) -> None:
    source = born_digital_pdf(tmp_path / "born.pdf")
    result, out = one_page(source, tmp_path)
    assert result.preparation.text_source == "kept"
    assert result.preparation.pdf_page == "born-digital"
    assert result.preparation.remarks == ()
    # The archival PDF's text layer reads exactly as the source's did, byte for byte.
    assert reader_text(out) == reader_text(source)
    assert reader_text(out)[0].encode() == reader_text(source)[0].encode()
    assert character_error_rate(TRUTH, result.text) == 0.0
    # Not recognised: the hOCR says where its words came from, every word at confidence 100.
    hocr = result.hocr_path.read_text("utf-8")
    assert "text layer of the source PDF" in hocr and "tesseract" not in hocr.lower()
    assert result.mean_confidence == 100.0
    assert verapdf.validate(out).compliant


def test_born_digital_text_is_kept_by_redo_ocr_and_recognised_by_force_ocr(
        tmp_path: Path, tools_present: None) -> None:
    source = born_digital_pdf(tmp_path / "born.pdf")
    redo, _ = one_page(source, tmp_path / "redo", pdf_text_policy="redo-ocr")
    assert redo.preparation.text_source == "kept"
    forced, _ = one_page(source, tmp_path / "force", pdf_text_policy="force-ocr")
    assert forced.preparation.text_source == "ocr"
    assert forced.preparation.pdf_page == "born-digital"  # flagged whatever the policy
    assert "tesseract" in forced.hocr_path.read_text("utf-8").lower()
    assert character_error_rate(TRUTH, forced.text) <= 0.02


def test_already_ocrd_scan_keeps_its_text_layer(tmp_path: Path, tools_present: None) -> None:
    source = ocrd_scan_pdf(tmp_path / "ocrd.pdf", tmp_path)
    result, out = one_page(source, tmp_path / "skip")
    assert result.preparation.pdf_page == "scan with text layer"
    assert result.preparation.text_source == "kept"
    assert reader_text(out)[0].encode() == reader_text(source)[0].encode()
    assert verapdf.validate(out).compliant
    # --redo-ocr: an OCR layer only is recognised again, from the scan's pixels.
    redone, _ = one_page(source, tmp_path / "redo", pdf_text_policy="redo-ocr")
    assert redone.preparation.text_source == "ocr"
    assert character_error_rate(TRUTH, redone.text) <= 0.05, redone.text


def test_mixed_page_keeps_its_text_and_is_not_born_digital(tmp_path: Path,
                                                          tools_present: None) -> None:
    source = mixed_pdf(tmp_path / "mixed.pdf", tmp_path)
    result, out = one_page(source, tmp_path)
    assert result.preparation.pdf_page == "mixed"
    assert result.preparation.text_source == "kept"
    assert reader_text(out)[0].encode() == reader_text(source)[0].encode()


def test_xfa_form_is_flagged(tmp_path: Path, tools_present: None) -> None:
    result, _ = one_page(xfa_pdf(tmp_path / "form.pdf", tmp_path), tmp_path)
    assert any(r.startswith("XFA form") for r in result.preparation.remarks)
    assert "Please wait" in result.text


def test_empty_pdf_is_flagged(tmp_path: Path, tools_present: None) -> None:
    result, _ = one_page(empty_pdf(tmp_path / "empty.pdf"), tmp_path)
    assert result.preparation.pdf_page == "empty"
    assert result.preparation.remarks == ("empty page: no text, image or drawing on it",)
    assert result.word_count == 0 and result.preparation.text_source == "ocr"


def test_digitise_says_what_it_did_in_summary_and_premis(
        tmp_path: Path, prefect_server: None, tools_present: None) -> None:
    from prefect.settings import PREFECT_API_URL

    data_dir = tmp_path / "qor"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QOR_") or
           k.startswith("QOR_TEST_") or k == "QOR_VERAPDF"}
    env["QOR_DATA_DIR"] = str(data_dir)
    if PREFECT_API_URL.value():
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()

    def qor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qor", *args], env=env, capture_output=True,
                              text=True, timeout=600, check=False, stdin=subprocess.DEVNULL)

    assert qor("items", "add", "KZ-BD-1", "--title", "Born digital").returncode == 0
    born = born_digital_pdf(tmp_path / "born.pdf")
    empty = empty_pdf(tmp_path / "empty.pdf")
    both = qor("digitise", str(born), str(empty), "-i", "KZ-BD-1", "--redo-ocr", "--force-ocr")
    assert both.returncode == 2 and "--redo-ocr and --force-ocr" in both.stderr
    proc = qor("digitise", str(born), str(empty), "-i", "KZ-BD-1", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["text_policy"] == "skip-text"
    assert summary["pages_text_kept"] == ["born"]
    assert summary["pages_born_digital"] == ["born"]
    assert summary["remarks"] == ["empty: empty page: no text, image or drawing on it"]
    premis = (data_dir / "store" / "bags" / summary["bag_id"] / "metadata" /
              "premis.xml").read_text("utf-8")
    assert "text layer of the source PDF kept, not recognised again: born" in premis
    assert "born-digital page(s), no image: born" in premis
    assert "empty: empty page" in premis
