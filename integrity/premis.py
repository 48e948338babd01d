"""PREMIS 3 preservation metadata and Dublin Core descriptions for the ``metadata/`` of a bag.

PREMIS (Preservation Metadata: Implementation Strategies) records *what happened* to a digital
copy (цифрлық көшірме / цифровая копия): its creation, the digests computed, its encryption,
each fixity check (тұтастықты тексеру / проверка целостности) and each replication. The XML
produced here validates against the PREMIS 3.0 schema shipped in ``integrity/schemas``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Literal

from lxml import etree

from integrity.bag import BagFileRecord
from integrity.errors import PremisError
from integrity.formats import FormatId

__all__ = [
    "PREMIS_NS",
    "EventType",
    "PremisAgent",
    "PremisEvent",
    "PremisFile",
    "dublin_core_xml",
    "premis_for_bag",
    "premis_xml",
    "validate_premis",
]

PREMIS_NS = "http://www.loc.gov/premis/v3"
_XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
_DC_NS = "http://purl.org/dc/elements/1.1/"
_EVENT_TYPE_AUTHORITY = "http://id.loc.gov/vocabulary/preservation/eventType"
_HASH_AUTHORITY = "http://id.loc.gov/vocabulary/preservation/cryptographicHashFunctions"

# BagIt algorithm names → labels of the Library of Congress cryptographic hash function vocabulary.
_DIGEST_LABELS = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256", "sha384": "SHA-384",
                  "sha512": "SHA-512"}


class EventType(StrEnum):
    """PREMIS event types Qor records (labels of the LoC preservation event type vocabulary)."""

    CREATION = "creation"
    MESSAGE_DIGEST_CALCULATION = "message digest calculation"
    ENCRYPTION = "encryption"
    FIXITY_CHECK = "fixity check"
    REPLICATION = "replication"
    VALIDATION = "validation"
    INGESTION = "ingestion"
    FORMAT_IDENTIFICATION = "format identification"
    DERIVATION = "derivation"

    @property
    def uri(self) -> str:
        """The term's URI in the LoC vocabulary (``…/preservation/eventType/for``)."""
        return f"{_EVENT_TYPE_AUTHORITY}/{_EVENT_TYPE_CODES[self.value]}"


# Codes of the terms in http://id.loc.gov/vocabulary/preservation/eventType.
_EVENT_TYPE_CODES = {
    "creation": "cre",
    "message digest calculation": "mes",
    "encryption": "enc",
    "fixity check": "fix",
    "replication": "rep",
    "validation": "val",
    "ingestion": "ing",
    "format identification": "for",
    "derivation": "der",
}
_PRONOM = "PRONOM"


@dataclass(frozen=True)
class PremisFile:
    """One stored file: its path in the bag, size in bytes, digests by BagIt algorithm name, and
    format name (e.g. ``"application/pdf; encrypted (qor-aead-1)"``)."""

    path: str
    size: int
    digests: Mapping[str, str]
    format_name: str
    original_name: str | None = None
    pronom: str | None = None
    """PRONOM unique identifier of the file's format (of the plaintext, for encrypted files)."""
    format_note: str | None = None
    """How the format was identified (tool, signature release, basis, the format's PRONOM name)."""


@dataclass(frozen=True)
class PremisAgent:
    """Who or what acted: software (Qor itself), an organisation or a person."""

    identifier: str
    name: str
    agent_type: Literal["software", "organization", "person"]
    version: str | None = None


@dataclass(frozen=True)
class PremisEvent:
    """Something that happened to objects of the bag, with its outcome.

    ``object_ids`` are bag paths (``data/...``) or the bag id; ``agent_ids`` name
    :class:`PremisAgent` identifiers.
    """

    event_type: EventType
    date_time: datetime
    outcome: Literal["success", "failure"]
    detail: str | None = None
    outcome_detail: str | None = None
    object_ids: tuple[str, ...] = ()
    agent_ids: tuple[str, ...] = ()
    identifier: str = field(default_factory=lambda: str(uuid.uuid4()))


def _el(parent: etree._Element, name: str, text: str | None = None,
        **attrs: str) -> etree._Element:
    e = etree.SubElement(parent, f"{{{PREMIS_NS}}}{name}", attrs)
    if text is not None:
        e.text = text
    return e


def _identifier(parent: etree._Element, kind: str, id_type: str, value: str) -> None:
    holder = _el(parent, kind)
    _el(holder, f"{kind}Type", id_type)
    _el(holder, f"{kind}Value", value)


def _object_id_type(object_id: str, bag_id: str) -> str:
    return "Qor bag" if object_id == bag_id else "Qor bag path"


