"""Register commands handed to the resident runner (``qor.cli.delegate``), as a librarian meets
them: the same output, exit status, standard input and Ctrl-C as in the command's own process,
and a command killed at the desk leaves nothing running.

Every command is ``qor`` as a subprocess on the embedded defaults; ``QOR_NO_RUNNER=1`` runs the
same command in its own process for comparison.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qor.cli import delegate
from qor.settings import load_settings
from tests.orchestration.test_local_service import QOR, embedded_env, qor, server_processes


@pytest.fixture(scope="module")
def running_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory whose local service (Prefect server and warm runner) is started, with
    one item, one reader and one lending desk in its register."""
    data_dir = tmp_path_factory.mktemp("delegation") / "qor"
    env = embedded_env(data_dir)
    started = qor("server", "start", "--json", env=env, timeout=300)
    assert started.returncode == 0, started.stderr
    for args in (("items", "add", "DLG-000001", "--title", "Абай жолы", "--language", "kk"),
                 ("readers", "add", "R-DLG-1", "Сәуле Омарова"),
                 ("loans", "points", "add", "LEND", "Абонемент", "lending_desk")):
        done = qor(*args, env=env)
        assert done.returncode == 0, done.stderr
    yield data_dir
    qor("server", "stop", env=env, timeout=120)
    for pid in server_processes(data_dir):
        os.kill(pid, 9)


def runner_log(data_dir: Path) -> str:
    return (data_dir / "prefect" / "runner.log").read_text("utf-8", errors="replace")


def delegated_count(data_dir: Path, name: str) -> int:
    return sum(1 for line in runner_log(data_dir).splitlines()
               if line.startswith(f"command {name} "))


def runner_children(data_dir: Path) -> list[int]:
    state = json.loads((data_dir / "prefect" / "runner.json").read_text("utf-8"))
    children = Path(f"/proc/{state['pid']}/task/{state['pid']}/children")
    return [int(p) for p in children.read_text().split()]


def test_a_register_command_runs_in_the_runner_with_the_same_output_and_status(
    running_service: Path,
) -> None:
    env = embedded_env(running_service)
    before = delegated_count(running_service, "copies show")
    fast = qor("copies", "show", "DLG-000001", "--json", env=env)
    slow = qor("copies", "show", "DLG-000001", "--json", env={**env, "QOR_NO_RUNNER": "1"})
    assert delegated_count(running_service, "copies show") == before + 1
    assert (fast.returncode, json.loads(fast.stdout)) == (slow.returncode, json.loads(slow.stdout))

    # A refusal: the same one line on stderr and the same exit status, no traceback.
    fast = qor("copies", "show", "NO-SUCH-1", env=env)
    slow = qor("copies", "show", "NO-SUCH-1", env={**env, "QOR_NO_RUNNER": "1"})
    assert fast.returncode == slow.returncode == 1
    assert fast.stderr == slow.stderr
    assert len(fast.stderr.strip().splitlines()) == 1
    assert "Traceback" not in fast.stderr


def test_changes_made_in_the_runner_are_in_the_register_a_command_reads(
    running_service: Path,
) -> None:
    # R14: the number entered through the runner can never be given again, in either path.
    env = embedded_env(running_service)
    added = qor("items", "add", "DLG-000002", "--title", "Қыз Жібек", "--json", env=env)
    assert added.returncode == 0, added.stderr
    again = qor("items", "add", "DLG-000002", "--title", "x",
                env={**env, "QOR_NO_RUNNER": "1"})
    assert again.returncode == 1 and "R14" in again.stderr
    shown = qor("copies", "show", "DLG-000002", "--json", env={**env, "QOR_NO_RUNNER": "1"})
    assert shown.returncode == 0, shown.stderr


