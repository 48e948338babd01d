"""The object-store interface shared by :class:`FileStore` and :class:`S3Store`.

A depository store (депозитарлық сақтау қоймасы / депозитарное хранилище) keeps objects by
key. Its promises, which the contract tests check for every implementation:

* **create-only** — a put to an existing key raises :class:`ObjectExists`; nothing is ever
  overwritten (a repair adds a new *version* with :meth:`ObjectStore.put_new_version`);
* **all or nothing** — a put that fails (bad checksum, source error, store dying) leaves nothing
  visible under the key;
* **checked on the way in** — the SHA-256 of every object is computed while it streams in and
  compared with the caller's, and the store keeps it (``head().sha256``);
* **retention** — an object under retention cannot be deleted (:class:`RetentionActive`).
"""

from __future__ import annotations

import builtins
import hashlib
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from storage.errors import ChecksumMismatch, InvalidKey

READ_CHUNK = 1024 * 1024
MAX_KEY_BYTES = 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object (version).

    ``sha256`` is lowercase hex (as in BagIt manifests) or ``None`` when the store holds none
    for this object (e.g. an S3 object written by another tool). ``crc64nvme`` is S3's
    base64 full-object CRC64NVME, when the object has one.
    """

    key: str
    size: int
    sha256: str | None
    version_id: str | None
    retain_until: datetime | None
    retention_mode: str | None = None
    crc64nvme: str | None = None
    last_modified: datetime | None = None
    etag: str | None = None

    def under_retention(self, now: datetime | None = None) -> bool:
        """Whether the object is still under retention at ``now`` (default: now)."""
        if self.retain_until is None:
            return False
        return self.retain_until > (now or datetime.now(UTC))


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise :class:`InvalidKey`.

    Keys are ``/``-separated relative paths: no empty, ``.`` or ``..`` segment, no leading or
    trailing ``/``, no backslash or control character, at most 1024 UTF-8 bytes. The same rule
    for every store keeps a bag portable between a filesystem and S3.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey(str(key), "empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey(key, f"longer than {MAX_KEY_BYTES} bytes")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidKey(key, "contains a control character")
    if "\\" in key:
        raise InvalidKey(key, "contains a backslash")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKey(key, "not valid UTF-8 (lone surrogate)") from None
    for seg in key.split("/"):
        if seg in {"", ".", ".."}:
            raise InvalidKey(key, f"has an empty, '.' or '..' segment ({seg!r})")
    return key


def validate_sha256(value: str | None) -> str | None:
    """Normalise a hex SHA-256 (lowercase) or raise ``ValueError``."""
    if value is None:
        return None
    v = value.strip().lower()
    if not _HEX64.fullmatch(v):
        raise ValueError(f"not a hex SHA-256: {value!r}")
    return v


def check_sha256(key: str, expected: str | None, found: str) -> None:
    """Raise :class:`ChecksumMismatch` if the caller's SHA-256 differs from the computed one."""
    if expected is not None and expected != found:
        raise ChecksumMismatch(key, "sha256", expected, found)


