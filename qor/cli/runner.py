"""The resident flow runner: the warm half of the local orchestration service.

Loading Prefect and the capture engine costs a command about two CPU-seconds before any work,
more than the work itself for a rerun or a one-page item, and many seconds on a busy machine.
On the embedded defaults Qor therefore keeps, beside the local Prefect server, one process per
data directory that has loaded them once (``python -m qor.cli.runner``). A ``qor digitise``
sends it the job over a UNIX socket (``<data dir>/prefect/runner.sock``, 0600); the runner
forks a child, already warm, that takes on the command's environment and working directory,
runs the flow against the local Prefect server exactly as the command would have, and streams
progress and the result (or the error's lines and exit code) back. The command prints them.

* The child lives only as long as the command: when the command dies (Ctrl-C, SIGTERM, kill -9)
  its socket closes and the child stops, leaving what a killed command leaves (a resumable
  scratch folder, nothing registered).
* The runner records a stamp of the code it loaded; a command whose code differs (an upgrade)
  replaces the runner. A configured Prefect server (``QOR_PREFECT_API_URL``) has no runner:
  flows run in the command's own process.
* Anything wrong with the runner (not started, refused, crashed before the job began) makes the
  command run the flow in its own process instead: slower, never broken.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qor import orchestration
from qor.cli.delegate import IN_RUNNER, SOCKET_FILE, STATE_FILE, code_stamp, command_name
from qor.errors import QorError
from qor.settings import QorSettings

logger = logging.getLogger(__name__)

RUNNER_LOG = "runner.log"


@dataclass(frozen=True)
class RunnerState:
    """The resident runner of one data directory, as its state file records it."""

    pid: int
    socket: str
    stamp: str
    started_at: str


def _paths(settings: QorSettings) -> tuple[Path, Path, Path]:
    home = orchestration.server_dir(settings)
    return home / SOCKET_FILE, home / STATE_FILE, home / RUNNER_LOG


def runner_state(settings: QorSettings) -> RunnerState | None:
    """The recorded runner if its process is alive, else None."""
    _, state_path, _ = _paths(settings)
    try:
        state = RunnerState(**json.loads(state_path.read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return state if orchestration.process_alive(state.pid) else None


def _connect(path: Path, *, timeout: float) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def ensure_runner(settings: QorSettings, api_url: str, *, timeout: float = 180.0) -> Path | None:
    """The socket of a runner with this code, started if need be; None if it cannot start
    (the caller then runs the flow itself)."""
    sock_path, state_path, log_path = _paths(settings)
    stamp = code_stamp()
    state = runner_state(settings)
    if state is not None and state.stamp == stamp and sock_path.exists():
        return sock_path
    try:
        with orchestration.file_lock(sock_path.with_name("runner.lock"), timeout=timeout):
            state = runner_state(settings)
            if state is not None and state.stamp == stamp:
                return sock_path if _wait_listening(sock_path, state.pid, timeout) else None
            if state is not None:  # older code: replace it (its running jobs are unaffected)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(state.pid, signal.SIGTERM)
            with contextlib.suppress(FileNotFoundError):
                sock_path.unlink()
            env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONUNBUFFERED": "1"}
            # Signals held until the runner is recorded: never an orphan runner (issue 15).
            with orchestration.deferred_signals(), log_path.open("ab") as log:
                proc = subprocess.Popen(
                    # -P: the data dir (the working directory) holds a "storage" folder of
                    # Prefect's that must not shadow Qor's package of that name.
                    [sys.executable, "-P", "-c", "from qor.cli.runner import main; main()",
                     "--socket", str(sock_path), "--stamp", stamp],
                    env=env, cwd=orchestration.server_dir(settings),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True)
                partial = state_path.with_name(state_path.name + ".partial")
                partial.write_text(json.dumps(asdict(RunnerState(
                    pid=proc.pid, socket=str(sock_path), stamp=stamp,
                    started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z")))), "utf-8")
                partial.replace(state_path)
            return sock_path if _wait_listening(sock_path, proc.pid, timeout) else None
    except QorError as e:
        logger.info("no resident runner (%s): running the flow in this process", e)
        return None


def _wait_listening(path: Path, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not orchestration.process_alive(pid):
            return False
        sock = _connect(path, timeout=5.0) if path.exists() else None
        if sock is not None:
            with contextlib.closing(sock):
                sock.sendall(b'{"job": "ping"}\n')
                return _read_line(sock) == {"event": "pong"}
        time.sleep(0.1)
    return False


def stop_runner(settings: QorSettings) -> int | None:
    """Stop the data directory's runner (jobs it is running go on); its pid, or None."""
    sock_path, state_path, _ = _paths(settings)
    state = runner_state(settings)
    if state is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while orchestration.process_alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    for path in (sock_path, state_path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return state.pid if state is not None else None


def _read_line(sock: socket.socket) -> dict[str, Any] | None:
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = sock.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    parsed: dict[str, Any] = json.loads(data)
    return parsed


def _read_request(conn: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """The job a command sent, and the file descriptors that came with it (a delegated
    command's stdin, stdout and stderr)."""
    fds: list[int] = []
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk, more, _flags, _addr = socket.recv_fds(conn, 65536, 3)
        except OSError:
            chunk = b""
        fds.extend(more)
        if not chunk:
            for fd in fds:
                os.close(fd)
            return None, []
        data += chunk
    try:
        parsed: dict[str, Any] = json.loads(data)
    except ValueError:
        for fd in fds:
            os.close(fd)
        return None, []
    return parsed, fds


def _lines(sock: socket.socket) -> Iterator[dict[str, Any]]:
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line:
                yield json.loads(line)


class RunnerUnavailable(Exception):  # noqa: N818 - reads as what happened
    """The runner did not take the job (nothing was started): run it in this process."""


def submit(sock_path: Path, job: str, args: Mapping[str, Any],
           on_progress: Callable[[str, int, int], None]) -> dict[str, Any]:
    """Have the runner run ``job`` with ``args`` in this command's environment; its result.

    Raises :class:`RunnerUnavailable` if the job was not started, the job's
    :class:`~qor.errors.QorError` (rebuilt: its lines and exit code) if it failed.
    """
    sock = _connect(sock_path, timeout=10.0)
    if sock is None:
        raise RunnerUnavailable(f"cannot connect to {sock_path}")
    with contextlib.closing(sock):
        from qor.cli._common import options

        request = {"job": job, "args": dict(args), "env": dict(os.environ),
                   "cwd": str(Path.cwd()), "debug": options.debug,
                   "verbosity": options.verbosity}
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
            sock.settimeout(None)  # the job takes as long as it takes
            events = _lines(sock)
            first = next(events, None)
        except OSError as e:
            raise RunnerUnavailable(str(e)) from e
        if first is None or first.get("event") != "accepted":
            raise RunnerUnavailable(f"the runner did not accept the job: {first}")
        for event in events:
            kind = event.get("event")
            if kind == "progress":
                on_progress(str(event["stage"]), int(event["done"]), int(event["total"]))
            elif kind == "result":
                result: dict[str, Any] = event["data"]
                return result
            elif kind == "error":
                raise RemoteError(event)
        raise RemoteError({"lines": ["the resident runner's job ended without a result "
                                     f"(see {sock_path.with_name(RUNNER_LOG)})"],
                           "exit_code": 3, "type": "RunnerLost", "traceback": ""})


class RemoteError(QorError):
    """A job the runner ran failed: the same lines and exit code as in this process."""

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.lines = tuple(str(x) for x in event.get("lines") or ("the job failed",))
        self.exit_code = int(event.get("exit_code", 1))
        self.error_type = str(event.get("type", ""))
        self.remote_traceback = str(event.get("traceback", ""))
        self.internal = bool(event.get("internal", False))
        super().__init__("; ".join(self.lines))

    def problem_lines(self) -> tuple[str, ...]:
        return self.lines


# --- the runner process ---------------------------------------------------------------------


def _job_digitise(args: Mapping[str, Any]) -> dict[str, Any]:
    from flows.digitise import run_digitise

    return run_digitise([Path(p) for p in args["pages"]], inventory_number=args["inventory"],
                        title=args.get("title"), new_version=bool(args.get("new_version")),
                        workers=args.get("workers"), run_label=args.get("run_label"),
                        text_policy=args.get("text_policy") or "skip-text",
                        languages=args.get("languages"), layout=args.get("layout")).as_dict()


JOBS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {"digitise": _job_digitise}


def _child(conn: socket.socket, request: Mapping[str, Any]) -> None:
    """In the forked child: become the command, run its job, report, exit."""
    from flows import progress
    from qor.cli._common import configure_logging, flow_run_context, quiet_prefect

    send_lock = threading.Lock()

    def send(event: Mapping[str, Any]) -> None:
        with send_lock:
            conn.sendall(json.dumps(event, default=str).encode() + b"\n")

    def watch_command() -> None:
        # The command's end of the socket closes when it exits or is killed: stop with it.
        with contextlib.suppress(OSError):
            while conn.recv(1024):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    os.chdir(request["cwd"])
    keep = {k: v for k, v in os.environ.items() if k.startswith("PREFECT_")}
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.update({k: v for k, v in keep.items() if k not in request["env"]})
    send({"event": "accepted", "pid": os.getpid()})
    threading.Thread(target=watch_command, daemon=True).start()
    configure_logging(verbosity=int(request.get("verbosity") or 0),
                      debug=bool(request.get("debug")))
    quiet_prefect()
    try:
        with progress.listening(lambda stage, done, total: send(
                {"event": "progress", "stage": stage, "done": done, "total": total})), \
                flow_run_context():
            result = JOBS[request["job"]](request["args"])
        send({"event": "result", "data": result})
    except QorError as e:
        send({"event": "error", "lines": list(e.problem_lines()), "exit_code": e.exit_code,
              "type": type(e).__name__, "traceback": "".join(traceback.format_exception(e))})
    except BaseException as e:  # a bug: the command prints one line (traceback with --debug)
        send({"event": "error", "lines": [f"{type(e).__name__}: {e}"], "exit_code": 70,
              "type": type(e).__name__, "internal": True,
              "traceback": "".join(traceback.format_exception(e))})


def _command_child(conn: socket.socket, request: Mapping[str, Any], fds: list[int],
                   home: Path) -> None:
    """In the forked child: become a delegated register command (``qor.cli.delegate``) —
    its directory, environment and terminal — run it, and report its exit status."""
    from qor.settings import load_settings

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # A flow command run here runs its flow in this (warm) child, not in yet another one.
    os.environ[IN_RUNNER] = "1"
    try:
        same = orchestration.server_dir(load_settings()).resolve() == home.resolve()
    except Exception:  # unreadable settings: the command itself says why, in its own process
        same = False
    if not same or len(fds) != 3:
        conn.sendall(b'{"event": "refused", "reason": "another data directory"}\n')
        return
    conn.sendall(json.dumps({"event": "accepted", "pid": os.getpid()}).encode() + b"\n")

    def watch_command() -> None:
        # The command's end of the socket closes when it exits or is killed: stop with it.
        with contextlib.suppress(OSError):
            while conn.recv(1024):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_command, daemon=True).start()
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    encoding = (os.environ.get("PYTHONIOENCODING") or "utf-8").split(":")[0] or "utf-8"
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=encoding)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=encoding,
                                  line_buffering=os.isatty(1))
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding=encoding,
                                  errors="backslashreplace", line_buffering=True)
    sys.argv = ["qor", *request["argv"]]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    try:
        from qor.cli.application import run

        run()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException as e:  # run() prints Qor's own errors; this is a bug
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        code = 70
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    conn.sendall(json.dumps({"event": "exit", "code": code}).encode() + b"\n")


