"""Where flows are orchestrated: a configured Prefect server, or Qor's resident local one.

With ``prefect_api_url`` set, flows report to that server. Without it (the embedded default)
Qor runs **one resident local Prefect server** per data directory: the first command that runs
a flow starts it, detached from that command (its own session, so Ctrl-C or SIGTERM of the
command never takes it down), with its SQLite database under ``<data dir>/prefect``; every later
command finds it through a state file and reuses it. A file lock makes concurrent first commands
start exactly one server; the others wait for it. ``qor server start|stop|status`` manage it.

Never Prefect's temporary per-process server: that one costs seconds per command and, on a busy
machine, times out (``Timed out while attempting to connect to ephemeral Prefect API server``).
:func:`apply_environment` forbids it in the calling process, so a missed call fails loudly
instead of silently falling back to it.

Plain Python, no Prefect import: the server runs as ``python -m prefect server start``, and its
health is asked over HTTP.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Literal

from qor.errors import OrchestrationUnavailable
from qor.settings import QorSettings

logger = logging.getLogger(__name__)

STATE_FILE = "server.json"
LOCK_FILE = "server.lock"
LOG_FILE = "server.log"
DATABASE_FILE = "server.sqlite3"

#: How long one health probe may take. Generous: a loaded machine answers slowly, and a slow
#: answer must not be taken for a dead server (that would start a second one).
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class LocalServer:
    """The resident local Prefect server of one data directory, as its state file records it."""

    pid: int
    port: int
    api_url: str
    started_at: str
    prefect_version: str
    data_dir: str

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


@dataclass(frozen=True)
class Orchestration:
    """Where this process's flows report to."""

    mode: Literal["configured", "local"]
    api_url: str
    server: LocalServer | None = None
    """The local server (``mode == "local"``)."""
    started: bool = False
    """Whether this call started the local server (the first command after boot does)."""


def server_dir(settings: QorSettings) -> Path:
    """``<data dir>/prefect``: the local server's database, log, state and lock, and
    ``PREFECT_HOME`` of every Qor command on this data directory."""
    return settings.data_dir / "prefect"


def _state_path(settings: QorSettings) -> Path:
    return server_dir(settings) / STATE_FILE


def log_path(settings: QorSettings) -> Path:
    """The local server's log (what it printed while starting and running)."""
    return server_dir(settings) / LOG_FILE


def _read_state(settings: QorSettings) -> LocalServer | None:
    try:
        data = json.loads(_state_path(settings).read_text("utf-8"))
        return LocalServer(**data)
    except (OSError, ValueError, TypeError):
        return None


def _write_state(settings: QorSettings, server: LocalServer) -> None:
    path = _state_path(settings)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(asdict(server), indent=2), encoding="utf-8")
    partial.replace(path)


def _clear_state(settings: QorSettings) -> None:
    with contextlib.suppress(FileNotFoundError):
        _state_path(settings).unlink()


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, already dead, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust the signal
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_our_server(pid: int) -> bool:
    """Whether ``pid`` runs a Prefect server (a recycled pid is some other program)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return process_alive(pid)
    return b"prefect" in cmdline and b"server" in cmdline


def healthy(api_url: str, *, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the Prefect API at ``api_url`` answers its health check."""
    url = f"{api_url.rstrip('/')}/health"
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - http(s) only
            return bool(answer.status == 200 and json.loads(answer.read()) is True)
    except (OSError, ValueError, urllib.error.URLError):
        return False


def local_status(settings: QorSettings) -> tuple[LocalServer | None, bool]:
    """The recorded local server (or None) and whether it answers now."""
    server = _read_state(settings)
    if server is None or not (process_alive(server.pid) and _is_our_server(server.pid)):
        return None, False
    return server, healthy(server.api_url)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _prefect_version() -> str:
    try:
        return metadata.version("prefect")
    except metadata.PackageNotFoundError:
        return "?"


