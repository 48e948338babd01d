"""Faults injected into ``qor digitise`` (issue 15): nothing lost, nothing left half-done.

Every run here is the ``qor`` command as a subprocess against real services: Tesseract,
veraPDF, a Prefect server, PostgreSQL, versitygw. The faults are real too: ``kill -9`` of the
command or of the resident runner's child that runs its flow, two commands for one item at
once, the S3 server killed in the middle of an upload and started again, a scratch disk (a
real tmpfs in a user and mount namespace) that fills up during packaging.

Where to strike is chosen with the flow's fault seam (:mod:`flows.faults`): with
``QOR_FAULT_STAGE`` and ``QOR_FAULT_MARK`` set, the run writes its pid to the mark file at that
point and holds there until the test removes the file; the test kills it meanwhile, or breaks
the world and lets it go on.

After each fault, the depository must be consistent (R13: every digital copy is linked to its
item and kept whole in the depository store): the item has exactly one copy, the store holds
that copy's objects and nothing else (no orphan bag, no stray object, no half-written upload),
the register's file count is the store's, and a deep ``qor fixity audit`` finds it intact.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flows.faults import MARK_ENV, POINTS, STAGE_ENV
from tests.conftest import make_s3_client, qor_environment, require_env
from tests.orchestration.test_local_service import embedded_env, server_processes, small_scan

QOR = [sys.executable, "-m", "qor"]
HOST = socket.gethostname()
#: Honest bounds for a one-page run on a loaded two-core machine.
RUN_TIMEOUT_S = 600.0


# -- running qor -------------------------------------------------------------------------------


def qor(*args: str, env: dict[str, str],
        timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QOR, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def start_qor(*args: str, env: dict[str, str], prefix: tuple[str, ...] = ()
              ) -> subprocess.Popen[str]:
    return subprocess.Popen([*prefix, *QOR, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.strip()]


def add_item(env: dict[str, str], number: str) -> None:
    done = qor("items", "add", number, "--title", f"Қолжазба {number}", "--language", "kk",
               env=env)
    assert done.returncode == 0, done.stderr


def copies(env: dict[str, str], number: str) -> list[dict[str, Any]]:
    shown = qor("copies", "show", number, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    found: list[dict[str, Any]] = json.loads(shown.stdout)
    return found


def digitise_ok(env: dict[str, str], scan: Path, number: str) -> dict[str, Any]:
    run = qor("digitise", str(scan), "--inventory", number, "--json", env=env)
    assert run.returncode == 0, run.stderr
    summary: dict[str, Any] = json.loads(run.stdout)
    assert summary["status"] == "created" and summary["inventory_number"] == number
    return summary


def wait_held(proc: subprocess.Popen[str], mark: Path, *, timeout: float = RUN_TIMEOUT_S) -> int:
    """The pid of the process that runs the flow, once it holds at the fault point."""
    deadline = time.monotonic() + timeout
    while not mark.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the run ended ({proc.returncode}) before its fault point:\n{err}",
                        pytrace=False)
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run did not reach its fault point within {timeout:.0f} s",
                        pytrace=False)
        time.sleep(0.05)
    pid: int = json.loads(mark.read_text("utf-8"))["pid"]
    return pid


def wait_gone(pid: int, *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        try:  # a zombie child of ours would stay listed: reap it
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                break
        except ChildProcessError:
            pass
        time.sleep(0.05)
    stat = Path(f"/proc/{pid}/stat")
    alive = stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    assert not alive, f"process {pid} outlived its kill"


# -- what a consistent depository looks like ---------------------------------------------------


@dataclass(frozen=True)
class StoreView:
    """Every key in the store (a prefix inside it, for S3), and what is half-written."""

    keys: list[str]
    unfinished: list[str] = field(default_factory=list)


def file_store_view(store_dir: Path) -> StoreView:
    from storage.filestore import FileStore

    if not store_dir.exists():
        return StoreView(keys=[])
    keys = [i.key for i in FileStore(store_dir).list_actual("")]
    tmp = store_dir / ".qor-store" / "tmp"
    unfinished = [str(p) for p in tmp.rglob("*") if p.is_file()] if tmp.exists() else []
    return StoreView(keys=keys, unfinished=unfinished)


def assert_one_copy_and_no_orphans(
    env: dict[str, str], number: str, bag_id: str, view: StoreView,
) -> None:
    """The register links ``number`` to exactly ``bag_id``; the store holds registered bags
    only; the bag's object count is the register's; a deep audit finds everything intact."""
    shown = copies(env, number)
    assert [c["bag_id"] for c in shown] == [bag_id], shown  # 0 duplicates
    events = {e["event_type"]: e["outcome"] for e in shown[0]["events"]}
    assert events.get("ingestion") == "success", events

    audit = qor("fixity", "audit", "--mode", "deep", "--json", env=env)
    assert audit.returncode == 0, audit.stderr
    report = json.loads(audit.stdout)
    # Bag ids of this item's copies all start so (the store may hold other tests' items).
    mine = f"{number}.v"
    assert report["ok"], report
    assert [o for o in report["orphans"] if o["bag_id"].startswith(mine)] == []  # 0 orphans
    registered = {b["bag_id"] for b in report["bags"]}
    assert bag_id in registered
    assert all(b["outcome"] == "success" for b in report["bags"]), report["bags"]

    # 0 stray objects: every key of this item belongs to its one registered bag (the bag's
    # files or its key record), and the store holds nothing outside bags and key records.
    assert [k for k in view.keys if k.split("/")[:1] not in (["bags"], ["_qor"])] == []
    stray = [k for k in view.keys if mine in k and not k.startswith(
        (f"bags/{bag_id}/", f"_qor/keys/{bag_id}/"))]
    assert stray == [], stray
    assert view.unfinished == [], view.unfinished
    in_bag = [k for k in view.keys if k.startswith(f"bags/{bag_id}/")]
    assert len(in_bag) == shown[0]["file_count"], (len(in_bag), shown[0]["file_count"])
    assert any(k.startswith(f"_qor/keys/{bag_id}/") for k in view.keys)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def one_page_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small Kazakh scan: every run here OCRs it in a second or two."""
    return small_scan(tmp_path_factory.mktemp("fault-scan") / "0001.png", seed=15)


