"""Page OCR fanned out to a dask.distributed cluster through prefect-dask's DaskTaskRunner.

A real scheduler and two real worker processes (``dask scheduler`` / ``dask worker``, each its own
process, one thread each) are started for the test, and a Prefect process worker whose host
settings name that scheduler (``QOR_DASK_SCHEDULER_ADDRESS``). The run is created through the API
from the same ``digitise`` deployment as the run without Dask, so what is compared is exactly the
deployment's behaviour with and without the cluster.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path

from pypdf import PdfReader

from flows.capture.samples import SamplePage
from tests.orchestration.conftest import (
    DASK,
    DEPLOYED_INVENTORY,
    REPO,
    TITLE,
    DeployedRun,
    Orchestra,
    stop,
    submit,
    wait_final,
)
from tests.orchestration.helpers import add_item, comparable, decrypted_payload

INVENTORY = "KZ-ORCH-003"


def _pdf_pages_text(data: bytes, tmp: Path) -> list[str]:
    tmp.write_bytes(data)
    return [page.extract_text() or "" for page in PdfReader(tmp).pages]


def test_ocr_on_two_dask_worker_processes_gives_the_same_copy_as_a_run_without_dask(
    orchestra: Orchestra, deployed_run: DeployedRun, digitise_deployment: uuid.UUID,
    sample_pages: list[SamplePage], tmp_path: Path,
) -> None:
    from distributed import Client

    # A Dask worker puts its scratch folder first on sys.path, and that folder holds a
    # subfolder "storage" (its spill space) which, as a namespace package, hides the *editable*
    # install of Qor's package of the same name; a wheel install is found first. PYTHONPATH
    # restores the regular package for this checkout (docs/operations.md, "Dask workers").
    dask_env = {"PYTHONPATH": str(REPO)}
    scheduler_file = tmp_path / "scheduler.json"
    orchestra.start("dask-scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                    **dask_env)
    for n in (1, 2):
        orchestra.start(f"dask-worker-{n}", [
            DASK, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
            "--nworkers", "1", "--no-dashboard", "--name", f"ocr-{n}", "--host", "127.0.0.1"],
            **dask_env)
    deadline = time.monotonic() + 60
    while not scheduler_file.exists():
        assert time.monotonic() < deadline, orchestra.log_tail("dask-scheduler")
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]

    dep = orchestra.depository
    add_item(dep.data_dir, dep.settings, INVENTORY, TITLE)
    with Client(address, timeout=60) as dask:  # type: ignore[no-untyped-call]
        dask.wait_for_workers(2, timeout=60)
        before = dask.run(lambda dask_worker: dask_worker.state.transition_counter)
        flow_run_id = submit(orchestra, digitise_deployment,
                             {"pages": [str(p.path) for p in sample_pages],
                              "inventory_number": INVENTORY})
        worker = orchestra.start_worker("worker-dask", QOR_DASK_SCHEDULER_ADDRESS=address)
        try:
            run = wait_final(orchestra, flow_run_id, timeout=150, watch="worker-dask")
        finally:
            stop(worker)
        after = dask.run(lambda dask_worker: dask_worker.state.transition_counter)
    assert run.state_name == "Completed", orchestra.log_tail("worker-dask")
    # both Dask worker processes OCR'd pages of the run
    assert len(after) == 2 and all(after[w] > before.get(w, 0) for w in after), (before, after)
    worker_logs = [orchestra.log_tail(f"dask-worker-{n}", lines=10_000) for n in (1, 2)]
    assert all("Task run 'page page-" in log for log in worker_logs)

    # Compared on plaintext (each run encrypts under its own random data key): the same payload
    # files; masters and OCR text (txt, hOCR, ALTO) byte for byte (hOCR's scratch image path
    # reduced to its name, ALTO's processing time dropped); the PDF/A's text page by page (its
    # XMP dates, ids and the item's identifier differ).
    local = deployed_run.payload
    dasked = {p.replace(INVENTORY, DEPLOYED_INVENTORY): b
              for p, b in decrypted_payload(dep.data_dir, dep.settings, INVENTORY).items()}
    assert sorted(dasked) == sorted(local)
    # PDFs (the archival PDF/A and the access PDF) by their text; everything else (reading
    # images included) by digest, so that a difference names the file instead of making pytest
    # diff megabytes of bytes.
    for path in local:
        if path.endswith(".pdf"):
            assert _pdf_pages_text(dasked[path], tmp_path / "d.pdf") == \
                _pdf_pages_text(local[path], tmp_path / "l.pdf"), path
        else:
            assert hashlib.sha256(comparable(path, dasked[path])).hexdigest() == \
                hashlib.sha256(comparable(path, local[path])).hexdigest(), path
