"""The ObjectStore contract, run against FileStore and against the real S3 server (versitygw).

R13: the depository store must protect what it holds — nothing overwritten, nothing half
written, every byte checked on the way in, nothing under retention deleted.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from storage import (
    ChecksumMismatch,
    FileStore,
    InvalidKey,
    LocalKeyring,
    ObjectExists,
    ObjectNotFound,
    ObjectStore,
    RetentionActive,
    S3Options,
    S3Store,
    StoreUnavailable,
    copy_object,
    decrypt_range,
    encrypt_chunks,
)
from tests.storage.conftest import MiB, pattern_chunks

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def small_multipart(store: ObjectStore) -> ObjectStore:
    """The same store with a low multipart threshold, so the multipart path runs on small data."""
    if isinstance(store, S3Store):
        return store.with_options(multipart_threshold=5 * MiB, part_size=5 * MiB)
    return store


class BoomError(RuntimeError):
    """The source of an upload failing half-way (a scanner share vanishing, a bug…)."""


def failing_after(total: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
    sent = 0
    for c in chunks:
        yield c
        sent += len(c)
        if sent >= total:
            raise BoomError("source died half-way")


def test_round_trip_keeps_bytes_and_records_sha256(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    info = store.put_chunks("bag/data/a.bin", [data[:1000], data[1000:]])
    assert (info.size, info.sha256) == (len(data), sha(data))
    head = store.head("bag/data/a.bin")
    assert (head.size, head.sha256) == (len(data), sha(data))
    with store.open_read("bag/data/a.bin") as f:
        assert f.read() == data
    src = tmp_path / "b.bin"
    src.write_bytes(data[::-1])
    store.put_file("bag/data/b.bin", src, sha256=sha(data[::-1]))
    assert b"".join(store.iter_chunks("bag/data/b.bin", chunk_size=4096)) == data[::-1]
    assert store.exists("bag/data/b.bin") and not store.exists("bag/data/c.bin")


def test_empty_object(store: ObjectStore) -> None:
    info = store.put_chunks("empty", [])
    assert info.size == 0 and info.sha256 == sha(b"")
    assert store.read_range("empty", 0, 10) == b""
    with store.open_read("empty") as f:
        assert f.read() == b""


def test_second_put_to_same_key_is_refused_and_first_bytes_kept(
    store: ObjectStore, tmp_path: Path
) -> None:
    store.put_chunks("bag/manifest-sha256.txt", [b"first"])
    with pytest.raises(ObjectExists) as ei:
        store.put_chunks("bag/manifest-sha256.txt", [b"second"])
    assert ei.value.key == "bag/manifest-sha256.txt"
    other = tmp_path / "x"
    other.write_bytes(b"third")
    with pytest.raises(ObjectExists):
        store.put_file("bag/manifest-sha256.txt", other)
    assert store.read_range("bag/manifest-sha256.txt", 0, 100) == b"first"
    assert store.head("bag/manifest-sha256.txt").sha256 == sha(b"first")


def test_wrong_checksum_is_rejected_and_nothing_is_visible(
    store: ObjectStore, tmp_path: Path
) -> None:
    wrong = sha(b"something else")
    with pytest.raises(ChecksumMismatch) as ei:
        store.put_chunks("bag/data/x.bin", [b"payload bytes"], sha256=wrong)
    assert ei.value.algorithm == "sha256" and ei.value.expected == wrong
    src = tmp_path / "y.bin"
    src.write_bytes(b"payload bytes")
    with pytest.raises(ChecksumMismatch):
        store.put_file("bag/data/y.bin", src, sha256=wrong)
    assert not store.exists("bag/data/x.bin") and not store.exists("bag/data/y.bin")
    assert list(store.list("bag/")) == []
    # The key stays usable: the right bytes with the right checksum go in.
    store.put_chunks("bag/data/x.bin", [b"payload bytes"], sha256=sha(b"payload bytes"))


def test_wrong_checksum_on_multipart_upload_leaves_nothing(store: ObjectStore) -> None:
    mp = small_multipart(store)
    data = b"".join(pattern_chunks(12 * MiB))
    with pytest.raises(ChecksumMismatch):
        mp.put_chunks("big/wrong.bin", [data], sha256=sha(b"not it"))
    assert not mp.exists("big/wrong.bin")
    if isinstance(mp, S3Store):
        ups = mp.client.list_multipart_uploads(Bucket=mp.bucket).get("Uploads", [])
        assert [u for u in ups if u["Key"].startswith(mp.prefix)] == []


@pytest.mark.parametrize("size", [100_000, 12 * MiB], ids=["single-put", "multipart"])
def test_source_failing_half_way_leaves_nothing_visible(store: ObjectStore, size: int) -> None:
    mp = small_multipart(store)
    with pytest.raises(BoomError):
        mp.put_chunks(
            "bag/data/half.bin", failing_after(size, pattern_chunks(size * 2, chunk=MiB // 4))
        )
    assert not mp.exists("bag/data/half.bin")
    assert list(mp.list("bag/")) == []
    if isinstance(mp, S3Store):
        ups = mp.client.list_multipart_uploads(Bucket=mp.bucket).get("Uploads", [])
        assert [u for u in ups if u["Key"].startswith(mp.prefix)] == []
    if isinstance(mp, FileStore):
        assert mp.stale_uploads() == []


@pytest.mark.parametrize(
    ("start", "length"),
    [
        (0, 1),
        (0, 10),
        (17, 4096),
        (199_990, 10),
        (199_990, 100),
        (250_000, 5),
        (5, 0),
        (0, None),
        (123_456, None),
    ],
)
def test_range_reads_equal_slicing(
    store: ObjectStore, start: int, length: int | None, random_bytes: bytes
) -> None:
    data = random_bytes[:200_000]
    store.put_chunks("r.bin", [data])
    with store.open_read("r.bin", start=start, length=length) as f:
        got = f.read()
    assert got == data[start : None if length is None else start + length]


def test_missing_object_is_reported(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as ei:
        store.head("no/such/key")
    assert ei.value.key == "no/such/key"
    with pytest.raises(ObjectNotFound):
        store.open_read("no/such/key").read()
    with pytest.raises(ObjectNotFound):
        store.delete("no/such/key")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs",
        "a//b",
        "../escape",
        "a/../b",
        "a/./b",
        "trail/",
        "back\\slash",
        "nul\x00",
        "x" * 1025,
    ],
)
def test_unsafe_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        store.put_chunks(key, [b"x"])


def test_listing_paginates_over_more_than_1000_keys(store: ObjectStore) -> None:
    keys = sorted(f"many/{i:05d}.txt" for i in range(1013))
    if isinstance(store, S3Store):
        store = store.with_options(page_size=250)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: store.put_chunks(k, [k.encode()]), keys))
    store.put_chunks("other/one.txt", [b"1"])
    calls: list[str] = []

    def count(**kw: object) -> None:
        calls.append("page")

    if isinstance(store, S3Store):
        store.client.meta.events.register("before-call.s3.ListObjectsV2", count)
    try:
        listed = list(store.list("many/"))
    finally:
        if isinstance(store, S3Store):
            store.client.meta.events.unregister("before-call.s3.ListObjectsV2", count)
    assert [i.key for i in listed] == keys
    assert all(i.size == len(i.key) for i in listed)
    if isinstance(store, S3Store):
        assert len(calls) == 5  # 1013 keys in pages of 250


def test_listing_order_matches_s3_byte_order(store: ObjectStore) -> None:
    keys = ["a-c", "a/b", "a.txt", "a0", "ab/c", "Z", "ә/x"]
    for k in keys:
        store.put_chunks(k, [b"."])
    assert [i.key for i in store.list()] == sorted(keys, key=lambda k: k.encode())
    assert [i.key for i in store.list("a/")] == ["a/b"]


def test_delete_under_retention_is_refused(store: ObjectStore) -> None:
    until = datetime.now(UTC) + timedelta(days=1)
    store.put_chunks("locked/bag.txt", [b"keep me"], retain_until=until)
    head = store.head("locked/bag.txt")
    assert head.retain_until is not None and abs((head.retain_until - until).total_seconds()) < 2
    with pytest.raises(RetentionActive) as ei:
        store.delete("locked/bag.txt")
    assert ei.value.key == "locked/bag.txt"
    assert store.read_range("locked/bag.txt", 0, 100) == b"keep me"


def test_delete_without_retention_removes_from_view(store: ObjectStore) -> None:
    store.put_chunks("tmp/x", [b"x"])
    store.delete("tmp/x")
    assert not store.exists("tmp/x")
    assert list(store.list("tmp/")) == []


def test_new_version_keeps_history(store: ObjectStore) -> None:
    store.put_chunks("bag/data/f", [b"original"])
    first = store.head("bag/data/f")
    store.put_new_version("bag/data/f", [b"repaired"], sha256=sha(b"repaired"))
    assert store.read_range("bag/data/f", 0, 100) == b"repaired"
    versions = store.list_versions("bag/data/f")
    assert len(versions) == 2
    assert store.read_range("bag/data/f", 0, 100, version_id=first.version_id) == b"original"
    with pytest.raises(ObjectNotFound):
        store.put_new_version("bag/data/none", [b"x"])


def test_copy_verifies_and_is_create_only(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(50_000)
    store.put_chunks("src/a", [data])
    info = store.copy("src/a", "dst/a")
    assert info.sha256 == sha(data)
    assert store.read_range("dst/a", 0, len(data)) == data
    with pytest.raises(ObjectExists):
        store.copy("src/a", "dst/a")
    replica = FileStore(tmp_path / "replica")
    copy_object(store, "src/a", replica)
    assert replica.head("src/a").sha256 == sha(data)


def test_encrypted_object_range_decrypts_through_the_store(
    store: ObjectStore, keyring: LocalKeyring, random_bytes: bytes
) -> None:
    bag_key = keyring.new_bag_key()
    fid = "data/access/KZ-000123.pdf"
    store.put_chunks(
        fid, encrypt_chunks([random_bytes], bag_key=bag_key, file_id=fid, segment_size=4096)
    )
    read, size = store.range_reader(fid)
    got = decrypt_range(read, 10_000, 20_000, keyring=keyring, file_id=fid, cipher_size=size)
    assert got == random_bytes[10_000:30_000]


# --- S3 only ---------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_multipart_above_threshold_has_server_verified_full_object_checksum(
    locked_bucket: str, s3_options: S3Options
) -> None:
    """One ≥ 100 MiB object: multipart, CRC64NVME full-object checksum checked by the server."""
    store = S3Store(bucket=locked_bucket, prefix=f"mp-{uuid.uuid4().hex[:8]}", options=s3_options)
    size = 100 * MiB + 12_345
    h = hashlib.sha256()
    for c in pattern_chunks(size):
        h.update(c)
    parts: list[int] = []
    store.client.meta.events.register(
        "before-call.s3.UploadPart",
        lambda params, **kw: parts.append(params["query_string"]["partNumber"]),
    )
    info = store.put_chunks("big/master.tif", pattern_chunks(size), sha256=h.hexdigest())
    assert len(parts) == -(-size // s3_options.part_size) > 1
    head = store.head("big/master.tif")
    assert head.size == size and head.sha256 == h.hexdigest()
    assert head.crc64nvme is not None and head.crc64nvme == info.crc64nvme
    raw = store.client.head_object(
        Bucket=locked_bucket, Key=store.prefix + "big/master.tif", ChecksumMode="ENABLED"
    )
    assert raw["ChecksumType"] == "FULL_OBJECT"
    back = hashlib.sha256()
    for c in store.iter_chunks("big/master.tif", chunk_size=8 * MiB):
        back.update(c)
    assert back.hexdigest() == h.hexdigest()
    with pytest.raises(ObjectExists):
        store.put_chunks("big/master.tif", [b"small"])


@pytest.mark.s3
def test_s3_server_itself_rejects_a_wrong_sha256(locked_bucket: str, s3_options: S3Options) -> None:
    """The caller's SHA-256 goes to the server as x-amz-checksum-sha256; the server refuses."""
    store = S3Store(bucket=locked_bucket, prefix=f"cs-{uuid.uuid4().hex[:8]}", options=s3_options)
    sent: list[str] = []
    store.client.meta.events.register(
        "before-call.s3.PutObject",
        lambda params, **kw: sent.append(params["headers"]["x-amz-checksum-sha256"]),
    )
    with pytest.raises(ChecksumMismatch):
        store.put_chunks("x", [b"abc"], sha256=sha(b"abd"))
    assert len(sent) == 1  # the request reached the server; its BadDigest became the error
    assert not store.exists("x")


