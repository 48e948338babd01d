"""Hand a register command to the resident runner: start-up in milliseconds, not a second.

A command such as ``qor copies show`` or ``qor loans out`` does a few milliseconds of register
work, but a fresh Python process needs about 0.6 s (more on a busy machine) to import the CLI,
SQLAlchemy and the register's models first: at a circulation desk that is the whole wait. When
the data directory's resident runner (:mod:`qor.cli.runner`, started by the first flow-running
command or ``qor server start``) is up and runs this very code, the command is run there
instead: this module, which imports nothing but the standard library, sends the runner the
command line, environment and working directory, and passes it the terminal itself (file
descriptors 0, 1 and 2 over the UNIX socket), so the runner's forked child reads stdin and
prints exactly as the command would. The command waits for the child's exit status and exits
with it; Ctrl-C and other signals are passed on; when the command is killed its socket closes
and the child stops.

Nothing here can make a command fail that would otherwise work: any doubt (no runner, other
code, another data directory, a refusal, an error before the child took the command) and the
command runs in its own process as before. Only commands listed in :data:`DELEGATED` go, and
never ones that prompt for secrets (the child has no controlling terminal), start servers, or
manage the service itself. ``QOR_NO_RUNNER=1`` turns delegation off.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

#: The packages whose code a runner holds in memory: their files make up its stamp.
PACKAGES = ("qor", "flows", "storage", "integrity", "catalog_sync", "elibrary")
SOCKET_FILE = "runner.sock"
STATE_FILE = "runner.json"

#: Commands run by the runner when it is up: ``"group"`` for every subcommand of a group,
#: ``"group sub"`` for one. None of them prompts for a secret or starts a server.
DELEGATED = frozenset({
    "items", "readers", "loans", "gate", "deposit", "stocktake", "books", "marc", "debts report",
    "copies show", "register verify-log", "select", "settings", "compliance", "digitise",
})
#: Delegated commands that run a flow: the runner's child runs it against the runner's own
#: Prefect settings (loaded once, before the fork), so they go only when the command sets no
#: Prefect setting of its own and names no other orchestration server.
FLOW_COMMANDS = frozenset({"digitise"})
#: Set in a runner's child: a command there never hands itself over again.
IN_RUNNER = "QOR_IN_RUNNER"
#: Set in a runner's child: the pid of the command it runs for (flow run names carry it).
COMMAND_PID = "QOR_COMMAND_PID"
_GLOBAL_FLAGS = frozenset({"-v", "-vv", "-vvv", "--verbose", "--debug"})


def code_stamp() -> str:
    """A fingerprint of the code a process would load: interpreter, and every module file's
    size and modification time (a few milliseconds; changes with any upgrade or edit)."""
    digest = hashlib.sha256(sys.executable.encode())
    root = Path(__file__).resolve().parents[2]
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            st = path.stat()
            digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def command_name(argv: list[str]) -> str | None:
    """The delegated command ``argv`` names (``"loans"``, ``"copies show"``…), or None."""
    at = 0
    while at < len(argv) and argv[at] in _GLOBAL_FLAGS:
        at += 1
    words = argv[at:at + 2]
    if not words or words[0].startswith("-"):
        return None
    group = words[0]
    sub = words[1] if len(words) > 1 and not words[1].startswith("-") else ""
    for name in (f"{group} {sub}", group):
        if name in DELEGATED:
            return name
    return None


def _xdg(variable: str, fallback: str) -> Path:
    raw = os.environ.get(variable, "")
    base = Path(raw) if raw and Path(raw).is_absolute() else Path.home() / fallback
    return base / "qor"


def guess_data_dir() -> Path | None:
    """The data directory :mod:`qor.settings` would choose (``QOR_DATA_DIR``, else the TOML
    file's ``data_dir``, else ``$XDG_DATA_HOME/qor``); None when unsure. The runner checks the
    guess against the real settings before it takes a command."""
    raw = os.environ.get("QOR_DATA_DIR")
    if raw is None:
        named = os.environ.get("QOR_CONFIG")
        files = [Path(named)] if named else [
            p for p in (Path("qor.toml"), _xdg("XDG_CONFIG_HOME", ".config") / "qor.toml")
            if p.is_file()]
        if files:
            import tomllib

            try:
                raw = tomllib.loads(files[0].read_text("utf-8")).get("data_dir")
            except (OSError, ValueError):
                return None
            if raw is not None and not isinstance(raw, str):
                return None
    if raw is None:
        return _xdg("XDG_DATA_HOME", ".local/share")
    return Path(raw).expanduser().absolute()


def _runner_socket(data_dir: Path) -> Path | None:
    home = data_dir / "prefect"
    try:
        state = json.loads((home / STATE_FILE).read_text("utf-8"))
        pid = int(state["pid"])
        stamp = str(state["stamp"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return None
    if stamp != code_stamp():
        return None  # other code: this process runs its own (a flow command replaces it)
    return home / SOCKET_FILE


def _read_event(sock: socket.socket, buffer: bytearray) -> dict[str, object] | None:
    while b"\n" not in buffer:
        try:
            chunk = sock.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            return None
        buffer.extend(chunk)
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    event: dict[str, object] = json.loads(line)
    return event


def try_delegate(argv: list[str]) -> int | None:
    """Run ``qor argv`` in the resident runner: its exit status, or None to run it here."""
    name = command_name(argv)
    if os.environ.get("QOR_NO_RUNNER", "") not in ("", "0") or name is None \
            or os.environ.get(IN_RUNNER):
        return None
    if name in FLOW_COMMANDS and any(
            key.startswith("PREFECT_") or key == "QOR_PREFECT_API_URL" for key in os.environ):
        return None
    data_dir = guess_data_dir()
    path = _runner_socket(data_dir) if data_dir is not None else None
    if path is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(5.0)
        sock.connect(str(path))
        request = json.dumps({"job": "command", "argv": argv,
                              "env": {**os.environ, COMMAND_PID: str(os.getpid())},
                              "cwd": str(Path.cwd()), "data_dir": str(data_dir)}).encode() + b"\n"
        # The terminal (or pipes, or files) this command was given: the child uses them.
        fds = array.array("i", [0, 1, 2])
        sock.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        buffer = bytearray()
        accepted = _read_event(sock, buffer)
    except (OSError, ValueError):
        sock.close()
        return None
    if accepted is None or accepted.get("event") != "accepted":
        sock.close()
        return None  # refused (another data directory, its settings unreadable…): run here
    child = int(str(accepted.get("pid")))
    sock.settimeout(None)

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)
    try:
        while True:
            event = _read_event(sock, buffer)
            if event is None:
                sys.stderr.write("error: the resident runner stopped before the command "
                                 "finished; run it again\n")
                return 3
            if event.get("event") == "exit":
                return int(str(event.get("code", 1)))
    except (OSError, ValueError):
        sys.stderr.write("error: lost the resident runner while the command ran; run it "
                         "again\n")
        return 3
    finally:
        sock.close()
