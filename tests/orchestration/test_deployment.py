"""The digitise deployment on a real Prefect server backed by PostgreSQL, run by process workers.

What runs for real: the Prefect server of infra/test-services (database ``prefect`` with pg_trgm),
``prefect deploy`` of infra/prefect.yaml, ``prefect worker start`` processes, Tesseract, veraPDF,
the S3 server and the register on PostgreSQL. Runs are created through the Prefect API, as a
scanner station or the UI would.
"""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path
from typing import Any

import bagit
import pytest

from flows.capture.samples import SamplePage
from tests.conftest import make_s3_client
from tests.orchestration.conftest import (
    DEPLOYED_INVENTORY,
    TEST_RESUME_MAX_ATTEMPTS,
    TITLE,
    DeployedRun,
    Orchestra,
    api,
    stop,
    submit,
)
from tests.orchestration.helpers import (
    add_item,
    comparable,
    decrypted_payload,
    registered_bags,
)

KILLED_INVENTORY = "KZ-ORCH-002"


def bag_keys(orchestra: Orchestra, inventory: str) -> list[str]:
    """Keys of every stored object of any bag of ``inventory`` in the session's bucket."""
    from flows.steps import safe_component

    client = make_s3_client(orchestra.depository.settings)
    prefix = f"depository/bags/{safe_component(inventory)}."
    return [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=orchestra.depository.bucket, Prefix=prefix) for o in page.get("Contents", [])]


