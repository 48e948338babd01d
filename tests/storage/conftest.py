"""Fixtures of the storage tests: the stores under contract, keyrings, sample bytes.

The S3 side runs against the real versitygw server that ``infra/test-services`` starts; a
missing variable or an unreachable server fails the test, naming the service.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from storage import FileStore, LocalKeyring, ObjectStore, S3Options, S3Store
from storage.s3store import make_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024


def pattern_chunks(total: int, *, chunk: int = MiB, seed: bytes = b"qor") -> Iterator[bytes]:
    """``total`` bytes of incompressible data, produced chunk by chunk (no disk needed).

    One random-looking block (SHAKE-256 of ``seed``) with each chunk's first 32 bytes set
    from its index, so no two chunks are equal and the stream is reproducible.
    """
    block = hashlib.shake_256(seed).digest(chunk)
    sent = 0
    index = 0
    while sent < total:
        n = min(chunk, total - sent)
        head = hashlib.sha256(seed + index.to_bytes(8, "big")).digest()
        yield (head + block[32:])[:n]
        sent += n
        index += 1


@pytest.fixture(scope="session")
def s3_options(s3_settings: dict[str, str]) -> S3Options:
    """Connection options for the test S3 server (fails naming versitygw if unreachable)."""
    return S3Options(
        endpoint_url=s3_settings["s3_endpoint_url"],
        access_key=s3_settings["s3_access_key"],
        secret_key=s3_settings["s3_secret_key"],
        region=s3_settings["s3_region"],
        max_attempts=2,
        addressing_style="path",
    )


@pytest.fixture(scope="session")
def s3_client(s3_options: S3Options) -> S3Client:
    """One boto3 client for the session (creating one per test costs ~0.3 s)."""
    return make_client(s3_options)


@pytest.fixture(scope="session")
def locked_bucket(s3_options: S3Options) -> Iterator[str]:
    """One bucket with Object Lock and versioning for the whole storage test session."""
    name = f"qor-st-{uuid.uuid4().hex[:10]}"
    store = S3Store(bucket=name, options=s3_options)
    try:
        store.create_bucket(object_lock=True)
    except Exception as e:  # any failure here means the service is unusable
        pytest.fail(
            f"S3 server (versitygw) at {s3_options.endpoint_url} refused a bucket: {e}",
            pytrace=False,
        )
    yield name
    client = store.client
    # Best effort: test objects are under GOVERNANCE retention, which an admin may bypass.
    # Several passes, because deleting while paginating versions can skip some.
    for _ in range(3):
        try:
            for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
                for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    with contextlib.suppress(ClientError):
                        client.delete_object(
                            Bucket=name,
                            Key=v["Key"],
                            VersionId=v["VersionId"],
                            BypassGovernanceRetention=True,
                        )
            for up in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
                client.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
            client.delete_bucket(Bucket=name)
            return
        except (ClientError, BotoCoreError):
            continue


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each store implementation, fresh and empty: a FileStore in a temporary folder, or a
    unique prefix of the Object-Lock bucket on the real S3 server."""
    if request.param == "file":
        return FileStore(tmp_path / "store")
    bucket = request.getfixturevalue("locked_bucket")
    options = request.getfixturevalue("s3_options")
    client = request.getfixturevalue("s3_client")
    return S3Store(
        bucket=bucket, prefix=f"t-{uuid.uuid4().hex[:10]}", options=options, client=client
    )


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    """A local keyring in a private temporary folder (first key created on first use)."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    return LocalKeyring(private / "keys")


@pytest.fixture(scope="session")
def random_bytes() -> bytes:
    """A few hundred KiB of random bytes shared by tests that only read them."""
    return os.urandom(300_000)
