"""Engines, migrations and sessions for the register.

SQLite (the embedded default) is opened in WAL mode with foreign keys on and a busy timeout, and
every transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue for the lock
(waiting up to the busy timeout) instead of failing half-way; PostgreSQL is used as is.

A PostgreSQL connection taken from the pool is pinged only when it sat unused for longer than
:data:`PING_AFTER_IDLE_S`: a desk or a SIP2 machine working every second would otherwise pay a
round trip per operation for a ping that can only fail after the server went away — and a
connection the server dropped while idle is exactly the one that waited longer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync.errors import RegisterError

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PING_AFTER_IDLE_S = 10.0
_USED = "qor_last_used"


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://…`` (``postgresql://`` is taken
    to mean psycopg 3)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, echo=echo, pool_size=pool_size, max_overflow=pool_size)
        _ping_when_idle(engine)
        return engine
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            create_private_file(Path(parsed.database))
        engine = create_engine(
            parsed,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _configure_sqlite(engine)
        return engine
    raise RegisterError(f"register URL {url!r}: only sqlite and postgresql are supported")


def create_private_file(path: Path) -> None:
    """Create ``path`` empty, readable by this user only (0600), in a folder created 0700 if
    missing — the register holds readers' personal data and password and session hashes
    (issue 15). An existing file is left as it is (``qor doctor`` names a wrong mode). SQLite
    gives its ``-wal``/``-shm``/``-journal`` files the database file's mode."""
    if path.exists():
        return
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as e:
        raise RegisterError(f"register file {path}: cannot be created ({e.strerror})") from e


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only if it was idle for ``PING_AFTER_IDLE_S``; a
    dead one is replaced (the pool retries the checkout with a fresh connection)."""

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_USED)
        if last is not None and time.monotonic() - last < PING_AFTER_IDLE_S:
            return
        if last is None:
            return  # a connection just opened needs no ping
        try:
            engine.dialect.do_ping(dbapi_connection)  # what pool_pre_ping would send
        except Exception as e:  # the driver's own error: the connection is gone
            raise exc.DisconnectionError(f"pooled connection is dead: {e}") from e

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_USED] = time.monotonic()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN/SAVEPOINT behave.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if engine.url.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE: take the write lock up front, so a transaction that read first never fails
        # later with "database is locked" when it writes (SQLite cannot upgrade a stale snapshot).
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config() -> Config:
    """The Alembic configuration pointing at the migrations shipped inside the package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


_REVISION = re.compile(r"""^revision\s*=\s*["']([^"']+)["']""", re.M)
_DOWN = re.compile(r"""^down_revision\s*=\s*(?:None|["']([^"']+)["'])""", re.M)


@cache
def head_revision() -> str:
    """The newest migration's revision id, read from the migration files without Alembic
    (loading Alembic costs a command a third of a second; tests check both agree)."""
    revisions: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        source = path.read_text("utf-8")
        rev, down = _REVISION.search(source), _DOWN.search(source)
        if rev is not None and down is not None:
            revisions[rev.group(1)] = down.group(1)
    heads = set(revisions) - {d for d in revisions.values() if d}
    if len(heads) != 1:
        raise RegisterError(f"the register's migrations have {len(heads)} heads: "
                            f"{sorted(heads)}; expected one")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The revision the database's schema is at (None: no Qor schema yet)."""
    try:
        with engine.connect() as conn:
            row = conn.execute(text("select version_num from alembic_version")).first()
    except DBAPIError:  # no alembic_version table: an empty database
        return None
    return None if row is None else str(row[0])


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the register schema up to ``revision`` (default: the latest), from empty if need be.

    When the schema is already at the newest revision this is one query (no Alembic import).
    """
    if revision in ("head", head_revision()) and current_revision(engine) == head_revision():
        return
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    logger.info("register schema at %s on %s", revision, engine.url.render_as_string())


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for the register; the caller commits (register functions never do)."""
    return sessionmaker(engine, expire_on_commit=False)
