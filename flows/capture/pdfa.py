"""Assembling one PDF/A-2u per item from prepared pages and their OCR (pikepdf).

* Page size comes from each image's resolution; the image fills the page.
* Archival profile: lossless page images (PNG data passed through as Flate with PNG predictors,
  no re-encoding) or the scanner's JPEG unchanged. Access profile: each page by the measured
  rule of :mod:`flows.capture.access` — text pages bitonal (Group 4), pictures and colour JPEG
  at a set quality and resolution.
* Bitonal (1-bit) pages in either profile: CCITT Group 4 (lossless, the archival norm for
  black-and-white scans, several times smaller than Flate on clean pages).
* Invisible text (rendering mode 3) per word, placed on the word's box and baseline, in a tiny
  embedded "glyphless" TrueType font: every character code maps to one empty glyph, and a
  ToUnicode CMap maps each code back to exactly the character Tesseract read, so text extracted
  from the PDF equals the OCR text (no "№"→"No" folding).
* XMP with Dublin Core and ``pdfaid:part=2``/``conformance=U``; an sRGB output intent.
* Colour: a page whose scan carried a non-sRGB ICC profile (``PageResult.icc_profile_path``)
  keeps its pixels in the archival profile, and its image's colour space is ``/ICCBased`` with
  that profile (``/N``, and ``/Alternate`` DeviceGray/DeviceRGB for readers without colour
  management); each distinct profile is embedded once per PDF. PDF/A-2 allows ICCBased images
  under the sRGB output intent. The access profile converts such pages to sRGB (LittleCMS,
  relative colorimetric with black point compensation) before JPEG encoding: an access copy
  shows right in every viewer, including those that ignore ICC profiles, and carries no
  profiles. Every other image is DeviceGray/DeviceRGB, meaning sRGB under the output intent.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pikepdf
from PIL import Image, ImageCms

from flows.capture import access, colour
from flows.capture.access import AccessEncoding
from flows.capture.model import CaptureOptions, DocumentMetadata, PageResult
from flows.capture.ocr import PageText, parse_hocr

_GLYPH_ADVANCE = 500  # font units (of 1000) of the single glyph; must match /DW below


# --- the glyphless font --------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    words: tuple[int, ...] = struct.unpack(f">{len(padded) // 4}L", padded)
    return sum(words) & 0xFFFFFFFF


def _name_table(family: str) -> bytes:
    names = {1: family, 2: "Regular", 3: f"Qor:{family}", 4: family, 5: "Version 1.0", 6: family}
    records = b""
    strings = b""
    for name_id, value in names.items():
        raw = value.encode("utf-16-be")
        records += struct.pack(">6H", 3, 1, 0x409, name_id, len(raw), len(strings))
        strings += raw
    header = struct.pack(">3H", 0, len(names), 6 + 12 * len(names))
    return header + records + strings


@cache
def glyphless_font() -> bytes:
    """A minimal TrueType font with two empty glyphs (.notdef and one 500-unit-wide blank).

    Built here rather than shipped so its provenance is plain: nothing in it is drawn.
    """
    units = 1000
    head = struct.pack(
        ">LLLLHHqqhhhhHHhhh",
        0x00010000, 0x00010000, 0, 0x5F0F3CF5, 0b1011, units,
        0, 0,  # created, modified (1904 epoch; zero keeps the bytes reproducible)
        0, -200, _GLYPH_ADVANCE, 800,  # xMin, yMin, xMax, yMax
        0, 8, 2, 0, 0,  # macStyle, lowestRecPPEM, fontDirectionHint, indexToLocFormat, glyphData
    )
    hhea = struct.pack(
        ">LhhhHhhhhhhhhhhhH",
        0x00010000, 800, -200, 0, _GLYPH_ADVANCE, 0, 0, _GLYPH_ADVANCE, 1, 0, 0,
        0, 0, 0, 0, 0, 2,
    )
    maxp = struct.pack(">LHHHHHHHHHHHHHH", 0x00010000, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)
    hmtx = struct.pack(">HhHh", _GLYPH_ADVANCE, 0, _GLYPH_ADVANCE, 0)
    loca = struct.pack(">HHH", 0, 0, 0)
    glyf = b"\0\0\0\0"
    # cmap format 4: U+0020 → glyph 1, and the required final 0xFFFF segment.
    cmap_sub = struct.pack(
        ">7H2HH2H2H2H",
        4, 32, 0, 4, 4, 1, 0,  # format, length, language, segCountX2, searchRange, entrySel, shift
        0x0020, 0xFFFF,  # endCode
        0,  # reservedPad
        0x0020, 0xFFFF,  # startCode
        (1 - 0x0020) & 0xFFFF, 1,  # idDelta
        0, 0,  # idRangeOffset
    )
    cmap = struct.pack(">HHHHL", 0, 1, 3, 1, 12) + cmap_sub
    os2 = struct.pack(
        ">HhHHH10hh10s4L4sHHHhhhHHLLhhHHH",
        4, _GLYPH_ADVANCE, 400, 5, 0,
        650, 700, 0, 140, 650, 700, 0, 480, 50, 250,
        0, b"\0" * 10, 0, 0, 0, 0, b"QOR ", 0x40, 0x20, 0xFFFF,
        800, -200, 0, 800, 200, 1, 0, 500, 700, 0, 0x20, 1,
    )
    post = struct.pack(">LLhhLLLLL", 0x00030000, 0, -100, 50, 1, 0, 0, 0, 0)
    tables = {
        b"OS/2": os2, b"cmap": cmap, b"glyf": glyf, b"head": head, b"hhea": hhea,
        b"hmtx": hmtx, b"loca": loca, b"maxp": maxp, b"name": _name_table("QorGlyphLess"),
        b"post": post,
    }
    count = len(tables)
    entry_selector = count.bit_length() - 1
    search_range = (1 << entry_selector) * 16
    offset = 12 + 16 * count
    directory = struct.pack(">LHHHH", 0x00010000, count, search_range, entry_selector,
                            count * 16 - search_range)
    body = b""
    for tag in sorted(tables):
        data = tables[tag]
        directory += struct.pack(">4sLLL", tag, _checksum(data), offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    font = bytearray(directory + body)
    adjustment = (0xB1B0AFBA - _checksum(bytes(font))) & 0xFFFFFFFF
    head_offset = offset + sum(
        len(tables[t]) + (-len(tables[t]) % 4) for t in sorted(tables) if t < b"head"
    )
    font[head_offset + 8 : head_offset + 12] = struct.pack(">L", adjustment)
    return bytes(font)


def _utf16_hex(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def _to_unicode_cmap(codes: dict[str, int]) -> bytes:
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<0000> <FFFF>",
        "endcodespacerange",
    ]
    items = sorted(codes.items(), key=lambda kv: kv[1])
    for start in range(0, len(items), 100):
        chunk = items[start : start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines.extend(f"<{code:04X}> <{_utf16_hex(char)}>" for char, code in chunk)
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return ("\n".join(lines) + "\n").encode("ascii")


def _text_font(pdf: pikepdf.Pdf, codes: dict[str, int]) -> pikepdf.Dictionary:
    top = max(codes.values(), default=0)
    # Every code maps to glyph 1 (the blank), never to .notdef (PDF/A 6.2.11.8).
    cid_to_gid = pikepdf.Stream(pdf, b"\x00\x01" * (top + 1))
    font_file = pikepdf.Stream(pdf, glyphless_font())
    font_file.Length1 = len(glyphless_font())
    descriptor = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.FontDescriptor,
            FontName=pikepdf.Name("/QorGlyphLess"),
            Flags=5,  # fixed pitch + symbolic
            FontBBox=[0, -200, _GLYPH_ADVANCE, 800],
            ItalicAngle=0,
            Ascent=800,
            Descent=-200,
            CapHeight=700,
            StemV=80,
            FontFile2=font_file,
        )
    )
    cid_font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.CIDFontType2,
            BaseFont=pikepdf.Name("/QorGlyphLess"),
            CIDSystemInfo=pikepdf.Dictionary(
                Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"), Supplement=0
            ),
            FontDescriptor=descriptor,
            DW=_GLYPH_ADVANCE,
            CIDToGIDMap=pdf.make_indirect(cid_to_gid),
        )
    )
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type0,
            BaseFont=pikepdf.Name("/QorGlyphLess"),
            Encoding=pikepdf.Name("/Identity-H"),
            DescendantFonts=[cid_font],
            ToUnicode=pdf.make_indirect(pikepdf.Stream(pdf, _to_unicode_cmap(codes))),
        )
    )


# --- page images ----------------------------------------------------------------------------

# The colour space of a page image with this many components (1 grey, 3 RGB).
SpaceFor = Callable[[int], pikepdf.Object]


def _device_space(components: int) -> pikepdf.Name:
    return pikepdf.Name.DeviceGray if components == 1 else pikepdf.Name.DeviceRGB


def _page_profile(page: PageResult) -> colour.IccProfile | None:
    """The page's ICC profile, checked; ``None`` for an sRGB (or grey, or bitonal) page."""
    if page.icc_profile_path is None:
        return None
    data = page.icc_profile_path.read_bytes()
    profile = colour.read_profile(data)
    if profile is None or not profile.pdfa_embeddable:
        raise ValueError(
            f"page {page.page.label}: the ICC profile at {page.icc_profile_path} cannot be "
            "embedded in a PDF/A (damaged, or of a kind PDF/A does not allow)"
        )
    return profile


