"""OCR results: reading Tesseract's hOCR, and writing the page's text and ALTO 4 XML from it.

One recognition (hOCR) is the single source of the text file, the ALTO file and the PDF's
invisible text layer, so the three always say the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
ALTO_SCHEMA_LOCATION = "http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_LINE_CLASSES = frozenset({"ocr_line", "ocr_header", "ocr_caption", "ocr_textfloat"})

BBox = tuple[int, int, int, int]


@dataclass(frozen=True)
class Word:
    """A recognised word: text, box in page pixels (x0, y0, x1, y1; y down), confidence 0–100."""

    text: str
    bbox: BBox
    confidence: float


@dataclass(frozen=True)
class Line:
    """A text line: its box, baseline (slope, offset from the box's bottom-left) and words."""

    bbox: BBox
    baseline: tuple[float, float]
    x_size: float
    words: tuple[Word, ...]


@dataclass(frozen=True)
class Paragraph:
    """A paragraph (text block) of lines; ``language`` as Tesseract guessed it (e.g. ``kaz``)."""

    bbox: BBox
    language: str | None
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class PageText:
    """Everything recognised on one page, in reading order."""

    width: int
    height: int
    paragraphs: tuple[Paragraph, ...]

    @property
    def words(self) -> list[Word]:
        return [w for p in self.paragraphs for ln in p.lines for w in ln.words]

    @property
    def lines(self) -> list[Line]:
        return [ln for p in self.paragraphs for ln in p.lines]

    def text(self) -> str:
        """Plain text: words by spaces, lines by ``\\n``, paragraphs by a blank line."""
        blocks = [
            "\n".join(" ".join(w.text for w in ln.words) for ln in p.lines)
            for p in self.paragraphs
        ]
        body = "\n\n".join(b for b in blocks if b)
        return body + "\n" if body else ""

    def mean_confidence(self) -> float:
        words = self.words
        return sum(w.confidence for w in words) / len(words) if words else 0.0

    def vertical_line_share(self) -> float:
        """Share of lines taller than wide: a sign the page lies on its side."""
        lines = [ln for ln in self.lines if len(ln.words) > 1]
        if not lines:
            return 0.0
        tall = sum(1 for ln in lines if (ln.bbox[3] - ln.bbox[1]) > (ln.bbox[2] - ln.bbox[0]))
        return tall / len(lines)


def _title(el: etree._Element) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (el.get("title") or "").split(";"):
        part = part.strip()
        if part:
            key, _, value = part.partition(" ")
            out[key] = value.strip()
    return out


def _bbox(props: dict[str, str], width: int, height: int) -> BBox:
    x0, y0, x1, y1 = (int(v) for v in props["bbox"].split()[:4])
    # Clip to the page: ALTO and the text layer must never point outside it.
    x0, x1 = max(0, min(x0, width)), max(0, min(x1, width))
    y0, y1 = max(0, min(y0, height)), max(0, min(y1, height))
    return (x0, y0, max(x1, x0), max(y1, y0))


def _classes(el: etree._Element) -> set[str]:
    return set((el.get("class") or "").split())


def parse_hocr(path: Path) -> PageText:
    """Read Tesseract's hOCR for one page."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    root = etree.parse(str(path), parser).getroot()
    page_el = next(el for el in root.iter() if "ocr_page" in _classes(el))
    px0, py0, px1, py1 = (int(v) for v in _title(page_el)["bbox"].split())
    width, height = px1 - px0, py1 - py0
    paragraphs: list[Paragraph] = []
    for par in page_el.iter():
        if "ocr_par" not in _classes(par):
            continue
        lines: list[Line] = []
        for line_el in par.iter():
            if not (_classes(line_el) & _LINE_CLASSES):
                continue
            props = _title(line_el)
            slope, offset = 0.0, 0.0
            if "baseline" in props:
                parts = props["baseline"].split()
                slope, offset = float(parts[0]), float(parts[1])
            words: list[Word] = []
            for word_el in line_el.iter():
                if "ocrx_word" not in _classes(word_el):
                    continue
                text = "".join(word_el.itertext()).strip()
                if not text:
                    continue
                wprops = _title(word_el)
                conf = float(wprops.get("x_wconf", "0") or 0)
                words.append(Word(text, _bbox(wprops, width, height), conf))
            if words:
                lines.append(
                    Line(
                        _bbox(props, width, height),
                        (slope, offset),
                        float(props.get("x_size", "0") or 0),
                        tuple(words),
                    )
                )
        if lines:
            lang = par.get("lang")
            paragraphs.append(Paragraph(_bbox(_title(par), width, height), lang, tuple(lines)))
    return PageText(width, height, tuple(paragraphs))


_ISO639_2_TO_1 = {"kaz": "kk", "rus": "ru", "eng": "en"}


def _xml_id(prefix: str, *numbers: int) -> str:
    return prefix + "_".join(str(n) for n in numbers)


def write_alto(
    page: PageText,
    out: Path,
    *,
    image_name: str,
    page_number: int,
    software_version: str,
    settings: str,
) -> Path:
    """Write the page as ALTO 4 XML (pixel units, word confidences as ``WC`` 0–1)."""
    a = f"{{{ALTO_NS}}}"
    root = etree.Element(
        a + "alto", nsmap={None: ALTO_NS, "xsi": _XSI}, SCHEMAVERSION="4.4"
    )
    root.set(f"{{{_XSI}}}schemaLocation", f"{ALTO_NS} {ALTO_SCHEMA_LOCATION}")
    desc = etree.SubElement(root, a + "Description")
    etree.SubElement(desc, a + "MeasurementUnit").text = "pixel"
    src = etree.SubElement(desc, a + "sourceImageInformation")
    etree.SubElement(src, a + "fileName").text = image_name
    proc = etree.SubElement(desc, a + "Processing", ID="OCR_0")
    etree.SubElement(proc, a + "processingCategory").text = "contentGeneration"
    etree.SubElement(proc, a + "processingDateTime").text = (
        datetime.now(UTC).replace(microsecond=0).isoformat()
    )
    etree.SubElement(proc, a + "processingStepSettings").text = settings
    software = etree.SubElement(proc, a + "processingSoftware")
    etree.SubElement(software, a + "softwareCreator").text = "Tesseract OCR"
    etree.SubElement(software, a + "softwareName").text = "tesseract"
    etree.SubElement(software, a + "softwareVersion").text = software_version

    layout = etree.SubElement(root, a + "Layout")
    pc = page.mean_confidence() / 100.0
    page_el = etree.SubElement(
        layout,
        a + "Page",
        ID=f"p{page_number}",
        PHYSICAL_IMG_NR=str(page_number),
        WIDTH=str(page.width),
        HEIGHT=str(page.height),
        PC=f"{pc:.4f}",
    )
    space = etree.SubElement(
        page_el,
        a + "PrintSpace",
        HPOS="0",
        VPOS="0",
        WIDTH=str(page.width),
        HEIGHT=str(page.height),
    )
    for bi, par in enumerate(page.paragraphs, 1):
        x0, y0, x1, y1 = par.bbox
        block = etree.SubElement(
            space,
            a + "TextBlock",
            ID=_xml_id("b", page_number, bi),
            HPOS=str(x0),
            VPOS=str(y0),
            WIDTH=str(x1 - x0),
            HEIGHT=str(y1 - y0),
        )
        if par.language and par.language in _ISO639_2_TO_1:
            block.set("LANG", _ISO639_2_TO_1[par.language])
        for li, line in enumerate(par.lines, 1):
            lx0, ly0, lx1, ly1 = line.bbox
            line_el = etree.SubElement(
                block,
                a + "TextLine",
                ID=_xml_id("l", page_number, bi, li),
                HPOS=str(lx0),
                VPOS=str(ly0),
                WIDTH=str(lx1 - lx0),
                HEIGHT=str(ly1 - ly0),
            )
            for wi, word in enumerate(line.words, 1):
                if wi > 1:
                    prev = line.words[wi - 2].bbox
                    etree.SubElement(
                        line_el,
                        a + "SP",
                        HPOS=str(prev[2]),
                        VPOS=str(ly0),
                        WIDTH=str(max(0, word.bbox[0] - prev[2])),
                    )
                wx0, wy0, wx1, wy1 = word.bbox
                etree.SubElement(
                    line_el,
                    a + "String",
                    ID=_xml_id("w", page_number, bi, li, wi),
                    CONTENT=word.text,
                    HPOS=str(wx0),
                    VPOS=str(wy0),
                    WIDTH=str(wx1 - wx0),
                    HEIGHT=str(wy1 - wy0),
                    WC=f"{max(0.0, min(1.0, word.confidence / 100.0)):.2f}",
                )
    out.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    return out


_WS = re.compile(r"\s+")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (unit costs) by Hyyrö's bit-parallel algorithm: fast on whole pages."""
    if not a:
        return len(b)
    if not b:
        return len(a)
    m = len(a)
    full = (1 << m) - 1
    high = 1 << (m - 1)
    peq: dict[str, int] = {}
    for i, ch in enumerate(a):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    pv, mv, score = full, 0, m
    for ch in b:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & full) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & full
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = (mh | ~(xv | ph)) & full
        mv = ph & xv
    return score


def character_error_rate(reference: str, hypothesis: str) -> float:
    """CER: edit distance over characters / reference length, whitespace runs as one space."""
    ref = _WS.sub(" ", reference).strip()
    hyp = _WS.sub(" ", hypothesis).strip()
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


ALTO_SUBSET_XSD = Path(__file__).with_name("alto-4-qor-subset.xsd")


def alto_errors(path: Path) -> list[str]:
    """Schema errors of an ALTO file against the ALTO 4 subset schema Qor ships (empty = valid).

    The schema (``alto-4-qor-subset.xsd``) keeps the official ALTO 4.4 content models for the
    elements Qor writes; see its header.
    """
    schema = etree.XMLSchema(etree.parse(str(ALTO_SUBSET_XSD)))
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    document = etree.parse(str(path), parser)
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
