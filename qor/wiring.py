"""Turns settings into the parts the flows and the CLI use: register, stores, keyring.

Flows and tasks receive ids and paths, never these objects: each task calls these functions in the
process it runs in (a worker on another host builds its own clients from its own settings).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from catalog_sync import db
from qor.settings import QorSettings
from storage import LocalKeyring, ObjectStore, S3Options, open_store

if TYPE_CHECKING:
    from catalog_sync.circulation import CirculationPolicy


@functools.cache
def _engine(url: str) -> Engine:
    engine = db.make_engine(url)
    db.upgrade(engine)
    return engine


def register_engine(settings: QorSettings) -> Engine:
    """The register's engine, its schema migrated to the newest version (once per process)."""
    # An embedded register's folder (0700) and file (0600) are made by db.make_engine.
    return _engine(settings.effective_database_url)


@contextmanager
def register_session(settings: QorSettings) -> Iterator[Session]:
    """A session whose transaction commits when the block ends normally, else rolls back.

    The CLI and the flow's tasks are the callers that own transactions; register functions never
    commit themselves.
    """
    factory = db.session_factory(register_engine(settings))
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _s3_options(settings: QorSettings) -> S3Options:
    return S3Options(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key=settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
        secret_key=settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
        object_lock_mode=settings.s3_object_lock_mode,
        retention_days=settings.s3_retention_days,
    )


def primary_store(settings: QorSettings) -> ObjectStore:
    """The object store bags are written to."""
    return open_store(settings.effective_store_uri, s3=_s3_options(settings))


def replica_store(settings: QorSettings) -> ObjectStore | None:
    """The second store verified bags are copied to, if one is configured."""
    if not settings.replica_store_uri:
        return None
    return open_store(settings.replica_store_uri, s3=_s3_options(settings))


def store_for_uri(settings: QorSettings, uri: str) -> ObjectStore:
    """A store named by a URI recorded in the register (primary or replica)."""
    return open_store(uri, s3=_s3_options(settings))


def keyring(settings: QorSettings) -> LocalKeyring:
    """The local keyring (key-encryption keys as 0600 files, created on first use)."""
    return LocalKeyring(settings.effective_key_dir)


def circulation_policy(settings: QorSettings) -> CirculationPolicy:
    """The circulation policy the settings give (the debt limit that blocks lending)."""
    from catalog_sync.circulation import CirculationPolicy

    return CirculationPolicy(debt_limit=settings.debt_limit)
