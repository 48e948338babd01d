"""Issue 16: the access PDF encodes each page by a measured rule — text pages bitonal (Group 4),
pictures and colour JPEG — with the archival PDF's text layer, valid PDF/A-2U (real veraPDF),
and text pages that still read as well as the archival ones (real Tesseract)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pikepdf
import pypdf
import pytest
from PIL import Image

from flows._exec import tesseract, verapdf
from flows.capture import CaptureOptions, DocumentMetadata, PageResult, character_error_rate
from flows.capture.derivatives import AccessPdf, make_access_pdf
from flows.capture.ocr import parse_hocr

from .conftest import ProcessedPdf

METADATA = DocumentMetadata(title="Қор туралы", identifier="KZ-000123", language="kk")


def pdf_text(pdf: Path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(pdf).pages]


@dataclasses.dataclass(frozen=True)
class Embedded:
    """A page image as the PDF holds it: its filter, bits, width, colour space, pixels."""

    filter: str
    bits: int
    width: int
    colour_space: str
    pixels: Image.Image


def page_images(pdf: Path) -> list[Embedded]:
    out: list[Embedded] = []
    with pikepdf.open(pdf) as doc:
        for page in doc.pages:
            (raw,) = page.get_images().values()
            assert isinstance(raw, pikepdf.Stream)
            out.append(Embedded(str(raw.Filter), int(raw.BitsPerComponent), int(raw.Width),
                                str(raw.ColorSpace), pikepdf.PdfImage(raw).as_pil_image()))
    return out


def _with_image(result: PageResult, image: Image.Image, path: Path) -> PageResult:
    image.save(path, dpi=(result.dpi, result.dpi))
    return dataclasses.replace(result, image_path=path)


@pytest.fixture(scope="session")
def mixed_pages(processed_batch: ProcessedPdf, capture_root: Path) -> list[PageResult]:
    """Page 1 as scanned (text), page 2 with a photograph pasted in, page 3 tinted as a colour
    scan with a red rubric; each keeps its own OCR (the text layer does not change)."""
    folder = capture_root / "mixed"
    folder.mkdir(exist_ok=True)
    text, photo_page, colour_page = processed_batch.results
    with Image.open(photo_page.image_path) as im:
        grey = im.convert("L")
    rng = np.random.default_rng(7)
    field = rng.normal(128, 60, (30, 40)).clip(0, 255).astype("uint8")
    photo = Image.fromarray(field).resize((grey.width // 2, grey.height // 3),
                                          Image.Resampling.BICUBIC)
    grey.paste(photo, (grey.width // 4, grey.height // 2))
    with Image.open(colour_page.image_path) as im:
        rgb = im.convert("RGB")
    rubric = Image.new("RGB", (rgb.width // 3, rgb.height // 20), (200, 30, 30))
    rgb.paste(rubric, (rgb.width // 10, rgb.height // 20))
    return [text, _with_image(photo_page, grey, folder / "photo.png"),
            _with_image(colour_page, rgb, folder / "colour.png")]


@pytest.fixture(scope="session")
def mixed_access(mixed_pages: list[PageResult], capture_root: Path) -> AccessPdf:
    return make_access_pdf(mixed_pages, out=capture_root / "out" / "mixed-access.pdf",
                           metadata=METADATA, options=CaptureOptions())


def test_text_pages_go_bitonal_and_pictures_and_colour_stay_jpeg(
    mixed_pages: list[PageResult], mixed_access: AccessPdf, capture_root: Path
) -> None:
    kinds = [e.kind for e in mixed_access.encodings]
    assert kinds == ["text", "picture", "colour"]
    text, picture, colour = mixed_access.encodings
    assert text.codec == "CCITT G4" and text.dpi == 300 and text.threshold is not None
    assert text.measure is not None and text.measure.picture_share <= 0.005
    assert picture.codec == "JPEG" and picture.quality == 45 and picture.dpi == 200
    assert picture.measure is not None and picture.measure.picture_share > 0.05
    assert colour.codec == "JPEG" and colour.measure is not None
    assert colour.measure.chroma >= 24
    first, second, third = page_images(mixed_access.path)
    assert first.filter == "/CCITTFaxDecode" and first.bits == 1
    assert first.width == mixed_pages[0].width_px  # 300 dpi kept
    assert second.filter == "/DCTDecode" and second.colour_space == "/DeviceGray"
    assert second.width == round(mixed_pages[1].width_px * 200 / 300)
    assert third.filter == "/DCTDecode" and third.colour_space == "/DeviceRGB"
    # The choices are recorded, one phrase per run of pages, for PREMIS.
    described = mixed_access.describe()
    assert described.startswith("page 1: text page (pictures 0.0 %")
    assert "page 2: picture page" in described and "page 3: colour page" in described
    # Same text layer as the archival PDF of the same pages (so the same CER), valid PDF/A-2U.
    archival = capture_root / "out" / "mixed-archival.pdf"
    from flows.capture import assemble_pdfa

    assemble_pdfa(mixed_pages, out=archival, metadata=METADATA, options=CaptureOptions())
    assert pdf_text(mixed_access.path) == pdf_text(archival)
    reports = verapdf.validate_many([mixed_access.path], flavour="2u")
    assert reports[mixed_access.path].compliant, reports[mixed_access.path].failures


def test_a_bitonal_text_page_reads_as_well_as_the_archival_page(
    processed_batch: ProcessedPdf, mixed_access: AccessPdf, tmp_path: Path
) -> None:
    """Readability, measured: Tesseract reads the access PDF's 1-bit page image with no more
    errors than Qor read the archival page (the threshold keeps every letter)."""
    first = page_images(mixed_access.path)[0]
    assert first.pixels.mode == "1"
    page = tmp_path / "access-page.png"
    first.pixels.save(page, dpi=(300, 300))
    hocr = tesseract.recognise(page, tmp_path / "access-page", languages="kaz+rus", dpi=300,
                               timeout=180)
    read = parse_hocr(hocr).text()
    truth = processed_batch.truth[0]
    archival_cer = character_error_rate(truth, processed_batch.results[0].text)
    access_cer = character_error_rate(truth, read)
    assert access_cer <= archival_cer + 0.005, (access_cer, archival_cer)


@pytest.mark.parametrize(("mode", "dpi"), [("grey", 150), ("off", 200)])
def test_text_pages_grey_or_off_keep_them_jpeg(
    processed_batch: ProcessedPdf, capture_root: Path, mode: str, dpi: int
) -> None:
    result = processed_batch.results[0]
    made = make_access_pdf([result], out=capture_root / "out" / f"access-{mode}.pdf",
                           metadata=METADATA,
                           options=CaptureOptions(access_text_pages=mode))  # type: ignore[arg-type]
    (encoding,) = made.encodings
    assert encoding.codec == "JPEG" and encoding.dpi == dpi
    assert encoding.kind == ("text" if mode == "grey" else "picture")
    (image,) = page_images(made.path)
    assert image.filter == "/DCTDecode"
    assert image.width == round(result.width_px * dpi / 300)
