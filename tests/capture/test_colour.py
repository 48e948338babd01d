"""Colour management of scans: embedded ICC profiles read, honoured, carried into the PDF/A.

Every profile here is built by the tests from published colorimetry (no profile files are
needed): an Adobe RGB (1998)-compatible matrix/TRC profile, a grey profile with a 1.8 tone
curve, and a CMYK profile whose solids are measured-looking Lab values of offset ink on coated
paper. Expected colours are computed here from those numbers with the CIE formulas, not by
LittleCMS, so the tests check the engine against colorimetry rather than against itself.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from flows._exec import verapdf
from flows.capture import (
    CaptureOptions,
    DocumentMetadata,
    PageResult,
    assemble_pdfa,
    load_pages,
    process_pages,
)
from flows.capture.colour import UNREADABLE
from flows.capture.inputs import decode_page
from flows.capture.model import PageRef
from flows.capture.pdfa import srgb_profile

Lab = tuple[float, float, float]
D50 = (0.9642, 1.0, 0.8249)
DPI = (300, 300)
SIZE = (240, 160)  # small pages: the OCR of five of them takes well under a second
PATCH = (60, 40, 180, 120)  # the box every test page paints its test colour in
CENTRE = (120, 80)

# --- ICC profiles built from their published numbers ------------------------------------------


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15f16(x) + _s15f16(y) + _s15f16(z)


def _desc(text: str) -> bytes:
    """ICC v2 textDescriptionType: ASCII, then empty Unicode and ScriptCode parts."""
    ascii_ = text.encode("ascii") + b"\0"
    return (
        b"desc\0\0\0\0" + struct.pack(">L", len(ascii_)) + ascii_
        + struct.pack(">LL", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67
    )


def _gamma_curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">LH", 1, round(gamma * 256))


def _icc(
    device_class: bytes, space: bytes, pcs: bytes, tags: Sequence[tuple[bytes, bytes]]
) -> bytes:
    """An ICC version 2.4 profile with ``tags`` (signature, data) in order."""
    table = struct.pack(">L", len(tags))
    offset = 128 + 4 + 12 * len(tags)
    body = b""
    for signature, data in tags:
        padding = b"\0" * (-(offset + len(body)) % 4)
        body += padding
        table += signature + struct.pack(">LL", offset + len(body), len(data))
        body += data
    size = 128 + len(table) + len(body)
    header = bytearray(128)
    struct.pack_into(">L", header, 0, size)
    header[8:12] = struct.pack(">L", 0x02400000)
    header[12:16] = device_class
    header[16:20] = space
    header[20:24] = pcs
    header[36:40] = b"acsp"
    header[68:80] = _xyz(*D50)[8:]
    return bytes(header) + table + body


# Adobe RGB (1998): primaries adapted to D50 as Adobe's own profile gives them, gamma 563/256.
ADOBE_COLORANTS = ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087),
                   (0.14919, 0.06322, 0.74457))
ADOBE_GAMMA = 563 / 256


def adobe_rgb_profile() -> bytes:
    red, green, blue = ADOBE_COLORANTS
    return _icc(b"mntr", b"RGB ", b"XYZ ", [
        (b"desc", _desc("Qor test Adobe RGB (1998) compatible")),
        (b"cprt", b"text\0\0\0\0No copyright, test data\0"),
        (b"wtpt", _xyz(*D50)),
        (b"rXYZ", _xyz(*red)), (b"gXYZ", _xyz(*green)), (b"bXYZ", _xyz(*blue)),
        (b"rTRC", _gamma_curve(ADOBE_GAMMA)), (b"gTRC", _gamma_curve(ADOBE_GAMMA)),
        (b"bTRC", _gamma_curve(ADOBE_GAMMA)),
    ])


def grey_gamma18_profile() -> bytes:
    return _icc(b"mntr", b"GRAY", b"XYZ ", [
        (b"desc", _desc("Qor test Gray Gamma 1.8")),
        (b"cprt", b"text\0\0\0\0No copyright, test data\0"),
        (b"wtpt", _xyz(*D50)),
        (b"kTRC", _gamma_curve(1.8)),
    ])


# CMYK solids on coated paper (relative to the paper white), in the order C, M, Y, CM, CY, MY,
# CMY: close to the FOGRA39 characterisation. Black ink darkens whatever it is printed over.
PAPER: Lab = (100.0, 0.0, 0.0)
SOLIDS: dict[tuple[int, int, int], Lab] = {
    (0, 0, 0): PAPER,
    (1, 0, 0): (55.0, -37.0, -50.0),
    (0, 1, 0): (48.0, 74.0, -3.0),
    (0, 0, 1): (89.0, -5.0, 93.0),
    (1, 1, 0): (24.0, 22.0, -46.0),
    (1, 0, 1): (50.0, -65.0, 27.0),
    (0, 1, 1): (47.0, 68.0, 48.0),
    (1, 1, 1): (23.0, 0.0, 0.0),
}
CMYK_DESCRIPTION = "Qor test CMYK coated"


def _with_black(lab: Lab) -> Lab:
    return (lab[0] * 0.17, lab[1] * 0.1, lab[2] * 0.1)


def cmyk_profile() -> bytes:
    """A CMYK input profile: a 2-point-per-ink lut16 A2B0 table from the solids to Lab."""
    grid: list[int] = []
    for c in (0, 1):  # the first input channel varies slowest
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    lab = SOLIDS[(c, m, y)]
                    lab = _with_black(lab) if k else lab
                    # lut16 Lab encoding: L 0–100 → 0–0xFF00, a/b −128–127.996 → 0–0xFFFF.
                    grid += [round(lab[0] * 0xFF00 / 100), round((lab[1] + 128) * 256),
                             round((lab[2] + 128) * 256)]
    identity = struct.pack(">9i", *(65536 if i in (0, 4, 8) else 0 for i in range(9)))
    table = (
        b"mft2\0\0\0\0" + struct.pack(">BBBB", 4, 3, 2, 0) + identity + struct.pack(">HH", 2, 2)
        + struct.pack(">8H", *([0, 0xFFFF] * 4))
        + struct.pack(f">{len(grid)}H", *grid)
        + struct.pack(">6H", *([0, 0xFFFF] * 3))
    )
    # The same table for the perceptual (A2B0) and colorimetric (A2B1) intents, as profiles
    # without gamut mapping have; LittleCMS finds the black point for BPC through A2B1.
    return _icc(b"scnr", b"CMYK", b"Lab ", [
        (b"desc", _desc(CMYK_DESCRIPTION)),
        (b"cprt", b"text\0\0\0\0No copyright, test data\0"),
        (b"wtpt", _xyz(*D50)),
        (b"A2B0", table),
        (b"A2B1", table),
    ])


def damaged_profile() -> bytes:
    """A profile whose header is intact but whose tag table is overwritten (a bad transfer)."""
    good = adobe_rgb_profile()
    return good[:128] + b"\xff" * (len(good) - 128)


# --- colorimetry (CIE formulas, independent of LittleCMS) --------------------------------------


def _lab_from_xyz(xyz: Sequence[float]) -> Lab:
    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    fx, fy, fz = (f(v / w) for v, w in zip(xyz, D50, strict=True))
    return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))


def _matrix(m: Sequence[Sequence[float]], v: Sequence[float]) -> tuple[float, float, float]:
    x, y, z = (sum(a * b for a, b in zip(row, v, strict=True)) for row in m)
    return x, y, z


_SRGB_TO_XYZ_D65 = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750),
                    (0.0193339, 0.1191920, 0.9503041))
_BRADFORD_D65_TO_D50 = ((1.0478112, 0.0228866, -0.0501270), (0.0295424, 0.9904844, -0.0170491),
                        (-0.0092345, 0.0150436, 0.7521316))


def srgb_to_lab(rgb: Sequence[int]) -> Lab:
    def linear(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    xyz_d65 = _matrix(_SRGB_TO_XYZ_D65, [linear(v) for v in rgb])
    return _lab_from_xyz(_matrix(_BRADFORD_D65_TO_D50, xyz_d65))


def adobe_to_lab(rgb: Sequence[int]) -> Lab:
    linear = [(v / 255) ** ADOBE_GAMMA for v in rgb]
    columns = list(zip(*ADOBE_COLORANTS, strict=True))  # rows X, Y, Z over R, G, B
    return _lab_from_xyz(_matrix(columns, linear))


def delta_e(a: Lab, b: Lab) -> float:
    """CIE 1976 colour difference (ΔE*ab): 1 is about the smallest difference people see."""
    return float(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5)


# --- test scans --------------------------------------------------------------------------------

PAPER_RGB = (236, 232, 222)
ADOBE_PATCH = (100, 160, 80)  # a green inside sRGB's gamut, for which sRGB needs other numbers
CYAN_TINT = (128, 0, 0, 0)  # 50 % cyan, no other ink
FOUR_INKS = (255, 255, 255, 255)
BLACK_BOX = (200, 10, 230, 40)
BLACK_AT = (215, 25)


def _patched(mode: str, paper: object, patch: object) -> Image.Image:
    image = Image.new(mode, SIZE, paper)  # type: ignore[arg-type]
    image.paste(patch, PATCH)  # type: ignore[arg-type]
    return image


@dataclass(frozen=True)
class ColourScans:
    """Generated scans carrying ICC profiles: kind → file, and the profiles they carry."""

    files: dict[str, Path]
    adobe: bytes
    grey: bytes
    cmyk: bytes


def _jp2_with_profile(image: Image.Image, path: Path, icc: bytes) -> Path:
    """A JP2 whose colour specification box carries ``icc`` (method 2), as scanners write it.

    Pillow writes a JP2 with an enumerated sRGB/grey box; the box is rewritten here.
    """
    buffer = io.BytesIO()
    image.save(buffer, "JPEG2000", irreversible=False)
    data = buffer.getvalue()
    out = b""
    pos = 0
    while pos < len(data):
        length, kind = struct.unpack(">L4s", data[pos : pos + 8])
        length = length or len(data) - pos
        if kind == b"jp2h":
            inner, sub = b"", pos + 8
            while sub < pos + length:
                sub_length, sub_kind = struct.unpack(">L4s", data[sub : sub + 8])
                if sub_kind == b"colr":
                    content = bytes([2, 0, 0]) + icc
                    inner += struct.pack(">L4s", 8 + len(content), b"colr") + content
                else:
                    inner += data[sub : sub + sub_length]
                sub += sub_length
            out += struct.pack(">L4s", 8 + len(inner), b"jp2h") + inner
        else:
            out += data[pos : pos + length]
        pos += length
    path.write_bytes(out)
    return path


@pytest.fixture(scope="session")
def colour_scans(capture_root: Path) -> ColourScans:
    folder = capture_root / "colour"
    folder.mkdir()
    adobe, grey, cmyk = adobe_rgb_profile(), grey_gamma18_profile(), cmyk_profile()
    files: dict[str, Path] = {}
    rgb_page = _patched("RGB", PAPER_RGB, ADOBE_PATCH)
    files["adobe-png"] = folder / "01-adobe.png"
    rgb_page.save(files["adobe-png"], dpi=DPI, icc_profile=adobe)
    files["adobe-jpeg"] = folder / "02-adobe.jpg"
    rgb_page.save(files["adobe-jpeg"], quality=92, dpi=DPI, icc_profile=adobe)
    files["grey-gamma18"] = folder / "03-grey18.png"
    _patched("L", 230, 90).save(files["grey-gamma18"], dpi=DPI, icc_profile=grey)
    files["cmyk-profiled"] = folder / "04-cmyk.tif"
    cmyk_page = _patched("CMYK", (0, 0, 0, 0), CYAN_TINT)
    cmyk_page.paste(FOUR_INKS, BLACK_BOX)
    cmyk_page.save(files["cmyk-profiled"], compression="tiff_lzw", dpi=DPI, icc_profile=cmyk)
    files["damaged-profile"] = folder / "05-damaged.png"
    rgb_page.save(files["damaged-profile"], dpi=DPI, icc_profile=damaged_profile())
    return ColourScans(files, adobe, grey, cmyk)


@dataclass(frozen=True)
class ColourPdfs:
    """The colour scans processed once, assembled per kind (archival) and all together (access)."""

    results: dict[str, PageResult]
    archival: dict[str, Path]
    access: Path
    reports: dict[Path, verapdf.PdfaReport]


@pytest.fixture(scope="session")
def colour_pdfs(tools_present: None, colour_scans: ColourScans, capture_root: Path) -> ColourPdfs:
    # Orientation and deskew off: these pages hold colour patches, not text (one OCR per page).
    options = CaptureOptions(orientation=False, deskew=False)
    files = colour_scans.files
    pages = load_pages(list(files.values()), options=options)
    done = process_pages(pages, work_dir=capture_root / "colour-work", options=options)
    results = {kind: r for kind, r in zip(files, done, strict=True)}
    out = capture_root / "colour-out"
    groups = {
        "wide-gamut": ["adobe-png", "adobe-jpeg"],
        "grey-gamma18": ["grey-gamma18"],
        "cmyk-profiled": ["cmyk-profiled"],
        "damaged-profile": ["damaged-profile"],
    }
    archival = {
        name: assemble_pdfa(
            [results[k] for k in kinds], out=out / f"{name}.pdf",
            metadata=DocumentMetadata(title=f"Colour {name}", identifier=f"KZ-C-{name}"),
            options=options,
        )
        for name, kinds in groups.items()
    }
    access = assemble_pdfa(
        done, out=out / "access.pdf",
        metadata=DocumentMetadata(title="Colour access copy", identifier="KZ-C-access"),
        options=CaptureOptions(profile="access"),
    )
    reports = verapdf.validate_many([*archival.values(), access], flavour="2u")
    return ColourPdfs(results, archival, access, reports)


def _pixels(pdf_path: Path) -> list[Image.Image]:
    with pikepdf.open(pdf_path) as pdf:
        images = []
        for page in pdf.pages:
            stream = page.Resources.XObject.Im0
            assert isinstance(stream, pikepdf.Stream)
            image = pikepdf.PdfImage(stream).as_pil_image()
            image.load()
            images.append(image)
        return images


# --- decoding: what the engine reads from a scan ----------------------------------------------


def test_cmyk_with_profile_is_converted_colorimetrically(colour_scans: ColourScans) -> None:
    decoded = decode_page(PageRef(colour_scans.files["cmyk-profiled"], 0, "c"),
                          options=CaptureOptions())
    assert decoded.conversions == (f"CMYK→sRGB (ICC: {CMYK_DESCRIPTION})",)
    assert decoded.icc_profile is None  # the pixels are sRGB now
    # 50 % cyan: the profile's table puts it half-way between paper and the cyan solid in Lab.
    t = CYAN_TINT[0] / 255
    target = tuple(p + t * (c - p) for p, c in zip(PAPER, SOLIDS[(1, 0, 0)], strict=True))
    got = decoded.image.getpixel(CENTRE)
    assert isinstance(got, tuple)
    # Within ΔE 2 (measured 0.5): LittleCMS's 8-bit rounding and optimised tables, plus black
    # point compensation (this profile's 4-ink black is L* ≈ 4; BPC lifts a mid tint by ~0.3).
    assert delta_e(srgb_to_lab(got), target) < 2.0, (got, target)  # type: ignore[arg-type]
    # Pillow's naive CMYK→RGB gives (127, 255, 255) here, ΔE ≈ 28 from the print's colour.
    naive = Image.new("CMYK", (1, 1), CYAN_TINT).convert("RGB").getpixel((0, 0))
    assert delta_e(srgb_to_lab(naive), target) > 10  # type: ignore[arg-type]
    # Unprinted paper stays white (relative colorimetric: the paper is the white) and the
    # darkest ink is screen black (black point compensation; without it (14, 14, 14)).
    assert decoded.image.getpixel((2, 2)) == (255, 255, 255)
    assert max(decoded.image.getpixel(BLACK_AT)) <= 2  # type: ignore[arg-type]


def test_cmyk_without_usable_profile_keeps_the_plain_conversion(tmp_path: Path) -> None:
    page = _patched("CMYK", (0, 0, 0, 0), CYAN_TINT)
    damaged = tmp_path / "damaged.tif"
    page.save(damaged, dpi=DPI, icc_profile=damaged_profile())
    rgb_profile = tmp_path / "rgb-profile.tif"
    page.save(rgb_profile, dpi=DPI, icc_profile=adobe_rgb_profile())
    options = CaptureOptions()
    first = decode_page(PageRef(damaged, 0, "d"), options=options)
    assert first.conversions == (UNREADABLE, "CMYK→RGB")
    assert first.image.tobytes() == page.convert("RGB").tobytes()
    second = decode_page(PageRef(rgb_profile, 0, "r"), options=options)
    assert second.conversions == (
        "ICC profile ignored: it is for RGB, the page is CMYK", "CMYK→RGB"
    )
    assert second.icc_profile is None


def test_damaged_profile_is_recorded_and_ignored(colour_scans: ColourScans) -> None:
    path = colour_scans.files["damaged-profile"]
    decoded = decode_page(PageRef(path, 0, "d"), options=CaptureOptions())
    assert decoded.conversions == (UNREADABLE,)
    assert decoded.icc_profile is None
    with Image.open(path) as original:
        assert decoded.image.tobytes() == original.convert("RGB").tobytes()


def test_srgb_profile_needs_no_colour_space_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "srgb.png"
    _patched("RGB", PAPER_RGB, ADOBE_PATCH).save(path, dpi=DPI, icc_profile=srgb_profile())
    decoded = decode_page(PageRef(path, 0, "s"), options=CaptureOptions())
    assert decoded.icc_profile is None
    assert decoded.conversions == ()


def test_jpeg2000_profile_is_read(colour_scans: ColourScans, tmp_path: Path) -> None:
    path = _jp2_with_profile(_patched("RGB", PAPER_RGB, ADOBE_PATCH), tmp_path / "scan.jp2",
                             colour_scans.adobe)
    decoded = decode_page(PageRef(path, 0, "j"), options=CaptureOptions(dpi_fallback=300))
    assert decoded.icc_profile == colour_scans.adobe
    assert decoded.conversions == ()


def _pdf_with_iccbased_image(path: Path, image: Image.Image, icc: bytes) -> Path:
    """A scanner-style PDF: one Flate RGB image in an /ICCBased space filling a 300 dpi page."""
    pdf = pikepdf.new()
    profile = pikepdf.Stream(pdf, icc)
    profile.N = 3
    xobj = pikepdf.Stream(pdf, image.tobytes())
    xobj.Type, xobj.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    xobj.Width, xobj.Height, xobj.BitsPerComponent = image.width, image.height, 8
    xobj.ColorSpace = pikepdf.Array([pikepdf.Name.ICCBased, pdf.make_indirect(profile)])
    w, h = image.width * 72 / 300, image.height * 72 / 300
    pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, w, h],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=xobj)),
        Contents=pikepdf.Stream(pdf, f"q {w} 0 0 {h} 0 0 cm /Im0 Do Q".encode()),
    )))
    pdf.save(path)
    return path


def test_scanner_pdf_image_keeps_its_iccbased_profile(
    colour_scans: ColourScans, tmp_path: Path
) -> None:
    page = _patched("RGB", PAPER_RGB, ADOBE_PATCH)
    good = _pdf_with_iccbased_image(tmp_path / "good.pdf", page, colour_scans.adobe)
    decoded = decode_page(PageRef(good, 0, "p"), options=CaptureOptions())
    assert decoded.icc_profile == colour_scans.adobe
    assert decoded.conversions == ()  # extracted losslessly, not rasterised
    assert decoded.image.tobytes() == page.tobytes()
    bad = _pdf_with_iccbased_image(tmp_path / "bad.pdf", page, damaged_profile())
    decoded = decode_page(PageRef(bad, 0, "p"), options=CaptureOptions())
    assert decoded.icc_profile is None
    assert decoded.conversions == (f"rasterised at 300 dpi ({UNREADABLE})",)


# --- the PDF/A: what a reader of the archive sees ---------------------------------------------


def test_every_colour_pdf_passes_verapdf(colour_pdfs: ColourPdfs) -> None:
    assert set(colour_pdfs.reports) == {*colour_pdfs.archival.values(), colour_pdfs.access}
    for pdf, report in colour_pdfs.reports.items():
        assert report.compliant, (pdf.name, report.failures)


def test_wide_gamut_page_keeps_pixels_and_embeds_its_profile(
    colour_pdfs: ColourPdfs, colour_scans: ColourScans
) -> None:
    png, jpeg = (colour_pdfs.results[k] for k in ("adobe-png", "adobe-jpeg"))
    assert png.icc_profile_path is not None and jpeg.icc_profile_path is not None
    assert png.icc_profile_path.read_bytes() == colour_scans.adobe
    pdf_path = colour_pdfs.archival["wide-gamut"]
    with pikepdf.open(pdf_path) as pdf:
        images = [page.Resources.XObject.Im0 for page in pdf.pages]
        spaces = [image.ColorSpace for image in images]
        for space in spaces:
            assert space[0] == pikepdf.Name.ICCBased
            assert space[1].read_bytes() == colour_scans.adobe
            assert space[1].N == 3 and space[1].Alternate == pikepdf.Name.DeviceRGB
        # One profile in the file, shared by both pages.
        assert spaces[0][1].objgen == spaces[1][1].objgen
        # The scanner's JPEG went in untouched.
        assert images[1].Filter == pikepdf.Name.DCTDecode
        assert images[1].read_raw_bytes() == colour_scans.files["adobe-jpeg"].read_bytes()
    with Image.open(colour_scans.files["adobe-png"]) as original:
        assert _pixels(pdf_path)[0].tobytes() == original.convert("RGB").tobytes()


def test_grey_page_with_its_own_tone_curve_embeds_it(
    colour_pdfs: ColourPdfs, colour_scans: ColourScans
) -> None:
    with pikepdf.open(colour_pdfs.archival["grey-gamma18"]) as pdf:
        space = pdf.pages[0].Resources.XObject.Im0.ColorSpace
        assert space[0] == pikepdf.Name.ICCBased
        assert space[1].read_bytes() == colour_scans.grey
        assert space[1].N == 1 and space[1].Alternate == pikepdf.Name.DeviceGray
    with Image.open(colour_scans.files["grey-gamma18"]) as original:
        assert _pixels(colour_pdfs.archival["grey-gamma18"])[0].tobytes() == original.tobytes()


def test_converted_and_unprofiled_pages_are_plain_srgb(colour_pdfs: ColourPdfs) -> None:
    for kind in ("cmyk-profiled", "damaged-profile"):
        assert colour_pdfs.results[kind].icc_profile_path is None
        with pikepdf.open(colour_pdfs.archival[kind]) as pdf:
            assert pdf.pages[0].Resources.XObject.Im0.ColorSpace == pikepdf.Name.DeviceRGB
    assert colour_pdfs.results["damaged-profile"].preparation.conversions == (UNREADABLE,)
    assert colour_pdfs.results["cmyk-profiled"].preparation.conversions == (
        f"CMYK→sRGB (ICC: {CMYK_DESCRIPTION})",
    )


def test_access_copy_is_converted_to_srgb(colour_pdfs: ColourPdfs) -> None:
    with pikepdf.open(colour_pdfs.access) as pdf:
        images = [page.Resources.XObject.Im0 for page in pdf.pages]
        assert all(isinstance(im.ColorSpace, pikepdf.Name) for im in images)  # no ICCBased
        assert len([o for o in pdf.objects if isinstance(o, pikepdf.Stream) and "/N" in o]) == 1
    adobe_page = _pixels(colour_pdfs.access)[0]
    got = adobe_page.convert("RGB").getpixel((CENTRE[0] * 2 // 3, CENTRE[1] * 2 // 3))
    assert isinstance(got, tuple)
    target = adobe_to_lab(ADOBE_PATCH)
    # The access JPEG (quality 45, 200 dpi) shows the colour the Adobe RGB numbers mean, within
    # ΔE 4 on a flat patch; the same numbers read as sRGB would be ΔE ≈ 14 off.
    assert delta_e(srgb_to_lab(got), target) < 4.0, (got, target)
    assert delta_e(srgb_to_lab(ADOBE_PATCH), target) > 10
