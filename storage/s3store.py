"""The S3 object store (boto3): AWS S3 or any S3-compatible server (versitygw, MinIO, Ceph…).

How each promise of :class:`~storage.store.ObjectStore` is kept:

* **create-only** — every write carries ``If-None-Match: *`` (``PutObject`` and
  ``CompleteMultipartUpload``); the server refuses with 412 if the key exists.
* **checked by the server** — a single ``PutObject`` carries ``x-amz-checksum-sha256`` (the
  caller's SHA-256 when given, else the one computed here) and the server rejects a mismatch
  (``BadDigest``). Above ``multipart_threshold`` a multipart upload carries a CRC64NVME per part
  and the *full-object* CRC64NVME at completion, which the server recomputes; the SHA-256 is
  computed while streaming and compared with the caller's before completion. Every object
  also carries its SHA-256 as metadata ``x-amz-meta-qor-sha256`` (when known before the upload
  starts) so ``head`` answers for multipart objects too.
* **all or nothing** — an S3 object appears only on a successful ``PutObject`` or
  ``CompleteMultipartUpload``; any failure aborts the multipart upload.
* **retention** — with ``object_lock_mode`` and ``retention_days`` (or ``retain_until`` per
  put) every object is written under Object Lock; ``delete`` refuses while it holds.
* **checksum settings** — boto3 ≥ 1.36 adds its own CRC32 trailer to every upload by default
  (``aws-chunked`` encoding), which several S3-compatible servers reject. Qor sends the checksums
  it computed itself, explicitly, so the client is set to ``request_checksum_calculation=
  "when_required"`` and ``response_checksum_validation="when_required"``; the same code runs on
  AWS and on a compatible server with only ``endpoint_url`` and credentials changed.
* **retries** — botocore's ``standard`` retry mode (exponential backoff with jitter on
  throttling, 5xx and connection errors); what still fails becomes
  :class:`StoreUnavailable` (retryable).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import io
import logging
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
from awscrt import checksums as crt_checksums  # type: ignore[import-untyped]
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from storage.errors import (
    ChecksumMismatch,
    ObjectExists,
    ObjectNotFound,
    RetentionActive,
    StorageError,
    StoreRefused,
    StoreUnavailable,
)
from storage.s3options import S3Options
from storage.store import (
    BoundedReader,
    ObjectInfo,
    ObjectStore,
    check_sha256,
    file_chunks,
    sha256_file,
    validate_key,
    validate_sha256,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

SHA256_META = "qor-sha256"


def make_client(options: S3Options) -> S3Client:
    """A boto3 S3 client configured as described in the module docstring."""
    config = Config(
        region_name=options.region,
        retries={"max_attempts": options.max_attempts, "mode": "standard"},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        max_pool_connections=max(10, options.max_concurrency * 2 + 2),
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": options.addressing_style},
    )
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=options.endpoint_url,
        aws_access_key_id=options.access_key,
        aws_secret_access_key=options.secret_key,
        aws_session_token=options.session_token,
        config=config,
    )
    return client


def crc64nvme_b64(value: int) -> str:
    """S3's wire form of a CRC64NVME: base64 of the 8 big-endian bytes."""
    return base64.b64encode(struct.pack(">Q", value)).decode("ascii")


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _hex_to_b64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