def file_chunks(path: Path, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """Read a file in chunks (the file is opened lazily and closed at the end)."""
    with Path(path).open("rb") as f:
        while chunk := f.read(chunk_size):
            yield chunk


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    for chunk in file_chunks(path):
        h.update(chunk)
    return h.hexdigest()


class ObjectStore(ABC):
    """A place objects are kept by key. See the module docstring for the promises."""

    uri: str

    @abstractmethod
    def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str | None = None,
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        """Store the file at ``path`` under ``key`` (create-only), checking ``sha256`` if given."""

    @abstractmethod
    def put_chunks(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        sha256: str | None = None,
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        """Store a stream of chunks under ``key`` (create-only), checking ``sha256`` if given.

        If the iterator raises, the exception propagates and nothing is visible under ``key``.
        """

    @abstractmethod
    def put_new_version(
        self, key: str, chunks: Iterable[bytes], *, sha256: str | None = None
    ) -> ObjectInfo:
        """Store a new *version* of an existing key, keeping every earlier version (repair).

        Refused by stores that cannot keep history. Never used to create a key.
        """

    @abstractmethod
    def open_read(
        self,
        key: str,
        *,
        start: int = 0,
        length: int | None = None,
        version_id: str | None = None,
    ) -> BinaryIO:
        """A readable binary stream of the object (or of ``length`` bytes from ``start``).

        Use as a context manager. A range beyond the end is clamped like slicing.
        """

    @abstractmethod
    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        """Size, checksums, version and retention; :class:`ObjectNotFound` if absent."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order, fetched page by page.

        Listing gives key and size; call :meth:`head` for checksums and retention.
        """

    def list_actual(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """What the store really holds under ``prefix``, in key order — for audits.

        For a store whose listing *is* its contents (S3) this is :meth:`list`. A store that
        keeps its own records beside the bytes (the file store) lists the bytes instead: an
        object whose bytes are gone is absent, bytes without a record are present (an audit
        then names them as missing or unexpected files).
        """
        return self.list(prefix)

    def written_since_stored(self, key: str) -> bool:
        """Whether the object's bytes were written after the store committed them — behind its
        back (a quick audit's cheap clue; only a deep audit proves bytes). Stores that cannot
        tell (S3: an overwrite is a new version with its own checksum) answer False."""
        return False

    @abstractmethod
    def list_versions(self, key: str) -> builtins.list[ObjectInfo]:
        """Every stored version of ``key``, newest first (deleted ones included if kept)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` from view; :class:`RetentionActive` while under retention."""

    def exists(self, key: str) -> bool:
        """Whether an object is visible under ``key``."""
        from storage.errors import ObjectNotFound

        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    def copy(
        self, src_key: str, dst_key: str, *, retain_until: datetime | None = None
    ) -> ObjectInfo:
        """Copy an object to a new key in this store (create-only, checksum verified)."""
        return copy_object(self, src_key, self, dst_key, retain_until=retain_until)

    def read_range(
        self, key: str, start: int, length: int, *, version_id: str | None = None
    ) -> bytes:
        """``object[start:start + length]`` as bytes."""
        with self.open_read(key, start=start, length=length, version_id=version_id) as f:
            return f.read()

    def range_reader(
        self, key: str, *, version_id: str | None = None
    ) -> tuple[Callable[[int, int], bytes], int]:
        """``(read(start, length), size)`` for :func:`storage.crypto.decrypt_range`."""
        info = self.head(key, version_id=version_id)
        vid = version_id or info.version_id

        def read(start: int, length: int) -> bytes:
            return self.read_range(key, start, length, version_id=vid)

        return read, info.size

    def iter_chunks(
        self, key: str, *, chunk_size: int = READ_CHUNK, version_id: str | None = None
    ) -> Iterator[bytes]:
        """The object's bytes in chunks (streaming)."""
        with self.open_read(key, version_id=version_id) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


def copy_object(
    src: ObjectStore,
    src_key: str,
    dst: ObjectStore,
    dst_key: str | None = None,
    *,
    retain_until: datetime | None = None,
) -> ObjectInfo:
    """Stream an object from one store to another (replicas), verifying its SHA-256.

    The source's stored SHA-256 (computed here if the source has none) is the expected
    checksum of the write, so a byte damaged in transit is refused and nothing is left.
    """
    info = src.head(src_key)
    expected = info.sha256
    if expected is None:
        h = hashlib.sha256()
        for chunk in src.iter_chunks(src_key, version_id=info.version_id):
            h.update(chunk)
        expected = h.hexdigest()
    return dst.put_chunks(
        dst_key or src_key,
        src.iter_chunks(src_key, version_id=info.version_id),
        sha256=expected,
        retain_until=retain_until,
    )


class BoundedReader(io.RawIOBase):
    """A raw stream limited to ``length`` bytes of an underlying stream; closes it on close."""

    def __init__(self, raw: BinaryIO | io.RawIOBase, length: int | None) -> None:
        super().__init__()
        self._raw = raw
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        n = len(b)
        if self._left is not None:
            n = min(n, self._left)
        if n == 0:
            return 0
        data = self._raw.read(n)
        if not data:
            return 0
        got = len(data)
        b[:got] = data
        if self._left is not None:
            self._left -= got
        return got

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()
