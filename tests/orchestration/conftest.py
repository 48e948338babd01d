"""Fixtures of the orchestration tests: the real Prefect server on PostgreSQL, workers, Dask.

``infra/test-services up`` starts the Prefect server (database ``prefect`` of the test PostgreSQL)
and exports ``QOR_TEST_PREFECT_API_URL``. Workers, Dask schedulers and Dask workers are started
here as separate processes, each in its own session so a test can kill one with everything it
started, and every one is stopped at the end. One depository (a PostgreSQL register, an S3
bucket, a key folder) and one deployment serve the whole session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.capture.samples import SamplePage
from tests.conftest import make_s3_client, require_env
from tests.orchestration.helpers import add_item, decrypted_payload

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PREFECT = str(VENV_BIN / "prefect")
DASK = str(VENV_BIN / "dask")
KEEP_ENV_PREFIXES = ("QOR_TEST_", "QOR_VERAPDF")
DEPLOYED_INVENTORY = "KZ-ORCH-001"
TITLE = "Қазақ әдебиетінің тарихы"


@dataclass(frozen=True)
class Depository:
    """One test depository: register on PostgreSQL, store in an S3 bucket, keys in data_dir."""

    data_dir: Path
    bucket: str
    settings: dict[str, str]
    """Qor settings without the ``QOR_`` prefix (``qor_environment(data_dir, **settings)``)."""

    def env(self) -> dict[str, str]:
        out = {f"QOR_{k.upper()}": v for k, v in self.settings.items()}
        out["QOR_DATA_DIR"] = str(self.data_dir)
        return out


@dataclass
class Orchestra:
    """The Prefect server of the session and what the tests start against it."""

    api_url: str
    home: Path
    pool: str
    depository: Depository
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a worker or Dask process: this session's Prefect and depository only."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("QOR_", "PREFECT_")) or k.startswith(KEEP_ENV_PREFIXES)}
        env.update(self.depository.env())
        env.update(prefect_env(self.api_url, self.home))
        env["PYTHONUNBUFFERED"] = "1"  # a killed process's last lines are in its log
        env.update(extra)
        return env

    def start(self, name: str, args: list[str], **extra_env: str) -> subprocess.Popen[bytes]:
        """Start a process in a session of its own, output to ``logs/<name>.log``."""
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(args, env=self.env(**extra_env), cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.processes.append(proc)
        return proc

    def start_worker(self, name: str, **extra_env: str) -> subprocess.Popen[bytes]:
        """A Prefect process worker of the session's pool (``extra_env``: its host settings)."""
        return self.start(name, [PREFECT, "worker", "start", "--pool", self.pool,
                                 "--type", "process", "--name", name, "--limit", "1"],
                          **extra_env)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text("utf-8", "replace") if path.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def prefect_env(api_url: str, home: Path) -> dict[str, str]:
    """Prefect settings shared by the test process, the CLI, workers and Dask workers.

    One PREFECT_HOME and one result folder for all of them: a result persisted by a task on a
    Dask worker or by a killed worker is readable by whoever resumes the run, as it would be
    from a shared mount on several hosts.
    """
    return {
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }


def stop(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, wait: float = 20) -> None:
    """Signal ``proc`` and every process it started (a worker starts each flow run in a session
    of its own, so its process group is not enough), then reap it."""
    import psutil

    if proc.poll() is None:
        try:
            family = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
        except psutil.NoSuchProcess:
            family = []
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def run_cli(args: list[str], env: Mapping[str, str], *, timeout: float = 120) -> str:
    done = subprocess.run(args, env=dict(env), cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}",
                    pytrace=False)
    return done.stdout


def api(orchestra: Orchestra, call: Any) -> Any:
    """Run ``await call(client)`` with a Prefect client of the session's server."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def go() -> Any:
        async with get_client() as client:
            return await call(client)

    with temporary_settings({PREFECT_API_URL: orchestra.api_url}):
        return asyncio.run(go())


def wait_final(orchestra: Orchestra, flow_run_id: uuid.UUID, *, timeout: float,
               watch: str) -> Any:
    """The flow run once its state is final; a test failure (with the worker log) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        run = api(orchestra, lambda c: c.read_flow_run(flow_run_id))
        if run.state is not None and run.state.is_final():
            return run
        if time.monotonic() > deadline:
            pytest.fail(f"flow run {flow_run_id} still {run.state_name} after {timeout} s; "
                        f"log of {watch}:\n{orchestra.log_tail(watch)}", pytrace=False)
        time.sleep(0.5)


@pytest.fixture(scope="session")
def prefect_api_url() -> str:
    """The Prefect server of infra/test-services (on PostgreSQL); fails if it does not answer."""
    url = require_env("QOR_TEST_PREFECT_API_URL", "Prefect server")
    try:
        healthy = httpx.get(f"{url}/health", timeout=10).json()
    except (httpx.HTTPError, ValueError) as e:
        pytest.fail(f"Prefect server at {url} does not answer: {e}", pytrace=False)
    if healthy is not True:
        pytest.fail(f"Prefect server at {url} reports itself unhealthy", pytrace=False)
    return url


