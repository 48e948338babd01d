"""Fixtures shared by the whole suite: the real services CI starts, and Qor environments.

The services (PostgreSQL, the versitygw S3 server, veraPDF, Tesseract) are started by
``infra/test-services up``, which exports their addresses as ``QOR_TEST_*`` variables. A missing
variable or an unreachable service FAILS the test that needs it, naming the service: a skipped
integration test would hide exactly the breakage it exists to catch.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SERVICES_HINT = "start the test services with `infra/test-services up` and source its env file"


def require_env(name: str, service: str) -> str:
    """The value of ``name``, or a test failure naming the ``service`` that is not configured."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{service} is not configured ({name} is unset): {SERVICES_HINT}",
                    pytrace=False)
    return value


@contextmanager
def qor_environment(data_dir: Path, **settings: str) -> Iterator[None]:
    """Run the block with Qor's settings taken only from ``data_dir`` and ``settings``.

    Every other ``QOR_*`` variable of the outer environment is hidden, so a test sees exactly
    the configuration it names (``store_uri="s3://…"`` → ``QOR_STORE_URI``).
    """
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("QOR_") and not key.startswith(("QOR_TEST_", "QOR_VERAPDF")):
                mp.delenv(key)
        mp.setenv("QOR_DATA_DIR", str(data_dir))
        for key, value in settings.items():
            mp.setenv(f"QOR_{key.upper()}", value)
        yield


@pytest.fixture(scope="session")
def prefect_results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the test session's flows persist task results (inspected by the tests)."""
    return tmp_path_factory.mktemp("prefect-results")


@pytest.fixture(scope="session")
def prefect_server(prefect_results_dir: Path) -> Iterator[None]:
    """A real, temporary Prefect server (its own SQLite database) for flows run in tests."""
    from prefect.settings import (
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120), \
            temporary_settings({PREFECT_LOCAL_STORAGE_PATH: prefect_results_dir,
                                PREFECT_SERVER_ANALYTICS_ENABLED: False}):
        yield


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """URL of the test PostgreSQL server's maintenance database; fails if it does not answer."""
    import sqlalchemy as sa

    url = require_env("QOR_TEST_DATABASE_URL", "PostgreSQL")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as e:
        pytest.fail(f"PostgreSQL at {engine.url.render_as_string()} does not answer: {e}",
                    pytrace=False)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    name = f"qor_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(postgres_admin_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def s3_settings() -> dict[str, str]:
    """Qor settings (without the store URI) pointing at the test S3 server."""
    return {
        "s3_endpoint_url": require_env("QOR_TEST_S3_ENDPOINT", "S3 server (versitygw)"),
        "s3_access_key": require_env("QOR_TEST_S3_ACCESS_KEY", "S3 server (versitygw)"),
        "s3_secret_key": require_env("QOR_TEST_S3_SECRET_KEY", "S3 server (versitygw)"),
        "s3_region": os.environ.get("QOR_TEST_S3_REGION", "us-east-1"),
    }


def make_s3_client(s3: dict[str, str]):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=s3["s3_endpoint_url"], aws_access_key_id=s3["s3_access_key"],
        aws_secret_access_key=s3["s3_secret_key"], region_name=s3["s3_region"],
        config=Config(request_checksum_calculation="when_required",
                      response_checksum_validation="when_required",
                      s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3_bucket(s3_settings: dict[str, str]) -> Iterator[str]:
    """A fresh bucket on the test S3 server for one test (emptied and removed afterwards)."""
    client = make_s3_client(s3_settings)
    name = f"qor-t-{uuid.uuid4().hex[:12]}"
    try:
        client.create_bucket(Bucket=name)
    except Exception as e:
        pytest.fail(f"S3 server at {s3_settings['s3_endpoint_url']} refused a bucket: {e}",
                    pytrace=False)
    yield name
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=name):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            client.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def sample_pages(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Qor's own sample scans (rendered Kazakh/Russian pages with ground truth)."""
    from flows.capture.samples import write_sample_batch

    return write_sample_batch(tmp_path_factory.mktemp("samples"))


@pytest.fixture
def scratch_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "scratch"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


# Tests that must run in one pytest-xdist worker, in order, by node id prefix:
# * the tests that drive the test services' one Prefect server (its work pools, deployments,
#   workers and the automations that act on every flow run it sees): spread over two workers,
#   one test's automation or killed worker would act on the other's runs;
# * the tamper matrix, whose last test writes the table of every cell the module's tests saw.
# (xdist's own ``xdist_group`` marks do nothing with pytest 9, whose node ids no longer come
# from the ``_nodeid`` xdist rewrites; the scheduler below groups by these prefixes instead.)
XDIST_GROUPS = {
    "tests/orchestration/": "shared-prefect",
    "tests/test_digitise_faults.py": "shared-prefect",
    "tests/integrity/test_tamper_matrix.py": "tamper-matrix",
}


def xdist_scope(nodeid: str) -> str:
    """The unit a worker takes whole: the group of :data:`XDIST_GROUPS`, else the test."""
    for prefix, group in XDIST_GROUPS.items():
        if nodeid.startswith(prefix):
            return group
    return nodeid


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With ``-n``: tests one by one to whichever worker is free, the groups whole (the largest
    first, so the long shared-Prefect group starts at once beside everything else)."""
    if config.getvalue("dist") not in ("load", "loadgroup", "loadscope"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupedScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return GroupedScheduling(config, log)
