"""A pooled PostgreSQL connection the server dropped while it sat idle is replaced at checkout,
not handed to the desk (the ping runs only after an idle spell, not on every operation)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from catalog_sync import db
from tests.register.conftest import create_postgres_database, drop_postgres_database


def test_a_connection_dropped_while_idle_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    url = create_postgres_database("qor_ping")
    engine = db.make_engine(url, pool_size=1)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            first = c.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as c:  # used a moment ago: no ping, the same connection
            assert c.execute(text("SELECT pg_backend_pid()")).scalar_one() == first
        with admin.connect() as c:  # the server drops it (a restart, an idle timeout)
            c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # it has now been idle "long enough"
        with engine.connect() as c:
            assert c.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
    finally:
        engine.dispose()
        admin.dispose()
        drop_postgres_database(url)