@pytest.mark.s3
def test_s3_unreachable_is_retryable_store_unavailable(s3_options: S3Options) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    opts = S3Options(
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key="a",
        secret_key="b",
        max_attempts=1,
        connect_timeout=1,
        addressing_style="path",
    )
    store = S3Store(bucket="nowhere", options=opts)
    with pytest.raises(StoreUnavailable) as ei:
        store.put_chunks("k", [b"data"])
    assert ei.value.retryable and "nowhere" in str(ei.value)


@pytest.mark.s3
def test_s3_connection_dying_mid_upload_leaves_nothing(
    locked_bucket: str, s3_options: S3Options
) -> None:
    """A proxy in front of the real server cuts every connection after 7 MiB: the multipart
    upload fails with a retryable error and no object appears under the key."""
    from tests.storage.faulty_proxy import CuttingProxy

    assert s3_options.endpoint_url is not None
    with CuttingProxy(s3_options.endpoint_url, cut_after=7 * MiB) as proxy:
        opts = S3Options(
            endpoint_url=proxy.url,
            access_key=s3_options.access_key,
            secret_key=s3_options.secret_key,
            max_attempts=2,
            addressing_style="path",
            multipart_threshold=5 * MiB,
            part_size=5 * MiB,
            max_concurrency=1,
        )
        prefix = f"cut-{uuid.uuid4().hex[:8]}"
        store = S3Store(bucket=locked_bucket, prefix=prefix, options=opts)
        with pytest.raises(StoreUnavailable):
            store.put_chunks("bag/data/big.bin", pattern_chunks(20 * MiB))
    direct = S3Store(bucket=locked_bucket, prefix=prefix, options=s3_options)
    assert not direct.exists("bag/data/big.bin")
    assert list(direct.list("")) == []