class _ColourSpaces:
    """Page images' colour spaces; each distinct ICC profile embedded once in the PDF."""

    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self._pdf = pdf
        self._streams: dict[bytes, pikepdf.Object] = {}

    def of(self, page: PageResult) -> SpaceFor:
        """The colour space for ``page``'s image, given its number of components."""
        profile = _page_profile(page)

        def space(components: int) -> pikepdf.Object:
            device = _device_space(components)
            if profile is None:
                return device
            if profile.components != components:
                raise ValueError(
                    f"page {page.page.label}: its ICC profile is {profile.colour_space}, its "
                    f"image has {components} colour component(s)"
                )
            stream = self._streams.get(profile.data)
            if stream is None:
                icc = pikepdf.Stream(self._pdf, profile.data)
                icc.N = components
                icc.Alternate = device
                stream = self._pdf.make_indirect(icc)
                self._streams[profile.data] = stream
            return pikepdf.Array([pikepdf.Name.ICCBased, stream])

        return space


def _png_chunks(data: bytes) -> dict[bytes, list[bytes]]:
    chunks: dict[bytes, list[bytes]] = {}
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">L", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunks.setdefault(kind, []).append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return chunks


def _png_xobject(pdf: pikepdf.Pdf, path: Path, space: SpaceFor) -> pikepdf.Stream:
    """Embed a PNG's compressed data as is (Flate + PNG predictors): lossless, no re-encoding.

    A 1-bit PNG goes in as Group 4 instead (lossless too, and much smaller).
    """
    data = path.read_bytes()
    chunks = _png_chunks(data)
    width, height, depth, kind, _c, _f, interlace = struct.unpack(">LLBBBBB", chunks[b"IHDR"][0])
    if kind == 0 and depth == 1:
        with Image.open(path) as im:
            im.load()
            return _g4_xobject(pdf, im)
    if interlace or kind not in (0, 2):  # PNG colour type: 0 grey, 2 RGB
        with Image.open(path) as im:
            return _flate_xobject(pdf, im.convert("RGB" if kind != 0 else "L"), space)
    colours = 1 if kind == 0 else 3
    stream = pikepdf.Stream(pdf, b"".join(chunks[b"IDAT"]))
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width = width
    stream.Height = height
    stream.BitsPerComponent = depth
    stream.ColorSpace = space(colours)
    stream.Filter = pikepdf.Name.FlateDecode
    stream.DecodeParms = pikepdf.Dictionary(
        Predictor=15, Colors=colours, BitsPerComponent=depth, Columns=width
    )
    return stream


