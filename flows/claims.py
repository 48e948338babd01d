"""One digitise run per item at a time: a claim on the inventory number, held while the run works.

Two runs of the same item at once (two operators, a re-submitted run while the first still works)
would share the copy's scratch folder and bag id, overwrite each other's pages and race for the
same version in the register. The flow therefore claims the item first and keeps the claim until
it ends; a second run is refused at once with :class:`~flows.errors.CopyInProgress` naming who
holds it, before it reads or writes anything.

The claim is held by the process that runs the flow (the ``qor`` command, the resident runner's
child, a Prefect worker's flow run), and the operating system or the database drops it when that
process dies, however it dies: a claim of a killed run is stale and is taken over, never waited on.

* **PostgreSQL register** (several hosts): a session-level advisory lock on a connection of the
  claim's own, named ``qor-digitise <pid>@<host>`` (``application_name``) so the refusal can say
  who holds it. The server drops the lock when that connection closes or its client dies.
* **SQLite register** (one host, the embedded default): an exclusive ``flock`` on
  ``claims/<item>.claim`` beside the register file; the file says who holds it. The kernel
  releases the lock when the holder exits; the next run overwrites the dead holder's record.

Plain Python, no Prefect.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows.errors import CopyInProgress
from qor.settings import QorSettings

logger = logging.getLogger(__name__)

CLAIMS_DIR = "claims"


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a claim: the process, its host, the run, since when."""

    pid: int
    host: str
    since: str
    run: str | None = None

    def describe(self) -> str:
        """``flow run 'KZ-1 · pid 42@host' (process 57@host, since 2026-…Z)``."""
        where = f"process {self.pid}@{self.host}, since {self.since}"
        return f"flow run {self.run!r} ({where})" if self.run else where


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _digest(inventory_number: str) -> bytes:
    return hashlib.sha256(b"qor digitise claim\0" + inventory_number.encode("utf-8")).digest()


def claim_path(settings: QorSettings, inventory_number: str) -> Path:
    """The claim file of ``inventory_number`` (SQLite register): beside the register file,
    named by the number made file-safe plus a digest (two numbers never share a file)."""
    from sqlalchemy.engine import make_url

    database = make_url(settings.effective_database_url).database
    base = Path(database).parent if database and database != ":memory:" else settings.data_dir
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_"
                   for c in inventory_number)[:64]
    return base / CLAIMS_DIR / f"{safe}.{_digest(inventory_number).hex()[:12]}.claim"


@contextlib.contextmanager
def claim_item(settings: QorSettings, inventory_number: str, *,
               run: str | None = None) -> Iterator[Holder]:
    """Hold the digitise claim on ``inventory_number`` for the block; :class:`CopyInProgress`
    (naming the holder) if another live run holds it. ``run`` names this run for that message."""
    from sqlalchemy.engine import make_url

    holder = Holder(pid=os.getpid(), host=socket.gethostname(), since=_now(), run=run)
    if make_url(settings.effective_database_url).get_backend_name() == "postgresql":
        with _advisory_claim(settings, inventory_number, holder):
            yield holder
    else:
        with _file_claim(claim_path(settings, inventory_number), inventory_number, holder):
            yield holder


@contextlib.contextmanager
def _file_claim(path: Path, inventory_number: str, holder: Holder) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Never unlinked: a process that opened the old file would lock an inode nobody else sees.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by tools (O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise _in_progress(inventory_number, _read_holder(fd)) from None
        previous = _read_holder(fd)
        if previous is not None:
            # Locked by nobody, yet a record: its run died without releasing (kill -9, power).
            logger.info("inventory number %s: took over the claim of %s, which ended without "
                        "releasing it", inventory_number, previous.describe())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder), ensure_ascii=False).encode("utf-8"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released cleanly: no record left to take over
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _in_progress(inventory_number: str, holder: Holder | None) -> CopyInProgress:
    return CopyInProgress(
        inventory_number=inventory_number,
        holder=holder.describe() if holder is not None else None,
        holder_pid=holder.pid if holder is not None else None,
        holder_host=holder.host if holder is not None else None)


def _read_holder(fd: int) -> Holder | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return Holder(**data)
    except (OSError, ValueError, TypeError):
        return None


def _advisory_key(inventory_number: str) -> int:
    return int.from_bytes(_digest(inventory_number)[:8], "big", signed=True)


@contextlib.contextmanager
def _advisory_claim(settings: QorSettings, inventory_number: str,
                    holder: Holder) -> Iterator[None]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from catalog_sync.errors import RegisterBusy

    url = make_url(settings.effective_database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    # Who holds it, for the refusal: pg_stat_activity shows it to the other runs (63 bytes).
    name = f"qor-digitise|{holder.pid}|{holder.host}|{holder.run or ''}".encode()[:63] \
        .decode("utf-8", "ignore")
    engine = create_engine(url, poolclass=NullPool, connect_args={"application_name": name})
    key = _advisory_key(inventory_number)
    try:
        try:
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except Exception as e:  # a database that is away: one line, retryable
            raise RegisterBusy(f"register database unreachable while claiming "
                                      f"{inventory_number}: {e}".splitlines()[0]) from e
        with conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if not got:
                row = conn.execute(text(
                    "SELECT a.application_name, a.backend_start FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                    "AND l.granted AND l.objsubid = 1 AND l.classid::bigint = :hi "
                    "AND l.objid::bigint = :lo"),
                    {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF}).first()
                raise _in_progress(inventory_number, _pg_holder(row))
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # a lost connection has released it
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()


def _pg_holder(row: Any) -> Holder | None:
    if row is None:
        return None
    app, started = row[0], row[1]
    _, pid, host, run = [*str(app or "").split("|", 3), "", "", "", ""][:4]
    since = started.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") \
        if isinstance(started, datetime) else "?"
    return Holder(pid=int(pid) if pid.isdigit() else 0, host=host or "?", since=since,
                  run=run or None)