def server_environment(settings: QorSettings, *, port: int) -> dict[str, str]:
    """The environment of the local server process: its own home, SQLite database and port;
    telemetry off; no scheduler (it serves flows run by commands, not deployments)."""
    home = server_dir(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL":
            f"sqlite+aiosqlite:///{home / DATABASE_FILE}",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true" if settings.prefect_ui else "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (released by the OS if this process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise OrchestrationUnavailable(
                        f"another Qor command has been starting the local Prefect server for "
                        f"over {timeout:.0f} s (lock {path}); see {path.with_name(LOG_FILE)}"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _last_log_line(settings: QorSettings) -> str:
    try:
        lines = [ln.strip() for ln in log_path(settings).read_text("utf-8", "replace")
                 .splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _wait_healthy(settings: QorSettings, server: LocalServer, proc: subprocess.Popen[bytes] | None,
                  *, deadline: float) -> None:
    while True:
        if healthy(server.api_url):
            return
        exited = proc.poll() is not None if proc is not None else not process_alive(server.pid)
        if exited:
            raise OrchestrationUnavailable(
                f"the local Prefect server exited while starting"
                f"{': ' + _last_log_line(settings) if _last_log_line(settings) else ''} "
                f"(log: {log_path(settings)}); fix that and run `qor server start`, or set "
                "QOR_PREFECT_API_URL to a running Prefect server")
        if time.monotonic() > deadline:
            raise OrchestrationUnavailable(
                f"the local Prefect server (pid {server.pid}) did not answer within "
                f"{settings.prefect_start_timeout_s:.0f} s (log: {log_path(settings)}); the "
                "machine may be very busy: run `qor server start` again (it keeps starting in "
                "the background) or raise QOR_PREFECT_START_TIMEOUT_S")
        time.sleep(0.25)


_DEFERRED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGTERM, SIGINT and SIGHUP for the block, then act on them as they would have.

    Around "start a detached process, then record it": a command stopped between the two would
    leave a process nobody knows of (an orphan Prefect server or runner that no ``qor server
    stop`` finds, and a second one started by the next command, issue 15). With the signals
    held, the command dies only once the process is recorded. Main thread only (Python runs
    handlers there); elsewhere the block runs as it is.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in _DEFERRED_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for held in dict.fromkeys(pending):
            signal.raise_signal(held)


def _spawn(settings: QorSettings) -> tuple[LocalServer, subprocess.Popen[bytes]]:
    home = server_dir(settings)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    port = _free_port()
    args = [sys.executable, "-P", "-m", "prefect", "server", "start", "--host", "127.0.0.1",
            "--port", str(port), "--no-scheduler", "--no-late-runs", "--analytics-off"]
    args.append("--ui" if settings.prefect_ui else "--no-ui")
    with log_path(settings).open("ab") as log:
        log.write(f"\n--- {datetime.now(UTC).isoformat(timespec='seconds')} qor starts the "
                  f"local Prefect server on port {port}\n".encode())
        log.flush()
        # A session of its own: the command that starts it may be interrupted or killed, the
        # server stays for the next command. Output goes to the log, never to the terminal.
        proc = subprocess.Popen(args, env=server_environment(settings, port=port), cwd=home,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    server = LocalServer(pid=proc.pid, port=port, api_url=f"http://127.0.0.1:{port}/api",
                         started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                         prefect_version=_prefect_version(), data_dir=str(settings.data_dir))
    logger.info("started the local Prefect server (pid %d) on port %d", proc.pid, port)
    return server, proc


def ensure_local_server(
    settings: QorSettings, *, on_start: Callable[[], None] | None = None
) -> tuple[LocalServer, bool]:
    """The data directory's local server, started if none answers; and whether it was started.

    ``on_start`` is called once when this call has to start (or wait for) a server, so the CLI
    can say why the first command takes a while. Raises :class:`OrchestrationUnavailable`
    naming why, when the server does not come up within ``prefect_start_timeout_s``.
    """
    server, up = local_status(settings)
    if server is not None and up:
        return server, False
    timeout = settings.prefect_start_timeout_s
    deadline = time.monotonic() + timeout
    if on_start is not None:
        on_start()
    with file_lock(server_dir(settings) / LOCK_FILE, timeout=timeout + 30):
        # Whoever held the lock before us may have started it meanwhile.
        server = _read_state(settings)
        if server is not None and process_alive(server.pid) and _is_our_server(server.pid):
            # Alive: answering, or still starting (its starter was interrupted): wait for it.
            _wait_healthy(settings, server, None, deadline=deadline)
            return server, False
        _clear_state(settings)
        with deferred_signals():  # never a started server left unrecorded (an orphan)
            server, proc = _spawn(settings)
            # Recorded before it answers: a command that comes while it starts waits for this
            # one instead of starting a second server, even if this command is killed now.
            _write_state(settings, server)
        try:
            _wait_healthy(settings, server, proc, deadline=deadline)
        except OrchestrationUnavailable:
            if proc.poll() is not None:
                _clear_state(settings)
            raise
        return server, True


def stop_local_server(settings: QorSettings, *, timeout: float = 30.0) -> LocalServer | None:
    """Stop the local server (SIGTERM to its process group, SIGKILL after ``timeout``).

    Returns the server that was stopped, or None if none was running. Flows that are running
    against it lose their orchestration: stop it when no ``qor`` command is running.
    """
    with file_lock(server_dir(settings) / LOCK_FILE, timeout=timeout + 30):
        server = _read_state(settings)
        if server is None or not (process_alive(server.pid) and _is_our_server(server.pid)):
            _clear_state(settings)
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_alive(server.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_alive(server.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
        _clear_state(settings)
        return server


def configured_api_url(settings: QorSettings) -> tuple[str, str] | None:
    """The Prefect server the operator named, and where (``QOR_PREFECT_API_URL``, else Prefect's
    own ``PREFECT_API_URL`` in the environment); None on the embedded defaults."""
    if settings.prefect_api_url:
        return settings.prefect_api_url.rstrip("/"), "QOR_PREFECT_API_URL"
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"].rstrip("/"), "PREFECT_API_URL"
    return None


def ensure(settings: QorSettings, *, on_start: Callable[[], None] | None = None) -> Orchestration:
    """Where this process's flows report to: the configured server, which must answer, or the
    local server, started if need be. Raises :class:`OrchestrationUnavailable` in one line."""
    configured = configured_api_url(settings)
    if configured is not None:
        url, source = configured
        if not healthy(url):
            raise OrchestrationUnavailable(
                f"the Prefect server at {url} ({source}) does not answer: start it "
                f"(systemctl start qor-prefect-server) or unset {source} to use the local one")
        return Orchestration(mode="configured", api_url=url)
    server, started = ensure_local_server(settings, on_start=on_start)
    return Orchestration(mode="local", api_url=server.api_url, server=server, started=started)


def client_environment(settings: QorSettings) -> dict[str, str]:
    """What every Qor process sets before Prefect loads (``os.environ.setdefault``): Prefect's
    home in the data directory, telemetry off, Qor's loggers sent to the run's log."""
    return {
        "PREFECT_HOME": str(server_dir(settings)),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "qor,flows,storage,integrity,catalog_sync,elibrary",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }


def apply_environment(orchestration: Orchestration) -> None:
    """Point this process's Prefect at ``orchestration`` and forbid the temporary server."""
    os.environ["PREFECT_API_URL"] = orchestration.api_url
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"


# --- jobs: what the orchestration server knows of flow runs -----------------------------------

#: The end of a flow run's name when a ``qor`` command runs it: ``… · pid 4242@host``.
_RUN_LABEL = re.compile(r"pid (\d+)@(\S+)$")


@dataclass(frozen=True)
class JobRun:
    """One flow run as the orchestration server reports it (``qor jobs``)."""

    id: str
    flow: str
    name: str
    state: str
    """Prefect's state name (``Running``, ``Completed``, ``Failed``…), or ``Crashed?`` for a
    run still marked running whose ``qor`` command on this host is gone."""
    state_type: str
    started: str | None
    ended: str | None
    duration_s: float | None
    progress: float | None
    """Percent done, from the run's progress artifact (digitise: pages OCR'd; audits: bags)."""
    parameters: dict[str, object]
    command_pid: int | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _command_pid(name: str) -> tuple[str | None, int | None]:
    found = _RUN_LABEL.search(name)
    if found is None:
        return None, None
    return found.group(2), int(found.group(1))


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def recent_runs(api_url: str, *, limit: int = 20, timeout: float = 10.0,
                name_like: str | None = None) -> list[JobRun]:
    """Running and pending flow runs first, then the most recent others (``limit`` in all);
    only those whose name contains ``name_like`` when given (a command's ``pid N@host``).

    Raises :class:`OrchestrationUnavailable` when the API does not answer.
    """
    import httpx

    base = api_url.rstrip("/")
    active = {"type": {"any_": ["RUNNING", "PENDING", "CANCELLING", "PAUSED"]}}
    named: dict[str, object] = {} if name_like is None else {"name": {"like_": name_like}}
    try:
        with httpx.Client(timeout=timeout) as client:
            running = client.post(f"{base}/flow_runs/filter", json={
                "flow_runs": {"state": active, **named}, "sort": "START_TIME_DESC",
                "limit": limit})
            running.raise_for_status()
            recent = client.post(f"{base}/flow_runs/filter", json={
                "flow_runs": {"state": {"type": {"not_any_": active["type"]["any_"]}},
                              **named},
                "sort": "START_TIME_DESC", "limit": limit})
            recent.raise_for_status()
            rows: list[dict[str, object]] = [*running.json(), *recent.json()][:limit]
            ids = [str(r["id"]) for r in rows]
            flow_ids = sorted({str(r["flow_id"]) for r in rows})
            names: dict[str, str] = {}
            progress: dict[str, float] = {}
            if rows:
                flows = client.post(f"{base}/flows/filter",
                                    json={"flows": {"id": {"any_": flow_ids}}})
                flows.raise_for_status()
                names = {str(f["id"]): str(f["name"]) for f in flows.json()}
                arts = client.post(f"{base}/artifacts/filter", json={
                    "artifacts": {"flow_run_id": {"any_": ids}, "type": {"any_": ["progress"]}},
                    "sort": "UPDATED_DESC", "limit": 200})
                arts.raise_for_status()
                for a in arts.json():
                    run_id = str(a.get("flow_run_id"))
                    if run_id not in progress and isinstance(a.get("data"), int | float):
                        progress[run_id] = float(a["data"])
    except (httpx.HTTPError, ValueError, KeyError) as e:
        raise OrchestrationUnavailable(
            f"the orchestration server at {base} did not list its runs: {e}") from e
    host = socket.gethostname()
    now = datetime.now(UTC)
    out: list[JobRun] = []
    for r in rows:
        state = r.get("state") if isinstance(r.get("state"), dict) else {}
        assert isinstance(state, dict)
        state_type = str(state.get("type") or "")
        state_name = str(state.get("name") or state_type.title())
        run_host, pid = _command_pid(str(r.get("name") or ""))
        if state_type == "RUNNING" and pid is not None and run_host == host \
                and not process_alive(pid):
            state_name = "Crashed?"
        start, end = _parse_time(r.get("start_time")), _parse_time(r.get("end_time"))
        if start is not None:
            duration: float | None = ((end or now) - start).total_seconds()
        else:
            duration = None
        params = r.get("parameters")
        out.append(JobRun(
            id=str(r["id"]), flow=names.get(str(r["flow_id"]), "?"), name=str(r.get("name")),
            state=state_name, state_type=state_type,
            started=start.isoformat(timespec="seconds") if start else None,
            ended=end.isoformat(timespec="seconds") if end else None,
            duration_s=round(duration, 1) if duration is not None else None,
            progress=progress.get(str(r["id"])),
            parameters=params if isinstance(params, dict) else {},
            command_pid=pid))
    return out