# Byte table swapping every bit: Pillow's 1-bit rows hold 1 = white, G4 codes ink as black runs.
_INVERT_BITS = bytes(255 - i for i in range(256))
_STRIP_OFFSETS, _ROWS_PER_STRIP, _STRIP_BYTE_COUNTS = 273, 278, 279


def g4_encode(image: Image.Image) -> bytes:
    """CCITT Group 4 (T.6) data of a 1-bit image, as PDF's CCITTFaxDecode reads it.

    The encoder is libtiff (through Pillow): the page is written as a one-strip G4 TIFF and the
    strip is taken out. The pixels are inverted first so ink is coded as black runs and paper as
    white runs (what the code tables are made for, and PDF's default ``BlackIs1 false``).
    """
    if image.mode != "1":
        raise ValueError(f"Group 4 takes 1-bit images, not {image.mode}")
    inked = Image.frombytes("1", image.size, image.tobytes().translate(_INVERT_BITS))
    buffer = io.BytesIO()
    inked.save(buffer, "TIFF", compression="group4", tiffinfo={_ROWS_PER_STRIP: image.height})
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as tiff:
        tags = tiff.tag_v2  # type: ignore[attr-defined,unused-ignore]  # Pillow 12 types it, 13 does not
        offsets, counts = tags[_STRIP_OFFSETS], tags[_STRIP_BYTE_COUNTS]
    if len(offsets) != 1:
        raise RuntimeError(f"libtiff wrote {len(offsets)} strips; one was asked for")
    return data[offsets[0] : offsets[0] + counts[0]]


