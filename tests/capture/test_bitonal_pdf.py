"""Bitonal pages go into the PDF/A as CCITT Group 4: lossless, smaller than Flate, valid (R13)."""

from __future__ import annotations

import zlib
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium  # type: ignore[import-untyped]
from PIL import Image, ImageChops, ImageStat

from flows._exec import verapdf
from flows.capture import CaptureOptions, DocumentMetadata, assemble_pdfa

from .conftest import ProcessedPdf


def only_image(pdf: pikepdf.Pdf) -> pikepdf.Stream:
    (raw,) = pdf.pages[0].get_images().values()
    assert isinstance(raw, pikepdf.Stream)
    return raw


def test_bitonal_page_is_group4_and_decodes_to_the_same_pixels(
    processed_kinds: dict[str, ProcessedPdf],
    all_pdfa_reports: dict[Path, verapdf.PdfaReport],
) -> None:
    processed = processed_kinds["g4-bitonal"]
    (result,) = processed.results
    with Image.open(result.image_path) as page_image:
        page_image.load()
    assert page_image.mode == "1"
    with pikepdf.open(processed.pdf) as pdf:
        raw = only_image(pdf)
        assert raw.Filter == pikepdf.Name.CCITTFaxDecode
        assert raw.DecodeParms.K == -1  # Group 4
        embedded = pikepdf.PdfImage(raw).as_pil_image()
    assert embedded.mode == "1" and embedded.tobytes() == page_image.tobytes()
    # A second, independent decoder (PDFium, as a reader draws the page) agrees, ink stays ink.
    document = pdfium.PdfDocument(str(processed.pdf))
    try:
        page = document[0]
        bitmap = page.render(scale=result.dpi / 72, grayscale=True)
        view = bitmap.to_pil().convert("L").crop((0, 0, *page_image.size))
        bitmap.close()
        page.close()
    finally:
        document.close()
    assert ImageStat.Stat(ImageChops.difference(view, page_image.convert("L"))).mean[0] < 3
    assert all_pdfa_reports[processed.pdf].compliant  # veraPDF PDF/A-2U


def test_group4_pdf_is_smaller_than_the_flate_one(
    processed_kinds: dict[str, ProcessedPdf], tmp_path: Path
) -> None:
    processed = processed_kinds["g4-bitonal"]
    flate_pdf = tmp_path / "flate.pdf"
    with pikepdf.open(processed.pdf) as pdf:
        raw = only_image(pdf)
        pixels = pikepdf.PdfImage(raw).as_pil_image()
        # The same page with its image Flate-compressed at zlib's best level instead.
        raw.write(zlib.compress(pixels.tobytes(), 9), filter=pikepdf.Name.FlateDecode)
        pdf.save(flate_pdf)
    with pikepdf.open(flate_pdf) as pdf:
        assert pikepdf.PdfImage(only_image(pdf)).as_pil_image().tobytes() == pixels.tobytes()
    assert processed.pdf.stat().st_size < flate_pdf.stat().st_size


def test_access_profile_keeps_bitonal_pages_group4(
    processed_kinds: dict[str, ProcessedPdf], tmp_path: Path
) -> None:
    processed = processed_kinds["g4-bitonal"]
    access = assemble_pdfa(
        processed.results,
        out=tmp_path / "access.pdf",
        metadata=DocumentMetadata(title="Bitonal", identifier="KZ-T-bitonal"),
        options=CaptureOptions(profile="access"),
    )
    with pikepdf.open(access) as pdf:
        raw = only_image(pdf)
        assert raw.Filter == pikepdf.Name.CCITTFaxDecode
        assert raw.BitsPerComponent == 1
