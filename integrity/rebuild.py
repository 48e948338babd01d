"""Rebuild the register's links between items and their digital copies from the store itself.

Every Qor bag carries, in clear, what the register knows about it: ``bag-info.txt`` has the
inventory number (``External-Identifier``), ``Qor-Bag-Id``, ``Qor-Copy-Version``,
``Qor-Key-Id`` and ``Qor-Batch-Fingerprint``; ``metadata/dc.xml`` the title and
``metadata/premis.xml`` the PDF/A verdict; and the store keeps each bag's wrapped data key as
key records (``_qor/keys/<bag-id>/…``). So losing the database never loses which copy belongs to
which item (инвентарный номер ↔ цифровая копия): ``qor register rebuild-links`` puts the rows
back. Rows already present are left alone (and reported if they disagree with the bag).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from lxml import etree
from sqlalchemy.orm import Session

from catalog_sync import register
from catalog_sync.errors import DigitalCopyNotFound, ItemNotFound
from integrity import layout
from integrity.audit import bag_prefix, find_orphans
from qor.errors import QorError
from storage import WrappedKey, read_key_records
from storage.errors import ObjectNotFound, StorageError
from storage.store import ObjectStore

logger = logging.getLogger(__name__)

__all__ = ["BagFacts", "RebuiltLink", "read_bag_facts", "rebuild_links"]

_PREMIS_NS = "http://www.loc.gov/premis/v3"
_DC_NS = "http://purl.org/dc/elements/1.1/"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


@dataclass(frozen=True)
class BagFacts:
    """What a stored bag says about itself (its tag files and the store's key records)."""

    bag_id: str
    inventory_number: str
    version: int
    key_id: str | None
    batch_fingerprint: str | None
    payload_bytes: int
    file_count: int
    page_count: int
    title: str | None
    pdfa_verdict: str
    bagging_date: date | None
    wrappings: tuple[WrappedKey, ...]


@dataclass(frozen=True)
class RebuiltLink:
    """What happened to one bag: ``added`` (row restored), ``present`` (row already there),
    ``conflict`` (the row disagrees with the bag; left alone) or ``skipped`` (bag unusable)."""

    bag_id: str
    action: str
    reason: str
    inventory_number: str | None = None
    version: int | None = None
    item_created: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bag_info(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and last is not None:
            out[last] += " " + line.strip()
            continue
        label, sep, value = line.partition(":")
        if sep:
            last = label.strip()
            out.setdefault(last, value.strip())  # the first of repeated labels counts
    return out


def _read(store: ObjectStore, key: str) -> bytes | None:
    try:
        with store.open_read(key) as f:
            return f.read()
    except ObjectNotFound:
        return None


def read_bag_facts(store: ObjectStore, bag_id: str) -> BagFacts:
    """Read a stored bag's facts; :class:`RebuildError` if it is not a Qor bag."""
    prefix = bag_prefix(bag_id)
    raw = _read(store, prefix + "bag-info.txt")
    if raw is None:
        raise RebuildError(f"bag {bag_id}: no bag-info.txt in {store.uri}")
    info = _bag_info(raw.decode("utf-8", errors="replace"))
    inventory = info.get("External-Identifier")
    if not inventory:
        raise RebuildError(f"bag {bag_id}: bag-info.txt has no External-Identifier")
    if info.get("Qor-Bag-Id", bag_id) != bag_id:
        raise RebuildError(f"bag {bag_id}: bag-info.txt names another bag "
                           f"({info['Qor-Bag-Id']!r}); not restored")
    try:
        version = int(info.get("Qor-Copy-Version", ""))
        octets, streams = (int(x) for x in info.get("Payload-Oxum", "").split("."))
    except ValueError as e:
        raise RebuildError(f"bag {bag_id}: Qor-Copy-Version or Payload-Oxum missing or not a "
                           "number") from e
    bagging: date | None = None
    try:
        bagging = date.fromisoformat(info.get("Bagging-Date", ""))
    except ValueError:
        bagging = None

    title = info.get("External-Description")
    dc = _read(store, prefix + "metadata/dc.xml")
    if dc:
        with contextlib.suppress(etree.XMLSyntaxError):
            title = etree.fromstring(dc, _PARSER).findtext(f"{{{_DC_NS}}}title") or title
    verdict = "unknown (rebuilt from the bag; no PREMIS validation event)"
    premis = _read(store, prefix + "metadata/premis.xml")
    if premis:
        try:
            root = etree.fromstring(premis, _PARSER)
            ns = {"p": _PREMIS_NS}
            for ev in root.findall("p:event", ns):
                if ev.findtext("p:eventType", namespaces=ns) == "validation":
                    verdict = ev.findtext("p:eventDetailInformation/p:eventDetail",
                                          namespaces=ns) or verdict
        except etree.XMLSyntaxError:
            pass
    masters = sum(1 for o in store.list(prefix + layout.MASTERS_DIR))
    return BagFacts(
        bag_id=bag_id, inventory_number=inventory, version=version,
        key_id=info.get("Qor-Key-Id"), batch_fingerprint=info.get("Qor-Batch-Fingerprint"),
        payload_bytes=octets, file_count=streams, page_count=masters, title=title,
        pdfa_verdict=verdict[:64], bagging_date=bagging,
        wrappings=tuple(read_key_records(store, bag_id)),
    )


class RebuildError(QorError):
    """A stored bag cannot be linked back (not a Qor bag, or missing what the link needs)."""

    exit_code = 1
    http_status = 422
    retryable = False


def _choose_wrapping(facts: BagFacts, usable: Callable[[str], bool] | None) -> WrappedKey:
    if not facts.wrappings:
        raise RebuildError(f"bag {facts.bag_id}: the store holds no key record for it")
    ordered = sorted(facts.wrappings, key=lambda w: (w.kek_id != facts.key_id, w.kek_id))
    if usable is not None:
        for w in ordered:
            if usable(w.kek_id):
                return w
    return ordered[0]


def rebuild_links(
    session: Session,
    store: ObjectStore,
    *,
    actor: str,
    kek_usable: Callable[[str], bool] | None = None,
    create_items: bool = True,
) -> list[RebuiltLink]:
    """Restore the digital-copy row of every bag in ``store`` that the register lacks.

    An item the register no longer has is re-entered (``create_items``) with the bag's
    inventory number and Dublin Core title. The wrapped data key comes from the store's key
    records: the one whose key-encryption key ``kek_usable`` accepts (the keyring holds it),
    preferring the bag's ``Qor-Key-Id``. Each bag is restored in a savepoint: one bad bag does
    not stop the others.
    """
    out: list[RebuiltLink] = []
    for bag_id in find_orphans(store, ()):
        try:
            facts = read_bag_facts(store, bag_id)
        except (RebuildError, StorageError) as e:
            out.append(RebuiltLink(bag_id, "skipped", str(e)))
            continue
        try:
            existing = register.get_digital_copy(session, bag_id)
        except DigitalCopyNotFound:
            existing = None
        if existing is not None:
            if existing.item.inventory_number != facts.inventory_number:
                out.append(RebuiltLink(
                    bag_id, "conflict",
                    f"the register links it to {existing.item.inventory_number}, the bag says "
                    f"{facts.inventory_number}; left as it is",
                    facts.inventory_number, facts.version))
            else:
                out.append(RebuiltLink(bag_id, "present", "already registered",
                                       facts.inventory_number, facts.version))
            continue
        try:
            wrapping = _choose_wrapping(facts, kek_usable)
            with session.begin_nested():
                created = False
                try:
                    register.get_item(session, facts.inventory_number)
                except ItemNotFound:
                    if not create_items:
                        raise RebuildError(f"item {facts.inventory_number} is not in the "
                                           "register") from None
                    register.add_item(
                        session, inventory_number=facts.inventory_number,
                        title=facts.title or f"(title unknown; re-entered from bag {bag_id})",
                        actor=actor)
                    created = True
                at = (datetime.combine(facts.bagging_date, time(), tzinfo=UTC)
                      if facts.bagging_date else None)
                register.add_digital_copy(
                    session, inventory_number=facts.inventory_number, bag_id=bag_id,
                    store_uri=store.uri, version=facts.version, kek_id=wrapping.kek_id,
                    wrapped_key=wrapping.wrapped, pdfa_verdict=facts.pdfa_verdict,
                    ocr_confidence=None, payload_bytes=facts.payload_bytes,
                    file_count=facts.file_count, page_count=facts.page_count,
                    batch_fingerprint=facts.batch_fingerprint, actor=actor, at=at)
        except QorError as e:
            out.append(RebuiltLink(bag_id, "skipped", e.message, facts.inventory_number,
                                   facts.version))
            continue
        logger.info("restored the link of bag %s to item %s", bag_id, facts.inventory_number)
        out.append(RebuiltLink(bag_id, "added", "restored from the bag's own metadata",
                               facts.inventory_number, facts.version, created))
    return out