@pytest.fixture(scope="session")
def depository(
    postgres_admin_url: str, s3_settings: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Depository]:
    """A register database and a bucket of their own for the session, removed afterwards."""
    import sqlalchemy as sa

    name = f"qor_orch_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db_url = sa.engine.make_url(postgres_admin_url).set(database=name)
    client = make_s3_client(s3_settings)
    bucket = f"qor-orch-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    yield Depository(
        data_dir=tmp_path_factory.mktemp("orchestration") / "qor", bucket=bucket,
        settings={"database_url": db_url.render_as_string(hide_password=False),
                  "store_uri": f"s3://{bucket}/depository", **s3_settings},
    )
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            client.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    client.delete_bucket(Bucket=bucket)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def orchestra(
    prefect_api_url: str, depository: Depository, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Orchestra]:
    """A work pool of the session's own on the Prefect server; every process started is stopped."""
    home = tmp_path_factory.mktemp("prefect-home")
    logs = tmp_path_factory.mktemp("process-logs")
    band = Orchestra(api_url=prefect_api_url, home=home, pool=f"qor-test-{uuid.uuid4().hex[:8]}",
                     depository=depository, logs=logs)
    run_cli([PREFECT, "--no-prompt", "work-pool", "create", band.pool, "--type", "process"],
            band.env())
    try:
        yield band
    finally:
        for proc in band.processes:
            stop(proc)
        subprocess.run([PREFECT, "--no-prompt", "work-pool", "delete", band.pool],
                       env=band.env(), cwd=REPO, capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="session")
def digitise_deployment(orchestra: Orchestra) -> uuid.UUID:
    """The ``digitise`` deployment of infra/prefect.yaml, deployed with ``prefect deploy``."""
    run_cli([PREFECT, "--no-prompt", "deploy", "--prefect-file", "infra/prefect.yaml",
             "--name", "digitise", "--pool", orchestra.pool],
            orchestra.env(QOR_REPO_DIR=str(REPO)))
    deployment = api(orchestra, lambda c: c.read_deployment_by_name("digitise/digitise"))
    assert deployment.work_pool_name == orchestra.pool
    return uuid.UUID(str(deployment.id))


@dataclass(frozen=True)
class DeployedRun:
    flow_run_id: uuid.UUID
    state_name: str
    payload: dict[str, bytes]


def submit(orchestra: Orchestra, deployment_id: uuid.UUID, parameters: dict[str, Any]) -> uuid.UUID:
    run = api(orchestra, lambda c: c.create_flow_run_from_deployment(
        deployment_id, parameters=parameters))
    return uuid.UUID(str(run.id))


@pytest.fixture(scope="session")
def deployed_run(
    orchestra: Orchestra, digitise_deployment: uuid.UUID, sample_pages: list[SamplePage]
) -> DeployedRun:
    """One digitise run of the sample scans, created through the API, run by a process worker."""
    dep = orchestra.depository
    add_item(dep.data_dir, dep.settings, DEPLOYED_INVENTORY, TITLE)
    flow_run_id = submit(orchestra, digitise_deployment, {
        "pages": [str(p.path) for p in sample_pages], "inventory_number": DEPLOYED_INVENTORY})
    worker = orchestra.start_worker("worker-deployed")
    try:
        run = wait_final(orchestra, flow_run_id, timeout=150, watch="worker-deployed")
    finally:
        stop(worker)
    assert run.state_name == "Completed", orchestra.log_tail("worker-deployed")
    return DeployedRun(flow_run_id=flow_run_id, state_name=run.state_name,
                       payload=decrypted_payload(dep.data_dir, dep.settings, DEPLOYED_INVENTORY))


#: Short enough to keep the worker-kill test quick; the heartbeat itself is infra/prefect.yaml's
#: 30 s (Prefect's minimum), so a killed run is declared dead 30–75 s after its last sign of life.
TEST_RESUME_POLICY_EXPIRY_S = 45
TEST_RESUME_MAX_ATTEMPTS = 3


@pytest.fixture(scope="session")
def resume_automations(orchestra: Orchestra, digitise_deployment: uuid.UUID) -> Iterator[None]:
    """The zombie-run and resume automations of flows/automations.py, applied to the server as
    ``qor automations apply`` does it, and removed at the end of the session."""
    from flows.automations import (
        ResumePolicy,
        apply_digitise_automations,
        remove_digitise_automations,
    )

    policy = ResumePolicy(expiry_seconds=TEST_RESUME_POLICY_EXPIRY_S,
                          max_attempts=TEST_RESUME_MAX_ATTEMPTS)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: orchestra.api_url}):
        applied = apply_digitise_automations(policy=policy)
    assert len(applied) == 2
    try:
        yield
    finally:
        with temporary_settings({PREFECT_API_URL: orchestra.api_url}):
            remove_digitise_automations()