def _g4_xobject(pdf: pikepdf.Pdf, image: Image.Image) -> pikepdf.Stream:
    """A 1-bit page as CCITT Group 4 (K −1), the archival norm for bitonal scans: lossless."""
    stream = pikepdf.Stream(pdf, g4_encode(image))
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width, stream.Height = image.size
    stream.BitsPerComponent = 1
    stream.ColorSpace = pikepdf.Name.DeviceGray
    stream.Filter = pikepdf.Name.CCITTFaxDecode
    # BlackIs1 false (the default, left out): decoded 0 bits are black, as DeviceGray reads them.
    stream.DecodeParms = pikepdf.Dictionary(K=-1, Columns=image.width, Rows=image.height)
    return stream


def _flate_xobject(pdf: pikepdf.Pdf, image: Image.Image, space: SpaceFor) -> pikepdf.Stream:
    if image.mode == "1":
        return _g4_xobject(pdf, image)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    bits = 8
    stream = pikepdf.Stream(pdf, zlib.compress(image.tobytes(), 6))
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width, stream.Height = image.size
    stream.BitsPerComponent = bits
    stream.ColorSpace = space(1 if image.mode == "L" else 3)
    stream.Filter = pikepdf.Name.FlateDecode
    return stream


def _jpeg_xobject(pdf: pikepdf.Pdf, data: bytes, space: SpaceFor) -> pikepdf.Stream:
    with Image.open(io.BytesIO(data)) as im:
        width, height, mode = im.width, im.height, im.mode
    stream = pikepdf.Stream(pdf, data)
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width = width
    stream.Height = height
    stream.BitsPerComponent = 8
    stream.ColorSpace = space(1 if mode == "L" else 3)
    stream.Filter = pikepdf.Name.DCTDecode
    return stream