def run_logs(orchestra: Orchestra, flow_run_id: uuid.UUID) -> list[Any]:
    """Every log record the server holds for the run (read page by page)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    flt = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
    out: list[Any] = []
    while page := api(orchestra, lambda c: c.read_logs(log_filter=flt, limit=200,
                                                       offset=len(out))):
        out.extend(page)
    return out


def bag_ids(keys: list[str]) -> set[str]:
    return {k.split("/")[2] for k in keys}


def download_and_validate(orchestra: Orchestra, keys: list[str], dest: Path) -> None:
    client = make_s3_client(orchestra.depository.settings)
    for key in keys:
        target = dest / key.split("/", 3)[3]
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(orchestra.depository.bucket, key, str(target))
    bagit.Bag(str(dest)).validate(fast=False)


def test_a_run_triggered_through_the_api_stores_the_copy_in_s3_and_the_register_links_it(
    orchestra: Orchestra, deployed_run: DeployedRun, tmp_path: Path
) -> None:
    dep = orchestra.depository
    keys = bag_keys(orchestra, DEPLOYED_INVENTORY)
    assert len(bag_ids(keys)) == 1
    assert registered_bags(dep.data_dir, dep.settings, DEPLOYED_INVENTORY) == list(bag_ids(keys))
    download_and_validate(orchestra, keys, tmp_path / "bag")
    assert any(p.startswith("data/access/") for p in deployed_run.payload)
    assert deployed_run.payload[next(p for p in deployed_run.payload
                                     if p.startswith("data/access/"))].startswith(b"%PDF")


def test_the_run_publishes_stage_timings_and_throughput(
    orchestra: Orchestra, deployed_run: DeployedRun
) -> None:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    artifacts = api(orchestra, lambda c: c.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[deployed_run.flow_run_id]))))
    summary = next(a for a in artifacts if a.key == "digitise-summary")
    for stage in ("check", "ocr", "pdfa", "package", "store", "register"):
        assert f"| {stage} |" in summary.data
    assert "OCR throughput" in summary.data and "pages/s" in summary.data


def test_qor_log_records_reach_the_run_log_on_the_server(
    orchestra: Orchestra, deployed_run: DeployedRun, digitise_deployment: uuid.UUID
) -> None:
    import time

    # Qor's modules log through plain logging.getLogger(__name__): their records reach the UI
    # only through PREFECT_LOGGING_EXTRA_LOGGERS (and the root level), set by the deployment.
    # The run's process ships logs in batches, so the last ones may land just after the run's
    # final state: wait for them (bounded) before judging. Which packages' records a run
    # happens to ship besides the OCR engine's depends on how its batches fall at exit (a CI
    # run once had none), so the other packages are judged by the deployment's settings.
    deadline = time.monotonic() + 60
    while True:
        logs = run_logs(orchestra, deployed_run.flow_run_id)
        ocr = [log.message for log in logs if log.name == "flows.capture.engine"]
        if len(ocr) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert len(ocr) == 3 and all("confidence" in m for m in ocr), ocr
    deployment = api(orchestra, lambda c: c.read_deployment(digitise_deployment))
    env = deployment.job_variables["env"]
    assert set(env["PREFECT_LOGGING_EXTRA_LOGGERS"].split(",")) >= {
        "qor", "flows", "storage", "integrity", "catalog_sync"}
    assert env["PREFECT_LOGGING_ROOT_LEVEL"] == "INFO"


def test_the_api_refuses_a_run_without_an_inventory_number(
    orchestra: Orchestra, digitise_deployment: uuid.UUID
) -> None:
    from prefect.exceptions import PrefectHTTPStatusError

    with pytest.raises(PrefectHTTPStatusError) as err:
        submit(orchestra, digitise_deployment, {"pages": ["/nonexistent.png"]})
    assert err.value.response.status_code == 409
    assert "inventory_number" in err.value.response.text


def state_history(orchestra: Orchestra, flow_run_id: uuid.UUID) -> list[tuple[str, str]]:
    """(state name, message) of every state the run went through, oldest first."""
    states = api(orchestra, lambda c: c.read_flow_run_states(flow_run_id))
    return [(s.name, s.message or "") for s in sorted(states, key=lambda s: s.timestamp)]


def wait_state(orchestra: Orchestra, flow_run_id: uuid.UUID, name: str, *, timeout: float,
               give_up: tuple[str, ...] = (), watch: str | None = None) -> Any:
    """The flow run once in state ``name``; a test failure (with its states) on timeout or when
    it reaches one of ``give_up``."""
    deadline = time.monotonic() + timeout
    while (run := api(orchestra, lambda c: c.read_flow_run(flow_run_id))).state_name != name:
        if run.state_name in give_up or time.monotonic() > deadline:
            pytest.fail(f"flow run {flow_run_id} is {run.state_name}, not {name}, after "
                        f"{state_history(orchestra, flow_run_id)}"
                        + (f"; log of {watch}:\n{orchestra.log_tail(watch)}" if watch else ""),
                        pytrace=False)
        time.sleep(0.5)
    return run


def test_a_worker_killed_during_the_upload_is_resumed_by_another_without_an_operator(
    orchestra: Orchestra, digitise_deployment: uuid.UUID, sample_pages: list[SamplePage],
    deployed_run: DeployedRun, resume_automations: None, tmp_path: Path,
) -> None:
    dep = orchestra.depository
    add_item(dep.data_dir, dep.settings, KILLED_INVENTORY, TITLE)
    flow_run_id = submit(orchestra, digitise_deployment, {
        "pages": [str(p.path) for p in sample_pages], "inventory_number": KILLED_INVENTORY})
    first = orchestra.start_worker("worker-killed")
    deadline = time.monotonic() + 150
    while not (at_kill := bag_keys(orchestra, KILLED_INVENTORY)):
        assert time.monotonic() < deadline, orchestra.log_tail("worker-killed")
        assert first.poll() is None, orchestra.log_tail("worker-killed")
        time.sleep(0.02)
    # SIGKILL to the worker's whole session: the worker and the flow-run process it started
    # die at once, mid-upload, with no chance to clean up or report.
    stop(first, sig=signal.SIGKILL)
    run = api(orchestra, lambda c: c.read_flow_run(flow_run_id))
    assert run.state_name == "Running"  # the server still believes it runs: nobody told it

    # Nobody touches the run from here on. Another worker of the pool is up; the server's
    # automations notice the heartbeats stopped, mark the run Crashed and put it back in the
    # queue, and that worker resumes it.
    second = orchestra.start_worker("worker-resumer")
    started = time.monotonic()
    try:
        # Crashed is final for Prefect but passing here: the resume automation reschedules it.
        run = wait_state(orchestra, flow_run_id, "Completed", timeout=150,
                         give_up=("Failed", "Cancelled"), watch="worker-resumer")
    finally:
        stop(second)
    print(f"resumed and completed {time.monotonic() - started:.0f} s after the kill")
    states = state_history(orchestra, flow_run_id)
    history = [name for name, _ in states]
    crashed = history.index("Crashed")
    # the zombie automation marked the silent run Crashed (its message), and the resume
    # automation put it back in the queue: nobody else touched it
    assert history[crashed - 1] == "Running" and "no heartbeat" in states[crashed][1], states
    assert history[crashed + 1] == "Scheduled" and "resumed automatically" in states[crashed + 1][1]
    assert history[-1] == "Completed" and run.run_count == 2
    # The resumed attempt reused the bag the killed one had built (same bytes, same key), so the
    # upload resumed instead of a second encryption clashing with the half-stored objects.
    resumer_log = orchestra.log_tail("worker-resumer", lines=10_000)
    assert "reusing bag" in resumer_log, resumer_log
    # ... and the pages its OCR had finished came from the persisted task results, not Tesseract
    assert resumer_log.count("Finished in state Cached") >= 1, resumer_log

    keys = bag_keys(orchestra, KILLED_INVENTORY)
    assert len(bag_ids(keys)) == 1, f"more than one bag stored: {sorted(bag_ids(keys))}"
    assert bag_ids(at_kill) == bag_ids(keys)  # the resumed run finished the same bag
    assert registered_bags(dep.data_dir, dep.settings, KILLED_INVENTORY) == list(bag_ids(keys))
    download_and_validate(orchestra, keys, tmp_path / "bag")
    # The stored ciphertext opens with the key the register recorded: same bytes as a clean run.
    payload = decrypted_payload(dep.data_dir, dep.settings, KILLED_INVENTORY)
    def same_batch_content(files: dict[str, bytes]) -> dict[str, bytes]:
        return {p: comparable(p, b) for p, b in files.items()
                if p.startswith(("data/masters", "data/text"))}

    assert same_batch_content(payload) == same_batch_content(deployed_run.payload)
    print(f"killed with {len(at_kill)} of {len(keys)} objects stored")


def test_a_run_that_keeps_crashing_is_resumed_only_until_its_attempts_are_used_up(
    orchestra: Orchestra, digitise_deployment: uuid.UUID, resume_automations: None,
) -> None:
    from prefect.states import Crashed, Running

    # No worker runs here: the test plays the attempts that die by setting the states a dying
    # run leaves (Running, then Crashed from the zombie automation); the server does the rest.
    flow_run_id = submit(orchestra, digitise_deployment, {
        "pages": ["/nonexistent/page.png"], "inventory_number": "KZ-ORCH-CRASHES"})
    try:
        for attempt in range(1, TEST_RESUME_MAX_ATTEMPTS + 1):
            api(orchestra, lambda c: c.set_flow_run_state(flow_run_id, Running(), force=True))
            api(orchestra, lambda c: c.set_flow_run_state(
                flow_run_id, Crashed(message="worker died (test)"), force=True))
            if attempt < TEST_RESUME_MAX_ATTEMPTS:
                run = wait_state(orchestra, flow_run_id, "Scheduled", timeout=30)
                assert run.run_count == attempt
        # The last attempt was used up: the run stays Crashed for an operator to look at.
        time.sleep(10)  # several times what each automatic resume above took
        run = api(orchestra, lambda c: c.read_flow_run(flow_run_id))
        assert run.state_name == "Crashed", state_history(orchestra, flow_run_id)
        assert run.run_count == TEST_RESUME_MAX_ATTEMPTS
    finally:
        api(orchestra, lambda c: c.delete_flow_run(flow_run_id))
