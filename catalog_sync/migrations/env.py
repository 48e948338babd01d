"""Alembic environment: runs on the connection handed over by :func:`catalog_sync.db.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from catalog_sync.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("catalog_sync migrations need a connection or sqlalchemy.url")
        with create_engine(url).begin() as conn:
            context.configure(connection=conn, target_metadata=target_metadata)
            context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata)
    context.run_migrations()


run()
