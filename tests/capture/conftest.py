"""Fixtures for the capture engine: generated scans of every input kind, processed once a session.

Everything here runs the real Tesseract and veraPDF, and checks ALTO against the official ALTO 4.4
schema; a missing tool or schema is a failure naming it.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from flows._exec import tesseract, verapdf
from flows.capture import (
    CaptureOptions,
    DocumentMetadata,
    PageResult,
    assemble_pdfa,
    load_pages,
    process_pages,
)
from flows.capture.ocr import PageText, parse_hocr
from flows.capture.samples import SamplePage, render_page, write_sample_batch

SMALL_PAGE_MM = (105.0, 100.0)
SMALL_TEXT = (
    "Ұлттық кітапхананың қоры ғылыми, тарихи және көркемдік құндылығы бар басылымдардан "
    "тұрады. Шаһардағы оқырмандар үшін құнды қордың көшірмесі әзірленді.\n\n"
    "Фонд библиотеки формируется из книг, периодических изданий и рукописей. Каждому "
    "поступлению присваивается инвентарный номер."
)


@dataclass(frozen=True)
class ProcessedPdf:
    """A set of pages processed and assembled into one PDF, with the ground truth they came from."""

    results: list[PageResult]
    pdf: Path
    truth: list[str]


@pytest.fixture(scope="session")
def tools_present() -> None:
    """Fail (never skip) when Tesseract with kaz/rus/eng/osd or veraPDF is missing."""
    if tesseract.probe() is None:
        pytest.fail("Tesseract is not installed (Debian: tesseract-ocr); infra/test-services")
    missing = {"kaz", "rus", "eng", "osd"} - tesseract.languages()
    if missing:
        pytest.fail(f"Tesseract language data missing: {sorted(missing)}")
    if verapdf.launcher() is None:
        pytest.fail("veraPDF is not installed: run infra/test-services or set QOR_VERAPDF")


@pytest.fixture(scope="session")
def official_alto_schema() -> Path:
    """The official ``alto-4-4.xsd`` named by ``$QOR_ALTO_SCHEMA``, ``xlink.xsd`` beside it.

    Fails (never skips) when it is not installed: the tests must prove Qor's ALTO against the
    real schema, not a stand-in.
    """
    configured = os.environ.get("QOR_ALTO_SCHEMA")
    if not configured:
        pytest.fail(
            "QOR_ALTO_SCHEMA is not set: run infra/test-services up (or infra/test-services alto) "
            "and source its env file (. <(infra/test-services env))",
            pytrace=False,
        )
    schema = Path(configured)
    for needed in (schema, schema.with_name("xlink.xsd")):
        if not needed.is_file():
            pytest.fail(f"{needed} is missing (QOR_ALTO_SCHEMA): run infra/test-services alto",
                        pytrace=False)
    return schema


@pytest.fixture(scope="session")
def capture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("capture")


def small_page(
    *, angle: float = 0.0, rotation: int = 0, seed: int = 3, noise: float = 6.0
) -> Image.Image:
    return render_page(
        SMALL_TEXT, size_mm=SMALL_PAGE_MM, angle=angle, rotation=rotation, noise=noise, seed=seed
    )


def tesseracts_own_reading(result: PageResult, work: Path) -> PageText:
    """Tesseract run afresh on the page image Qor kept: a reading Qor's geometry did not touch."""
    work.mkdir(parents=True, exist_ok=True)
    hocr = tesseract.recognise(result.image_path, work / result.image_path.stem,
                               languages="kaz+rus", dpi=300, timeout=120)
    return parse_hocr(hocr)


@pytest.fixture(scope="session")
def sample_batch(capture_root: Path) -> list[SamplePage]:
    """The default demo batch (3 A5 pages, Kazakh and Russian, skewed 0.5–1.5°)."""
    return write_sample_batch(capture_root / "batch")


@pytest.fixture(scope="session")
def processed_batch(
    tools_present: None, sample_batch: list[SamplePage], capture_root: Path
) -> ProcessedPdf:
    """The demo batch through load → process → archival PDF/A."""
    options = CaptureOptions()
    pages = load_pages([capture_root / "batch"], options=options)
    results = process_pages(pages, work_dir=capture_root / "batch-work", options=options)
    pdf = assemble_pdfa(
        results,
        out=capture_root / "out" / "KZ-000123.pdf",
        metadata=DocumentMetadata(
            title="Қор туралы", identifier="KZ-000123", creator="Ұлттық кітапхана",
            date="2024", language="kk", page_labels=("1", "2", "3"),
        ),
        options=options,
    )
    return ProcessedPdf(results, pdf, [p.text for p in sample_batch])


@pytest.fixture(scope="session")
def access_pdf(processed_batch: ProcessedPdf, capture_root: Path) -> Path:
    """The same pages assembled in the access profile (re-encoded JPEG)."""
    return assemble_pdfa(
        processed_batch.results,
        out=capture_root / "out" / "KZ-000123-access.pdf",
        metadata=DocumentMetadata(title="Қор туралы", identifier="KZ-000123"),
        options=CaptureOptions(profile="access"),
    )


