"""OCR results: reading Tesseract's hOCR, and writing the page's text and ALTO 4 XML from it.

One recognition (hOCR) is the single source of the text file, the ALTO file and the PDF's
invisible text layer, so the three always say the same thing. :func:`alto_errors` checks an ALTO
file against the official ALTO 4.4 schema (installed by ``infra/test-services alto``, not shipped
with Qor), offline.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from flows.errors import ToolFailed, ToolMissing

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


def _hocr_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def parse_hocr(path: Path) -> PageText:
    """Read Tesseract's hOCR for one page."""
    return _page_text(etree.parse(str(path), _hocr_parser()).getroot())


def _page_text(root: etree._Element) -> PageText:
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


def _format_title(props: dict[str, str]) -> str:
    return "; ".join(f"{key} {value}".rstrip() for key, value in props.items())


_HOCR_PAGE_IMAGE = re.compile(rb"(class=['\"]ocr_page['\"][^>]*?title=['\"]image )\"[^\"]*\"")


def name_hocr_image(path: Path, image_name: str) -> Path:
    """Point the hOCR page's ``image`` property at ``image_name`` (in place); returns ``path``.

    Tesseract records the file it read, a temporary one; the hOCR kept with the copy names the
    page image kept beside it instead. A plain text substitution: the file is not re-parsed.
    """
    data = path.read_bytes()
    quoted = image_name.replace('"', "").replace("'", "").encode("utf-8")
    named, count = _HOCR_PAGE_IMAGE.subn(lambda m: m.group(1) + b'"' + quoted + b'"', data, 1)
    if count:
        path.write_bytes(named)
    return path


def turn_hocr(
    path: Path, *, degrees: float, image_name: str | None = None
) -> PageText:
    """Carry an hOCR file's geometry onto the page image turned by ``degrees`` (in place).

    The page image is turned counter-clockwise by ``degrees`` about its centre, keeping its
    size (as :func:`flows.capture.prepare.rotate_by` does). Every box is moved with its centre
    and shrunk to the straight word (or line, or block) it was drawn around, clipped to the
    page, and every line's baseline is turned with it, so words, lines and baselines land where
    the turned image shows them. ``image_name``,
    when given, replaces the ``image`` property of the page (the file Tesseract read is a
    temporary one). Returns the turned page, as :func:`parse_hocr` would read it back.
    """
    tree = etree.parse(str(path), _hocr_parser())
    root = tree.getroot()
    page_el = next(el for el in root.iter() if "ocr_page" in _classes(el))
    page_props = _title(page_el)
    px0, py0, px1, py1 = (int(v) for v in page_props["bbox"].split())
    width, height = px1 - px0, py1 - py0
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    cx, cy = width / 2, height / 2

    def turn(x: float, y: float) -> tuple[float, float]:
        # y points down: a counter-clockwise turn moves a point right of centre upwards.
        dx, dy = x - cx, y - cy
        return cx + cos * dx + sin * dy, cy - sin * dx + cos * dy

    for el in page_el.iter():
        if el is page_el:
            continue
        props = _title(el)
        if "bbox" not in props:
            continue
        x0, y0, x1, y1 = (int(v) for v in props["bbox"].split()[:4])
        # On the skewed scan a word's box is the upright box around the tilted word, taller
        # and wider than the word by its turn. Undo that: a w × h word turned by θ has an
        # upright box (w·cos θ + h·sin θ) × (w·sin θ + h·cos θ); solve for w and h and centre
        # the result on the turned centre of the box.
        bw, bh = x1 - x0, y1 - y0
        abs_cos, abs_sin = abs(cos), abs(sin)
        det = abs_cos * abs_cos - abs_sin * abs_sin
        w = (bw * abs_cos - bh * abs_sin) / det if det > 0 else 0.0
        h = (bh * abs_cos - bw * abs_sin) / det if det > 0 else 0.0
        mx, my = turn((x0 + x1) / 2, (y0 + y1) / 2)
        if w < 1 or h < 1:
            # Not a turned rectangle (e.g. a thin rule): keep the box around its turned corners.
            corners = [turn(x, y) for x in (x0, x1) for y in (y0, y1)]
            w = max(c[0] for c in corners) - min(c[0] for c in corners)
            h = max(c[1] for c in corners) - min(c[1] for c in corners)
        nx0 = max(0, min(width, math.floor(mx - w / 2)))
        ny0 = max(0, min(height, math.floor(my - h / 2)))
        nx1 = max(nx0, min(width, math.ceil(mx + w / 2)))
        ny1 = max(ny0, min(height, math.ceil(my + h / 2)))
        props["bbox"] = f"{nx0} {ny0} {nx1} {ny1}"
        if "baseline" in props:
            # hOCR baseline: y = slope·(x − x0) + offset, from the box's bottom-left corner.
            parts = props["baseline"].split()
            slope, offset = float(parts[0]), float(parts[1])
            ax, ay = turn(x0, y1 + offset)
            bx, by = turn(x1, y1 + offset + slope * (x1 - x0))
            new_slope = (by - ay) / (bx - ax) if bx != ax else 0.0
            new_offset = ay + new_slope * (nx0 - ax) - ny1
            props["baseline"] = f"{new_slope:.6g} {round(new_offset)}"
        el.set("title", _format_title(props))
    if image_name is not None:
        page_props["image"] = f'"{image_name}"'
        page_el.set("title", _format_title(page_props))
    tree.write(str(path), xml_declaration=True, encoding="UTF-8")
    return _page_text(root)


