"""Page OCR fanned out to a dask.distributed cluster through prefect-dask's DaskTaskRunner.

A real scheduler and two real worker processes (``dask scheduler`` / ``dask worker``, each its own
process, one thread each) are started for the test; the flow runs in this process with
``QOR_DASK_SCHEDULER_ADDRESS`` set, reporting to the session's Prefect server.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pypdf import PdfReader

from flows.capture.samples import SamplePage
from flows.digitise import run_digitise
from tests.conftest import qor_environment
from tests.orchestration.conftest import DASK, REPO, DeployedRun, Orchestra
from tests.orchestration.helpers import add_item, comparable, decrypted_payload

INVENTORY = "KZ-ORCH-001"  # the deployed run's item: same metadata in both bags
TITLE = "Қазақ әдебиетінің тарихы"


def _pdf_pages_text(data: bytes, tmp: Path) -> list[str]:
    tmp.write_bytes(data)
    return [page.extract_text() or "" for page in PdfReader(tmp).pages]


def test_ocr_on_two_dask_worker_processes_gives_the_same_copy_as_a_run_without_dask(
    orchestra: Orchestra, deployed_run: DeployedRun, sample_pages: list[SamplePage],
    tmp_path: Path,
) -> None:
    from distributed import Client
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    # A Dask worker puts its scratch folder first on sys.path, and that folder holds a
    # subfolder "storage" (its spill space) which, as a namespace package, hides the *editable*
    # install of Qor's package of the same name; a wheel install is found first. PYTHONPATH
    # restores the regular package for this checkout (docs/operations.md, "Dask workers").
    dask_env = {"PYTHONPATH": str(REPO)}
    scheduler_file = tmp_path / "scheduler.json"
    orchestra.start("dask-scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--no-dashboard", "--scheduler-file", str(scheduler_file)])
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
    with Client(address, timeout=60) as dask:
        dask.wait_for_workers(2, timeout=60)
        before = dask.run(lambda dask_worker: dask_worker.state.transition_counter)

        data_dir = tmp_path / "qor"  # embedded register and store: only the OCR is remote
        add_item(data_dir, {}, INVENTORY, TITLE)
        env = orchestra.env()
        with qor_environment(data_dir, dask_scheduler_address=address), temporary_settings({
            PREFECT_API_URL: orchestra.api_url, PREFECT_HOME: env["PREFECT_HOME"],
            PREFECT_LOCAL_STORAGE_PATH: env["PREFECT_LOCAL_STORAGE_PATH"]}):
            summary = run_digitise([p.path for p in sample_pages], inventory_number=INVENTORY)
        after = dask.run(lambda dask_worker: dask_worker.state.transition_counter)
    assert summary.status == "created" and summary.pages == len(sample_pages)
    # both worker processes OCR'd pages
    assert len(after) == 2 and all(after[w] > before.get(w, 0) for w in after), (before, after)

    # Compared on plaintext (each run encrypts under its own random data key): the same payload
    # files; masters and OCR text (txt, hOCR, ALTO) byte for byte (hOCR's scratch image path
    # reduced to its name); the PDF/A's text page by page (its XMP dates and ids differ).
    local, dasked = deployed_run.payload, decrypted_payload(data_dir, {}, INVENTORY)
    assert sorted(dasked) == sorted(local)
    for path in local:
        if path.startswith("data/access/"):
            assert _pdf_pages_text(dasked[path], tmp_path / "d.pdf") == \
                _pdf_pages_text(local[path], tmp_path / "l.pdf")
        else:
            assert comparable(path, dasked[path]) == comparable(path, local[path]), path
