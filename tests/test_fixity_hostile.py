"""Issue 15, items 1 and 5: ``qor fixity audit`` repairs every bag it can and reports every
outcome, and both audit modes compare the store's actual objects with the bag's manifests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from integrity.audit import audit_bag, bag_prefix
from qor import wiring
from qor.cli import app
from qor.settings import load_settings
from storage import FileStore
from tests.conftest import qor_environment
from tests.integrity.fixity_bags import make_stored_bag, register_bag

runner = CliRunner()


def _flip_on_disk(path: Path, at: int | None = None) -> None:
    """One bit changed behind the store's back (its records are left as they were)."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two registered bags in the embedded store, each copied to a file-store replica."""
    replica_root = tmp_path / "replica"
    with qor_environment(tmp_path / "data", replica_store_uri=replica_root.as_uri()):
        settings = load_settings()
        store = wiring.primary_store(settings)
        replica = wiring.replica_store(settings)
        assert isinstance(store, FileStore) and replica is not None
        bags = [make_stored_bag([store, replica], bag_id=f"KZ-{i}-v1-r", inventory=f"KZ-{i}",
                                work=tmp_path / "w", keyring=wiring.keyring(settings),
                                files={"access/doc.pdf": bytes([i]) * 30_000,
                                       "masters/p1.tif": bytes([i + 7]) * 20_000})
                for i in (1, 2)]
        with wiring.register_session(settings) as s:
            for made in bags:
                register_bag(s, made, store.uri)
        yield {"store": store, "replica": replica, "tmp": tmp_path}


