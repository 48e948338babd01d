"""Format identification against PRONOM signatures (FIDO), recorded in PREMIS objects and events.

Files are made here in the formats a copy holds (TIFF, PNG, JPEG, JPEG 2000, PDF, XML, plain
text); FIDO, the real identifier, reads their bytes with the PRONOM release it ships.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fpdf import FPDF
from lxml import etree
from PIL import Image

from integrity.bag import BagInfo, PayloadFile, build_bag
from integrity.errors import FormatIdentificationError
from integrity.formats import FormatId, identifier_name, identify, pronom_ids
from integrity.premis import PREMIS_NS, PremisAgent, premis_for_bag, validate_premis
from integrity.validate import problems

NS = {"p": PREMIS_NS}
EVENT_TYPES = "http://id.loc.gov/vocabulary/preservation/eventType"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("formats")
    image = Image.new("L", (64, 48), 200)
    out: dict[str, Path] = {}
    for ext, fmt in (("tif", "TIFF"), ("png", "PNG"), ("jpg", "JPEG"), ("jp2", "JPEG2000")):
        out[ext] = d / f"page.{ext}"
        image.save(out[ext], fmt)
    doc = FPDF()
    doc.add_page()
    doc.output(str(d / "doc.pdf"))
    out["pdf"] = d / "doc.pdf"
    out["xml"] = d / "page.alto.xml"
    out["xml"].write_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                          '<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"/>\n')
    out["txt"] = d / "page.txt"
    out["txt"].write_text("Шаһардағы оқырмандар үшін\n", encoding="utf-8")
    # A TIFF under a misleading name: identified by its bytes, not its extension.
    out["disguised"] = d / "scan.jpg"
    image.save(out["disguised"], "TIFF")
    out["unknown"] = d / "noise.qqq"
    out["unknown"].write_bytes(bytes(range(7, 250)) * 3)
    return out


@pytest.mark.parametrize(("key", "puid", "basis"), [
    ("tif", "fmt/353", "signature"),
    ("png", "fmt/11", "signature"),
    ("jpg", "fmt/43", "signature"),
    ("jp2", "x-fmt/392", "signature"),
    ("xml", "fmt/101", "signature"),
    ("txt", "x-fmt/111", "extension"),
    ("disguised", "fmt/353", "signature"),
])
def test_files_are_identified_by_pronom_signature(files: dict[str, Path], key: str, puid: str,
                                                  basis: str) -> None:
    found = identify(files[key])
    assert (found.puid, found.basis) == (puid, basis)
    assert found.name


def test_pdf_is_identified_as_pdf(files: dict[str, Path]) -> None:
    found = identify(files["pdf"])
    assert found.mime == "application/pdf" and found.basis == "signature"
    assert found.puid is not None and found.puid.startswith("fmt/")


def test_unknown_bytes_are_reported_not_guessed(files: dict[str, Path]) -> None:
    assert identify(files["unknown"]) == FormatId(None, None, None, "none")


def test_unreadable_file_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(FormatIdentificationError, match=r"missing\.tif: cannot be read"):
        identify(tmp_path / "missing.tif")


def test_identifier_names_its_signature_release() -> None:
    assert identifier_name().startswith("FIDO 1.6.1, PRONOM signatures v")


def test_every_stored_file_has_its_pronom_id_in_premis(files: dict[str, Path],
                                                       tmp_path: Path) -> None:
    payload = [PayloadFile(files["tif"], "masters/p1.tif"), PayloadFile(files["pdf"], "a.pdf"),
               PayloadFile(files["xml"], "text/p1.alto.xml"),
               PayloadFile(files["unknown"], "x.qqq")]
    identified = {f"data/{p.bag_path}": identify(p.source) for p in payload}
    fido = PremisAgent("fido", identifier_name(), "software")
    make = premis_for_bag(inventory_number="KZ-F1", bag_id="bag-f1", format_of=lambda p: p,
                          agent=PremisAgent("qor", "Qor", "software"),
                          when=datetime(2025, 1, 1, tzinfo=UTC),
                          identified=identified, identifier=fido)
    summary = build_bag(tmp_path / "bag", payload=payload,
                        info=BagInfo(source_organization="L", external_identifier="KZ-F1"),
                        metadata_files={"premis.xml": make})
    assert problems(summary.path) == []
    premis = (summary.path / "metadata" / "premis.xml").read_bytes()
    validate_premis(premis)
    assert pronom_ids(premis) == {"data/masters/p1.tif": "fmt/353",
                                  "data/a.pdf": identified["data/a.pdf"].puid,
                                  "data/text/p1.alto.xml": "fmt/101"}
    root = etree.fromstring(premis)
    (event,) = [e for e in root.iterfind("p:event", NS)
                if e.findtext("p:eventType", namespaces=NS) == "format identification"]
    assert event.find("p:eventType", NS).get("valueURI") == f"{EVENT_TYPES}/for"  # type: ignore[union-attr]
    # The file nothing matched makes the event a failure that names it.
    assert event.findtext("p:eventOutcomeInformation/p:eventOutcome", namespaces=NS) == "failure"
    assert "data/x.qqq" in (event.findtext(
        "p:eventOutcomeInformation/p:eventOutcomeDetail/p:eventOutcomeDetailNote",
        namespaces=NS) or "")
    linked = {e.text for e in event.iterfind(
        "p:linkingObjectIdentifier/p:linkingObjectIdentifierValue", NS)}
    assert linked == set(identified)
    agents = [a.findtext("p:agentName", namespaces=NS) for a in root.iterfind("p:agent", NS)]
    assert identifier_name() in agents
    # Every event type carries its LoC vocabulary URI.
    for e in root.iterfind("p:event/p:eventType", NS):
        assert (e.get("valueURI") or "").startswith(EVENT_TYPES + "/")
