"""METS of a copy: valid against the official METS 1.12.1 schema (shipped, CC0), its structure
map the pages in order, its file section pointing at the bag's files, MODS from the register."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from integrity.errors import MetsError
from integrity.mets import METS_NS, MODS_NS, MetsFile, MetsItem, MetsPage, mets_xml, validate_mets

NS = {"mets": METS_NS, "mods": MODS_NS, "xlink": "http://www.w3.org/1999/xlink"}


def xlink_schema() -> Path:
    """The xlink schema METS imports: beside the official ALTO schema that
    infra/test-services fetches (SHA-256 checked). Missing → the test fails, never skips."""
    alto = os.environ.get("QOR_ALTO_SCHEMA") or str(
        Path.home() / ".cache" / "qor-tools" / "alto-4.4" / "alto-4-4.xsd")
    xlink = Path(alto).with_name("xlink.xsd")
    if not xlink.is_file():
        pytest.fail(f"{xlink} missing: run infra/test-services alto")
    return xlink


def two_page_book() -> bytes:
    master = MetsFile("data/masters/0001_book.tif", "image/tiff", 1000)  # a two-page TIFF
    texts = {f"data/text/p{n}{ext}": MetsFile(f"data/text/p{n}{ext}", mime, 10)
             for n in (1, 2) for ext, mime in ((".alto.xml", "application/xml"),
                                               (".hocr", "text/html"), (".txt", "text/plain"))}
    pages = [MetsPage(f"book-000{n}", master.path, f"data/text/p{n}.alto.xml",
                      f"data/text/p{n}.hocr", f"data/text/p{n}.txt") for n in (1, 2)]
    return mets_xml(
        bag_id="KZ-1-v1-abc", item=MetsItem("KZ-1", "Абай жолы", "Әуезов М.", "1942", "kaz"),
        masters=[master], access_pdf=MetsFile("data/access/KZ-1.pdf", "application/pdf", 500),
        pages=pages, texts=texts, created=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        agent="Qor test", encryption_format="qor-aead-stream-v1")


def test_mets_is_valid_against_the_official_schema() -> None:
    validate_mets(two_page_book(), xlink=xlink_schema())


def test_structure_files_and_description() -> None:
    root = etree.fromstring(two_page_book())
    pages = root.findall("mets:structMap[@TYPE='PHYSICAL']/mets:div/mets:div", NS)
    assert [(p.get("ORDER"), p.get("ORDERLABEL")) for p in pages] == [
        ("1", "book-0001"), ("2", "book-0002")]
    files = {f.get("ID"): f for f in root.iterfind(".//mets:file", NS)}
    # Both pages show the one two-page master; each has its own ALTO.
    first, second = ([files[fp.get("FILEID")].find("mets:FLocat", NS).get(  # type: ignore[union-attr]
        f"{{{NS['xlink']}}}href") for fp in p.findall("mets:fptr", NS)] for p in pages)
    assert first[0] == second[0] == "../data/masters/0001_book.tif"
    assert first[1] == "../data/text/p1.alto.xml" and second[1] == "../data/text/p2.alto.xml"
    uses = [g.get("USE") for g in root.iterfind("mets:fileSec/mets:fileGrp", NS)]
    assert uses == ["MASTER", "DEFAULT", "FULLTEXT", "HOCR", "TEXT"]
    assert all(f.find("mets:transformFile", NS) is not None for f in files.values())
    assert root.findtext(".//mods:titleInfo/mods:title", namespaces=NS) == "Абай жолы"
    assert root.findtext(".//mods:identifier", namespaces=NS) == "KZ-1"
    links = root.findall("mets:structLink/mets:smLink", NS)
    assert len(links) == 3  # the item → the sequence and each page


def test_schema_refuses_a_broken_document() -> None:
    root = etree.fromstring(two_page_book())
    fptr = root.find(".//mets:fptr", NS)
    assert fptr is not None
    fptr.set("FILEID", "NO_SUCH_FILE")  # an IDREF to nothing
    etree.SubElement(root.find("mets:metsHdr", NS), f"{{{METS_NS}}}bogus")  # type: ignore[arg-type]
    with pytest.raises(MetsError, match=r"not valid against the METS 1\.12\.1 schema"):
        validate_mets(etree.tostring(root), xlink=xlink_schema())


def test_missing_xlink_schema_is_named(tmp_path: Path) -> None:
    with pytest.raises(MetsError, match=r"nope\.xsd not found"):
        validate_mets(two_page_book(), xlink=tmp_path / "nope.xsd")