@pytest.mark.s3
def test_s3_store_retention_setting_locks_every_object(
    locked_bucket: str, s3_options: S3Options, s3_client: S3Client
) -> None:
    """object_lock_mode + retention_days from settings: every put is under Object Lock."""
    from dataclasses import replace

    # GOVERNANCE, because COMPLIANCE could not be lifted to clean up after the test.
    opts = replace(s3_options, object_lock_mode="GOVERNANCE", retention_days=1)
    store = S3Store(
        bucket=locked_bucket, prefix=f"ret-{uuid.uuid4().hex[:8]}", options=opts, client=s3_client
    )
    store.put_chunks("bag/bagit.txt", [b"BagIt-Version: 1.0\n"])
    head = store.head("bag/bagit.txt")
    assert head.retention_mode == "GOVERNANCE" and head.under_retention()
    assert head.retain_until is not None
    assert head.retain_until > datetime.now(UTC) + timedelta(hours=23)
    with pytest.raises(RetentionActive):
        store.delete("bag/bagit.txt")
    # The server enforces it too, not only Qor: deleting the version directly is refused.
    from botocore.exceptions import ClientError

    assert head.version_id is not None
    with pytest.raises(ClientError, match=r"(?i)lock|denied"):
        store.client.delete_object(
            Bucket=locked_bucket, Key=store.prefix + "bag/bagit.txt", VersionId=head.version_id
        )
    assert store.exists("bag/bagit.txt")


@pytest.mark.s3
def test_filestore_and_s3_report_the_same_sha256(
    tmp_path: Path, locked_bucket: str, s3_options: S3Options
) -> None:
    data = io.BytesIO(os.urandom(70_000)).getvalue()
    fs = FileStore(tmp_path / "fs")
    s3 = S3Store(bucket=locked_bucket, prefix=f"eq-{uuid.uuid4().hex[:8]}", options=s3_options)
    a = fs.put_chunks("k", [data])
    b = s3.put_chunks("k", [data])
    assert a.sha256 == b.sha256 == s3.head("k").sha256 == fs.head("k").sha256