def _xsi_type(name: str) -> dict[str, str]:
    return {f"{{{_XSI_NS}}}type": f"premis:{name}"}


def premis_xml(
    *,
    inventory_number: str,
    bag_id: str,
    files: Sequence[PremisFile],
    events: Sequence[PremisEvent] = (),
    agents: Sequence[PremisAgent] = (),
) -> bytes:
    """A PREMIS 3 document: the item (intellectual entity, identified by its inventory number),
    the bag (representation), each file with its fixity, then the events and agents.

    Raises :class:`~integrity.errors.PremisError` if the result does not validate against the
    PREMIS 3.0 schema (it always should: this is the guard that keeps it so).
    """
    root = etree.Element(f"{{{PREMIS_NS}}}premis", {"version": "3.0"},
                         nsmap={"premis": PREMIS_NS, "xsi": _XSI_NS})
    entity = etree.SubElement(root, f"{{{PREMIS_NS}}}object", _xsi_type("intellectualEntity"))
    _identifier(entity, "objectIdentifier", "inventory number", inventory_number)

    rep = etree.SubElement(root, f"{{{PREMIS_NS}}}object", _xsi_type("representation"))
    _identifier(rep, "objectIdentifier", "Qor bag", bag_id)
    rel = _el(rep, "relationship")
    _el(rel, "relationshipType", "structural")
    _el(rel, "relationshipSubType", "represents")
    _identifier(rel, "relatedObjectIdentifier", "inventory number", inventory_number)

    for f in files:
        obj = etree.SubElement(root, f"{{{PREMIS_NS}}}object", _xsi_type("file"))
        _identifier(obj, "objectIdentifier", "Qor bag path", f.path)
        chars = _el(obj, "objectCharacteristics")
        _el(chars, "compositionLevel", "0")
        for alg, value in f.digests.items():
            fixity = _el(chars, "fixity")
            label = _DIGEST_LABELS.get(alg, alg)
            _el(fixity, "messageDigestAlgorithm", label, authority="cryptographicHashFunctions",
                authorityURI=_HASH_AUTHORITY)
            _el(fixity, "messageDigest", value)
            _el(fixity, "messageDigestOriginator", "Qor")
        _el(chars, "size", str(f.size))
        fmt = _el(chars, "format")
        designation = _el(fmt, "formatDesignation")
        _el(designation, "formatName", f.format_name)
        if f.pronom:
            registry = _el(fmt, "formatRegistry")
            _el(registry, "formatRegistryName", _PRONOM)
            _el(registry, "formatRegistryKey", f.pronom)
            _el(registry, "formatRegistryRole", "specification")
        if f.format_note:
            _el(fmt, "formatNote", f.format_note)
        if f.original_name:
            _el(obj, "originalName", f.original_name)
        rel = _el(obj, "relationship")
        _el(rel, "relationshipType", "structural")
        _el(rel, "relationshipSubType", "is included in")
        _identifier(rel, "relatedObjectIdentifier", "Qor bag", bag_id)

    for ev in events:
        event = _el(root, "event")
        _identifier(event, "eventIdentifier", "UUID", ev.identifier)
        _el(event, "eventType", str(ev.event_type), authority="eventType",
            authorityURI=_EVENT_TYPE_AUTHORITY, valueURI=ev.event_type.uri)
        _el(event, "eventDateTime", ev.date_time.isoformat())
        if ev.detail:
            _el(_el(event, "eventDetailInformation"), "eventDetail", ev.detail)
        outcome = _el(event, "eventOutcomeInformation")
        _el(outcome, "eventOutcome", ev.outcome)
        if ev.outcome_detail:
            _el(_el(outcome, "eventOutcomeDetail"), "eventOutcomeDetailNote", ev.outcome_detail)
        for agent_id in ev.agent_ids:
            _identifier(event, "linkingAgentIdentifier", "local", agent_id)
        for object_id in ev.object_ids:
            _identifier(event, "linkingObjectIdentifier", _object_id_type(object_id, bag_id),
                        object_id)

    for ag in agents:
        agent = _el(root, "agent")
        _identifier(agent, "agentIdentifier", "local", ag.identifier)
        _el(agent, "agentName", ag.name)
        _el(agent, "agentType", ag.agent_type)
        if ag.version:
            _el(agent, "agentVersion", ag.version)

    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate_premis(data)
    return data