def test_repair_goes_on_past_a_deleted_object_and_repairs_both_bags(
    prefect_server: None, replicated: dict[str, Any],
) -> None:
    """Issue 15 item 1: a deleted payload object in one bag, a flipped manifest bit in the other;
    the audit (deep, repair on) restores both from the replica and exits 0 (documented: 0 when
    every bag is intact or repaired)."""
    store: FileStore = replicated["store"]
    (store.root / bag_prefix("KZ-1-v1-r") / "data/access/doc.pdf").unlink()
    _flip_on_disk(store.root / bag_prefix("KZ-2-v1-r") / "manifest-sha256.txt", at=3)
    with qor_environment(replicated["tmp"] / "data",
                         replica_store_uri=replicated["replica"].uri):
        result = runner.invoke(app, ["fixity", "audit", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    outcomes = {b["bag_id"]: b["outcome"] for b in data["bags"]}
    assert outcomes == {"KZ-1-v1-r": "repaired", "KZ-2-v1-r": "repaired"}
    repaired = {(b["bag_id"], r["path"]) for b in data["bags"] for r in b["repairs"]
                if r["restored"]}
    assert repaired == {("KZ-1-v1-r", "data/access/doc.pdf"),
                        ("KZ-2-v1-r", "manifest-sha256.txt")}
    # And the store really holds good bags again: a fresh deep audit finds nothing.
    for bag in ("KZ-1-v1-r", "KZ-2-v1-r"):
        assert audit_bag(store, bag, mode="deep", repair=False).failures == ()


def test_a_bag_that_cannot_be_repaired_is_reported_and_the_next_is_still_repaired(
    prefect_server: None, replicated: dict[str, Any],
) -> None:
    """Issue 15 item 1: the replica lacks bag 1's object too (no good copy): bag 1 is reported
    not repaired, bag 2 is repaired anyway, exit 4 (damage remains)."""
    store: FileStore = replicated["store"]
    replica: FileStore = replicated["replica"]
    (store.root / bag_prefix("KZ-1-v1-r") / "data/access/doc.pdf").unlink()
    replica.delete(bag_prefix("KZ-1-v1-r") + "data/access/doc.pdf")
    _flip_on_disk(store.root / bag_prefix("KZ-2-v1-r") / "data/masters/p1.tif")
    with qor_environment(replicated["tmp"] / "data", replica_store_uri=replica.uri):
        result = runner.invoke(app, ["fixity", "audit", "--json"])
    assert result.exit_code == 4, result.output
    data = json.loads(result.stdout)
    outcomes = {b["bag_id"]: b["outcome"] for b in data["bags"]}
    assert outcomes == {"KZ-1-v1-r": "failure", "KZ-2-v1-r": "repaired"}
    (bag1,) = [b for b in data["bags"] if b["bag_id"] == "KZ-1-v1-r"]
    assert [r["restored"] for r in bag1["repairs"]] == [False]
    assert "has no copy" in bag1["repairs"][0]["detail"]


def test_new_version_of_an_object_whose_bytes_are_gone_does_not_crash(tmp_path: Path) -> None:
    """Issue 15 item 1 at its cause: ``put_new_version`` when the current file was deleted
    behind the store's back stores the new bytes and keeps the old record in history."""
    store = FileStore(tmp_path / "s", fsync=False)
    first = store.put_chunks("bags/b/x", [b"old"])
    (store.root / "bags/b/x").unlink()
    info = store.put_new_version("bags/b/x", [b"new"])
    with store.open_read("bags/b/x") as f:
        assert f.read() == b"new"
    assert [v.version_id for v in store.list_versions("bags/b/x")] == [info.version_id,
                                                                      first.version_id]


@pytest.mark.parametrize("mode", ["quick", "deep"])
def test_both_modes_find_a_deleted_object_file(tmp_path: Path, mode: str) -> None:
    """Issue 15 item 5: the object's file is gone though its commit record remains."""
    store = FileStore(tmp_path / "s", fsync=False)
    from storage import LocalKeyring

    make_stored_bag([store], bag_id="KZ-9-v1-d", inventory="KZ-9", work=tmp_path / "w",
                    keyring=LocalKeyring(tmp_path / "k"),
                    files={"access/doc.pdf": b"x" * 5000, "masters/p.tif": b"y" * 5000})
    (store.root / bag_prefix("KZ-9-v1-d") / "data/masters/p.tif").unlink()
    result = audit_bag(store, "KZ-9-v1-d", mode=mode, repair=False)  # type: ignore[arg-type]
    assert ("data/masters/p.tif", "MissingFile") in {f.key() for f in result.failures}


@pytest.mark.parametrize("mode", ["quick", "deep"])
def test_both_modes_find_an_extra_file(tmp_path: Path, mode: str) -> None:
    """Issue 15 item 5: a file in the stored bag that no manifest lists (put there behind the
    store's back, or through it) is a problem, as ``qor bag validate`` says."""
    store = FileStore(tmp_path / "s", fsync=False)
    from storage import LocalKeyring

    make_stored_bag([store], bag_id="KZ-9-v1-e", inventory="KZ-9", work=tmp_path / "w",
                    keyring=LocalKeyring(tmp_path / "k"), files={"access/doc.pdf": b"x" * 5000})
    (store.root / bag_prefix("KZ-9-v1-e") / "data/access/planted.pdf").write_bytes(b"evil")
    store.put_chunks(bag_prefix("KZ-9-v1-e") + "data/access/through-store.pdf", [b"evil too"])
    result = audit_bag(store, "KZ-9-v1-e", mode=mode, repair=False)  # type: ignore[arg-type]
    found = {f.key() for f in result.failures}
    assert ("data/access/planted.pdf", "UnexpectedFile") in found
    assert ("data/access/through-store.pdf", "UnexpectedFile") in found


# -- issue 15 item 9: bag-info.txt and key records ----------------------------------------------


def _two_stores(tmp_path: Path, bag_id: str) -> tuple[FileStore, FileStore]:
    from storage import LocalKeyring

    store = FileStore(tmp_path / "s", fsync=False)
    replica = FileStore(tmp_path / "r", fsync=False)
    make_stored_bag([store, replica], bag_id=bag_id, inventory="KZ-8", work=tmp_path / "w",
                    keyring=LocalKeyring(tmp_path / "k"), files={"access/doc.pdf": b"z" * 4000})
    return store, replica


@pytest.mark.parametrize("mode", ["quick", "deep"])
def test_a_bit_flip_in_bag_info_is_found_and_repaired(tmp_path: Path, mode: str) -> None:
    store, replica = _two_stores(tmp_path, "KZ-8-v1-i")
    _flip_on_disk(store.root / bag_prefix("KZ-8-v1-i") / "bag-info.txt")
    found = audit_bag(store, "KZ-8-v1-i", mode=mode, repair=False)  # type: ignore[arg-type]
    assert ("bag-info.txt", "ChecksumMismatch") in {f.key() for f in found.failures}
    fixed = audit_bag(store, "KZ-8-v1-i", mode=mode, replica=replica)  # type: ignore[arg-type]
    assert fixed.outcome == "repaired", fixed.remaining
    assert audit_bag(store, "KZ-8-v1-i", mode="deep", repair=False).failures == ()


@pytest.mark.parametrize("mode", ["quick", "deep"])
def test_a_bit_flip_in_a_key_record_is_found_and_repaired(tmp_path: Path, mode: str) -> None:
    from storage.keys import KEY_RECORD_PREFIX, read_key_records

    store, replica = _two_stores(tmp_path, "KZ-8-v1-k")
    (record,) = (store.root / KEY_RECORD_PREFIX / "KZ-8-v1-k").iterdir()
    _flip_on_disk(record, at=len(record.read_bytes()) - 12)  # inside the wrapped key's base64
    key = record.relative_to(store.root).as_posix()
    found = audit_bag(store, "KZ-8-v1-k", mode=mode, repair=False)  # type: ignore[arg-type]
    assert [(f.path, f.problem) for f in found.failures] == [(key, "KeyRecordDamaged")]
    fixed = audit_bag(store, "KZ-8-v1-k", mode=mode, replica=replica)  # type: ignore[arg-type]
    assert fixed.outcome == "repaired", fixed.remaining
    assert read_key_records(store, "KZ-8-v1-k") == read_key_records(replica, "KZ-8-v1-k")