def write_hocr(text: PageText, path: Path, *, image_name: str, origin: str) -> Path:
    """Write ``text`` as an hOCR page (as :func:`parse_hocr` reads it back) and return ``path``.

    Used for a page whose text was not recognised but kept from its PDF (``origin`` says so in
    the page's ``ocr-system`` meta, e.g. ``"text layer of the source PDF"``); each word carries
    ``x_wconf 100`` (the text is the file's own, not a guess).
    """
    ns = "http://www.w3.org/1999/xhtml"
    html = etree.Element(f"{{{ns}}}html", nsmap={None: ns})
    head = etree.SubElement(html, f"{{{ns}}}head")
    etree.SubElement(head, f"{{{ns}}}title").text = "hOCR"
    etree.SubElement(head, f"{{{ns}}}meta", name="ocr-system", content=origin)
    etree.SubElement(head, f"{{{ns}}}meta", name="ocr-capabilities",
                     content="ocr_page ocr_par ocr_line ocrx_word")
    body = etree.SubElement(html, f"{{{ns}}}body")
    quoted = image_name.replace('"', "").replace("'", "")
    page = etree.SubElement(body, f"{{{ns}}}div", id="page_1")
    page.set("class", "ocr_page")
    page.set("title", f'image "{quoted}"; bbox 0 0 {text.width} {text.height}; ppageno 0')

    def box(b: BBox) -> str:
        return f"bbox {b[0]} {b[1]} {b[2]} {b[3]}"

    n = 0
    for pi, par in enumerate(text.paragraphs, start=1):
        p_el = etree.SubElement(page, f"{{{ns}}}p", id=f"par_1_{pi}", title=box(par.bbox))
        p_el.set("class", "ocr_par")
        if par.language:
            p_el.set("lang", par.language)
        for line in par.lines:
            n += 1
            l_el = etree.SubElement(
                p_el, f"{{{ns}}}span", id=f"line_1_{n}",
                title=f"{box(line.bbox)}; baseline {line.baseline[0]:.6g} "
                      f"{round(line.baseline[1])}; x_size {line.x_size:.2f}",
            )
            l_el.set("class", "ocr_line")
            for wi, word in enumerate(line.words, start=1):
                w_el = etree.SubElement(l_el, f"{{{ns}}}span", id=f"word_1_{n}_{wi}",
                                        title=f"{box(word.bbox)}; x_wconf {round(word.confidence)}")
                w_el.set("class", "ocrx_word")
                w_el.text = word.text
                w_el.tail = " "
    etree.ElementTree(html).write(str(path), xml_declaration=True, encoding="UTF-8")
    return path


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


# The official ALTO 4.4 schema is not shipped with Qor: infra/test-services (`alto`) and
# infra/install-system fetch it, with the xlink schema it imports, into the tools cache.
ALTO_SCHEMA_ENV = "QOR_ALTO_SCHEMA"
XLINK_SCHEMA_LOCATION = "http://www.loc.gov/standards/xlink/xlink.xsd"


def official_alto_schema() -> Path | None:
    """The official ``alto-4-4.xsd`` this process would validate against, or ``None``.

    ``$QOR_ALTO_SCHEMA`` if set (returned even when the file is missing, so the error names
    it), else ``$QOR_TOOLS_CACHE/alto-4.4/alto-4-4.xsd`` (default ``~/.cache/qor-tools``) when
    ``infra/test-services alto`` put it there. The xlink schema it imports must lie beside it
    as ``xlink.xsd``.
    """
    configured = os.environ.get(ALTO_SCHEMA_ENV)
    if configured:
        return Path(configured)
    cache = os.environ.get("QOR_TOOLS_CACHE") or str(Path.home() / ".cache" / "qor-tools")
    cached = Path(cache) / "alto-4.4" / "alto-4-4.xsd"
    return cached if cached.is_file() else None


