"""The packaged migrations build the schema the code expects, from an empty database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

import elibrary.models as elibrary_models
from catalog_sync.db import upgrade
from catalog_sync.models import Base


def _include(name: str | None, type_: str, parent_names: object) -> bool:
    # The e-library's full-text index is database-specific (FTS5 virtual table on SQLite, a
    # GIN expression index on PostgreSQL) and has no ORM model to compare with.
    if type_ == "index":
        return name != "ix_elibrary_page_texts_fts"
    if type_ == "table":
        return not (name or "").startswith("elibrary_page_fts")
    return True


def test_migrations_match_the_models(register_engine: Engine) -> None:
    """One migration chain builds every table of the register and of the e-library."""
    with register_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _include})
        # compare_metadata accepts a sequence at run time (AutogenContext), not in its stubs
        diff = compare_metadata(context, [Base.metadata, elibrary_models.Base.metadata])  # type: ignore[arg-type]
    assert diff == []


def test_upgrade_twice_is_harmless(register_engine: Engine) -> None:
    upgrade(register_engine)
    tables = set(inspect(register_engine).get_table_names())
    assert {"items", "audit_log", "issued_inventory_numbers", "write_off_acts"} <= tables
