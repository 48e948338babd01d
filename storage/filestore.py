"""The filesystem object store — the embedded default.

Layout under ``root``::

    <key>                          the object's bytes, read-only (0444); a bag on disk is a
                                   plain folder and stays a valid bag
    .qor-store/format.json         marks the folder as a Qor store
    .qor-store/meta/<key>.json     size, sha256, version id, retention: the commit record
    .qor-store/versions/<key>/<v>  earlier versions kept by put_new_version (+ <v>.json)
    .qor-store/tmp/                uploads in progress (same filesystem, so rename is atomic)
    .qor-store/orphans/            bytes of writes that crashed before committing
    .qor-store/lock                serialises the short commit step between processes

A write streams to ``tmp/``, hashing as it goes, is ``fsync``-ed, checked, then *linked* to its
key (``link`` fails if the name exists, so the store never overwrites), the directory is
``fsync``-ed, and last the metadata record is written the same way. The metadata record is the
commit point: an object is visible (``head``, ``exists``, ``list``, ``open_read``) only once it
exists, so a crash at any moment leaves either nothing or a complete, checked object.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from storage.errors import (
    KeyConflict,
    ObjectExists,
    ObjectNotFound,
    RetentionActive,
    StorageError,
    StoreUnavailable,
)
from storage.store import (
    BoundedReader,
    ObjectInfo,
    ObjectStore,
    check_sha256,
    file_chunks,
    validate_key,
    validate_sha256,
)

logger = logging.getLogger(__name__)

META_DIR = ".qor-store"
_FORMAT = {"format": "qor-filestore", "version": 1}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_version_id() -> str:
    # Sortable by time, unique: microseconds since the epoch + randomness.
    return f"{int(datetime.now(UTC).timestamp() * 1_000_000):016x}{secrets.token_hex(5)}"


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class FileStore(ObjectStore):
    """Objects as files under ``root``; see the module docstring for the layout and guarantees.

    ``retention_days`` gives every new object a retention period (refusing deletion until it
    ends); ``retain_until`` on a put overrides it. ``fsync=False`` is for throw-away stores
    only (tests of other parts): it gives up durability, never atomicity or create-only.
    """

    def __init__(
        self,
        root: Path,
        *,
        create: bool = True,
        retention_days: int | None = None,
        fsync: bool = True,
    ) -> None:
        self.root = Path(root).absolute()
        self.uri = self.root.as_uri()
        self.retention_days = retention_days
        self._fsync = fsync
        self._meta = self.root / META_DIR
        try:
            if not self._meta.is_dir():
                if not create:
                    raise StorageError(f"{self.root} is not a Qor file store (no {META_DIR}/)")
                for sub in ("meta", "versions", "tmp", "orphans"):
                    (self._meta / sub).mkdir(parents=True, exist_ok=True)
                fmt = self._meta / "format.json"
                if not fmt.exists():
                    fmt.write_text(json.dumps(_FORMAT) + "\n", "utf-8")
            else:
                for sub in ("meta", "versions", "tmp", "orphans"):
                    (self._meta / sub).mkdir(exist_ok=True)
        except OSError as e:
            raise StoreUnavailable(self.uri, "open", f"{type(e).__name__}: {e.strerror}") from e

    # -- paths --------------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        validate_key(key)
        if key.split("/", 1)[0] == META_DIR:
            from storage.errors import InvalidKey

            raise InvalidKey(key, f"{META_DIR}/ is the store's own metadata")
        return key

    def _data_path(self, key: str) -> Path:
        return self.root / key

    def _meta_path(self, key: str) -> Path:
        return self._meta / "meta" / f"{key}.json"

    def _versions_dir(self, key: str) -> Path:
        return self._meta / "versions" / key

    # -- small durable-file helpers -----------------------------------------------------------

    def _sync(self, fd: int) -> None:
        if self._fsync:
            os.fsync(fd)

    def _sync_dir(self, path: Path) -> None:
        if self._fsync:
            _fsync_dir(path)

    def _makedirs(self, path: Path) -> None:
        """Create ``path`` and parents, fsync-ing each parent that gained an entry."""
        missing: list[Path] = []
        p = path
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            with contextlib.suppress(FileExistsError):
                d.mkdir()
            self._sync_dir(d.parent)

    def _write_json_atomic(self, path: Path, obj: dict[str, Any]) -> None:
        self._makedirs(path.parent)
        tmp = self._meta / "tmp" / f"meta-{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, (json.dumps(obj, sort_keys=True) + "\n").encode())
            self._sync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
        self._sync_dir(path.parent)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        fd = os.open(self._meta / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- metadata -----------------------------------------------------------------------------

    def _info(self, key: str, meta: dict[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=int(meta["size"]),
            sha256=meta.get("sha256"),
            version_id=meta.get("version_id"),
            retain_until=_parse_dt(meta.get("retain_until")),
            last_modified=_parse_dt(meta.get("created")),
        )

    def _read_meta(self, key: str) -> dict[str, Any] | None:
        try:
            with self._meta_path(key).open("rb") as f:
                meta: dict[str, Any] = json.load(f)
                return meta
        except (FileNotFoundError, NotADirectoryError):
            return None

    # -- writes -------------------------------------------------------------------------------

    def _check_path_free(self, key: str) -> None:
        """Refuse a key whose path collides with another object's path or folder."""
        parts = key.split("/")
        p = self.root
        for i, part in enumerate(parts[:-1]):
            p = p / part
            if p.exists() and not p.is_dir():
                raise KeyConflict(self.uri, key, "/".join(parts[: i + 1]))
        data = self._data_path(key)
        if data.is_dir():
            raise KeyConflict(self.uri, key, key + "/")

    def _stream_to_tmp(self, key: str, chunks: Iterable[bytes]) -> tuple[Path, int, str]:
        tmp = self._meta / "tmp" / f"obj-{secrets.token_hex(8)}"
        h = hashlib.sha256()
        size = 0
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb", buffering=0, closefd=False) as f:
                for chunk in chunks:
                    f.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
            self._sync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return tmp, size, h.hexdigest()

    def _retention(self, retain_until: datetime | None) -> datetime | None:
        if retain_until is not None:
            if retain_until.tzinfo is None:
                raise ValueError("retain_until must be timezone-aware")
            return retain_until
        if self.retention_days:
            return datetime.now(UTC) + timedelta(days=self.retention_days)
        return None

    def _publish(self, tmp: Path, data: Path) -> None:
        """Move ``tmp`` to ``data`` without ever replacing an existing file."""
        try:
            os.link(tmp, data)
        except FileExistsError:
            raise
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            # Filesystems without hard links: we hold the lock and checked the name is free.
            if data.exists():
                raise FileExistsError(errno.EEXIST, "exists", str(data)) from e
            tmp.rename(data)
            return
        tmp.unlink()

    def _commit(
        self,
        key: str,
        tmp: Path,
        size: int,
        digest: str,
        retain_until: datetime | None,
        *,
        new_version: bool = False,
    ) -> ObjectInfo:
        data = self._data_path(key)
        version_id = _new_version_id()
        now = datetime.now(UTC)
        with self._lock():
            old = self._read_meta(key)
            if new_version:
                if old is None:
                    raise ObjectNotFound(self.uri, key)
                self._archive_current(key, old)
            elif old is not None:
                raise ObjectExists(self.uri, key)
            self._check_path_free(key)
            self._makedirs(data.parent)
            if data.exists() or data.is_symlink():
                # Bytes without a commit record: a write that crashed (or a stray file).
                # Keep them aside rather than delete anything.
                orphan = self._meta / "orphans" / f"{secrets.token_hex(6)}-{data.name}"
                data.rename(orphan)
                logger.warning("moved uncommitted file %s to %s", data, orphan)
            tmp.chmod(0o444)
            self._publish(tmp, data)
            self._sync_dir(data.parent)
            meta = {
                "key": key,
                "size": size,
                "sha256": digest,
                "version_id": version_id,
                "created": now.isoformat(),
                "retain_until": retain_until.isoformat() if retain_until else None,
            }
            self._write_json_atomic(self._meta_path(key), meta)
        return self._info(key, meta)

    def _archive_current(self, key: str, meta: dict[str, Any]) -> None:
        vdir = self._versions_dir(key)
        self._makedirs(vdir)
        vid = str(meta["version_id"])
        try:
            self._data_path(key).rename(vdir / vid)
        except FileNotFoundError:
            # The bytes were deleted behind the store's back (what a repair restores): the
            # record is kept in history all the same, marked, and reading that version says
            # "not found" rather than crashing the write of the good copy.
            meta = {**meta, "bytes_missing": True}
            logger.warning("the current version of %s in %s had no bytes on disk", key,
                           self.uri)
        self._write_json_atomic(vdir / f"{vid}.json", meta)
        self._sync_dir(self._data_path(key).parent)

    def _put(
        self,
        key: str,
        chunks: Iterable[bytes],
        sha256: str | None,
        retain_until: datetime | None,
        *,
        new_version: bool = False,
    ) -> ObjectInfo:
        key = self._key(key)
        expected = validate_sha256(sha256)
        until = self._retention(retain_until)
        if not new_version:
            if self._read_meta(key) is not None:
                raise ObjectExists(self.uri, key)
            self._check_path_free(key)
        try:
            tmp, size, digest = self._stream_to_tmp(key, chunks)
        except OSError as e:
            raise StoreUnavailable(self.uri, f"put {key}", f"{e.strerror or e}") from e
        try:
            check_sha256(key, expected, digest)
            info = self._commit(key, tmp, size, digest, until, new_version=new_version)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        logger.debug("stored %s (%d bytes, sha256 %s) in %s", key, size, digest, self.uri)
        return info

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str | None = None,
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        return self._put(key, file_chunks(Path(path)), sha256, retain_until)

    def put_chunks(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        sha256: str | None = None,
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        return self._put(key, chunks, sha256, retain_until)

    def put_new_version(
        self, key: str, chunks: Iterable[bytes], *, sha256: str | None = None
    ) -> ObjectInfo:
        """Replace the visible bytes of ``key``; the previous version is kept under
        ``.qor-store/versions/`` (never deleted), retention included."""
        info = self._put(key, chunks, sha256, None, new_version=True)
        logger.info("stored new version %s of %s in %s", info.version_id, key, self.uri)
        return info

    # -- reads --------------------------------------------------------------------------------

    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        key = self._key(key)
        meta = self._read_meta(key)
        if version_id is not None and (meta is None or meta.get("version_id") != version_id):
            vmeta = self._versions_dir(key) / f"{version_id}.json"
            if "/" in version_id or not vmeta.is_file():
                raise ObjectNotFound(self.uri, key, version_id)
            return self._info(key, json.loads(vmeta.read_text("utf-8")))
        if meta is None:
            raise ObjectNotFound(self.uri, key)
        return self._info(key, meta)

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
        info = self.head(key, version_id=version_id)
        current = self._read_meta(key)
        if current is not None and current.get("version_id") == info.version_id:
            path = self._data_path(key)
        else:
            path = self._versions_dir(key) / str(info.version_id)
        try:
            f = path.open("rb", buffering=0)
        except FileNotFoundError:
            raise ObjectNotFound(self.uri, key, version_id) from None
        f.seek(min(start, info.size))
        return io.BufferedReader(BoundedReader(f, length))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self._meta / "meta"
        # Descend only into folders that can hold keys with this prefix.
        yield from self._walk(base, "", prefix)

    def _walk(self, folder: Path, rel: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            entries = builtins.list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        items: builtins.list[tuple[str, os.DirEntry[str], bool]] = []
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                items.append((rel + e.name + "/", e, True))
            elif e.name.endswith(".json"):
                items.append((rel + e.name[: -len(".json")], e, False))
        # Sorting folders as "name/" gives the same UTF-8 order S3 lists keys in.
        items.sort(key=lambda t: t[0].encode("utf-8"))
        for name, entry, is_dir in items:
            if is_dir:
                if name.startswith(prefix) or prefix.startswith(name):
                    yield from self._walk(Path(entry.path), name, prefix)
            elif name.startswith(prefix):
                try:
                    with open(entry.path, "rb") as f:  # noqa: PTH123
                        meta = json.load(f)
                except FileNotFoundError:
                    continue
                yield self._info(name, meta)

    def list_actual(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """The files really on disk under ``prefix`` (not the commit records).

        A committed object reports its record's checksum and version with the size of the
        file as it is now; a file without a record (planted, or a crashed write) is listed with
        no checksum; a record whose file is gone is not listed. Symbolic links are listed, not
        followed. Issue 15: audits compare this with the bag's manifests.
        """
        if prefix:
            self._key(prefix.rstrip("/") or "x")
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        yield from self._walk_data(self.root / base if base else self.root,
                                   f"{base}/" if base else "", prefix)

    def written_since_stored(self, key: str) -> bool:
        """The file's modification time is later than its commit record's (the bytes are
        written and fsync-ed before the record is made, so a stored file's mtime is never
        later; 10 ms of slack). Copy a file store with its times kept (``rsync -a``,
        ``cp -a``), or a quick audit reports every file; a store on a network filesystem needs
        the server's clock to agree with this host's."""
        key = self._key(key)
        meta = self._read_meta(key)
        created = _parse_dt(meta.get("created")) if meta else None
        if created is None:
            return False
        try:
            mtime = self._data_path(key).stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            return False
        return mtime > created.timestamp() + 0.01

    def _walk_data(self, folder: Path, rel: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            entries = builtins.list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        items: builtins.list[tuple[str, os.DirEntry[str], bool]] = []
        for e in entries:
            if not rel and e.name == META_DIR:
                continue
            is_dir = e.is_dir(follow_symlinks=False)
            items.append((rel + e.name + ("/" if is_dir else ""), e, is_dir))
        items.sort(key=lambda t: t[0].encode("utf-8"))
        for name, entry, is_dir in items:
            if is_dir:
                if name.startswith(prefix) or prefix.startswith(name):
                    yield from self._walk_data(Path(entry.path), name, prefix)
                continue
            if not name.startswith(prefix):
                continue
            try:
                size = entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
            meta = self._read_meta(name)
            if meta is None:
                yield ObjectInfo(key=name, size=size, sha256=None, version_id=None,
                                 retain_until=None, last_modified=None)
            else:
                yield replace(self._info(name, meta), size=size)

    def list_versions(self, key: str) -> builtins.list[ObjectInfo]:
        key = self._key(key)
        out: builtins.list[ObjectInfo] = []
        meta = self._read_meta(key)
        if meta is not None:
            out.append(self._info(key, meta))
        vdir = self._versions_dir(key)
        if vdir.is_dir():
            olds = [
                self._info(key, json.loads(p.read_text("utf-8")))
                for p in vdir.glob("*.json")
                if p.is_file()
            ]
            out.extend(sorted(olds, key=lambda i: str(i.version_id), reverse=True))
        return out

    # -- delete -------------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        key = self._key(key)
        with self._lock():
            meta = self._read_meta(key)
            if meta is None:
                raise ObjectNotFound(self.uri, key)
            info = self._info(key, meta)
            if info.under_retention():
                raise RetentionActive(self.uri, key, info.retain_until)
            # Uncommit first: a crash after this leaves an invisible orphan, never a
            # visible object without bytes.
            self._meta_path(key).unlink()
            self._sync_dir(self._meta_path(key).parent)
            data = self._data_path(key)
            with contextlib.suppress(FileNotFoundError):
                data.unlink()
            self._sync_dir(data.parent)
        logger.info("deleted %s from %s", key, self.uri)

    # -- housekeeping -------------------------------------------------------------------------

    def stale_uploads(self) -> builtins.list[Path]:
        """Temporary files left by writes that were killed (safe to remove when idle)."""
        return sorted(p for p in (self._meta / "tmp").iterdir() if p.is_file())

    def is_read_only(self, key: str) -> bool:
        """Whether the object's file is read-only on disk (as the store leaves it)."""
        mode = self._data_path(self._key(key)).stat().st_mode
        return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