@cache
def _premis_schema() -> etree.XMLSchema:
    xsd = resources.files("integrity").joinpath("schemas/premis-v3-0.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd))


def validate_premis(document: bytes) -> None:
    """Raise :class:`~integrity.errors.PremisError` listing every schema error in ``document``."""
    try:
        tree = etree.fromstring(document)
    except etree.XMLSyntaxError as e:
        raise PremisError(f"PREMIS document is not well-formed XML: {e}") from e
    schema = _premis_schema()
    if not schema.validate(tree):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in schema.error_log)
        raise PremisError(f"PREMIS document is not valid against the PREMIS 3.0 schema: {errors}")


def premis_for_bag(
    *,
    inventory_number: str,
    bag_id: str,
    format_of: Callable[[str], str],
    agent: PremisAgent,
    events: Sequence[PremisEvent] = (),
    agents: Sequence[PremisAgent] = (),
    when: datetime | None = None,
    identified: Mapping[str, FormatId] | None = None,
    identifier: PremisAgent | None = None,
) -> Callable[[Sequence[BagFileRecord]], bytes]:
    """The ``metadata/premis.xml`` content for :func:`integrity.bag.build_bag`.

    Called with the payload records once they are written, so each file's fixity is the digest
    computed in the same pass; adds a *message digest calculation* event (by ``agent``) covering
    every file, after ``events`` (e.g. creation, encryption). ``format_of(bag_path)`` names each
    file's format. ``identified`` maps bag paths to what the format identifier (agent
    ``identifier``, see :mod:`integrity.formats`) found: each file's PRONOM id goes into its
    object, and a *format identification* event covers them.
    """
    found = dict(identified or {})

    def note(fid: FormatId) -> str:
        by = identifier.name if identifier is not None else "format identifier"
        if fid.puid is None:
            return f"not identified by {by}"
        return f"{fid.name} ({fid.puid}), identified by {by} by {fid.basis}"

    def make(records: Sequence[BagFileRecord]) -> bytes:
        at = when or datetime.now(UTC)
        files = [
            PremisFile(r.path, r.size, r.digests, format_of(r.path),
                       pronom=found[r.path].puid if r.path in found else None,
                       format_note=note(found[r.path]) if r.path in found else None)
            for r in records
        ]
        extra: list[PremisEvent] = []
        all_agents = [agent, *[a for a in agents if a.identifier != agent.identifier]]
        if found:
            by_basis: dict[str, int] = {}
            for fid in found.values():
                by_basis[fid.basis] = by_basis.get(fid.basis, 0) + 1
            counts = ", ".join(f"{n} by {b}" for b, n in sorted(by_basis.items()))
            ident = identifier or agent
            unknown = [p for p, fid in sorted(found.items()) if fid.puid is None]
            extra.append(PremisEvent(
                EventType.FORMAT_IDENTIFICATION, at, "failure" if unknown else "success",
                detail=f"PRONOM format of each payload file before encryption: {counts}",
                outcome_detail=(f"not identified: {', '.join(unknown)}" if unknown else None),
                object_ids=tuple(sorted(found)), agent_ids=(ident.identifier,),
            ))
            if all(a.identifier != ident.identifier for a in all_agents):
                all_agents.append(ident)
        digest_event = PremisEvent(
            EventType.MESSAGE_DIGEST_CALCULATION, at, "success",
            detail="digests of the stored bytes, computed while writing them into the bag",
            object_ids=tuple(r.path for r in records), agent_ids=(agent.identifier,),
        )
        return premis_xml(inventory_number=inventory_number, bag_id=bag_id, files=files,
                          events=[*events, *extra, digest_event], agents=all_agents)

    return make


def dublin_core_xml(
    *,
    title: str,
    identifier: str,
    creator: Sequence[str] = (),
    subject: Sequence[str] = (),
    description: str | None = None,
    publisher: str | None = None,
    date_issued: str | date | None = None,
    type_: str | None = None,
    format_: str | None = None,
    language: Sequence[str] = (),
    rights: str | None = None,
) -> bytes:
    """A simple Dublin Core record (``oai_dc:dc``) for ``metadata/dc.xml``.

    ``identifier`` is the inventory number; ``language`` takes ISO 639 codes (``kaz``, ``rus``).
    """
    root = etree.Element(f"{{{_OAI_DC_NS}}}dc", nsmap={"oai_dc": _OAI_DC_NS, "dc": _DC_NS})

    def add(name: str, value: str | None) -> None:
        if value:
            etree.SubElement(root, f"{{{_DC_NS}}}{name}").text = value

    add("title", title)
    for c in creator:
        add("creator", c)
    for s in subject:
        add("subject", s)
    add("description", description)
    add("publisher", publisher)
    add("date", date_issued.isoformat() if isinstance(date_issued, date) else date_issued)
    add("type", type_)
    add("format", format_)
    add("identifier", identifier)
    for lang in language:
        add("language", lang)
    add("rights", rights)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out
