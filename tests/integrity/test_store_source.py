"""Validating a bag kept in the real FileStore: same rules, objects streamed from the store."""

from __future__ import annotations

from pathlib import Path

from integrity.bag import BagInfo, PayloadFile, build_bag
from integrity.problems import ChecksumMismatch, MissingFile
from integrity.store_source import StoreBagSource
from integrity.validate import problems
from storage.filestore import FileStore


def stored_bag(tmp_path: Path) -> tuple[FileStore, str, bytes]:
    src = tmp_path / "page.bin"
    data = bytes(range(256)) * 50
    src.write_bytes(data)
    summary = build_bag(tmp_path / "bag", payload=[PayloadFile(src, "masters/page.bin")],
                        info=BagInfo("Test Library", "KZ-STORE-1"))
    store = FileStore(tmp_path / "store", fsync=False)
    for f in sorted(p for p in summary.path.rglob("*") if p.is_file()):
        store.put_file(f"bags/b1/{f.relative_to(summary.path).as_posix()}", f)
    return store, "bags/b1/", data


def test_stored_bag_is_valid(tmp_path: Path) -> None:
    store, prefix, _ = stored_bag(tmp_path)
    assert problems(StoreBagSource(store, prefix)) == []


def test_missing_object_in_the_store_is_found(tmp_path: Path) -> None:
    store, prefix, _ = stored_bag(tmp_path)
    # A second bag under a longer prefix must not leak into this one.
    store.put_file("bags/b10/data/other.bin", tmp_path / "page.bin")
    source = StoreBagSource(store, "bags/b2")
    assert [type(p).__name__ for p in problems(source)] == ["MissingElement"]
    found = problems(StoreBagSource(store, prefix))
    assert found == []
    # Build a prefix holding everything but the payload object.
    for info in store.list(prefix):
        if not info.key.endswith("page.bin"):
            with store.open_read(info.key) as f:
                tmp = tmp_path / "copy"
                tmp.write_bytes(f.read())
            store.put_file(info.key.replace("bags/b1/", "bags/b3/"), tmp)
    found = problems(StoreBagSource(store, "bags/b3/"))
    assert MissingFile("data/masters/page.bin", "manifest-sha256.txt") in found
    assert MissingFile("data/masters/page.bin", "manifest-sha512.txt") in found


def test_changed_object_in_the_store_is_found(tmp_path: Path) -> None:
    store, prefix, data = stored_bag(tmp_path)
    flipped = bytearray(data)
    flipped[100] ^= 0xFF
    other = tmp_path / "flipped.bin"
    other.write_bytes(bytes(flipped))
    for info in store.list(prefix):
        key = info.key.replace("bags/b1/", "bags/b4/")
        if key.endswith("page.bin"):
            store.put_file(key, other)
        else:
            with store.open_read(info.key) as f:
                (tmp_path / "copy").write_bytes(f.read())
            store.put_file(key, tmp_path / "copy")
    found = problems(StoreBagSource(store, "bags/b4/"))
    assert {(p.path, p.algorithm) for p in found if isinstance(p, ChecksumMismatch)} == {
        ("data/masters/page.bin", "sha256"), ("data/masters/page.bin", "sha512")}
