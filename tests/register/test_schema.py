"""The packaged migrations build the schema the code expects, from an empty database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from catalog_sync.db import upgrade
from catalog_sync.models import Base


def test_migrations_match_the_models(register_engine: Engine) -> None:
    with register_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_twice_is_harmless(register_engine: Engine) -> None:
    upgrade(register_engine)
    tables = set(inspect(register_engine).get_table_names())
    assert {"items", "audit_log", "issued_inventory_numbers", "write_off_acts"} <= tables