class _OfflineImports(etree.Resolver):
    """Serves the schema's imports from local files; any other URL is refused, never fetched."""

    def __init__(self, imports: Mapping[str, Path]) -> None:
        super().__init__()
        self._imports = dict(imports)
        self.refused: list[str] = []

    def resolve(
        self, system_url: str | None, public_id: str | None, context: object
    ) -> Any:  # types-lxml's _InputDocument is private
        local = self._imports.get(system_url or "")
        if local is not None:
            return self.resolve_filename(str(local), context)
        self.refused.append(system_url or "")
        # An empty document makes the import, and so the schema, fail to compile. Returning
        # None instead would hand the URL on to libxml2's default loaders (files, network).
        return self.resolve_string(b"", context)


@dataclass(frozen=True)
class _CompiledSchema:
    schema: etree.XMLSchema
    # lxml keeps one error log per schema object, written by every validate(): one caller at
    # a time, or two threads would read each other's errors.
    lock: threading.Lock


_compiled: dict[tuple[object, ...], _CompiledSchema] = {}
_compiled_lock = threading.Lock()


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def _compile(schema: Path, imports: Mapping[str, Path]) -> _CompiledSchema:
    for url, local in {"": schema, **imports}.items():
        if not local.is_file():
            what = f"local copy of {url}" if url else "ALTO schema"
            raise ToolMissing(
                f"{what} {local} not found: run infra/test-services alto (or set {ALTO_SCHEMA_ENV})"
            )
    key = (_file_key(schema), *sorted((url, _file_key(p)) for url, p in imports.items()))
    with _compiled_lock:  # compile once per schema version, even when threads ask together
        found = _compiled.get(key)
        if found is not None:
            return found
        resolver = _OfflineImports(imports)
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        parser.resolvers.add(resolver)
        try:
            tree = etree.fromstring(
                schema.read_bytes(), parser, base_url=str(schema.resolve())
            ).getroottree()
            compiled = _CompiledSchema(etree.XMLSchema(tree), threading.Lock())
        except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as e:
            reason = (
                f"it imports {', '.join(resolver.refused)}, which is not mapped to a local "
                "file (nothing is fetched from the network)"
                if resolver.refused
                else str(e)
            )
            raise ToolFailed("ALTO schema", f"{schema} cannot be compiled offline: {reason}") from e
        _compiled[key] = compiled
        return compiled


def alto_errors(
    path: Path, *, schema: Path | None = None, imports: Mapping[str, Path] | None = None
) -> list[str]:
    """Errors of an ALTO file against the official ALTO 4.4 schema (empty list = valid).

    ``schema`` is the official ``alto-4-4.xsd``; default :func:`official_alto_schema`.
    ``imports`` maps each URL the schema imports to a local file; default: the xlink schema
    (``XLINK_SCHEMA_LOCATION``) to ``xlink.xsd`` beside ``schema``. Nothing is fetched from
    the network: an import not in ``imports`` makes the schema fail to compile.

    A file that cannot be read or is not well-formed XML is reported as an error, like a
    schema violation. Raises :class:`~flows.errors.ToolMissing` when there is no schema (run
    ``infra/test-services alto``) and :class:`~flows.errors.ToolFailed` when it does not
    compile. The compiled schema is cached per process (keyed by the files' paths, sizes and
    times) and is safe to use from several threads.
    """
    if schema is None:
        schema = official_alto_schema()
        if schema is None:
            raise ToolMissing(
                f"the official ALTO 4.4 schema is not installed: run infra/test-services alto "
                f"or set {ALTO_SCHEMA_ENV} to its alto-4-4.xsd"
            )
    if imports is None:
        imports = {XLINK_SCHEMA_LOCATION: schema.with_name("xlink.xsd")}
    compiled = _compile(schema, imports)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        document = etree.fromstring(path.read_bytes(), parser).getroottree()
    except OSError as e:
        return [f"{path}: cannot be read: {e.strerror or e}"]
    except etree.XMLSyntaxError as e:
        return [f"line {e.lineno}: not well-formed XML: {e.msg}"]
    with compiled.lock:
        if compiled.schema.validate(document):
            return []
        return [f"line {e.line}: {e.message}" for e in compiled.schema.error_log]