@dataclass(frozen=True)
class EmbeddedService:
    """A data directory on the embedded defaults whose local server and runner are running."""

    data_dir: Path
    runner_pid: int

    def env(self, **extra: str) -> dict[str, str]:
        return embedded_env(self.data_dir, **extra)


@pytest.fixture(scope="session")
def embedded_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedService]:
    """One data directory for the session's kill tests (SQLite register, file store), with its
    local Prefect server and resident runner started once; both stopped at the end."""
    data_dir = tmp_path_factory.mktemp("faults") / "qor"
    env = embedded_env(data_dir)
    started = qor("server", "start", "--json", env=env)
    assert started.returncode == 0, started.stderr
    runner_pid = json.loads(started.stdout)["runner_pid"]
    assert runner_pid, "no resident runner: the kill tests need one"
    try:
        yield EmbeddedService(data_dir=data_dir, runner_pid=int(runner_pid))
    finally:
        qor("server", "stop", env=env, timeout=120)
        for pid in server_processes(data_dir):  # a stop that failed must not leak a server
            os.kill(pid, signal.SIGKILL)


def claim_record(data_dir: Path, number: str) -> dict[str, Any] | None:
    """What the item's claim file says (SQLite register), None if empty."""
    from flows.claims import claim_path
    from qor.settings import load_settings

    with qor_environment(data_dir):
        path = claim_path(load_settings(), number)
    text = path.read_text("utf-8") if path.exists() else ""
    return json.loads(text) if text else None


# -- two runs of one item at once ----------------------------------------------------------------


