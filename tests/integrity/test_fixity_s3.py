"""Fixity audits against the real S3 server: damage done behind Qor's back is found, named and
repaired from the replica; quick mode needs no download; the register gets PREMIS events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import db, register
from integrity.audit import AuditTarget, audit_bag, bag_prefix, find_orphans, run_audit
from integrity.records import FIXITY_EVENT, REPAIR_EVENT, fixity_events, record_bag_audit
from storage import FileStore, LocalKeyring, S3Options, S3Store, WrappedKey, open_store
from tests.conftest import make_s3_client
from tests.integrity.fixity_bags import (
    RecordingStore,
    make_stored_bag,
    register_bag,
)

FILES = {"masters/0001_page.tif": b"scan one " * 4000, "masters/0002_page.tif": b"scan two " * 3000,
         "access/KZ-1.pdf": b"%PDF-1.7 " * 5000}


@pytest.fixture
def s3_store(s3_bucket: str, s3_settings: dict[str, str]) -> S3Store:
    """A versioned bucket on the test S3 server, as Qor's primary store."""
    make_s3_client(s3_settings).put_bucket_versioning(
        Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    store = open_store(f"s3://{s3_bucket}", s3=S3Options(
        endpoint_url=s3_settings["s3_endpoint_url"], access_key=s3_settings["s3_access_key"],
        secret_key=s3_settings["s3_secret_key"], region=s3_settings["s3_region"]))
    assert isinstance(store, S3Store)
    return store


@pytest.fixture
def s3_client(s3_settings: dict[str, str]) -> Any:
    return make_s3_client(s3_settings)


@pytest.fixture
def register_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'register.sqlite3'}")
    db.upgrade(engine)
    yield db.session_factory(engine)
    engine.dispose()


@pytest.fixture
def replica(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "replica", create=True)


@pytest.fixture
def stored(s3_store: S3Store, replica: FileStore, tmp_path: Path,
           register_sessions: sessionmaker[Session]) -> dict[str, Any]:
    """One encrypted bag in S3 (and its replica), registered."""
    keyring = LocalKeyring(tmp_path / "keys")
    made = make_stored_bag([s3_store, replica], bag_id="KZ-1-v1-abc", inventory="KZ-1",
                           work=tmp_path / "work", keyring=keyring, files=FILES)
    with register_sessions.begin() as s:
        register_bag(s, made, s3_store.uri)
    return made


