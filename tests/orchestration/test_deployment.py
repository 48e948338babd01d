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
    TITLE,
    DeployedRun,
    Orchestra,
    api,
    stop,
    submit,
    wait_final,
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
    orchestra: Orchestra, deployed_run: DeployedRun
) -> None:
    logs = run_logs(orchestra, deployed_run.flow_run_id)
    # Qor's modules log through plain logging.getLogger(__name__): their records reach the UI
    # only through PREFECT_LOGGING_EXTRA_LOGGERS (and the root level), set by the deployment.
    ocr = [log.message for log in logs if log.name == "flows.capture.engine"]
    assert len(ocr) == 3 and all("confidence" in m for m in ocr), ocr
    assert any(log.name == "integrity.bag" and "built bag" in log.message for log in logs)


def test_the_api_refuses_a_run_without_an_inventory_number(
    orchestra: Orchestra, digitise_deployment: uuid.UUID
) -> None:
    from prefect.exceptions import PrefectHTTPStatusError

    with pytest.raises(PrefectHTTPStatusError) as err:
        submit(orchestra, digitise_deployment, {"pages": ["/nonexistent.png"]})
    assert err.value.response.status_code == 409
    assert "inventory_number" in err.value.response.text


def test_a_worker_killed_during_the_upload_ends_with_exactly_one_copy_after_another_resumes(
    orchestra: Orchestra, digitise_deployment: uuid.UUID, sample_pages: list[SamplePage],
    deployed_run: DeployedRun, tmp_path: Path,
) -> None:
    from prefect.states import Scheduled

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

    # What the operator (or the zombie-run automation of docs/operations.md) does: put the run
    # back in the queue. Another worker process picks the same run up.
    api(orchestra, lambda c: c.set_flow_run_state(flow_run_id, Scheduled(), force=True))
    second = orchestra.start_worker("worker-resumer")
    try:
        run = wait_final(orchestra, flow_run_id, timeout=150, watch="worker-resumer")
    finally:
        stop(second)
    assert run.state_name == "Completed", orchestra.log_tail("worker-resumer")
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