def two_run_env(register: str, embedded_service: EmbeddedService,
                request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment of two operators' commands on one register (SQLite or PostgreSQL), and
    where their store keeps its bags."""
    if register == "sqlite":
        return embedded_service.env(), embedded_service.data_dir / "store"
    store_dir = tmp_path / "store"
    return embedded_service.env(
        QOR_DATABASE_URL=request.getfixturevalue("postgres_database_url"),
        QOR_STORE_URI=store_dir.as_uri()), store_dir


@pytest.mark.parametrize("register", ["sqlite", "postgresql"])
def test_a_second_digitise_of_an_item_being_digitised_is_refused_and_leaves_nothing(
    register: str, embedded_service: EmbeddedService, one_page_scan: Path,
    request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    """R13: a copy is stored and linked to its item once. A second operator launches the item
    while the first run works on it (held after OCR, so the overlap is certain): the second is
    refused at once in one line naming the run that holds the item and touches nothing; the
    first then stores and registers the one copy."""
    env, store_dir = two_run_env(register, embedded_service, request, tmp_path)
    number = f"KZ-TWO-{register.upper()}"
    add_item(env, number)
    mark = tmp_path / "held.json"
    first = start_qor("digitise", str(one_page_scan), "--inventory", number, "--json",
                      env={**env, STAGE_ENV: "after-ocr", MARK_ENV: str(mark)})
    wait_held(first, mark)

    second = start_qor("digitise", str(one_page_scan), "--inventory", number, "--json", env=env)
    _, refused_err = second.communicate(timeout=RUN_TIMEOUT_S)
    assert second.returncode == 1, refused_err
    lines = error_lines(refused_err)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: inventory number {number} is being digitised by ")
    # It names the holder: the first run's flow run, labelled with its command's pid.
    assert f"pid {first.pid}@{HOST}" in lines[0], lines[0]
    assert "Traceback" not in refused_err
    assert copies(env, number) == []  # refused before it read or wrote anything

    mark.unlink()  # the first run goes on
    out, err = first.communicate(timeout=RUN_TIMEOUT_S)
    assert first.returncode == 0, err
    summary = json.loads(out)
    assert summary["status"] == "created"
    view = file_store_view(store_dir)
    assert_one_copy_and_no_orphans(env, number, summary["bag_id"], view)
    assert not (embedded_service.data_dir / "work" / summary["bag_id"]).exists()
    if register == "sqlite":
        assert claim_record(embedded_service.data_dir, number) is None  # released


@pytest.mark.parametrize("register", ["sqlite", "postgresql"])
def test_two_digitise_of_one_item_started_together_store_one_copy(
    register: str, embedded_service: EmbeddedService, one_page_scan: Path,
    request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    """R13: two commands of one item started at the same moment race for the claim. However
    the machine orders them, one stores the copy and the other either is refused in one line
    (the runs overlapped) or reports that same copy as existing (the first had finished before
    the second claimed the item): never two copies, never an orphan."""
    env, store_dir = two_run_env(register, embedded_service, request, tmp_path)
    number = f"KZ-RACE-{register.upper()}"
    add_item(env, number)
    runs = [start_qor("digitise", str(one_page_scan), "--inventory", number, "--json", env=env)
            for _ in range(2)]
    outputs = [run.communicate(timeout=RUN_TIMEOUT_S) for run in runs]
    codes = [run.returncode for run in runs]
    summaries = [json.loads(out) if code == 0 else None
                 for code, (out, _) in zip(codes, outputs, strict=True)]
    created = [s for s in summaries if s is not None and s["status"] == "created"]
    assert len(created) == 1, [(c, err[-400:]) for c, (_, err) in zip(codes, outputs,
                                                                      strict=True)]
    other = 1 - summaries.index(created[0])
    if codes[other] == 0:
        later = summaries[other]
        assert later is not None
        assert (later["status"], later["bag_id"]) == ("existing", created[0]["bag_id"])
    else:
        assert codes[other] == 1
        lines = error_lines(outputs[other][1])
        assert len(lines) == 1 and " is being digitised by " in lines[0], lines
    assert_one_copy_and_no_orphans(env, number, created[0]["bag_id"], file_store_view(store_dir))


# -- kill -9 at each stage, then run again -------------------------------------------------------


#: ``command``: kill -9 of ``qor digitise`` (its runner child is stopped with it);
#: ``runner-child``: kill -9 of the resident runner's child running the flow (the command
#: lives on and reports it); ``in-process``: kill -9 of a command that runs the flow itself
#: (a configured Prefect server: no runner), at the two points after the store was written.
KILL_CASES = [
    *((point, target) for point in POINTS for target in ("command", "runner-child")),
    ("uploading", "in-process"), ("before-register", "in-process"),
]


@pytest.mark.parametrize(("point", "target"), KILL_CASES,
                         ids=[f"{p}-{t}" for p, t in KILL_CASES])
def test_kill_9_at_a_stage_then_a_rerun_stores_one_copy_and_leaves_no_orphan(
    point: str, target: str, embedded_service: EmbeddedService, one_page_scan: Path,
    tmp_path: Path,
) -> None:
    """R13 (a copy counts as stored only once registered, whole, in the depository store):
    ``kill -9`` of the command, or of the resident runner's child running its flow, at
    ``point``; nothing is registered; the same command run again resumes or redoes the work
    and leaves exactly one copy, no orphan and no stray object, and an intact audit."""
    env = embedded_service.env()
    if target == "in-process":
        env["QOR_PREFECT_API_URL"] = require_env("QOR_TEST_PREFECT_API_URL", "Prefect server")
    number = f"KZ-K9-{point.upper()}-{target.upper()}"
    add_item(env, number)
    mark = tmp_path / "held.json"

    run = start_qor("digitise", str(one_page_scan), "--inventory", number, "--json",
                    env={**env, STAGE_ENV: point, MARK_ENV: str(mark)})
    job = wait_held(run, mark)
    if target == "in-process":
        assert job == run.pid, "the flow did not run in the command"
    else:
        assert job != run.pid, "the flow ran in the command, not in the resident runner's child"
    os.kill(job if target == "runner-child" else run.pid, signal.SIGKILL)
    if target == "command":
        # The runner child is told by SIGTERM and stops; a task thread of it that is in the
        # middle of its work (here: held at the fault point) finishes that work first.
        mark.unlink()
    _, err = run.communicate(timeout=120)
    wait_gone(job, timeout=300)
    if target == "runner-child":  # the command outlives its job and says so in one line
        assert run.returncode == 3, err
        lines = error_lines(err)
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
    else:
        assert run.returncode == -signal.SIGKILL

    assert copies(env, number) == []  # nothing half-registered
    if target != "command":
        # The killed run's claim is left behind, held by nobody: stale, and the rerun takes
        # it over. (A killed command's runner child is stopped by SIGTERM and releases it.)
        stale = claim_record(embedded_service.data_dir, number)
        assert stale is not None and stale["pid"] == job

    summary = digitise_ok(env, one_page_scan, number)
    assert summary["pages"] == 1
    assert_one_copy_and_no_orphans(env, number, summary["bag_id"],
                                   file_store_view(embedded_service.data_dir / "store"))
    assert not (embedded_service.data_dir / "work" / summary["bag_id"]).exists()
    assert claim_record(embedded_service.data_dir, number) is None


# -- the S3 server dies in the middle of an upload -----------------------------------------------


VGW_ACCESS = "qorfaultaccess"
VGW_SECRET = "qorfaultsecret0123456789"
VGW_REGION = "us-east-1"


def versitygw_binary() -> Path:
    """The versitygw that infra/test-services installed in the tools cache."""
    cache = Path(os.environ.get("QOR_TOOLS_CACHE") or Path.home() / ".cache" / "qor-tools")
    found = shutil.which("versitygw")
    binary = Path(found) if found else cache / "bin" / "versitygw"
    if not binary.is_file():
        pytest.fail(f"versitygw is not installed ({binary}): run `infra/test-services up`",
                    pytrace=False)
    return binary


@dataclass
class PrivateS3:
    """A versitygw of this test only: its own port and data folders, killed at will."""

    binary: Path
    port: int
    base: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict[str, str]:
        return {"s3_endpoint_url": self.endpoint, "s3_access_key": VGW_ACCESS,
                "s3_secret_key": VGW_SECRET, "s3_region": VGW_REGION}

    def start(self) -> None:
        (self.base / "root").mkdir(parents=True, exist_ok=True)
        (self.base / "versions").mkdir(parents=True, exist_ok=True)
        with (self.base / "versitygw.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), "--port", f"127.0.0.1:{self.port}", "--access", VGW_ACCESS,
                 "--secret", VGW_SECRET, "--region", VGW_REGION, "--quiet", "posix",
                 "--versioning-dir", str(self.base / "versions"), str(self.base / "root")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        client = make_s3_client(self.settings())
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_buckets()
                return
            except Exception as e:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (self.base / "versitygw.log").read_text("utf-8", "replace")
                    pytest.fail(f"private versitygw did not start: {e}\n{log_text[-2000:]}",
                                pytrace=False)
                time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def private_s3(tmp_path: Path) -> Iterator[PrivateS3]:
    """A private S3 server (never the shared one on the env's port), stopped afterwards."""
    server = PrivateS3(binary=versitygw_binary(), port=_free_port(), base=tmp_path / "s3")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def s3_view(s3: PrivateS3, bucket: str, prefix: str) -> StoreView:
    client = make_s3_client(s3.settings())
    keys = [o["Key"].removeprefix(prefix)
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                         Prefix=prefix)
            for o in page.get("Contents", [])]
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return StoreView(keys=keys, unfinished=[u["Key"] for u in uploads])


def test_the_s3_server_dying_mid_upload_then_coming_back_leaves_one_whole_copy(
    private_s3: PrivateS3, one_page_scan: Path, tmp_path: Path,
) -> None:
    """R13 (the depository store): the S3 server is killed once the bag's first object has
    arrived, and started again a few seconds later. The command retries and completes, or
    fails in one retryable line with nothing registered and a rerun resumes; either way one
    copy, registered once, and no orphan or half-written object in the bucket."""
    bucket = f"qor-fault-{uuid.uuid4().hex[:10]}"
    make_s3_client(private_s3.settings()).create_bucket(Bucket=bucket)
    prefix = "depository/"
    env = embedded_env(
        tmp_path / "qor",
        QOR_PREFECT_API_URL=require_env("QOR_TEST_PREFECT_API_URL", "Prefect server"),
        QOR_STORE_URI=f"s3://{bucket}/{prefix.rstrip('/')}",
        **{f"QOR_{k.upper()}": v for k, v in private_s3.settings().items()})
    number = "KZ-S3-DIES"
    add_item(env, number)
    mark = tmp_path / "held.json"

    run = start_qor("digitise", str(one_page_scan), "--inventory", number, "--json",
                    env={**env, STAGE_ENV: "uploading", MARK_ENV: str(mark)})
    wait_held(run, mark)
    arrived = s3_view(private_s3, bucket, prefix).keys
    assert len(arrived) == 1 and arrived[0].startswith("bags/"), arrived
    private_s3.kill()
    mark.unlink()  # the upload goes on, into a dead server
    time.sleep(4.0)
    private_s3.start()
    out, err = run.communicate(timeout=RUN_TIMEOUT_S)

    if run.returncode == 0:
        summary = json.loads(out)
        assert summary["status"] == "created"
    else:
        lines = error_lines(err)
        assert run.returncode == 3 and len(lines) == 1, (run.returncode, lines)
        assert "unavailable" in lines[0] and "Traceback" not in err
        assert copies(env, number) == []  # nothing half-registered
        summary = digitise_ok(env, one_page_scan, number)
    assert_one_copy_and_no_orphans(env, number, summary["bag_id"],
                                   s3_view(private_s3, bucket, prefix))
    valid = qor("bag", "validate-stored", f"s3://{bucket}/{prefix}bags/{summary['bag_id']}",
                env=env)
    assert valid.returncode == 0, valid.stdout + valid.stderr


# -- the scratch disk fills up during packaging --------------------------------------------------


SCRATCH_MB = 16


def _fill(path: Path) -> int:
    """Write zeros to ``path`` until its disk is full; the bytes written."""
    written = 0
    with path.open("wb", buffering=0) as fh:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * size
            try:
                while True:
                    written += fh.write(chunk) or 0
            except OSError as e:
                assert e.errno == 28, e  # ENOSPC
    return written


def test_a_full_scratch_disk_during_packaging_is_one_line_and_leaves_nothing(
    one_page_scan: Path, tmp_path: Path,
) -> None:
    """The scratch folder is a real 16 MiB tmpfs (``unshare -rm``: a user and mount namespace
    of the run's own) that fills up after the bag's first file is written: one line saying the
    scratch disk is full (exit 3, not a refused input or an internal error), nothing
    registered, nothing in the store, and the run's scratch folder removed."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare (util-linux) is not installed", pytrace=False)
    data_dir = tmp_path / "qor"
    env = embedded_env(
        data_dir, QOR_PREFECT_API_URL=require_env("QOR_TEST_PREFECT_API_URL", "Prefect server"))
    number = "KZ-ENOSPC"
    add_item(env, number)
    work = data_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    mark = tmp_path / "held.json"
    listing = tmp_path / "left-in-scratch.txt"
    # In the namespace: the tmpfs over the data dir's scratch folder, the command, and then
    # what the command left there (the namespace and its tmpfs end with this shell).
    script = (f'mount -t tmpfs -o size={SCRATCH_MB}m,mode=0700 qor-scratch "$0" || exit 99; '
              '"$@"; rc=$?; find "$0" -mindepth 1 ! -name filler > "$QOR_T_LISTING"; exit $rc')
    run = start_qor("digitise", str(one_page_scan), "--inventory", number, "--json",
                    env={**env, STAGE_ENV: "packaging", MARK_ENV: str(mark),
                         "QOR_T_LISTING": str(listing)},
                    prefix=(unshare, "-rm", "sh", "-c", script, str(work)))
    job = wait_held(run, mark)
    scratch = Path(f"/proc/{job}/root") / work.relative_to("/")
    fs = os.statvfs(scratch)
    assert fs.f_blocks * fs.f_frsize <= SCRATCH_MB << 20, "the scratch folder is not the tmpfs"
    assert _fill(scratch / "filler") > 0
    mark.unlink()
    out, err = run.communicate(timeout=RUN_TIMEOUT_S)

    lines = error_lines(err)
    assert run.returncode == 3, (run.returncode, lines)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: no space left in the scratch folder "), lines[0]
    assert "package stage" in lines[0] and "Traceback" not in err and out == ""
    assert copies(env, number) == []
    view = file_store_view(data_dir / "store")
    assert view.keys == [] and view.unfinished == []
    assert listing.read_text("utf-8") == ""  # the run's scratch folder was removed


# -- SIGTERM while the command starts the local orchestration service ----------------------------


START_LINE = b"qor starts the local Prefect server"


def runner_processes(data_dir: Path) -> list[int]:
    """Pids of resident runners whose socket is in ``data_dir`` (read from /proc)."""
    sock = str(data_dir / "prefect" / "runner.sock").encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if sock in cmdline and any(b"qor.cli.runner" in c for c in cmdline):
            found.append(int(proc.name))
    return found


def _recorded_pid(path: Path) -> int | None:
    try:
        pid: int = json.loads(path.read_text("utf-8"))["pid"]
    except (OSError, ValueError, KeyError):
        return None
    return pid


def _until(condition: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s", pytrace=False)
        time.sleep(0.001)


#: When SIGTERM comes: just as the command starts the Prefect server (its log line is written
#: right before the process is started and recorded), a little later, and just as it starts
#: the resident runner (whose log file is opened right before it is started and recorded).
SIGTERM_MOMENTS = [("server", 0.0), ("server", 0.003), ("server", 0.02), ("runner", 0.0),
                   ("runner", 0.003)]


def _sigterm_while_starting(env: dict[str, str], data_dir: Path, scan: Path, *, what: str,
                            delay: float) -> list[int]:
    """Start ``qor digitise``, SIGTERM it ``delay`` s after it begins starting ``what``; the
    pids of server and runner processes of ``data_dir`` that no state file records."""
    home = data_dir / "prefect"
    log = home / ("server.log" if what == "server" else "runner.log")
    if what == "runner":  # the server is up and no runner: the command starts the runner
        up = qor("server", "start", "--json", env=env)
        assert up.returncode == 0, up.stderr
        for pid in runner_processes(data_dir):
            os.kill(pid, signal.SIGKILL)
        for name in ("runner.json", "runner.sock", "runner.log"):
            (home / name).unlink(missing_ok=True)
    seen = log.read_bytes().count(START_LINE) if log.exists() else 0
    run = start_qor("digitise", str(scan), "--inventory", "KZ-SIGTERM", env=env)
    if what == "server":
        _until(lambda: log.exists() and log.read_bytes().count(START_LINE) > seen,
               timeout=120, what="the server start")
    else:
        _until(log.exists, timeout=300, what="the runner start")
    time.sleep(delay)
    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=120)
    time.sleep(1.0)  # whatever was being started has been forked by now
    known = {_recorded_pid(home / "server.json"), _recorded_pid(home / "runner.json")}
    return [p for p in server_processes(data_dir) + runner_processes(data_dir)
            if p not in known]


def test_sigterm_of_a_command_starting_the_local_service_leaves_no_orphan(
    one_page_scan: Path, tmp_path: Path,
) -> None:
    """SIGTERM of ``qor digitise`` at the moments it starts the local Prefect server or the
    resident runner: whatever it started is recorded (the next command and ``qor server stop``
    find it), never a process nobody knows of; ``qor server stop`` leaves no server and no
    runner of the data directory running."""
    data_dir = tmp_path / "qor"
    env = embedded_env(data_dir)
    add_item(env, "KZ-SIGTERM")
    orphans: list[str] = []
    try:
        for what, delay in SIGTERM_MOMENTS:
            unknown = _sigterm_while_starting(env, data_dir, one_page_scan, what=what,
                                              delay=delay)
            if unknown:
                orphans.append(f"{what} +{delay} s: unrecorded {unknown}")
                for pid in unknown:
                    os.kill(pid, signal.SIGKILL)
            stopped = qor("server", "stop", env=env, timeout=120)
            assert stopped.returncode == 0, stopped.stderr
            _until(lambda: not (server_processes(data_dir) or runner_processes(data_dir)),
                   timeout=60, what="the stop of every server and runner")
    finally:
        qor("server", "stop", env=env, timeout=120)
        for pid in server_processes(data_dir) + runner_processes(data_dir):
            os.kill(pid, signal.SIGKILL)
    assert orphans == []
