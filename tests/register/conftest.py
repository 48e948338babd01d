"""Fixtures for the register tests: every test module runs on SQLite and on the real PostgreSQL.

PostgreSQL comes from ``QOR_TEST_DATABASE_URL`` (started by ``infra/test-services``); each test
module gets a database of its own, created here and dropped afterwards. A missing variable or an
unreachable server fails the test with a message naming the service; nothing is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import register
from catalog_sync.db import make_engine, session_factory, upgrade
from catalog_sync.models import ReceiptBatch

BACKENDS = ("sqlite", "postgresql")


def postgres_admin_url() -> str:
    """The test server's URL, or a failure naming the service."""
    url = os.environ.get("QOR_TEST_DATABASE_URL")
    if not url:
        pytest.fail(
            "QOR_TEST_DATABASE_URL is not set: the register tests need the PostgreSQL server "
            "started by infra/test-services"
        )
    return url


def create_postgres_database(prefix: str) -> str:
    """Create a fresh database on the test server and return its URL."""
    admin = postgres_admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}".lower()
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # the service is down or refuses us: a failure, not a skip
        pytest.fail(f"PostgreSQL at {make_url(admin).render_as_string()} is unreachable: {e}")
    finally:
        engine.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    """Drop a database made by :func:`create_postgres_database`."""
    name = make_url(url).database
    engine = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def fresh_engine(backend: str, tmp: Path, prefix: str) -> tuple[Engine, str | None]:
    """An upgraded register on ``backend``; returns the engine and the PostgreSQL URL to drop."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp / 'register.db'}")
        upgrade(engine)
        return engine, None
    url = create_postgres_database(prefix)
    engine = make_engine(url)
    upgrade(engine)
    return engine, url


@pytest.fixture(scope="module", params=BACKENDS)
def register_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated, empty register for this test module, on SQLite and on PostgreSQL."""
    backend: str = request.param
    engine, url = fresh_engine(backend, tmp_path_factory.mktemp(backend), "qor_reg")
    try:
        yield engine
    finally:
        engine.dispose()
        if url is not None:
            drop_postgres_database(url)


@pytest.fixture
def sessions(register_engine: Engine) -> sessionmaker[Session]:
    """Session factory on the module's register."""
    return session_factory(register_engine)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session on the module's register; the test commits what it wants kept."""
    with sessions() as s:
        yield s
        s.rollback()


def uid(prefix: str = "T") -> str:
    """A short unique string, so tests sharing a module's register never collide."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_batch(session: Session, *, on: date | None = None) -> ReceiptBatch:
    """A fresh receipt act."""
    return register.open_receipt_batch(
        session, act_number=uid("ACT"), received_on=on or date(2024, 3, 1), actor="acq"
    )


def bypass_audit_triggers(conn: Connection, engine: Engine) -> None:
    """Act as someone with database superuser rights editing the audit log behind the
    register: its append-only triggers off for this connection (PostgreSQL) or dropped."""
    if engine.dialect.name == "postgresql":
        conn.execute(text("SET session_replication_role = replica"))
    else:
        conn.execute(text("DROP TRIGGER audit_log_append_only"))
        conn.execute(text("DROP TRIGGER audit_log_never_deleted"))
