"""Building BagIt bags (RFC 8493, BagIt 1.0) in one pass over each payload file.

Each payload file is read once: its bytes go through an optional *transform* (Qor passes the
streaming encryption of :mod:`storage`), and the transform's output is hashed with every configured
algorithm and written into the bag at the same time. The manifests therefore cover exactly the
bytes stored (the ciphertext), so fixity can be checked without any key.

The bag is built in a hidden sibling folder and renamed into place at the end: a half-built bag
never sits at the destination looking complete. The layout is documented in ``docs/bag-profile.md``.
"""

from __future__ import annotations

import logging
import os
import shutil
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import BinaryIO

from integrity.algorithms import CHUNK_SIZE, DEFAULT_ALGORITHMS, MultiHasher, check_algorithms
from integrity.errors import BagBuildError, BagExistsError
from qor.errors import QorError

logger = logging.getLogger(__name__)

__all__ = [
    "QOR_PROFILE_IDENTIFIER",
    "BagFileRecord",
    "BagInfo",
    "BagSummary",
    "MetadataContent",
    "PayloadFile",
    "Transform",
    "build_bag",
    "encode_manifest_path",
]

Transform = Callable[[BinaryIO, str], Iterator[bytes]]
"""Turns one payload file's plaintext into the bytes to store, chunk by chunk.

Called as ``transform(source, file_id)`` with ``file_id`` the file's path in the bag
(``data/...``); e.g. ``functools.partial(storage.encrypt_chunks, bag_key=k)`` adapted to take
``(plain, file_id)``. It must stream (constant memory) and may raise a ``QorError``.
"""

QOR_PROFILE_IDENTIFIER = "qor-bag-profile-1.0"
"""Value of ``BagIt-Profile-Identifier`` in Qor's bags: names the profile shipped in
``integrity/profiles/qor-bag-profile-1.0.json`` (see ``docs/bag-profile.md``)."""

_BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def _default_agent() -> str:
    try:
        return f"Qor {version('qor')}"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "Qor"


@dataclass(frozen=True)
class PayloadFile:
    """One file to put in the bag: ``source`` on disk, stored at ``data/<bag_path>``.

    ``bag_path`` is relative to the payload directory, ``/``-separated, e.g. ``access/KZ-1.pdf``.
    """

    source: Path
    bag_path: str


@dataclass(frozen=True)
class BagInfo:
    """The ``bag-info.txt`` metadata of a Qor bag.

    ``external_identifier`` is the item's inventory number (инвентарный номер / инвентарлық
    нөмір, immutable per R14); ``bag_group_identifier`` groups the bags of one digitisation batch.
    ``encryption_format`` and ``key_id`` become ``Qor-Encryption-Format`` and ``Qor-Key-Id``
    (never key material). ``extra`` adds further ``(label, value)`` elements in order.
    ``Payload-Oxum``, ``Bag-Size`` and ``Bagging-Date`` (today, UTC, if not given) are computed.
    """

    source_organization: str
    external_identifier: str
    bag_group_identifier: str | None = None
    external_description: str | None = None
    bagging_date: date | None = None
    bag_software_agent: str = field(default_factory=_default_agent)
    encryption_format: str | None = None
    key_id: str | None = None
    profile_identifier: str | None = QOR_PROFILE_IDENTIFIER
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BagFileRecord:
    """A file written into the bag: its path in the bag, its size and its digests by algorithm."""

    path: str
    size: int
    digests: Mapping[str, str]


MetadataContent = bytes | Callable[[Sequence[BagFileRecord]], bytes]
"""A ``metadata/`` tag file: its bytes, or a function of the payload records that makes them
(so PREMIS can carry the digests computed while the payload was written)."""


