"""PREMIS 3 and Dublin Core metadata: schema-valid, and carrying the digests of the bag."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import bagit
import pytest
from lxml import etree

from integrity.bag import BagInfo, PayloadFile, build_bag
from integrity.errors import PremisError
from integrity.premis import (
    PREMIS_NS,
    EventType,
    PremisAgent,
    PremisEvent,
    PremisFile,
    dublin_core_xml,
    premis_for_bag,
    premis_xml,
    validate_premis,
)
from integrity.validate import problems

NS = {"p": PREMIS_NS}
WHEN = datetime(2025, 3, 1, 10, 30, tzinfo=UTC)
QOR = PremisAgent("qor", "Qor", "software", "0.1.0")
LIBRARY = PremisAgent("nlrk", "National Library of Kazakhstan", "organization")


def every_event() -> list[PremisEvent]:
    return [
        PremisEvent(EventType.CREATION, WHEN, "success", detail="digitised from scans",
                    object_ids=("bag-1",), agent_ids=("qor", "nlrk")),
        PremisEvent(EventType.ENCRYPTION, WHEN, "success", detail="AES-256-GCM, key kek-1",
                    object_ids=("data/a.pdf",), agent_ids=("qor",)),
        PremisEvent(EventType.FIXITY_CHECK, WHEN, "failure",
                    outcome_detail="data/a.pdf: sha256 mismatch", object_ids=("data/a.pdf",)),
        PremisEvent(EventType.REPLICATION, WHEN, "success", detail="copied to replica store",
                    object_ids=("bag-1",)),
    ]


def test_document_is_valid_against_the_premis_3_schema() -> None:
    doc = premis_xml(
        inventory_number="KZ-0001", bag_id="bag-1",
        files=[PremisFile("data/a.pdf", 12, {"sha256": "ab" * 32, "sha512": "cd" * 64},
                          "application/pdf", original_name="scan.pdf")],
        events=every_event(), agents=[QOR, LIBRARY],
    )
    validate_premis(doc)  # the shipped schema accepts it
    root = etree.fromstring(doc)
    assert root.get("version") == "3.0"
    types = [e.text for e in root.findall("p:event/p:eventType", NS)]
    assert types == ["creation", "encryption", "fixity check", "replication"]
    assert root.findtext("p:object/p:objectIdentifier/p:objectIdentifierValue",
                         namespaces=NS) == "KZ-0001"
    outcomes = [e.text for e in root.findall("p:event/p:eventOutcomeInformation/p:eventOutcome",
                                             NS)]
    assert outcomes == ["success", "success", "failure", "success"]


def test_schema_refuses_what_premis_forbids() -> None:
    doc = premis_xml(inventory_number="KZ-1", bag_id="b", files=[])
    root = etree.fromstring(doc)
    # An event without its mandatory eventType/eventDateTime is not PREMIS.
    broken = etree.SubElement(root, f"{{{PREMIS_NS}}}event")
    ident = etree.SubElement(broken, f"{{{PREMIS_NS}}}eventIdentifier")
    etree.SubElement(ident, f"{{{PREMIS_NS}}}eventIdentifierType").text = "UUID"
    etree.SubElement(ident, f"{{{PREMIS_NS}}}eventIdentifierValue").text = "x"
    with pytest.raises(PremisError) as info:
        validate_premis(etree.tostring(root))
    assert "eventType" in str(info.value)
    with pytest.raises(PremisError):
        validate_premis(b"<premis")
    wrong_version = doc.replace(b'version="3.0"', b'version="2.2"')
    with pytest.raises(PremisError):
        validate_premis(wrong_version)


def test_premis_in_a_built_bag_carries_the_digests_of_the_stored_bytes(tmp_path: Path) -> None:
    src = tmp_path / "a.pdf"
    src.write_bytes(b"%PDF-1.7 not really\n")
    dc = dublin_core_xml(title="Абай жолы", identifier="KZ-0001", creator=["Мұхтар Әуезов"],
                         language=["kaz"], date_issued="1942", type_="Text")
    summary = build_bag(
        tmp_path / "bag", payload=[PayloadFile(src, "access/KZ-0001.pdf")],
        info=BagInfo("National Library of Kazakhstan", "KZ-0001"),
        metadata_files={
            "dc.xml": dc,
            "premis.xml": premis_for_bag(
                inventory_number="KZ-0001", bag_id="bag-1", agent=QOR, agents=[LIBRARY],
                format_of=lambda p: "application/pdf", events=every_event()[:2], when=WHEN),
        },
    )
    premis = (summary.path / "metadata" / "premis.xml").read_bytes()
    validate_premis(premis)
    root = etree.fromstring(premis)
    record = summary.payload[0]
    digests = {f.findtext("p:messageDigestAlgorithm", namespaces=NS):
               f.findtext("p:messageDigest", namespaces=NS)
               for f in root.iterfind(".//p:fixity", NS)}
    assert digests == {"SHA-256": record.digests["sha256"], "SHA-512": record.digests["sha512"]}
    assert root.findtext(".//p:size", namespaces=NS) == str(record.size)
    assert [e.text for e in root.findall("p:event/p:eventType", NS)][-1] == \
        "message digest calculation"
    assert problems(summary.path) == []
    bagit.Bag(str(summary.path)).validate()

    dc_root = etree.fromstring((summary.path / "metadata" / "dc.xml").read_bytes())
    dc_ns = {"dc": "http://purl.org/dc/elements/1.1/"}
    assert dc_root.findtext("dc:title", namespaces=dc_ns) == "Абай жолы"
    assert dc_root.findtext("dc:identifier", namespaces=dc_ns) == "KZ-0001"
    assert dc_root.findtext("dc:language", namespaces=dc_ns) == "kaz"
