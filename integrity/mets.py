"""METS (Metadata Encoding and Transmission Standard) for a digital copy: ``metadata/mets.xml``.

One METS document per copy (цифрлық көшірме / цифровая копия), in the convention of Kitodo,
Goobi and the DFG viewer: a MODS descriptive section from the register's record, the PREMIS
file of the bag referenced as digital provenance, a file section with one group per use —
``MASTER`` (the scans as delivered), ``DEFAULT`` (the archival PDF/A), ``FULLTEXT`` (ALTO),
``HOCR`` and ``TEXT`` — every file pointing at its place in the bag (``../data/…``, relative to
``metadata/``) and marked as encrypted (``transformFile``), a physical structure map of the
pages in order, a logical one of the item, and the links between them.

The official METS 1.12.1 schema (CC0, Digital Library Federation) is shipped in
``integrity/schemas``; it imports the W3C xlink schema, which :func:`validate_mets` takes as a
local file (nothing is fetched).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree

from integrity.errors import MetsError

__all__ = ["METS_NS", "MODS_NS", "MetsFile", "MetsItem", "MetsPage", "mets_xml", "validate_mets"]

METS_NS = "http://www.loc.gov/METS/"
MODS_NS = "http://www.loc.gov/mods/v3"
XLINK_NS = "http://www.w3.org/1999/xlink"
XLINK_SCHEMA_URL = "http://www.loc.gov/standards/xlink/xlink.xsd"
_XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_MODS_LOCATION = "http://www.loc.gov/standards/mods/v3/mods-3-8.xsd"


@dataclass(frozen=True)
class MetsFile:
    """A payload file: its path in the bag (``data/…``), MIME type (of the plaintext) and size
    of the stored bytes."""

    path: str
    mime: str
    size: int


@dataclass(frozen=True)
class MetsPage:
    """One page in reading order: ``label`` as people call it; the files that show it —
    the master scan it comes from (a multi-page master serves several pages), its ALTO, hOCR
    and plain text, its reading image (access derivative), as bag paths."""

    label: str
    master: str
    alto: str | None = None
    hocr: str | None = None
    text: str | None = None
    web: str | None = None


@dataclass(frozen=True)
class MetsItem:
    """What the register says of the item (for the MODS section): inventory number
    (инвентарлық нөмір / инвентарный номер), title, creator, date, language (ISO 639-2)."""

    inventory_number: str
    title: str
    creator: str | None = None
    date: str | None = None
    language: str | None = None


def _m(parent: etree._Element, name: str, attrib: Mapping[str, str] | None = None,
       **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{METS_NS}}}{name}")
    for key, value in [*(attrib or {}).items(), *attrs.items()]:
        el.set(key, value)
    return el


def _id(prefix: str, n: int) -> str:
    return f"{prefix}_{n:04d}"


def _mods(parent: etree._Element, item: MetsItem) -> None:
    mods = etree.SubElement(parent, f"{{{MODS_NS}}}mods", {"version": "3.8"})

    def sub(el: etree._Element, name: str, text: str | None = None,
            **attrs: str) -> etree._Element:
        e = etree.SubElement(el, f"{{{MODS_NS}}}{name}", attrs)
        if text is not None:
            e.text = text
        return e

    sub(sub(mods, "titleInfo"), "title", item.title)
    if item.creator:
        name = sub(mods, "name", type="personal")
        sub(name, "namePart", item.creator)
        sub(sub(name, "role"), "roleTerm", "aut", type="code",
            authority="marcrelator")
    if item.date:
        sub(sub(mods, "originInfo"), "dateIssued", item.date, encoding="w3cdtf")
    if item.language:
        sub(sub(mods, "language"), "languageTerm", item.language, type="code",
            authority="iso639-2b")
    sub(mods, "identifier", item.inventory_number, type="local")
    sub(sub(mods, "recordInfo"), "recordIdentifier", item.inventory_number)


def mets_xml(
    *,
    bag_id: str,
    item: MetsItem,
    masters: Sequence[MetsFile],
    access_pdf: MetsFile,
    pages: Sequence[MetsPage],
    texts: Mapping[str, MetsFile],
    created: datetime,
    agent: str,
    encryption_format: str | None = None,
    web_pdf: MetsFile | None = None,
    web_images: Mapping[str, MetsFile] | None = None,
) -> bytes:
    """The METS document of one copy, checked well-formed (validate with :func:`validate_mets`).

    ``texts`` maps the bag paths of ALTO, hOCR and text files named by ``pages`` to their
    :class:`MetsFile`; ``web_images`` the pages' reading images (group ``WEB``), and
    ``web_pdf`` is the access PDF (group ``ACCESS``), when the copy has access derivatives.
    ``encryption_format`` marks every file as stored encrypted with it.
    """
    root = etree.Element(
        f"{{{METS_NS}}}mets",
        {"OBJID": item.inventory_number, "LABEL": item.title, "TYPE": "monograph",
         f"{{{_XSI_NS}}}schemaLocation":
             f"{METS_NS} http://www.loc.gov/standards/mets/mets.xsd {MODS_NS} {_MODS_LOCATION}"},
        nsmap={"mets": METS_NS, "mods": MODS_NS, "xlink": XLINK_NS, "xsi": _XSI_NS},
    )
    hdr = _m(root, "metsHdr", CREATEDATE=created.replace(microsecond=0).isoformat())
    ag = _m(hdr, "agent", ROLE="CREATOR", TYPE="OTHER", OTHERTYPE="SOFTWARE")
    _m(ag, "name").text = agent
    alt = _m(hdr, "altRecordID", TYPE="Qor bag")
    alt.text = bag_id

    dmd = _m(root, "dmdSec", ID="DMD_0001")
    wrap = _m(dmd, "mdWrap", MDTYPE="MODS")
    _mods(_m(wrap, "xmlData"), item)

    amd = _m(root, "amdSec", ID="AMD_0001")
    prov = _m(amd, "digiprovMD", ID="DIGIPROV_0001")
    _m(prov, "mdRef", {"LOCTYPE": "URL", "MDTYPE": "PREMIS", "MIMETYPE": "text/xml",
                       f"{{{XLINK_NS}}}href": "premis.xml"})

    ids: dict[str, str] = {}
    file_sec = _m(root, "fileSec")

    def group(use: str, files: Sequence[MetsFile], prefix: str) -> None:
        if not files:
            return
        grp = _m(file_sec, "fileGrp", USE=use)
        for n, f in enumerate(files, start=1):
            fid = _id(prefix, n)
            ids[f.path] = fid
            el = _m(grp, "file", ID=fid, MIMETYPE=f.mime, SIZE=str(f.size))
            _m(el, "FLocat", {"LOCTYPE": "URL", f"{{{XLINK_NS}}}href": f"../{f.path}"})
            if encryption_format:
                _m(el, "transformFile", TRANSFORMTYPE="decryption",
                   TRANSFORMALGORITHM=encryption_format, TRANSFORMORDER="1")

    group("MASTER", masters, "MASTER")
    group("DEFAULT", [access_pdf], "PDF")
    for use, attr in (("FULLTEXT", "alto"), ("HOCR", "hocr"), ("TEXT", "text")):
        paths = [getattr(p, attr) for p in pages if getattr(p, attr)]
        group(use, [texts[p] for p in paths], use)
    if web_pdf is not None:
        group("ACCESS", [web_pdf], "ACCESSPDF")
    group("WEB", [(web_images or {})[p.web] for p in pages if p.web], "WEB")

    physical = _m(root, "structMap", TYPE="PHYSICAL")
    seq = _m(physical, "div", ID="PHYS_0000", TYPE="physSequence", DMDID="DMD_0001",
             ADMID="AMD_0001")
    _m(seq, "fptr", FILEID=ids[access_pdf.path])
    if web_pdf is not None:
        _m(seq, "fptr", FILEID=ids[web_pdf.path])
    for n, page in enumerate(pages, start=1):
        div = _m(seq, "div", ID=_id("PHYS", n), TYPE="page", ORDER=str(n),
                 ORDERLABEL=page.label)
        for path in (page.master, page.alto, page.hocr, page.text, page.web):
            if path:
                _m(div, "fptr", FILEID=ids[path])

    logical = _m(root, "structMap", TYPE="LOGICAL")
    _m(logical, "div", ID="LOG_0000", TYPE="monograph", LABEL=item.title, DMDID="DMD_0001",
       ADMID="AMD_0001")
    links = _m(root, "structLink")
    for n in range(0, len(pages) + 1):
        _m(links, "smLink", {f"{{{XLINK_NS}}}from": "LOG_0000",
                             f"{{{XLINK_NS}}}to": _id("PHYS", n)})
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out


class _OfflineImports(etree.Resolver):
    """Serves xlink.xsd from a local file; any other URL is refused, never fetched."""

    def __init__(self, xlink: Path) -> None:
        super().__init__()
        self._xlink = xlink
        self.refused: list[str] = []

    def resolve(self, system_url: str | None, public_id: str | None, context: object) -> Any:
        if system_url == XLINK_SCHEMA_URL:
            return self.resolve_filename(str(self._xlink), context)
        self.refused.append(system_url or "")
        return self.resolve_string(b"", context)


def _schema(xlink: Path) -> etree.XMLSchema:
    if not xlink.is_file():
        raise MetsError(f"xlink schema {xlink} not found: METS cannot be validated offline "
                        "(infra/test-services alto puts it beside the ALTO schema)")
    resolver = _OfflineImports(xlink)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    parser.resolvers.add(resolver)
    xsd = resources.files("integrity").joinpath("schemas/mets-1.12.1.xsd").read_bytes()
    try:
        return etree.XMLSchema(etree.fromstring(xsd, parser))
    except etree.XMLSchemaParseError as e:
        raise MetsError(f"METS schema cannot be compiled offline ({e}; refused imports: "
                        f"{resolver.refused})") from e


def validate_mets(document: bytes, *, xlink: Path) -> None:
    """Raise :class:`~integrity.errors.MetsError` listing every error of ``document`` against
    the official METS 1.12.1 schema (``xlink`` is the local copy of the xlink schema it imports).
    """
    try:
        tree = etree.fromstring(document)
    except etree.XMLSyntaxError as e:
        raise MetsError(f"METS document is not well-formed XML: {e}") from e
    schema = _schema(xlink)
    if not schema.validate(tree):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in schema.error_log)
        raise MetsError(f"METS document is not valid against the METS 1.12.1 schema: {errors}")
