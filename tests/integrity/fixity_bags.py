"""Cheap stored Qor bags for the fixity tests: build_bag + encryption + store_bag, no OCR.

Each bag is built exactly as the digitise flow builds one (encrypted payload, Dublin Core and
PREMIS metadata, Qor's bag-info fields, key records in the store), from a few small files.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from catalog_sync import register
from flows.steps import ENCRYPTION_FORMAT, store_bag
from integrity.bag import BagInfo, MetadataContent, PayloadFile, build_bag
from integrity.premis import EventType, PremisAgent, PremisEvent, dublin_core_xml, premis_for_bag
from storage import LocalKeyring, ObjectStore, encrypt_chunks, write_key_record
from storage.store import ObjectInfo


def make_stored_bag(
    stores: Sequence[ObjectStore],
    *,
    bag_id: str,
    inventory: str,
    work: Path,
    keyring: LocalKeyring,
    files: Mapping[str, bytes],
    version: int = 1,
) -> dict[str, Any]:
    """Build one encrypted Qor bag and store it in every store of ``stores`` (primary first)."""
    src = work / f"{bag_id}-src"
    src.mkdir(parents=True)
    payload = []
    for name, data in files.items():
        p = src / name.replace("/", "_")
        p.write_bytes(data)
        payload.append(PayloadFile(p, name))
    bag_key = keyring.new_bag_key()

    def encrypt(plain: BinaryIO, file_id: str) -> Iterator[bytes]:
        return encrypt_chunks(plain, bag_key=bag_key, file_id=file_id)

    now = datetime.now(UTC)
    agent = PremisAgent(identifier="qor", name="Qor", agent_type="software", version="test")
    metadata: dict[str, MetadataContent] = {
        "dc.xml": dublin_core_xml(title=f"Title of {inventory}", identifier=inventory),
        "premis.xml": premis_for_bag(
            inventory_number=inventory, bag_id=bag_id, format_of=lambda p: "test data",
            agent=agent, when=now,
            events=[PremisEvent(EventType.VALIDATION, now, "success", detail="PDF/A-2u valid",
                                agent_ids=("qor",))]),
    }
    info = BagInfo(source_organization="Test Library", external_identifier=inventory,
                   external_description=f"Title of {inventory}",
                   encryption_format=ENCRYPTION_FORMAT, key_id=bag_key.wrapped.kek_id,
                   extra=(("Qor-Bag-Id", bag_id), ("Qor-Copy-Version", str(version)),
                          ("Qor-Batch-Fingerprint", "f" * 64)))
    summary = build_bag(work / bag_id, payload=payload, info=info, transform=encrypt,
                        metadata_files=metadata, workers=1)
    for store in stores:
        store_bag(work / bag_id, bag_id=bag_id, store=store)
        write_key_record(store, bag_id, bag_key.wrapped)
    return {"summary": summary, "wrapped": bag_key.wrapped, "bag_id": bag_id,
            "inventory": inventory, "version": version}


def register_bag(session: Session, made: Mapping[str, Any], store_uri: str) -> None:
    """Enter the item (if new) and link the bag to it, as the digitise flow does."""
    from catalog_sync.errors import ItemNotFound

    try:
        register.get_item(session, made["inventory"])
    except ItemNotFound:
        register.add_item(session, inventory_number=made["inventory"],
                          title=f"Title of {made['inventory']}", actor="test")
    summary = made["summary"]
    register.add_digital_copy(
        session, inventory_number=made["inventory"], bag_id=made["bag_id"], store_uri=store_uri,
        version=made["version"], kek_id=made["wrapped"].kek_id, wrapped_key=made["wrapped"].wrapped,
        pdfa_verdict="PDF/A-2u valid", ocr_confidence=None, payload_bytes=summary.payload_octets,
        file_count=len(summary.payload), actor="test", page_count=0,
        batch_fingerprint="f" * 64)


def random_files(n: int, size: int, *, prefix: str = "masters/page") -> dict[str, bytes]:
    return {f"{prefix}-{i:03d}.tif": os.urandom(size) for i in range(n)}


class RecordingStore(ObjectStore):
    """A real store, seen through a seam that records which objects were read (``open_read``).

    Not a mock: every call goes to the wrapped store; the test only learns what was downloaded.
    """

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.uri = inner.uri
        self.reads: list[str] = []

    def put_file(self, key: str, path: Path, **kw: Any) -> ObjectInfo:
        return self.inner.put_file(key, path, **kw)

    def put_chunks(self, key: str, chunks: Any, **kw: Any) -> ObjectInfo:
        return self.inner.put_chunks(key, chunks, **kw)

    def put_new_version(self, key: str, chunks: Any, **kw: Any) -> ObjectInfo:
        return self.inner.put_new_version(key, chunks, **kw)

    def open_read(self, key: str, **kw: Any) -> BinaryIO:
        self.reads.append(key)
        return self.inner.open_read(key, **kw)

    def head(self, key: str, **kw: Any) -> ObjectInfo:
        return self.inner.head(key, **kw)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def list_versions(self, key: str) -> builtins.list[ObjectInfo]:
        return self.inner.list_versions(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)