def _overwrite(client: Any, bucket: str, key: str, change: Any) -> None:
    """Write a new version of ``key`` directly with boto3 — behind Qor's back."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=change(body))


def _flip(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


def test_flipped_byte_is_found_named_repaired_from_the_replica_and_next_audit_is_clean(
    stored: dict[str, Any], s3_store: S3Store, s3_client: Any, replica: FileStore,
    register_sessions: sessionmaker[Session], tmp_path: Path,
) -> None:
    bag = stored["bag_id"]
    key = bag_prefix(bag) + "data/access/KZ-1.pdf"
    _overwrite(s3_client, s3_store.bucket, key, _flip)

    def record(result: Any, run_id: str) -> None:
        with register_sessions.begin() as s:
            record_bag_audit(s, result, run_id=run_id, actor="test")

    run = run_audit([AuditTarget(bag, s3_store.uri, "KZ-1")], mode="deep",
                    open_store=lambda _u: s3_store, journal_dir=tmp_path / "j",
                    replica=replica, on_bag=record)
    (result,) = run.bags
    # One damaged file is one failure, naming every algorithm that disagreed.
    found = [(f.bag_id, f.path, f.problem, f.algorithms) for f in result.failures]
    assert found == [(bag, "data/access/KZ-1.pdf", "ChecksumMismatch", ("sha256", "sha512"))]
    (fix,) = result.repairs
    assert fix.restored and fix.path == "data/access/KZ-1.pdf" and fix.version_id
    assert result.outcome == "repaired" and run.ok
    # Restored as a new version: the damaged version (and the original) stay in history.
    assert len(s3_store.list_versions(key)) == 3

    again = run_audit([AuditTarget(bag, s3_store.uri)], mode="deep",
                      open_store=lambda _u: s3_store, journal_dir=tmp_path / "j",
                      replica=replica, on_bag=record)
    assert again.ok and again.bags[0].outcome == "success" and not again.bags[0].failures
    assert again.run_id != run.run_id

    with register_sessions() as s:
        events = fixity_events(s)
    kinds = [(e.event_type, e.outcome) for e in events]
    assert kinds == [(FIXITY_EVENT, "failure"), (REPAIR_EVENT, "success"),
                     (FIXITY_EVENT, "success")]
    assert events[0].detail["failures"][0]["path"] == "data/access/KZ-1.pdf"
    assert events[0].detail["repaired"] == ["data/access/KZ-1.pdf"]


def test_deleted_object_is_found_and_with_no_good_copy_nothing_is_written(
    stored: dict[str, Any], s3_store: S3Store, s3_client: Any, tmp_path: Path,
) -> None:
    bag = stored["bag_id"]
    key = bag_prefix(bag) + "data/masters/0002_page.tif"
    s3_client.delete_object(Bucket=s3_store.bucket, Key=key)
    empty_replica = FileStore(tmp_path / "empty-replica", create=True)

    result = audit_bag(s3_store, bag, mode="deep", replica=empty_replica)
    missing = [f for f in result.failures if f.problem == "MissingFile"]
    assert {f.path for f in missing} == {"data/masters/0002_page.tif"}
    assert any(f.problem == "OxumMismatch" for f in result.failures)
    assert result.outcome == "failure" and result.remaining
    (attempt,) = result.repairs
    assert not attempt.restored and "has no copy" in attempt.detail
    assert not s3_store.exists(key)  # never a silent write


def test_tampered_manifest_is_found_and_repaired_tag_file_first(
    stored: dict[str, Any], s3_store: S3Store, s3_client: Any, replica: FileStore,
) -> None:
    bag = stored["bag_id"]
    key = bag_prefix(bag) + "manifest-sha256.txt"

    def tamper(body: bytes) -> bytes:
        first, rest = body.split(b"  ", 1)
        return (b"0" * len(first)) + b"  " + rest

    _overwrite(s3_client, s3_store.bucket, key, tamper)
    result = audit_bag(s3_store, bag, mode="deep", replica=replica)
    problems = {(f.path, f.problem, f.algorithms) for f in result.failures}
    assert ("manifest-sha256.txt", "ChecksumMismatch", ("sha256", "sha512")) in problems
    # The payload file whose entry was zeroed is reported against the tampered manifest too...
    assert any(p[0].startswith("data/") for p in problems)
    # ...but restoring the manifest first makes it whole; no payload object is rewritten.
    assert [r.path for r in result.repairs] == ["manifest-sha256.txt"]
    assert result.outcome == "repaired" and not result.remaining


def test_quick_mode_finds_a_size_change_without_downloading_payload(
    stored: dict[str, Any], s3_store: S3Store, s3_client: Any,
) -> None:
    bag = stored["bag_id"]
    key = bag_prefix(bag) + "data/masters/0001_page.tif"
    _overwrite(s3_client, s3_store.bucket, key, lambda b: b + b"\x00")
    seen = RecordingStore(s3_store)

    result = audit_bag(seen, bag, mode="quick", repair=False)
    sizes = [f for f in result.failures if f.problem == "SizeMismatch"]
    assert [f.path for f in sizes] == ["data/masters/0001_page.tif"]
    assert int(sizes[0].found or 0) == int(sizes[0].expected or 0) + 1
    assert not [k for k in seen.reads if "/data/" in k], seen.reads
    assert result.files_checked == len(FILES)

    clean = audit_bag(RecordingStore(s3_store), "nope", mode="quick")
    assert any(f.problem == "MissingElement" for f in clean.failures)


def test_quick_mode_finds_a_store_checksum_that_disagrees_with_the_manifest(
    stored: dict[str, Any], s3_store: S3Store, s3_client: Any,
) -> None:
    bag = stored["bag_id"]
    key = bag_prefix(bag) + "data/masters/0001_page.tif"
    body = s3_client.get_object(Bucket=s3_store.bucket, Key=key)["Body"].read()
    # Same size, different bytes, written with a checksum the store keeps.
    s3_client.put_object(Bucket=s3_store.bucket, Key=key, Body=_flip(body),
                         ChecksumAlgorithm="SHA256")
    result = audit_bag(s3_store, bag, mode="quick", repair=False)
    assert [(f.path, f.problem, f.algorithm) for f in result.failures] == [
        ("data/masters/0001_page.tif", "StoredChecksumMismatch", "sha256")]


def test_unregistered_bags_in_the_store_are_reported_as_orphans(
    stored: dict[str, Any], s3_store: S3Store, tmp_path: Path,
) -> None:
    make_stored_bag([s3_store], bag_id="KZ-9-v1-zzz", inventory="KZ-9", work=tmp_path / "w2",
                    keyring=LocalKeyring(tmp_path / "keys"), files={"a.txt": b"a"})
    assert find_orphans(s3_store, [stored["bag_id"]]) == ["KZ-9-v1-zzz"]


def test_rebuild_links_restores_every_copy_row_from_the_bags(
    stored: dict[str, Any], s3_store: S3Store, tmp_path: Path,
) -> None:
    from integrity.rebuild import rebuild_links

    keyring = LocalKeyring(tmp_path / "keys")
    second = make_stored_bag([s3_store], bag_id="KZ-2-v1-def", inventory="KZ-2",
                             work=tmp_path / "w2", keyring=keyring, files={"a.txt": b"abc"})
    # The database is lost: a fresh, empty register.
    engine = db.make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    db.upgrade(engine)
    with db.session_factory(engine).begin() as s:
        links = rebuild_links(s, s3_store, actor="test", kek_usable=keyring.has_key)
    assert sorted((x.bag_id, x.action, x.item_created) for x in links) == [
        ("KZ-1-v1-abc", "added", True), ("KZ-2-v1-def", "added", True)]
    with db.session_factory(engine)() as s:
        copy = register.find_copy(s, "KZ-2")
        assert copy.bag_id == "KZ-2-v1-def" and copy.version == 1
        assert copy.kek_id == second["wrapped"].kek_id
        assert bytes(copy.wrapped_key) == second["wrapped"].wrapped
        assert copy.payload_bytes == second["summary"].payload_octets
        assert register.get_item(s, "KZ-1").record.title == "Title of KZ-1"
        # The restored key really opens the bag's data key.
        restored = WrappedKey(kek_id=copy.kek_id, wrapped=bytes(copy.wrapped_key))
        assert keyring.open_bag_key(restored).data_key
    with db.session_factory(engine).begin() as s:
        again = rebuild_links(s, s3_store, actor="test")
    assert {x.action for x in again} == {"present"}
    engine.dispose()


def test_journal_lines_are_json_for_each_object_checked(
    stored: dict[str, Any], s3_store: S3Store, tmp_path: Path,
) -> None:
    run = run_audit([AuditTarget(stored["bag_id"], s3_store.uri)], mode="deep",
                    open_store=lambda _u: s3_store, journal_dir=tmp_path / "j")
    lines = [json.loads(x) for x in next((tmp_path / "j").glob("*.jsonl")).read_text().split("\n")
             if x]
    files = [x for x in lines if x["type"] == "file"]
    objects = list(s3_store.list(bag_prefix(stored["bag_id"])))
    # Every object but the two tag manifests (nothing lists them) is hashed and checkpointed.
    assert len(files) == run.files_checked == len(objects) - 2
    assert lines[-1]["type"] == "end" and lines[-1]["status"] == "passed"
