"""Fixity audits of stored bags (проверка сохранности / сақталуын тексеру): deep, quick, repair.

* **deep** — every object of the bag is streamed from its store and re-hashed against every
  manifest and tag manifest (several objects at once, hashing in threads that release the GIL),
  and every structural rule of RFC 8493 is checked (:func:`integrity.validate.problems`);
* **quick** — nothing of the payload is downloaded: the store's own recorded SHA-256 and size of
  each object (``head``) are compared with the manifests and with the sizes PREMIS recorded when
  the bag was made; the small tag files are read and verified, completeness and Payload-Oxum are
  checked from the listing.

When a file fails and a replica store is given, the replica's copy is checked against the
manifests; if it is good it is written back as a *new version* of the object (the damaged
version stays in the store's history: nothing is ever overwritten), and the bag is checked again.
With no good copy anywhere the failure stays, and the caller raises the alarm.

Plain Python: stores and callbacks come in as parameters; the register, Prefect and the CLI
are the callers' business (:mod:`integrity.records`, :mod:`flows.fixity`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from integrity.algorithms import MultiHasher
from integrity.journal import AuditJournal
from integrity.layout import BAG_PREFIX, bag_prefix
from integrity.problems import (
    BagProblem,
    OxumMismatch,
)
from integrity.store_source import StoreBagSource
from integrity.validate import FileCheck, manifest_digests, problems
from qor.errors import QorError
from storage.errors import ObjectNotFound, StorageError, StoreUnavailable
from storage.keys import KEY_RECORD_PREFIX, WrappedKey, key_record_key
from storage.store import ObjectStore

logger = logging.getLogger(__name__)

__all__ = [
    "BAG_PREFIX",
    "AuditMode",
    "AuditRun",
    "AuditTarget",
    "BagAudit",
    "FixityFailure",
    "Repair",
    "audit_bag",
    "bag_prefix",
    "deep_check",
    "find_orphans",
    "key_record_check",
    "plan_deep_checks",
    "quick_check",
    "repair_bag",
    "run_audit",
]


AuditMode = Literal["deep", "quick"]
ProgressCallback = Callable[[str, int, int], None]
"""``(stage, done, total)``: stages ``"bags"`` and ``"files"`` (files of the current bag)."""

# Findings a good copy from the replica can cure (the object's bytes are wrong or gone).
_REPAIRABLE = frozenset({"ChecksumMismatch", "MissingFile", "UnreadableFile", "SizeMismatch",
                         "StoredChecksumMismatch", "WrittenAfterStoring"})


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FixityFailure:
    """One thing wrong with a stored bag: which bag, which file, what, and by which algorithm.

    ``problem`` is the kind — a :mod:`integrity.problems` class name (``ChecksumMismatch``,
    ``MissingFile``, ``UnexpectedFile``, ``OxumMismatch``…) or one of quick mode's own:
    ``SizeMismatch`` (the object's size differs from the size PREMIS recorded) and
    ``StoredChecksumMismatch`` (the store's recorded SHA-256 differs from the manifest) and
    ``WrittenAfterStoring`` (the store can tell the bytes were written behind its back).
    ``path`` is the file's path in the bag (``""`` for the bag as a whole).
    """

    bag_id: str
    path: str
    problem: str
    message: str
    algorithm: str | None = None
    expected: str | None = None
    found: str | None = None
    algorithms: tuple[str, ...] = ()
    """Every algorithm whose checksum disagreed (one damaged file is one failure, however many
    manifests it is in); ``algorithm``/``expected``/``found`` are the first one's."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FixityFailure:
        def opt(k: str) -> str | None:
            v = data.get(k)
            return None if v is None else str(v)

        return cls(str(data["bag_id"]), str(data.get("path") or ""), str(data["problem"]),
                   str(data.get("message") or ""), opt("algorithm"), opt("expected"),
                   opt("found"), tuple(str(a) for a in data.get("algorithms") or ()))

    @classmethod
    def from_problem(cls, bag_id: str, p: BagProblem) -> FixityFailure:
        """The finding for a validator problem (fields kept, wording kept)."""
        path = str(getattr(p, "path", None) or getattr(p, "file", None) or "")
        if isinstance(p, OxumMismatch):
            return cls(bag_id, "bag-info.txt", "OxumMismatch", p.message, None,
                       f"{p.expected_octets}.{p.expected_streams}",
                       f"{p.found_octets}.{p.found_streams}")
        algorithm = getattr(p, "algorithm", None)
        return cls(bag_id, path, type(p).__name__, p.message, algorithm,
                   getattr(p, "expected", None), getattr(p, "found", None),
                   (algorithm,) if algorithm else ())

    def key(self) -> tuple[str, str]:
        return (self.path, self.problem)


@dataclass(frozen=True)
class Repair:
    """What was done about one failed file: restored from ``source_uri`` as new version
    ``version_id``, or not (``restored=False``, ``detail`` says why: no replica, the replica's
    copy is bad or absent, the store refused…)."""

    bag_id: str
    path: str
    restored: bool
    detail: str
    source_uri: str | None = None
    version_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Repair:
        src, vid = data.get("source_uri"), data.get("version_id")
        return cls(str(data["bag_id"]), str(data["path"]), bool(data["restored"]),
                   str(data.get("detail") or ""), None if src is None else str(src),
                   None if vid is None else str(vid))


@dataclass(frozen=True)
class BagAudit:
    """The result of auditing one bag.

    ``failures`` is what the check found; ``repairs`` what was done about it; ``remaining`` what
    is still wrong after the repairs (checked again). ``files_checked``/``bytes_checked`` count
    the objects verified (deep: hashed; quick: compared by their store metadata), including those
    checked before an interruption (``resumed_files`` of them).
    """

    bag_id: str
    store_uri: str
    mode: str
    started_at: datetime
    finished_at: datetime
    files_checked: int
    bytes_checked: int
    failures: tuple[FixityFailure, ...] = ()
    repairs: tuple[Repair, ...] = ()
    remaining: tuple[FixityFailure, ...] = ()
    resumed_files: int = 0
    inventory_number: str | None = None

    @property
    def outcome(self) -> str:
        """``success`` (intact), ``repaired`` (was damaged, now intact) or ``failure``."""
        if not self.failures:
            return "success"
        return "failure" if self.remaining else "repaired"

    @property
    def ok(self) -> bool:
        """Whether the bag is intact now (nothing remains wrong)."""
        return not self.remaining

    def as_dict(self) -> dict[str, Any]:
        return {
            "bag_id": self.bag_id, "store_uri": self.store_uri, "mode": self.mode,
            "inventory_number": self.inventory_number, "outcome": self.outcome,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "files_checked": self.files_checked, "bytes_checked": self.bytes_checked,
            "resumed_files": self.resumed_files,
            "failures": [f.as_dict() for f in self.failures],
            "repairs": [r.as_dict() for r in self.repairs],
            "remaining": [f.as_dict() for f in self.remaining],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BagAudit:
        return cls(
            bag_id=d["bag_id"], store_uri=d["store_uri"], mode=d["mode"],
            started_at=datetime.fromisoformat(d["started_at"]),
            finished_at=datetime.fromisoformat(d["finished_at"]),
            files_checked=int(d["files_checked"]), bytes_checked=int(d["bytes_checked"]),
            failures=tuple(FixityFailure.from_dict(f) for f in d.get("failures", ())),
            repairs=tuple(Repair.from_dict(r) for r in d.get("repairs", ())),
            remaining=tuple(FixityFailure.from_dict(f) for f in d.get("remaining", ())),
            resumed_files=int(d.get("resumed_files", 0)),
            inventory_number=d.get("inventory_number"),
        )


@dataclass(frozen=True)
class AuditTarget:
    """A registered digital copy to audit: its bag and the store it is in."""

    bag_id: str
    store_uri: str
    inventory_number: str | None = None


@dataclass(frozen=True)
class AuditRun:
    """One audit run over several bags (possibly resumed after an interruption)."""

    run_id: str
    mode: str
    started_at: datetime
    finished_at: datetime
    bags: tuple[BagAudit, ...]
    orphans: tuple[tuple[str, str], ...] = ()
    """``(store_uri, bag_id)`` of bags in a store that the register does not know."""
    resumed: bool = False
    checked_here: tuple[str, ...] = field(default=())
    """Bag ids checked by this process (the rest were finished before an interruption)."""

    @property
    def ok(self) -> bool:
        """No bag is left damaged (orphans are reported, not failures)."""
        return all(b.ok for b in self.bags)

    @property
    def failed(self) -> tuple[BagAudit, ...]:
        return tuple(b for b in self.bags if not b.ok)

    @property
    def bytes_checked(self) -> int:
        return sum(b.bytes_checked for b in self.bags)

    @property
    def files_checked(self) -> int:
        return sum(b.files_checked for b in self.bags)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "mode": self.mode, "ok": self.ok, "resumed": self.resumed,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "files_checked": self.files_checked, "bytes_checked": self.bytes_checked,
            "bags": [b.as_dict() for b in self.bags],
            "orphans": [{"store_uri": u, "bag_id": b} for u, b in self.orphans],
            "checked_here": list(self.checked_here),
        }


# -- checks ------------------------------------------------------------------------------------


def _dedupe(failures: Iterable[FixityFailure]) -> list[FixityFailure]:
    """One failure per (file, kind): a file that fails under several algorithms (its sha256
    and its sha512 both disagree) is one failure naming them all, in the order found."""
    merged: dict[tuple[str, str], FixityFailure] = {}
    for f in failures:
        first = merged.get(f.key())
        if first is None:
            merged[f.key()] = f
            continue
        extra = tuple(a for a in f.algorithms if a not in first.algorithms)
        if extra:
            algorithms = (*first.algorithms, *extra)
            merged[f.key()] = replace(first, algorithms=algorithms,
                                      message=_merged_message(first, algorithms))
    return list(merged.values())


def _merged_message(first: FixityFailure, algorithms: tuple[str, ...]) -> str:
    if first.problem == "ChecksumMismatch":
        return (f"{first.path}: {', '.join(algorithms)} checksums do not match the manifests "
                f"(the file's contents changed); every checksum in every payload manifest and "
                "tag manifest MUST be successfully verified against the contents of the file")
    return f"{first.message} ({', '.join(algorithms)})"


FileDone = Callable[[FileCheck, Sequence[FixityFailure]], None]


def deep_check(
    store: ObjectStore,
    bag_id: str,
    *,
    workers: int | None = None,
    skip: Collection[str] = (),
    prior_failures: Sequence[FixityFailure] = (),
    on_file: FileDone | None = None,
) -> tuple[list[FixityFailure], int, int]:
    """Re-hash every object of the bag (except ``skip``) from ``store``.

    Returns ``(failures, files hashed, bytes hashed)``. ``prior_failures`` (found in ``skip``ped
    files before an interruption) are included in the failures. ``on_file`` is called as each
    object is finished. Raises :class:`~storage.errors.StoreUnavailable` if the store goes away
    (not a finding: the audit can be resumed).
    """
    source = StoreBagSource(store, bag_prefix(bag_id))
    counts = [0, 0]

    def done(check: FileCheck) -> None:
        counts[0] += 1
        counts[1] += check.size
        if on_file is not None:
            on_file(check, [FixityFailure.from_problem(bag_id, p) for p in check.problems])

    found = problems(source, workers=workers, skip=skip, on_file=done)
    failures = _dedupe([*prior_failures, *(FixityFailure.from_problem(bag_id, p) for p in found)])
    return failures, counts[0], counts[1]


_PREMIS_NS = "http://www.loc.gov/premis/v3"


def premis_sizes(document: bytes) -> dict[str, int]:
    """Path in the bag → size in bytes, as recorded by ``metadata/premis.xml`` at bagging time."""
    try:
        root = etree.fromstring(document, parser=etree.XMLParser(resolve_entities=False,
                                                                  no_network=True))
    except etree.XMLSyntaxError:
        return {}
    ns = {"p": _PREMIS_NS}
    out: dict[str, int] = {}
    for obj in root.findall("p:object", ns):
        ident = obj.find("p:objectIdentifier[p:objectIdentifierType='Qor bag path']", ns)
        size = obj.find("p:objectCharacteristics/p:size", ns)
        if ident is None or size is None:
            continue
        value = ident.findtext("p:objectIdentifierValue", namespaces=ns)
        if value and size.text and size.text.isdigit():
            out[value] = int(size.text)
    return out


def quick_check(store: ObjectStore, bag_id: str) -> tuple[list[FixityFailure], int, int]:
    """Check the bag without downloading its payload.

    Tag files (a few KB) are read and verified; completeness and Payload-Oxum come from the
    listing; each payload object's stored SHA-256 (``head``) is compared with the manifest and
    its size with the size PREMIS recorded. An object whose store keeps no SHA-256 (written by
    another tool) is checked by size only — a deep audit is what proves its bytes.
    Returns ``(failures, objects compared, bytes they hold)``.
    """
    prefix = bag_prefix(bag_id)
    source = StoreBagSource(store, prefix)
    entries = source.files()
    payload = [e for e in entries if e.path.startswith("data/")]
    found = problems(source, skip={e.path for e in payload})
    failures = [FixityFailure.from_problem(bag_id, p) for p in found]
    if not entries:
        return failures, 0, 0
    digests = manifest_digests(source)
    sizes: dict[str, int] = {}
    if any(e.path == "metadata/premis.xml" for e in entries):
        with source.open("metadata/premis.xml") as f:
            sizes = premis_sizes(f.read())
    checked = 0
    nbytes = 0
    for e in payload:
        try:
            info = store.head(prefix + e.path)
        except ObjectNotFound:
            continue  # vanished since the listing: the next audit reports it missing
        checked += 1
        nbytes += info.size
        want = digests.get(e.path, {}).get("sha256")
        if info.sha256 is not None and want is not None and info.sha256 != want:
            failures.append(FixityFailure(
                bag_id, e.path, "StoredChecksumMismatch",
                f"{e.path}: the store records sha256 {info.sha256}, the manifest {want}",
                "sha256", want, info.sha256))
        if store.written_since_stored(prefix + e.path):
            failures.append(FixityFailure(
                bag_id, e.path, "WrittenAfterStoring",
                f"{e.path}: the object's bytes were written after the store committed them "
                "(behind its back)"))
        recorded = sizes.get(e.path)
        if recorded is not None and info.size != recorded:
            failures.append(FixityFailure(
                bag_id, e.path, "SizeMismatch",
                f"{e.path}: the stored object has {info.size} bytes, PREMIS recorded {recorded}",
                None, str(recorded), str(info.size)))
    return _dedupe(failures), checked, nbytes


# -- key records -------------------------------------------------------------------------------

KEY_RECORD_PROBLEM = "KeyRecordDamaged"
_MAX_KEY_RECORD = 64 * 1024


def _key_record_fault(store: ObjectStore, bag_id: str, key: str) -> str | None:
    """Why the key record ``key`` of ``bag_id`` cannot be trusted, or None if it is sound."""
    try:
        info = store.head(key)
        with store.open_read(key, length=_MAX_KEY_RECORD + 1) as f:
            body = f.read()
    except StoreUnavailable:
        raise
    except StorageError as e:
        return f"cannot be read: {e}"
    if len(body) > _MAX_KEY_RECORD:
        return f"is larger than {_MAX_KEY_RECORD} bytes"
    found = hashlib.sha256(body).hexdigest()
    if info.sha256 is not None and info.sha256 != found:
        return f"its bytes (sha256 {found}) differ from what was stored (sha256 {info.sha256})"
    try:
        obj = json.loads(body)
        wrapped = WrappedKey.from_json(obj)
    except (ValueError, QorError) as e:
        return f"is not a wrapped-key record ({type(e).__name__})"
    if obj.get("bag_id") != bag_id or key_record_key(bag_id, wrapped.kek_id) != key:
        return "names another bag or key-encryption key than its place in the store"
    return None


def key_record_check(store: ObjectStore, bag_id: str) -> list[FixityFailure]:
    """Each of the bag's key records (``_qor/keys/<bag>/<kek>.json``, the wrapped data key that
    ``qor register rebuild-links`` depends on) read back (they are tiny) and checked: its bytes
    against the store's recorded SHA-256, its content as a record of this bag (issue 15)."""
    out: list[FixityFailure] = []
    for info in store.list_actual(f"{KEY_RECORD_PREFIX}{bag_id}/"):
        fault = _key_record_fault(store, bag_id, info.key)
        if fault is not None:
            out.append(FixityFailure(bag_id, info.key, KEY_RECORD_PROBLEM,
                                     f"key record {info.key} {fault}"))
    return out


def _repair_key_record(primary: ObjectStore, replica: ObjectStore | None, bag_id: str,
                       key: str) -> Repair:
    if replica is None:
        return Repair(bag_id, key, False, "no replica store is configured")
    fault = _key_record_fault(replica, bag_id, key)
    if fault is not None:
        return Repair(bag_id, key, False, f"the replica's copy in {replica.uri} {fault}",
                      replica.uri)
    with replica.open_read(key, length=_MAX_KEY_RECORD) as f:
        body = f.read()
    digest = hashlib.sha256(body).hexdigest()
    try:
        if primary.exists(key):
            info = primary.put_new_version(key, [body], sha256=digest)
        else:
            info = primary.put_chunks(key, [body], sha256=digest)
    except StoreUnavailable:
        raise
    except (StorageError, OSError) as e:
        return Repair(bag_id, key, False, f"the store refused the restored copy: {e}",
                      replica.uri)
    logger.warning("repaired key record %s of bag %s from %s", key, bag_id, replica.uri)
    return Repair(bag_id, key, True, f"restored from {replica.uri} as a new version",
                  replica.uri, info.version_id)


# -- repair ------------------------------------------------------------------------------------


def _repair_file(
    primary: ObjectStore, replica: ObjectStore | None, bag_id: str, path: str,
    expected: Mapping[str, str] | None,
) -> Repair:
    if not expected:
        return Repair(bag_id, path, False,
                      "no manifest lists this file: there is nothing to check a copy against")
    if replica is None:
        return Repair(bag_id, path, False, "no replica store is configured")
    key = bag_prefix(bag_id) + path
    hasher = MultiHasher(sorted(expected))
    try:
        for chunk in replica.iter_chunks(key):
            hasher.update(chunk)
    except ObjectNotFound:
        return Repair(bag_id, path, False, f"the replica {replica.uri} has no copy of it",
                      replica.uri)
    except StoreUnavailable:
        raise
    except StorageError as e:
        return Repair(bag_id, path, False, f"the replica's copy cannot be read: {e}", replica.uri)
    got = hasher.hexdigests()
    bad = [a for a in sorted(expected) if got[a] != expected[a]]
    if bad:
        return Repair(bag_id, path, False,
                      f"the replica's copy in {replica.uri} fails the manifest too "
                      f"({', '.join(bad)}): no good copy", replica.uri)
    # Verified: write it back. The store checks the SHA-256 again as the bytes stream in, so a
    # copy that changed since it was hashed is refused and nothing is written.
    chunks = replica.iter_chunks(key)
    try:
        if primary.exists(key):
            info = primary.put_new_version(key, chunks, sha256=expected.get("sha256"))
            how = f"as new version {info.version_id} (the damaged version is kept in history)"
        else:
            info = primary.put_chunks(key, chunks, sha256=expected.get("sha256"))
            how = "as a new object (it was missing)"
    except StoreUnavailable:
        raise
    except (StorageError, OSError) as e:
        # Issue 15: one file that cannot be written back is this file's outcome, reported;
        # it never stops the repair of the others (or of the next bag).
        return Repair(bag_id, path, False, f"the store refused the restored copy: {e}",
                      replica.uri)
    logger.warning("repaired %s of bag %s from %s", path, bag_id, replica.uri)
    return Repair(bag_id, path, True, f"restored from {replica.uri} {how}", replica.uri,
                  info.version_id)


_MAX_TAG_FILE = 8 * 1024 * 1024
_TAGMANIFEST = re.compile(r"^tagmanifest-([a-z0-9]+)\.txt$")


def _small(store: ObjectStore, key: str) -> bytes | None:
    try:
        with store.open_read(key, length=_MAX_TAG_FILE + 1) as f:
            body = f.read()
    except StoreUnavailable:
        raise
    except StorageError:
        return None
    return body if len(body) <= _MAX_TAG_FILE else None


def _repair_tag_manifests(primary: ObjectStore, replica: ObjectStore, bag_id: str) -> list[Repair]:
    """Restore a damaged tag manifest from the replica.

    No manifest covers a tag manifest, so the replica's copy is taken only if it differs from
    the primary's and every entry in it verifies the primary's own current tag file: then the
    tag files are sound and the tag manifest was what changed (issue 15: tamper matrix).
    """
    prefix = bag_prefix(bag_id)
    out: list[Repair] = []
    for info in replica.list(prefix):
        name = info.key[len(prefix):]
        m = _TAGMANIFEST.match(name)
        if m is None:
            continue
        theirs = _small(replica, info.key)
        ours = _small(primary, info.key)
        if theirs is None or theirs == ours:
            continue
        try:
            algorithm = m.group(1)
            entries = [ln.split(None, 1) for ln in theirs.decode("utf-8").splitlines()
                       if ln.strip()]
            sound = bool(entries)
            for digest, path in entries:
                body = _small(primary, prefix + path.strip())
                if body is None or hashlib.new(algorithm, body).hexdigest() != digest.lower():
                    sound = False
                    break
        except (ValueError, UnicodeDecodeError):
            sound = False
        if not sound:
            continue
        digest = hashlib.sha256(theirs).hexdigest()
        try:
            if ours is not None and primary.exists(info.key):
                put = primary.put_new_version(info.key, [theirs], sha256=digest)
            else:
                put = primary.put_chunks(info.key, [theirs], sha256=digest)
        except StoreUnavailable:
            raise
        except (StorageError, OSError) as e:
            out.append(Repair(bag_id, name, False, f"the store refused the restored copy: {e}",
                              replica.uri))
            continue
        logger.warning("repaired %s of bag %s from %s", name, bag_id, replica.uri)
        out.append(Repair(bag_id, name, True,
                          f"restored from {replica.uri} (its entries verify this bag's tag files)",
                          replica.uri, put.version_id))
    return out


def repair_bag(
    primary: ObjectStore, replica: ObjectStore | None, bag_id: str,
    failures: Sequence[FixityFailure],
) -> list[Repair]:
    """Try to restore each damaged or missing file of ``failures`` from ``replica``.

    Tag files go first, alone: a restored manifest changes what the payload is checked against,
    so the caller checks again before repairing payload. A file is restored only if the replica's
    copy matches every checksum the manifests give for it, and only as a new object version.
    """
    if replica is not None and any(
            f.path and not f.path.startswith("data/") and f.problem != KEY_RECORD_PROBLEM
            for f in failures):
        restored = [r for r in _repair_tag_manifests(primary, replica, bag_id)]
        if any(r.restored for r in restored):
            return restored  # the caller checks again against the restored tag manifest
    keys = [f.path for f in failures if f.problem == KEY_RECORD_PROBLEM]
    key_repairs = [_repair_key_record(primary, replica, bag_id, k) for k in dict.fromkeys(keys)]
    paths: list[str] = []
    for f in failures:
        if f.problem in _REPAIRABLE and f.path and f.path not in paths:
            paths.append(f.path)
    tag_paths = [p for p in paths if not p.startswith("data/")]
    if tag_paths:
        paths = tag_paths
    if not paths:
        return key_repairs
    digests = manifest_digests(StoreBagSource(primary, bag_prefix(bag_id)))
    return [*key_repairs,
            *(_repair_file(primary, replica, bag_id, p, digests.get(p)) for p in paths)]


def audit_bag(
    store: ObjectStore,
    bag_id: str,
    *,
    mode: AuditMode = "deep",
    replica: ObjectStore | None = None,
    repair: bool = True,
    workers: int | None = None,
    journal: AuditJournal | None = None,
    inventory_number: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> BagAudit:
    """Audit one stored bag, repair what a good replica copy can cure, and check again.

    With a ``journal`` (deep mode), every object hashed is checkpointed and objects already in
    the journal are not read again (their findings are carried over).
    """
    started = _now()
    already = journal.checked_files(bag_id) if journal is not None and mode == "deep" else {}
    prior = [FixityFailure.from_dict(f) for rec in already.values() for f in rec["failures"]]
    ok_paths = {p for p, rec in already.items() if not rec["failures"]}
    resumed_files = len(already)
    resumed_bytes = sum(int(rec["size"]) for rec in already.values())

    def on_file(check: FileCheck, found: Sequence[FixityFailure]) -> None:
        if not found:
            ok_paths.add(check.path)
        if journal is not None:
            journal.file_done(bag_id, check.path, check.size, [f.as_dict() for f in found])
        if on_progress is not None:
            counted[0] += 1
            on_progress("files", counted[0], total)

    counted = [resumed_files]
    total = 0
    if mode == "deep":
        total = len(StoreBagSource(store, bag_prefix(bag_id)).files())
        failures, files, nbytes = deep_check(store, bag_id, workers=workers, skip=set(already),
                                             prior_failures=prior, on_file=on_file)
        files += resumed_files
        nbytes += resumed_bytes
    else:
        failures, files, nbytes = quick_check(store, bag_id)
    failures = [*failures, *key_record_check(store, bag_id)]

    repairs: list[Repair] = []
    remaining = failures
    if failures and repair:
        for _round in range(3):
            done = repair_bag(store, replica, bag_id, remaining)
            repairs.extend(done)
            if not any(r.restored for r in done):
                break
            # Check again: structure, every restored file, and anything not proven good yet.
            if mode == "deep":
                remaining, _, _ = deep_check(store, bag_id, workers=workers, skip=ok_paths)
            else:
                remaining, _, _ = quick_check(store, bag_id)
            remaining = [*remaining, *key_record_check(store, bag_id)]
            if not remaining:
                break
    if remaining:
        logger.error("bag %s in %s: %d fixity failure(s) remain", bag_id, store.uri,
                     len(remaining))
    return BagAudit(
        bag_id=bag_id, store_uri=store.uri, mode=mode, started_at=started, finished_at=_now(),
        files_checked=files, bytes_checked=nbytes, failures=tuple(failures),
        repairs=tuple(repairs), remaining=tuple(remaining), resumed_files=resumed_files,
        inventory_number=inventory_number,
    )


# -- schedule, orphans, runs -------------------------------------------------------------------


def plan_deep_checks(
    last_checked: Mapping[str, datetime], *, every_days: int, now: datetime | None = None
) -> list[str]:
    """The bags to deep-check today so that, run daily, each is checked at least every
    ``every_days`` days and the work is spread evenly over the days.

    ``last_checked`` maps every bag to its last deep check (or when it was stored, if never).
    Today's share is the ``ceil(n / every_days)`` least recently checked bags, plus every bag
    last checked ``every_days`` or more calendar days ago (UTC), which tomorrow would be late: a
    missed day, or bags added in bulk, never lets one slip. Days, not hours, so a daily run that
    starts a little later than yesterday's does not pull tomorrow's share into today.
    """
    if every_days < 1:
        raise ValueError("every_days must be at least 1")
    today = (now or _now()).astimezone(UTC).date()
    order = sorted(last_checked, key=lambda b: (last_checked[b], b))
    quota = math.ceil(len(order) / every_days)
    chosen = set(order[:quota])
    chosen.update(b for b in order
                  if (today - last_checked[b].astimezone(UTC).date()).days >= every_days)
    return [b for b in order if b in chosen]


def find_orphans(store: ObjectStore, registered: Collection[str]) -> list[str]:
    """Bag ids stored under ``bags/`` in ``store`` that are not in ``registered``."""
    known = set(registered)
    seen: list[str] = []
    n = len(BAG_PREFIX) + 1
    for info in store.list(f"{BAG_PREFIX}/"):
        bag_id = info.key[n:].split("/", 1)[0]
        if bag_id and bag_id not in known and (not seen or seen[-1] != bag_id):
            seen.append(bag_id)
    return sorted(set(seen))


def run_audit(
    targets: Sequence[AuditTarget],
    *,
    mode: AuditMode,
    open_store: Callable[[str], ObjectStore],
    journal_dir: Path,
    replica: ObjectStore | None = None,
    repair: bool = True,
    resume: bool = True,
    workers: int | None = None,
    orphan_stores: Sequence[ObjectStore] = (),
    on_bag: Callable[[BagAudit, str], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> AuditRun:
    """Audit ``targets`` one bag after another, checkpointing in ``journal_dir``.

    If an earlier run of the same mode was interrupted (and ``resume``), that run is continued
    with its own plan: finished bags are not checked again, and objects already hashed in the
    bag it stopped in are not read again. ``on_bag(result, run_id)`` is called with each bag's
    result as soon as it is known (record it in the register there) — before the journal marks
    the bag done, so a crash in between re-checks the bag rather than losing its event.
    """
    plan = [(t.bag_id, t.store_uri) for t in targets]
    inventory = {t.bag_id: t.inventory_number for t in targets}
    journal = AuditJournal.start(journal_dir, mode=mode, bags=plan, resume=resume)
    resumed = journal.resumed
    checked_here: list[str] = []
    stores: dict[str, ObjectStore] = {}
    try:
        pending = list(journal.pending())
        total = len(journal.state.bags)
        done_count = total - len(pending)
        if on_progress is not None:
            on_progress("bags", done_count, total)
        for bag_id, uri in pending:
            store = stores.get(uri) or stores.setdefault(uri, open_store(uri))
            started = _now()
            try:
                result = audit_bag(store, bag_id, mode=mode, replica=replica, repair=repair,
                                   workers=workers, journal=journal,
                                   inventory_number=inventory.get(bag_id),
                                   on_progress=on_progress)
            except StoreUnavailable:
                raise  # not about this bag: the run stops and can be resumed
            except (QorError, OSError) as e:
                # Issue 15: a bag that cannot be checked or repaired is this bag's outcome,
                # reported as a failure; the run goes on with the next bag.
                logger.exception("bag %s in %s could not be audited", bag_id, uri)
                failure = FixityFailure(bag_id, "", "AuditError",
                                        f"bag {bag_id}: the audit stopped: "
                                        f"{type(e).__name__}: {e}")
                result = BagAudit(bag_id=bag_id, store_uri=uri, mode=mode, started_at=started,
                                  finished_at=_now(), files_checked=0, bytes_checked=0,
                                  failures=(failure,), remaining=(failure,),
                                  inventory_number=inventory.get(bag_id))
            if on_bag is not None:
                on_bag(result, journal.state.run_id)
            journal.bag_done(bag_id, result.as_dict())
            checked_here.append(bag_id)
            done_count += 1
            if on_progress is not None:
                on_progress("bags", done_count, total)
        registered = {b for b, _ in journal.state.bags} | {t.bag_id for t in targets}
        orphans = [(s.uri, b) for s in orphan_stores for b in find_orphans(s, registered)]
        results = tuple(BagAudit.from_dict(journal.state.bags_done[b])
                        for b, _ in journal.state.bags if b in journal.state.bags_done)
        run = AuditRun(run_id=journal.state.run_id, mode=mode,
                       started_at=journal.state.started_at, finished_at=_now(), bags=results,
                       orphans=tuple(orphans), resumed=resumed, checked_here=tuple(checked_here))
        journal.end("passed" if run.ok else "failed")
        return run
    finally:
        journal.close()