def _scanner_pdf(image: Image.Image, dest: Path) -> Path:
    """A PDF like a scanner's: one JPEG image per page filling a page sized by its resolution."""
    buffer = io.BytesIO()
    image.convert("L").save(buffer, "JPEG", quality=90)
    pdf = pikepdf.new()
    w_pt, h_pt = image.width * 72 / 300, image.height * 72 / 300
    xobj = pikepdf.Stream(pdf, buffer.getvalue())
    xobj.Type, xobj.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    xobj.Width, xobj.Height, xobj.BitsPerComponent = image.width, image.height, 8
    xobj.ColorSpace, xobj.Filter = pikepdf.Name.DeviceGray, pikepdf.Name.DCTDecode
    for _ in range(2):
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page,
            MediaBox=[0, 0, w_pt, h_pt],
            Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=xobj)),
            Contents=pikepdf.Stream(pdf, f"q {w_pt} 0 0 {h_pt} 0 0 cm /Im0 Do Q".encode()),
        )
        pdf.pages.append(pikepdf.Page(page))
    pdf.save(dest)
    return dest


def write_input_kinds(folder: Path) -> dict[str, Path]:
    """One small page in every input kind the scanners produce; returns kind → file."""
    folder.mkdir(parents=True, exist_ok=True)
    grey = small_page(angle=0.8)
    dpi = (300, 300)
    files: dict[str, Path] = {}
    bitonal = grey.point(lambda v: 255 if v > 140 else 0).convert("1")
    files["g4-bitonal"] = folder / "01-g4.tif"
    bitonal.save(files["g4-bitonal"], compression="group4", dpi=dpi)
    files["grey-lzw"] = folder / "02-grey-lzw.tif"
    grey.save(files["grey-lzw"], compression="tiff_lzw", dpi=dpi)
    files["rgb-jpeg"] = folder / "03-rgb.jpg"
    grey.convert("RGB").save(files["rgb-jpeg"], quality=90, dpi=dpi)
    files["cmyk-tiff"] = folder / "04-cmyk.tif"
    grey.convert("RGB").convert("CMYK").save(files["cmyk-tiff"], compression="tiff_lzw", dpi=dpi)
    files["palette-png-alpha"] = folder / "05-palette.png"
    palette = grey.convert("RGB").quantize(16)
    counts = palette.histogram()[:16]
    paper = counts.index(max(counts))  # the paper's palette entry becomes transparent
    palette.save(files["palette-png-alpha"], dpi=dpi, transparency=paper)
    files["jpeg2000"] = folder / "06-scan.jp2"
    grey.save(files["jpeg2000"], "JPEG2000", irreversible=False)
    files["grey-16bit"] = folder / "07-grey16.tif"
    grey.convert("I").point(lambda v: v * 257).convert("I;16").save(files["grey-16bit"], dpi=dpi)
    files["multipage-tiff"] = folder / "08-multi.tif"
    grey.save(
        files["multipage-tiff"], compression="tiff_lzw", dpi=dpi, save_all=True,
        append_images=[small_page(angle=-0.6, seed=4)],
    )
    files["scanner-pdf"] = _scanner_pdf(grey, folder / "09-scanner.pdf")
    return files


@pytest.fixture(scope="session")
def input_kinds(capture_root: Path) -> dict[str, Path]:
    return write_input_kinds(capture_root / "kinds")


@pytest.fixture(scope="session")
def processed_kinds(
    tools_present: None, input_kinds: dict[str, Path], capture_root: Path
) -> dict[str, ProcessedPdf]:
    """Every input kind processed and assembled into its own PDF/A (JPEG 2000 has no dpi tag)."""
    options = CaptureOptions(dpi_fallback=300)
    out: dict[str, ProcessedPdf] = {}
    all_pages = load_pages(list(input_kinds.values()), options=options)
    results = process_pages(all_pages, work_dir=capture_root / "kinds-work", options=options)
    for kind, path in input_kinds.items():
        mine = [r for r in results if r.page.source == path]
        pdf = assemble_pdfa(
            mine,
            out=capture_root / "kinds-out" / f"{kind}.pdf",
            metadata=DocumentMetadata(title=f"Input kind {kind}", identifier=f"KZ-T-{kind}"),
            options=options,
        )
        out[kind] = ProcessedPdf(mine, pdf, [SMALL_TEXT] * len(mine))
    return out


