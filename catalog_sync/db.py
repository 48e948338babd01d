"""Engines, migrations and sessions for the register.

SQLite (the embedded default) is opened in WAL mode with foreign keys on and a busy timeout, and
every transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue for the lock
(waiting up to the busy timeout) instead of failing half-way; PostgreSQL is used as is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync.errors import RegisterError

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://…`` (``postgresql://`` is taken
    to mean psycopg 3)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(
            parsed, echo=echo, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size
        )
    if backend == "sqlite":
        engine = create_engine(
            parsed,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _configure_sqlite(engine)
        return engine
    raise RegisterError(f"register URL {url!r}: only sqlite and postgresql are supported")


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
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the register schema up to ``revision`` (default: the latest), from empty if need be."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    logger.info("register schema at %s on %s", revision, engine.url.render_as_string())


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for the register; the caller commits (register functions never do)."""
    return sessionmaker(engine, expire_on_commit=False)