def test_standard_input_reaches_the_delegated_command(running_service: Path) -> None:
    env = embedded_env(running_service)
    opened = qor("stocktake", "start", "--reason", "loss", "--responsible", "Сейітова Ә.",
                 "--scope", "Hall-A", "--json", env=env)
    assert opened.returncode == 0, opened.stderr
    before = delegated_count(running_service, "stocktake")
    scans = "".join(f"SCAN-{i:05d}\n" for i in range(600))
    done = subprocess.run([*QOR, "stocktake", "scan", "--json"], input=scans, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert delegated_count(running_service, "stocktake") == before + 1
    result = json.loads(done.stdout)
    assert result["read"] == 600
    assert result["stored"] + len(result["refused"]) == 600
    closed = qor("stocktake", "close", "--json", "--out", str(running_service.parent), env=env)
    assert closed.returncode == 0, closed.stderr


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_stopped_command_stops_its_child_in_the_runner(running_service: Path,
                                                         how: signal.Signals) -> None:
    env = embedded_env(running_service)
    opened = qor("stocktake", "start", "--reason", "loss", "--responsible", "Сейітова Ә.",
                 "--scope", "Hall-A", env=env)
    assert opened.returncode == 0, opened.stderr
    # A scan read from a pipe that stays open: the command waits for more lines.
    proc = subprocess.Popen([*QOR, "stocktake", "scan"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"SCAN-A\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not runner_children(running_service) and time.monotonic() < deadline:
            time.sleep(0.05)
        children = runner_children(running_service)
        assert len(children) == 1
        proc.send_signal(how)
        proc.wait(timeout=30)
        assert proc.returncode != 0
        deadline = time.monotonic() + 30
        while runner_children(running_service) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner_children(running_service) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    closed = qor("stocktake", "close", "--out", str(running_service.parent), env=env)
    assert closed.returncode == 0, closed.stderr


@pytest.mark.parametrize("case", ["env", "toml in cwd", "QOR_CONFIG", "default"])
def test_the_data_directory_guess_matches_the_settings(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in [k for k in os.environ if k.startswith("QOR_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    if case == "env":
        monkeypatch.setenv("QOR_DATA_DIR", "relative/data")
    elif case == "toml in cwd":
        (tmp_path / "qor.toml").write_text('data_dir = "/srv/qor-data"\n', "utf-8")
    elif case == "QOR_CONFIG":
        (tmp_path / "elsewhere.toml").write_text('data_dir = "~/qor-data"\n', "utf-8")
        monkeypatch.setenv("QOR_CONFIG", str(tmp_path / "elsewhere.toml"))
    guess = delegate.guess_data_dir()
    assert guess is not None
    assert guess == load_settings().data_dir.expanduser().absolute()


def test_only_register_commands_and_digitise_are_delegated() -> None:
    assert delegate.command_name(["-v", "loans", "out", "X", "R", "P"]) == "loans"
    assert delegate.command_name(["copies", "show", "X"]) == "copies show"
    assert delegate.command_name(["digitise", "scans/", "--inventory", "X"]) == "digitise"
    for argv in (["copies", "export", "X"], ["server", "start"],
                 ["elibrary", "add-reader", "R"], ["--help"], ["fixity", "audit"], []):
        assert delegate.command_name(argv) is None, argv


def test_digitise_runs_in_the_runner_with_the_same_result_as_in_its_own_process(
    running_service: Path, tmp_path: Path,
) -> None:
    """The flow runs in the runner's warm child: a copy is stored and registered once, the
    summary is what the command's own process reports, and a refusal is the same one line."""
    from tests.orchestration.test_local_service import small_scan

    env = embedded_env(running_service)
    scan = small_scan(tmp_path / "p1.png", seed=7)
    before = delegated_count(running_service, "digitise")
    fast = qor("digitise", str(scan), "--inventory", "DLG-000001", "--json", env=env)
    assert fast.returncode == 0, fast.stderr
    assert delegated_count(running_service, "digitise") == before + 1
    created = json.loads(fast.stdout)
    assert created["status"] == "created" and created["pages"] == 1
    # The same batch again, in the command's own process: the copy the runner stored.
    slow = qor("digitise", str(scan), "--inventory", "DLG-000001", "--json",
               env={**env, "QOR_NO_RUNNER": "1"})
    assert slow.returncode == 0, slow.stderr
    existing = json.loads(slow.stdout)
    assert (existing["status"], existing["bag_id"]) == ("existing", created["bag_id"])
    shown = json.loads(qor("copies", "show", "DLG-000001", "--json", env=env).stdout)
    assert [c["bag_id"] for c in shown] == [created["bag_id"]]

    missing = tmp_path / "no-such-page.tif"
    fast = qor("digitise", str(missing), "--inventory", "DLG-000001", env=env)
    slow = qor("digitise", str(missing), "--inventory", "DLG-000001",
               env={**env, "QOR_NO_RUNNER": "1"})
    assert delegated_count(running_service, "digitise") == before + 2
    assert fast.returncode == slow.returncode != 0
    assert fast.stderr == slow.stderr
    assert len(fast.stderr.strip().splitlines()) == 1 and "Traceback" not in fast.stderr


def test_a_digitise_with_prefect_settings_of_its_own_is_not_handed_over(
    running_service: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runner's child runs flows with the runner's Prefect settings, loaded before the
    fork: a command naming its own server (or any Prefect setting) runs in its own process."""
    for key, value in embedded_env(running_service).items():
        monkeypatch.setenv(key, value)
    for key in [k for k in os.environ if k.startswith("PREFECT_")]:
        monkeypatch.delenv(key)
    # The runner is there and would take the command...
    data_dir = delegate.guess_data_dir()
    assert data_dir is not None and delegate._runner_socket(data_dir) is not None
    # ...but not with a Prefect setting of the command's own.
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    before = delegated_count(running_service, "digitise")
    assert delegate.try_delegate(["digitise", "x.tif", "--inventory", "DLG-000001"]) is None
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv("QOR_PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert delegate.try_delegate(["digitise", "x.tif", "--inventory", "DLG-000001"]) is None
    assert delegated_count(running_service, "digitise") == before