@pytest.fixture(scope="session")
def rotated_pages(tools_present: None, capture_root: Path) -> dict[int, PageResult]:
    """A small page turned by 90/180/270 degrees, processed with orientation on."""
    folder = capture_root / "rotated"
    folder.mkdir()
    files = {}
    for rotation in (90, 180, 270):
        files[rotation] = folder / f"rot{rotation}.png"
        small_page(rotation=rotation, angle=0.7).save(files[rotation], dpi=(300, 300))
    options = CaptureOptions()
    pages = load_pages(list(files.values()), options=options)
    results = process_pages(pages, work_dir=capture_root / "rotated-work", options=options)
    return {rotation: r for rotation, r in zip(files, results, strict=True)}


@pytest.fixture(scope="session")
def deskewed_page(tools_present: None, capture_root: Path) -> PageResult:
    """A small page skewed by 3°, processed with deskew on."""
    folder = capture_root / "skewed"
    folder.mkdir()
    path = folder / "skew3.png"
    small_page(angle=3.0, seed=9).save(path, dpi=(300, 300))
    options = CaptureOptions()
    return process_pages(load_pages([path], options=options), work_dir=folder / "work",
                         options=options)[0]


def _tiff_header_only(path: Path, width: int, height: int) -> Path:
    """A bitonal G4 TIFF claiming width×height pixels, built without allocating them."""
    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 1), (259, 3, 1, 4),
        (262, 3, 1, 0), (273, 4, 1, 8 + 2 + 12 * 11 + 4), (277, 3, 1, 1),
        (278, 4, 1, height), (279, 4, 1, 16), (282, 5, 1, 0), (283, 5, 1, 0),
    ]
    ifd = struct.pack("<H", len(entries))
    data_offset = 8 + 2 + 12 * len(entries) + 4
    rational_offset = data_offset + 16
    for tag, kind, count, value in entries:
        if tag in (282, 283):
            value = rational_offset
        ifd += struct.pack("<HHLL", tag, kind, count, value) if kind != 3 else struct.pack(
            "<HHLHH", tag, kind, count, value, 0
        )
    ifd += struct.pack("<L", 0)
    body = b"II*\0" + struct.pack("<L", 8) + ifd + b"\0" * 16 + struct.pack("<LL", 300, 1)
    path.write_bytes(body)
    return path


def write_hostile_inputs(folder: Path, good_png: Path) -> dict[str, tuple[Path, str]]:
    """Hostile files and the word their refusal must contain: kind → (file, reason fragment)."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, str]] = {}
    good_tiff = folder / "good.tif"
    with Image.open(good_png) as im:
        im.save(good_tiff, compression="tiff_lzw", dpi=(300, 300))
    truncated = folder / "truncated.tif"
    # A transfer cut short: the directory at the end of the file is lost.
    truncated.write_bytes(good_tiff.read_bytes()[: good_tiff.stat().st_size * 2 // 3])
    out["truncated-tiff"] = (truncated, "truncated")
    # PNGs are checked by their chunk CRCs, not decoded, in load_pages: both must still be caught.
    png = folder / "whole.png"
    with Image.open(good_png) as im:
        im.save(png, dpi=(300, 300))
    png_bytes = png.read_bytes()
    cut_png = folder / "cut.png"
    cut_png.write_bytes(png_bytes[: len(png_bytes) * 2 // 3])
    out["truncated-png"] = (cut_png, "truncated")
    flipped_png = folder / "flipped.png"
    middle = len(png_bytes) // 2
    flipped_png.write_bytes(
        png_bytes[:middle] + bytes([png_bytes[middle] ^ 0xFF]) + png_bytes[middle + 1 :]
    )
    out["damaged-png"] = (flipped_png, "damaged")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    out["zero-byte"] = (empty, "empty file")
    bomb = _tiff_header_only(folder / "huge.tif", 40000, 40000)
    out["pixel-bomb"] = (bomb, "pixels than the limit")
    encrypted = folder / "encrypted.pdf"
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(encrypted, encryption=pikepdf.Encryption(owner="o", user="secret", R=6))
    out["encrypted-pdf"] = (encrypted, "encrypted")
    scripted = folder / "scripted.pdf"
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.Root.OpenAction = pikepdf.Dictionary(
            S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('hi')")
        )
        pdf.save(scripted)
    out["javascript-pdf"] = (scripted, "JavaScript")
    text = folder / "notes.tif"
    text.write_text("этот файл не изображение\n", encoding="utf-8")
    out["not-an-image"] = (text, "not an image")
    return out


@pytest.fixture(scope="session")
def all_pdfa_reports(
    processed_batch: ProcessedPdf,
    access_pdf: Path,
    processed_kinds: dict[str, ProcessedPdf],
    capture_root: Path,
) -> dict[Path, verapdf.PdfaReport]:
    """One veraPDF run over every PDF the capture tests produced, plus one non-PDF/A control."""
    control = capture_root / "out" / "plain.pdf"
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(control)
    pdfs = [processed_batch.pdf, access_pdf, *(p.pdf for p in processed_kinds.values()), control]
    return verapdf.validate_many(pdfs, flavour="2u")


@pytest.fixture
def empty_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "store"
    folder.mkdir()
    yield folder