class S3Store(ObjectStore):
    """Objects in ``s3://bucket/prefix``; see the module docstring for how each promise is kept."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        options: S3Options | None = None,
        client: S3Client | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.options = options or S3Options()
        self.uri = f"s3://{bucket}/{self.prefix}"
        self.client: S3Client = client or make_client(self.options)

    # -- helpers ------------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _translate(self, e: Exception, op: str, key: str) -> StorageError:
        """Turn a botocore exception into the Qor error a caller can act on."""
        if isinstance(e, ClientError):
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            msg = str(err.get("Message", ""))
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            not_found = status == 404 and code != "NoSuchBucket"
            if code in {"NoSuchKey", "NotFound", "NoSuchVersion"} or not_found:
                return ObjectNotFound(self.uri, key)
            if code == "PreconditionFailed" or status == 412:
                return ObjectExists(self.uri, key)
            if code in {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"}:
                return ChecksumMismatch(key, "server checksum", msg or code, None)
            if code == "AccessDenied" and "lock" in msg.lower():
                return RetentionActive(self.uri, key, None)
            if (
                code
                in {
                    "SlowDown",
                    "Throttling",
                    "ThrottlingException",
                    "RequestTimeout",
                    "ServiceUnavailable",
                    "InternalError",
                }
                or status >= 500
            ):
                return StoreUnavailable(self.uri, f"{op} {key}", f"{code} {msg}".strip())
            return StoreRefused(self.uri, f"{op} {key}", f"{code or status}: {msg}".strip())
        if isinstance(e, BotoCoreError):
            return StoreUnavailable(self.uri, f"{op} {key}", f"{type(e).__name__}: {e}")
        raise e

    def _lock_args(self, retain_until: datetime | None) -> dict[str, Any]:
        until = retain_until
        if until is None and self.options.retention_days:
            until = datetime.now(UTC) + timedelta(days=self.options.retention_days)
        if until is None:
            return {}
        if until.tzinfo is None:
            raise ValueError("retain_until must be timezone-aware")
        return {
            "ObjectLockMode": self.options.object_lock_mode or "GOVERNANCE",
            "ObjectLockRetainUntilDate": until,
        }

    def _info(self, key: str, r: Any) -> ObjectInfo:
        meta = r.get("Metadata") or {}
        sha = None
        if r.get("ChecksumSHA256") and r.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            sha = _b64_to_hex(str(r["ChecksumSHA256"]))
        elif meta.get(SHA256_META):
            sha = str(meta[SHA256_META])
        vid = r.get("VersionId")
        return ObjectInfo(
            key=key,
            size=int(r.get("ContentLength", r.get("Size", 0))),
            sha256=sha,
            version_id=None if vid in (None, "null") else str(vid),
            retain_until=r.get("ObjectLockRetainUntilDate"),
            retention_mode=r.get("ObjectLockMode"),
            crc64nvme=r.get("ChecksumCRC64NVME"),
            last_modified=r.get("LastModified"),
            etag=r.get("ETag"),
        )

    # -- bucket setup (tests, `qor store init`) -----------------------------------------------

    def create_bucket(self, *, object_lock: bool = True) -> None:
        """Create the bucket with versioning (and Object Lock, which implies versioning)."""
        try:
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.options.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.options.region}
            if object_lock:
                kwargs["ObjectLockEnabledForBucket"] = True
            self.client.create_bucket(**kwargs)
            self.client.put_bucket_versioning(
                Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, "create bucket", self.bucket) from e

    def versioning_enabled(self) -> bool:
        try:
            r = self.client.get_bucket_versioning(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, "get versioning", self.bucket) from e
        return r.get("Status") == "Enabled"

    # -- writes -------------------------------------------------------------------------------

    def _refuse_if_exists(self, key: str) -> None:
        # Cheap early refusal so a big upload is not sent for nothing; the real guarantee
        # is If-None-Match on the write itself.
        if self.exists(key):
            raise ObjectExists(self.uri, key)

    def _put_small(
        self,
        key: str,
        body: bytes | BinaryIO,
        size: int,
        sha256: str,
        lock: dict[str, Any],
        *,
        create_only: bool,
    ) -> ObjectInfo:
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if create_only else {}
        try:
            r = self.client.put_object(
                Bucket=self.bucket,
                Key=self._full(key),
                Body=body,
                ContentLength=size,
                ChecksumSHA256=_hex_to_b64(sha256),
                Metadata={SHA256_META: sha256},
                **lock,
                **extra,
            )
        except (ClientError, BotoCoreError) as e:
            err = self._translate(e, "put", key)
            if isinstance(err, ChecksumMismatch):
                raise ChecksumMismatch(key, "sha256", sha256, None) from e
            raise err from e
        return ObjectInfo(
            key=key,
            size=size,
            sha256=sha256,
            version_id=None if r.get("VersionId") in (None, "null") else r.get("VersionId"),
            retain_until=lock.get("ObjectLockRetainUntilDate"),
            retention_mode=lock.get("ObjectLockMode"),
            etag=r.get("ETag"),
        )

    def _put_multipart(
        self,
        key: str,
        parts: Iterator[bytes],
        expected: str | None,
        lock: dict[str, Any],
        *,
        create_only: bool,
    ) -> ObjectInfo:
        full = self._full(key)
        meta = {SHA256_META: expected} if expected else {}
        try:
            up = self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=full,
                ChecksumAlgorithm="CRC64NVME",
                ChecksumType="FULL_OBJECT",
                Metadata=meta,
                **lock,
            )
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, "start upload", key) from e
        upload_id = up["UploadId"]
        sha = hashlib.sha256()
        crc = 0
        size = 0
        done: builtins.list[dict[str, Any]] = []
        inflight: deque[Future[dict[str, Any]]] = deque()

        def send(number: int, data: bytes) -> dict[str, Any]:
            r = self.client.upload_part(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ChecksumCRC64NVME=crc64nvme_b64(crt_checksums.crc64nvme(data)),
            )
            return {
                "PartNumber": number,
                "ETag": r["ETag"],
                "ChecksumCRC64NVME": r.get("ChecksumCRC64NVME"),
            }

        pool = ThreadPoolExecutor(self.options.max_concurrency, thread_name_prefix="qor-s3-part")
        try:
            try:
                for number, data in enumerate(parts, start=1):
                    if number > 10_000:
                        raise StorageError(f"{key}: more than 10000 parts; raise part_size")
                    sha.update(data)
                    crc = crt_checksums.crc64nvme(data, crc)
                    size += len(data)
                    while len(inflight) >= self.options.max_concurrency:
                        done.append(inflight.popleft().result())
                    inflight.append(pool.submit(send, number, data))
                while inflight:
                    done.append(inflight.popleft().result())
                digest = sha.hexdigest()
                check_sha256(key, expected, digest)
                extra: dict[str, Any] = {"IfNoneMatch": "*"} if create_only else {}
                r = self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": done},  # type: ignore[typeddict-item]
                    ChecksumCRC64NVME=crc64nvme_b64(crc),
                    ChecksumType="FULL_OBJECT",
                    **extra,
                )
            finally:
                for f in inflight:
                    f.cancel()
                pool.shutdown(wait=True)
        except BaseException as e:
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            if isinstance(e, (ClientError, BotoCoreError)):
                err = self._translate(e, "multipart upload", key)
                if isinstance(err, ChecksumMismatch):
                    raise ChecksumMismatch(key, "crc64nvme", crc64nvme_b64(crc), None) from e
                raise err from e
            raise
        return ObjectInfo(
            key=key,
            size=size,
            sha256=digest,
            version_id=None if r.get("VersionId") in (None, "null") else r.get("VersionId"),
            retain_until=lock.get("ObjectLockRetainUntilDate"),
            retention_mode=lock.get("ObjectLockMode"),
            crc64nvme=crc64nvme_b64(crc),
            etag=r.get("ETag"),
        )

    def _parts(self, buf: bytearray, rest: Iterator[bytes]) -> Iterator[bytes]:
        """Re-cut a stream into ``part_size`` parts (the last may be shorter)."""
        size = self.options.part_size
        for chunk in rest:
            buf += chunk
            while len(buf) >= size:
                yield bytes(buf[:size])
                del buf[:size]
        if buf:
            yield bytes(buf)

    def _put_stream(
        self,
        key: str,
        chunks: Iterable[bytes],
        sha256: str | None,
        retain_until: datetime | None,
        *,
        create_only: bool,
    ) -> ObjectInfo:
        validate_key(key)
        expected = validate_sha256(sha256)
        lock = self._lock_args(retain_until)
        if create_only:
            self._refuse_if_exists(key)
        it = iter(chunks)
        # Buffer up to the threshold: a small object goes up in one PutObject (retryable
        # by botocore since the body is in memory), a larger one as a multipart upload.
        buf = bytearray()
        limit = self.options.multipart_threshold
        for chunk in it:
            buf += chunk
            if len(buf) > limit:
                return self._put_multipart(
                    key, self._parts(buf, it), expected, lock, create_only=create_only
                )
        data = bytes(buf)
        # The caller's checksum (if any) is what we send: the server is the one to refuse.
        digest = expected or hashlib.sha256(data).hexdigest()
        return self._put_small(key, data, len(data), digest, lock, create_only=create_only)

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str | None = None,
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        validate_key(key)
        path = Path(path)
        expected = validate_sha256(sha256)
        size = path.stat().st_size
        self._refuse_if_exists(key)
        lock = self._lock_args(retain_until)
        if size <= self.options.multipart_threshold:
            digest = expected or sha256_file(path)
            with path.open("rb") as f:
                return self._put_small(key, f, size, digest, lock, create_only=True)
        # Known before the upload starts, so it goes into the object's metadata
        # (costs one extra read when the caller did not give it).
        expected = expected or sha256_file(path)
        return self._put_multipart(
            key,
            file_chunks(path, self.options.part_size),
            expected,
            lock,
            create_only=True,
        )

    def put_chunks(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        sha256: str | None = None,
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        return self._put_stream(key, chunks, sha256, retain_until, create_only=True)

    def put_new_version(
        self, key: str, chunks: Iterable[bytes], *, sha256: str | None = None
    ) -> ObjectInfo:
        """A new version of an existing key; refused unless the bucket keeps versions."""
        if not self.versioning_enabled():
            raise StoreRefused(self.uri, f"new version of {key}", "bucket versioning is off")
        self.head(key)
        info = self._put_stream(key, chunks, sha256, None, create_only=False)
        logger.info("stored new version %s of %s in %s", info.version_id, key, self.uri)
        return info

    # -- reads --------------------------------------------------------------------------------

    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        kwargs: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        try:
            r = self.client.head_object(
                Bucket=self.bucket, Key=self._full(key), ChecksumMode="ENABLED", **kwargs
            )
        except (ClientError, BotoCoreError) as e:
            err = self._translate(e, "head", key)
            if isinstance(err, ObjectNotFound):
                raise ObjectNotFound(self.uri, key, version_id) from e
            raise err from e
        return self._info(key, r)

    def open_read(
        self,
        key: str,
        *,
        start: int = 0,
        length: int | None = None,
        version_id: str | None = None,
    ) -> BinaryIO:
        if start < 0 or (length is not None and length < 0):
            raise ValueError("start and length must be ≥ 0")
        kwargs: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        if length == 0:
            self.head(key, version_id=version_id)
            return io.BufferedReader(BoundedReader(io.BytesIO(b""), 0))
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            kwargs["Range"] = f"bytes={start}-{end}"
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self._full(key), **kwargs)
        except (ClientError, BotoCoreError) as e:
            code = e.response.get("Error", {}).get("Code") if isinstance(e, ClientError) else None
            if code == "InvalidRange":
                self.head(key, version_id=version_id)  # absent → ObjectNotFound
                return io.BufferedReader(BoundedReader(io.BytesIO(b""), 0))
            err = self._translate(e, "get", key)
            if isinstance(err, ObjectNotFound):
                raise ObjectNotFound(self.uri, key, version_id) from e
            raise err from e
        return io.BufferedReader(BoundedReader(_BodyReader(r["Body"], self, key), None))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.prefix + prefix,
            PaginationConfig={"PageSize": self.options.page_size},
        )
        cut = len(self.prefix)
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        key=obj["Key"][cut:],
                        size=int(obj["Size"]),
                        sha256=None,
                        version_id=None,
                        retain_until=None,
                        last_modified=obj.get("LastModified"),
                        etag=obj.get("ETag"),
                    )
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, "list", prefix) from e

    def list_versions(self, key: str) -> builtins.list[ObjectInfo]:
        full = self._full(key)
        out: builtins.list[ObjectInfo] = []
        paginator = self.client.get_paginator("list_object_versions")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for v in page.get("Versions", []):
                    if v["Key"] != full:
                        continue
                    out.append(self.head(key, version_id=v["VersionId"]))
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, "list versions", key) from e
        out.sort(key=lambda i: i.last_modified or datetime.min.replace(tzinfo=UTC), reverse=True)
        return out

    # -- delete -------------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        info = self.head(key)
        # On a versioned bucket a plain DELETE would only add a delete marker, which S3 allows
        # even under Object Lock; Qor refuses it while retention holds.
        if info.under_retention():
            raise RetentionActive(self.uri, key, info.retain_until)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, "delete", key) from e
        logger.info("deleted %s from %s", key, self.uri)

    def with_options(self, **changes: Any) -> S3Store:
        """A store on the same bucket and client with some options changed (e.g. page size)."""
        return S3Store(
            bucket=self.bucket,
            prefix=self.prefix,
            options=replace(self.options, **changes),
            client=self.client,
        )


class _BodyReader(io.RawIOBase):
    """Wraps botocore's StreamingBody so mid-stream network errors become StoreUnavailable."""

    def __init__(self, body: Any, store: S3Store, key: str) -> None:
        super().__init__()
        self._body = body
        self._store = store
        self._key = key

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1, /) -> bytes:
        try:
            data: bytes = self._body.read(None if n is None or n < 0 else n)
            return data
        except (BotoCoreError, OSError) as e:
            raise StoreUnavailable(self._store.uri, f"get {self._key}", str(e)) from e

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
            super().close()