def _warm_up() -> None:
    """Do once, before any fork, the lazy first-time work every digitise job would otherwise
    repeat in its child: about 1.2 CPU-seconds, 2-3 s of wall time on a busy 2-core machine
    (measured: a first job in a fresh process used 1.9 CPU-s, later ones 0.7).

    Prefect's flow and task engines (which pull in FastAPI, Starlette and OpenTelemetry),
    FIDO's PRONOM signatures (parsed XML, 0.3 CPU-s), the text index, NumPy for old-print
    measurements, Pillow's format plugins and SQLite's driver.
    """
    import sqlite3  # noqa: F401

    import anyio._backends._asyncio  # noqa: F401
    import fastapi.encoders  # noqa: F401
    import numpy
    import numpy.ma
    import prefect.artifacts
    import prefect.flow_engine
    import prefect.task_engine
    import prefect.utilities.visualization  # noqa: F401
    import pydantic.json_schema  # noqa: F401
    from PIL import Image

    import elibrary.config
    import elibrary.textindex  # noqa: F401
    from flows.digitise import digitise
    from integrity import formats

    Image.init()
    formats.warm_up()
    numpy.percentile(numpy.zeros(4, dtype=numpy.float32), (2, 98))
    # What Prefect does with a flow's parameters on every call (a pydantic model built and
    # its schema made), once here so the lazy parts of pydantic are loaded.
    sample = {"pages": ["page.tif"], "inventory_number": "X-1"}
    digitise.serialize_parameters(digitise.validate_parameters(sample))
    "".encode("utf-16-be")
    _warm_register()