@dataclass(frozen=True)
class BagSummary:
    """What :func:`build_bag` made."""

    path: Path
    algorithms: tuple[str, ...]
    payload: tuple[BagFileRecord, ...]
    tag_files: tuple[BagFileRecord, ...]
    bag_info: tuple[tuple[str, str], ...]

    @property
    def payload_octets(self) -> int:
        return sum(r.size for r in self.payload)

    @property
    def payload_oxum(self) -> str:
        return f"{self.payload_octets}.{len(self.payload)}"


def encode_manifest_path(path: str) -> str:
    """Percent-encode ``%``, CR and LF in a manifest filepath, as RFC 8493 section 2.1.3 asks."""
    return path.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")


def _check_relative(path: str, what: str) -> None:
    why = None
    if not path or path.startswith("/") or "\\" in path:
        why = "must be a non-empty relative path with '/' separators"
    elif "\x00" in path:
        why = "must not contain NUL"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        why = "must not contain empty, '.' or '..' segments"
    if why:
        raise BagBuildError(f"{what} {path!r}: {why}")


def _check_value(label: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise BagBuildError(f"bag-info {label}: value must be one line (no CR or LF)")


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_payload(
    item: PayloadFile, root: Path, algorithms: Sequence[str], transform: Transform | None
) -> BagFileRecord:
    bag_path = f"data/{item.bag_path}"
    target = root / bag_path
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = MultiHasher(algorithms)
    try:
        src = item.source.open("rb")
    except OSError as e:
        raise BagBuildError(f"{item.source}: cannot be read ({e.strerror or e})") from e
    with src, target.open("xb") as out:
        chunks: Iterator[bytes]
        if transform is None:
            chunks = iter(lambda: src.read(CHUNK_SIZE), b"")
        else:
            chunks = transform(src, bag_path)
        try:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
        except OSError as e:
            raise BagBuildError(f"{item.source} → {bag_path}: {e.strerror or e}") from e
        out.flush()
        os.fsync(out.fileno())
    return BagFileRecord(bag_path, hasher.size, hasher.hexdigests())


def _tag_record(root: Path, path: str, data: bytes, algorithms: Sequence[str]) -> BagFileRecord:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("xb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    hasher = MultiHasher(algorithms)
    hasher.update(data)
    return BagFileRecord(path, hasher.size, hasher.hexdigests())


def _manifest(records: Sequence[BagFileRecord], algorithm: str) -> bytes:
    lines = [
        f"{r.digests[algorithm]}  {encode_manifest_path(r.path)}\n"
        for r in sorted(records, key=lambda r: r.path)
    ]
    return "".join(lines).encode("utf-8")


def _bag_info_lines(info: BagInfo, payload: Sequence[BagFileRecord]) -> list[tuple[str, str]]:
    octets = sum(r.size for r in payload)
    when = info.bagging_date or datetime.now(UTC).date()
    fields: list[tuple[str, str | None]] = [
        ("Source-Organization", info.source_organization),
        ("External-Identifier", info.external_identifier),
        ("External-Description", info.external_description),
        ("Bag-Group-Identifier", info.bag_group_identifier),
        ("Bagging-Date", when.isoformat()),
        ("Bag-Software-Agent", info.bag_software_agent),
        ("BagIt-Profile-Identifier", info.profile_identifier),
        ("Payload-Oxum", f"{octets}.{len(payload)}"),
        ("Bag-Size", _human_size(octets)),
        ("Qor-Encryption-Format", info.encryption_format),
        ("Qor-Key-Id", info.key_id),
        *info.extra,
    ]
    out: list[tuple[str, str]] = []
    for label, value in fields:
        if value is None:
            continue
        if not label or ":" in label or label != label.strip() or "\n" in label:
            raise BagBuildError(f"bag-info label {label!r} is not allowed")
        _check_value(label, value)
        out.append((label, value))
    return out


def build_bag(
    dest: Path,
    *,
    payload: Sequence[PayloadFile],
    info: BagInfo,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    transform: Transform | None = None,
    metadata_files: Mapping[str, MetadataContent] | None = None,
    workers: int | None = None,
) -> BagSummary:
    """Build a bag at ``dest`` (which must not exist) and return what was written.

    Each payload file is read once; ``transform`` (e.g. encryption) sees the plaintext and what it
    yields is hashed with every algorithm in ``algorithms`` and written at ``data/<bag_path>``.
    ``metadata_files`` maps names under ``metadata/`` (e.g. ``"premis.xml"``) to their bytes or to
    a function of the payload records. Tag manifests cover every tag file. ``workers`` files are
    written at once (default: up to 4, never more than the cores).

    Raises :class:`~integrity.errors.BagExistsError` if ``dest`` exists and
    :class:`~integrity.errors.BagBuildError` for bad input; nothing is left behind on failure.
    """
    try:
        algs = check_algorithms(algorithms)
    except ValueError as e:
        raise BagBuildError(str(e)) from e
    metadata = dict(metadata_files or {})
    seen: dict[str, str] = {}
    for item in payload:
        _check_relative(item.bag_path, "payload path")
        if any(c in item.bag_path for c in "%\r\n"):
            # RFC 8493 percent-encodes these, but bagit-python (which Qor's bags must also pass)
            # does not decode %25; the profile keeps such names out of Qor's bags.
            raise BagBuildError(
                f"payload path {item.bag_path!r}: '%', CR and LF are not allowed in Qor bags"
            )
        # Two names equal after Unicode normalisation would be one file on some file systems.
        key = unicodedata.normalize("NFC", item.bag_path)
        if key in seen:
            raise BagBuildError(f"payload path {item.bag_path!r} is given twice")
        seen[key] = item.bag_path
        if not item.source.is_file():
            raise BagBuildError(f"{item.source}: not a readable file")
    for name in metadata:
        _check_relative(name, "metadata file")
    if dest.exists() or dest.is_symlink():
        raise BagExistsError(f"{dest}: already exists; a bag is never overwritten")
    parent = dest.parent
    if not parent.is_dir():
        raise BagBuildError(f"{parent}: destination folder does not exist")

    tmp = parent / f".{dest.name}.partial-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        (tmp / "data").mkdir()
        n = workers or min(4, os.cpu_count() or 1)
        if n > 1 and len(payload) > 1:
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="bag-build") as pool:
                records = list(pool.map(lambda it: _write_payload(it, tmp, algs, transform),
                                        payload))
        else:
            records = [_write_payload(it, tmp, algs, transform) for it in payload]
        records.sort(key=lambda r: r.path)

        bag_info = _bag_info_lines(info, records)
        tags = [
            _tag_record(tmp, "bagit.txt", _BAGIT_TXT, algs),
            _tag_record(
                tmp,
                "bag-info.txt",
                "".join(f"{k}: {v}\n" for k, v in bag_info).encode("utf-8"),
                algs,
            ),
        ]
        for name in sorted(metadata):
            content = metadata[name]
            data = content(records) if callable(content) else content
            tags.append(_tag_record(tmp, f"metadata/{name}", data, algs))
        for alg in algs:
            tags.append(_tag_record(tmp, f"manifest-{alg}.txt", _manifest(records, alg), algs))
        for alg in algs:
            _tag_record(tmp, f"tagmanifest-{alg}.txt", _manifest(tags, alg), algs)

        for folder, _dirs, _files in os.walk(tmp):
            _fsync_dir(Path(folder))
        if dest.exists():
            raise BagExistsError(f"{dest}: appeared while the bag was being built")
        tmp.rename(dest)
        _fsync_dir(parent)
    except QorError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BagBuildError(f"bag {dest}: cannot be written ({e.strerror or e})") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("built bag %s: %d payload file(s), %d bytes", dest, len(records),
                sum(r.size for r in records))
    return BagSummary(dest, algs, tuple(records), tuple(tags), tuple(bag_info))