def _image_xobject(
    pdf: pikepdf.Pdf, page: PageResult, options: CaptureOptions, spaces: _ColourSpaces
) -> tuple[pikepdf.Stream, AccessEncoding | None]:
    suffix = page.image_path.suffix.lower()
    if options.profile == "archival":
        space = spaces.of(page)
        if suffix == ".png":
            return _png_xobject(pdf, page.image_path, space), None
        if suffix in (".jpg", ".jpeg"):
            return _jpeg_xobject(pdf, page.image_path.read_bytes(), space), None
        with Image.open(page.image_path) as im:
            return _flate_xobject(pdf, im, space), None
    profile = _page_profile(page)
    with Image.open(page.image_path) as im:
        im.load()
        image = im if im.mode in ("1", "L", "RGB") else im.convert("RGB")
        if profile is not None:
            # Access copies are sRGB throughout: right in every viewer, no profile to carry.
            image = colour.to_srgb(image, profile)
        # The per-page rule (flows.capture.access): text pages bitonal, pictures JPEG.
        encoding = access.choose_encoding(
            image, dpi=page.dpi, text_pages=options.access_text_pages,
            jpeg_quality=options.access_jpeg_quality, max_dpi=options.access_max_dpi)
        if image.mode == "1":
            return _g4_xobject(pdf, image), encoding
        if encoding.codec == "CCITT G4":
            return _g4_xobject(pdf, access.bitonal(image, dpi=page.dpi, encoding=encoding)), \
                encoding
        if suffix in (".jpg", ".jpeg") and page.dpi <= encoding.dpi and profile is None:
            return _jpeg_xobject(pdf, page.image_path.read_bytes(), _device_space), \
                dataclasses.replace(encoding, quality=None)
        image = access.resample(image, dpi=page.dpi, to_dpi=encoding.dpi)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=encoding.quality, optimize=True)
        return _jpeg_xobject(pdf, buffer.getvalue(), _device_space), encoding


# --- text layer -----------------------------------------------------------------------------


def _encode(text: str, codes: dict[str, int]) -> str:
    return "".join(f"{codes[ch]:04X}" for ch in text)


def _text_layer(text: PageText, *, dpi: float, height_px: int, codes: dict[str, int]) -> str:
    """Content-stream operators drawing every word invisibly (Tr 3) on its box and baseline."""
    k = 72.0 / dpi
    ops: list[str] = ["BT", "3 Tr"]
    for line in text.lines:
        lx0, ly0, _lx1, ly1 = line.bbox
        slope, offset = line.baseline
        size_px = max(1.0, line.x_size or (ly1 - ly0) * 0.75)
        size_pt = size_px * k
        ops.append(f"/Fq {size_pt:.2f} Tf")
        words = line.words
        for i, word in enumerate(words):
            wx0, _wy0, wx1, _wy1 = word.bbox
            base_y = ly1 + offset + slope * (wx0 - lx0)
            if i + 1 < len(words):
                run = word.text + " "
                target_px = max(1.0, words[i + 1].bbox[0] - wx0)
            else:
                run = word.text
                target_px = max(1.0, wx1 - wx0)
            natural_pt = len(run) * _GLYPH_ADVANCE / 1000.0 * size_pt
            scale = 100.0 * (target_px * k) / natural_pt if natural_pt else 100.0
            x_pt = wx0 * k
            y_pt = (height_px - base_y) * k
            ops.append(
                f"{scale:.3f} Tz 1 0 0 1 {x_pt:.2f} {y_pt:.2f} Tm <{_encode(run, codes)}> Tj"
            )
    ops.append("ET")
    return "\n".join(ops)


# --- metadata -------------------------------------------------------------------------------


@cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile made by LittleCMS (through Pillow) for the output intent."""
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def _pdf_date(when: datetime) -> str:
    return when.strftime("D:%Y%m%d%H%M%SZ")


def _set_metadata(pdf: pikepdf.Pdf, metadata: DocumentMetadata, now: datetime) -> None:
    iso = now.replace(microsecond=0).isoformat()
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=True) as meta:
        meta["pdfaid:part"] = "2"
        meta["pdfaid:conformance"] = "U"
        meta["dc:title"] = metadata.title
        meta["dc:identifier"] = metadata.identifier
        if metadata.creator:
            meta["dc:creator"] = [metadata.creator]
        if metadata.date:
            meta["dc:date"] = [metadata.date]
        if metadata.language:
            meta["dc:language"] = {metadata.language}
        meta["dc:format"] = "application/pdf"
        meta["pdf:Producer"] = f"Qor (pikepdf {pikepdf.__version__})"
        meta["xmp:CreatorTool"] = "Qor digitisation pipeline"
        meta["xmp:CreateDate"] = iso
        meta["xmp:ModifyDate"] = iso
        meta["xmp:MetadataDate"] = iso


def _code_table(texts: Sequence[PageText]) -> dict[str, int]:
    chars: set[str] = {" "}
    for text in texts:
        for word in text.words:
            chars.update(word.text)
    # Codes from 1; 0 is left unused so no text ever references CID 0.
    return {ch: i for i, ch in enumerate(sorted(chars), 1)}


def assemble_pdfa(
    pages: Sequence[PageResult],
    *,
    out: Path,
    metadata: DocumentMetadata,
    options: CaptureOptions,
) -> Path:
    """Write one PDF/A-2u at ``out`` from ``pages`` (in order) and return ``out``.

    The file is written next to ``out`` and renamed into place, so a crash never leaves a partial
    PDF under the final name. Validate it with :func:`flows._exec.verapdf.validate`.
    """
    return assemble_pdfa_encoded(pages, out=out, metadata=metadata, options=options)[0]


def assemble_pdfa_encoded(
    pages: Sequence[PageResult],
    *,
    out: Path,
    metadata: DocumentMetadata,
    options: CaptureOptions,
) -> tuple[Path, list[AccessEncoding | None]]:
    """:func:`assemble_pdfa`, also saying how each page's image was encoded: the access
    profile's per-page choice (:class:`flows.capture.access.AccessEncoding`), ``None`` for
    archival pages (lossless, as scanned)."""
    if not pages:
        raise ValueError("a PDF needs at least one page")
    if metadata.page_labels and len(metadata.page_labels) != len(pages):
        raise ValueError(
            f"{len(metadata.page_labels)} page labels given for {len(pages)} pages"
        )
    now = datetime.now(UTC)
    texts = [parse_hocr(p.hocr_path) for p in pages]
    codes = _code_table(texts)
    if len(codes) >= 0xFFFF:
        raise ValueError("more distinct characters than one text font can carry")
    pdf = pikepdf.new()
    font = _text_font(pdf, codes)
    spaces = _ColourSpaces(pdf)
    encodings: list[AccessEncoding | None] = []
    for page, text in zip(pages, texts, strict=True):
        k = 72.0 / page.dpi
        width_pt, height_pt = page.width_px * k, page.height_px * k
        xobject, encoding = _image_xobject(pdf, page, options, spaces)
        encodings.append(encoding)
        image = pdf.make_indirect(xobject)
        draw = f"q {width_pt:.4f} 0 0 {height_pt:.4f} 0 0 cm /Im0 Do Q\n"
        layer = _text_layer(text, dpi=page.dpi, height_px=page.height_px, codes=codes)
        content = pikepdf.Stream(pdf, (draw + layer).encode("ascii"))
        pdf_page = pikepdf.Page(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Page,
                MediaBox=[0, 0, round(width_pt, 4), round(height_pt, 4)],
                Resources=pikepdf.Dictionary(
                    XObject=pikepdf.Dictionary(Im0=image), Font=pikepdf.Dictionary(Fq=font)
                ),
                Contents=pdf.make_indirect(content),
            )
        )
        pdf.pages.append(pdf_page)

    icc = pikepdf.Stream(pdf, srgb_profile())
    icc.N = 3
    pdf.Root.OutputIntents = [
        pdf.make_indirect(
            pikepdf.Dictionary(
                Type=pikepdf.Name.OutputIntent,
                S=pikepdf.Name.GTS_PDFA1,
                OutputConditionIdentifier=pikepdf.String("sRGB"),
                Info=pikepdf.String("sRGB IEC61966-2.1"),
                DestOutputProfile=pdf.make_indirect(icc),
            )
        )
    ]
    if metadata.page_labels:
        with pdf.open_outline() as outline:
            for index, label in enumerate(metadata.page_labels):
                outline.root.append(pikepdf.OutlineItem(label, index))
    pdf.docinfo[pikepdf.Name.Title] = metadata.title
    _set_metadata(pdf, metadata, now)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    pdf.save(partial, fix_metadata_version=True, deterministic_id=False)
    partial.replace(out)
    return out, encodings