def _warm_register() -> None:
    """Open this data directory's register once and compile the queries a digitise job starts
    with: SQLAlchemy compiles a statement on its first use per engine (0.4 CPU-s for the
    item and copy look-ups), and a forked child inherits the engine and its compiled cache.
    The pooled connections are closed again: a child never shares its parent's connection."""
    from sqlalchemy.orm import configure_mappers

    from catalog_sync import register
    from qor import wiring
    from qor.settings import load_settings

    configure_mappers()
    try:
        settings = load_settings()
        engine = wiring.register_engine(settings)
        with wiring.register_session(settings) as session:  # reads only: nothing to commit
            with contextlib.suppress(QorError):
                register.get_item(session, "QOR-WARM-UP")
            register.digital_copies(session, "QOR-WARM-UP")
    except Exception as e:  # nothing is lost: the jobs open the register themselves
        logger.info("runner: register not warmed up (%s)", e)
        return
    engine.dispose()


def serve(sock_path: Path, stamp: str) -> None:
    """Load what flows need, then fork a child per job until SIGTERM."""
    # The point of a runner: what flows and register commands load, loaded once before any
    # fork. Not Qor's CLI modules: they make their consoles at import, which must see a
    # delegated command's terminal, not this process's log.
    import prefect.main  # noqa: F401
    import typer  # noqa: F401

    import catalog_sync.circulation
    import catalog_sync.register  # noqa: F401
    import flows.digitise  # noqa: F401

    _warm_up()
    assert threading.active_count() == 1, "a runner must not fork with threads running"
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is 0600: only this user's commands
    try:
        listener.bind(str(sock_path))
    finally:
        os.umask(old_umask)
    listener.listen(32)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"qor runner {os.getpid()} (code {stamp}) listening on {sock_path}", flush=True)
    while True:
        conn, _ = listener.accept()
        request, fds = _read_request(conn)
        if request is None:
            conn.close()
            continue
        if request.get("job") != "command":
            for fd in fds:
                os.close(fd)
            fds = []
        if request.get("job") == "ping":
            with contextlib.suppress(OSError):
                conn.sendall(b'{"event": "pong"}\n')
            conn.close()
            continue
        if request.get("job") not in JOBS and request.get("job") != "command":
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"event": "refused",
                                         "reason": f"unknown job {request.get('job')!r}"})
                             .encode() + b"\n")
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the job waits for its tools
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            listener.close()
            code = 0
            try:
                if request["job"] == "command":
                    _command_child(conn, request, fds, sock_path.parent)
                else:
                    _child(conn, request)
            except BaseException:
                code = 1
            finally:
                with contextlib.suppress(Exception):
                    conn.close()
                os._exit(code)
        if request["job"] == "command":
            # One line per delegated command: operators (and the tests) see what ran here.
            argv = [str(a) for a in request.get("argv") or []]
            print(f"command {command_name(argv)} → child {pid}", flush=True)
        for fd in fds:
            os.close(fd)
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m qor.cli.runner")
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--stamp", required=True)
    ns = parser.parse_args()
    serve(ns.socket, ns.stamp)


if __name__ == "__main__":
    main()
