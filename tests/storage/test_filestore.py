"""FileStore specifics: atomic, durable, create-only writes and metadata kept outside the bag.

R13: nothing in the depository store is ever half-written or overwritten.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from storage import (
    FileStore,
    InvalidKey,
    KeyConflict,
    ObjectExists,
    S3Options,
    S3Store,
    UnsupportedStoreURI,
    open_store,
)
from storage.filestore import META_DIR


def test_bag_folder_holds_only_the_objects_metadata_lives_apart(tmp_path: Path) -> None:
    fs = FileStore(tmp_path / "store")
    fs.put_chunks("bag-1/bagit.txt", [b"BagIt-Version: 1.0\n"])
    fs.put_chunks("bag-1/data/access/KZ-1.pdf", [b"%PDF"])
    files = sorted(
        str(p.relative_to(tmp_path / "store" / "bag-1"))
        for p in (tmp_path / "store" / "bag-1").rglob("*")
        if p.is_file()
    )
    assert files == ["bagit.txt", "data/access/KZ-1.pdf"]
    meta = json.loads((tmp_path / "store" / META_DIR / "meta" / "bag-1/bagit.txt.json").read_text())
    assert meta["sha256"] == fs.head("bag-1/bagit.txt").sha256 and meta["size"] == 19


def test_objects_are_read_only_on_disk(tmp_path: Path) -> None:
    fs = FileStore(tmp_path / "store")
    fs.put_chunks("a/b", [b"x"])
    assert fs.is_read_only("a/b")


def test_write_is_fsynced_then_linked_then_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The durable-write sequence: data fsync → link → dir fsync → metadata fsync → rename →
    metadata dir fsync. Observed by recording what each real fsync call was given."""
    fs = FileStore(tmp_path / "store")
    events: list[str] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        events.append(f"fsync {Path(f'/proc/self/fd/{fd}').readlink()}")
        real_fsync(fd)

    def link(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(f"link {dst}")
        real_link(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    fs.put_chunks("bag/data/f.bin", [b"abc"])
    root = str(tmp_path / "store")
    tmp_dir = f"{root}/{META_DIR}/tmp/"

    def first(pred: str) -> int:
        return next(i for i, e in enumerate(events) if e.startswith(pred))

    data_sync = first(f"fsync {tmp_dir}obj-")
    linked = first(f"link {root}/bag/data/f.bin")
    dir_sync = events.index(f"fsync {root}/bag/data")
    meta_sync = first(f"fsync {tmp_dir}meta-")
    meta_dir_sync = events.index(f"fsync {root}/{META_DIR}/meta/bag/data")
    assert data_sync < linked < dir_sync < meta_sync < meta_dir_sync


def test_uncommitted_bytes_are_invisible_and_set_aside(tmp_path: Path) -> None:
    """A crash after the link but before the metadata record: the file is not an object."""
    fs = FileStore(tmp_path / "store")
    (tmp_path / "store" / "bag").mkdir()
    (tmp_path / "store" / "bag" / "half.bin").write_bytes(b"partial")
    assert not fs.exists("bag/half.bin")
    assert list(fs.list("bag/")) == []
    fs.put_chunks("bag/half.bin", [b"complete"])
    assert fs.read_range("bag/half.bin", 0, 100) == b"complete"
    orphans = list((tmp_path / "store" / META_DIR / "orphans").iterdir())
    assert [p.read_bytes() for p in orphans] == [b"partial"]


def test_process_killed_mid_write_leaves_nothing_visible(tmp_path: Path) -> None:
    root = tmp_path / "store"
    FileStore(root)
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from storage import FileStore
        def slow():
            for _ in range(1000):
                yield b"x" * 65536
                sys.stdout.write("."); sys.stdout.flush()
                time.sleep(0.01)
        FileStore(Path({str(root)!r})).put_chunks("bag/data/big.bin", slow())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.read(5)  # it is writing
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    fs = FileStore(root)
    assert not fs.exists("bag/data/big.bin")
    assert not (root / "bag" / "data" / "big.bin").exists()
    assert len(fs.stale_uploads()) == 1  # the partial temporary file, reported for cleanup


def test_concurrent_puts_to_one_key_one_wins(tmp_path: Path) -> None:
    fs = FileStore(tmp_path / "store")
    results: list[str] = []
    barrier = threading.Barrier(6)

    def put(n: int) -> None:
        barrier.wait()
        try:
            fs.put_chunks("race", [str(n).encode() * 1000])
            results.append(f"ok {n}")
        except ObjectExists:
            results.append("exists")

    threads = [threading.Thread(target=put, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.startswith("ok")]
    assert len(winners) == 1 and results.count("exists") == 5
    n = winners[0].split()[1]
    assert fs.read_range("race", 0, 10_000) == n.encode() * 1000


def test_file_and_folder_of_the_same_name_conflict(tmp_path: Path) -> None:
    fs = FileStore(tmp_path / "store")
    fs.put_chunks("a", [b"1"])
    with pytest.raises(KeyConflict):
        fs.put_chunks("a/b", [b"2"])
    fs.put_chunks("c/d", [b"3"])
    with pytest.raises(KeyConflict):
        fs.put_chunks("c", [b"4"])


def test_store_metadata_folder_is_not_a_key(tmp_path: Path) -> None:
    fs = FileStore(tmp_path / "store")
    with pytest.raises(InvalidKey):
        fs.put_chunks(f"{META_DIR}/meta/x.json", [b"{}"])


def test_open_store_understands_uris(tmp_path: Path) -> None:
    a = open_store((tmp_path / "a").as_uri())
    b = open_store(str(tmp_path / "b"))
    assert isinstance(a, FileStore) and isinstance(b, FileStore)
    assert a.uri == (tmp_path / "a").as_uri()
    s3 = open_store("s3://qor-bucket/depository/", s3=S3Options(endpoint_url="http://127.0.0.1:1"))
    assert isinstance(s3, S3Store) and s3.bucket == "qor-bucket" and s3.prefix == "depository/"
    with pytest.raises(UnsupportedStoreURI):
        open_store("ftp://host/x")
    with pytest.raises(UnsupportedStoreURI):
        open_store("s3:///nobucket")
