"""Runs the staff console launches: digitisation (цифрландыру / оцифровка) and repairs of
damaged bags.

The console never digitises or repairs by itself: it runs staff's own command — ``qor digitise
<folder> --inventory <number> --json``, or ``qor fixity audit --bag <id> --json`` (which
repairs from the replica what a good copy can cure) — as a detached process of the server (the
same code, settings and orchestration service as at a terminal), and reads back what that
command reports: the JSON it prints (for digitise, per page: turned, straightened, confidence,
flagged below the gate) and the flow run's progress on the orchestration server
(:func:`qor.orchestration.recent_runs`, as ``qor jobs`` shows it).

Only a folder under the configured scans root (``elibrary_scans_root``) may be launched on: a
browser must not make the server read whatever it can read (R10: staff reach only what their
role needs). The folder is resolved (``..``, symbolic links) and refused unless it and every
file in it stay under the root.

Each launch leaves three files in ``runs_dir``: ``<id>.json`` (who launched what, the pid),
``<id>.out.json`` (the command's JSON summary) and ``<id>.log`` (its messages), plus
``<id>.rc`` (its exit code) once it ends. They outlive a restart of the web server: a run still
going on is found by its pid, a finished one by its output.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from elibrary.errors import InvalidParameter, ScanFolderRefused

#: A launch id: 16 lowercase hex digits (what :func:`launch_digitise` makes).
LAUNCH_ID = re.compile(r"[0-9a-f]{16}")
#: Lines of the command's messages kept for a run that failed.
LOG_TAIL_LINES = 12

LaunchState = Literal["running", "completed", "failed", "stopped"]
LaunchKind = Literal["digitise", "repair"]


@dataclass(frozen=True)
class CommandLauncher:
    """How the console launches ``qor`` commands: where scans may come from (None: digitise
    cannot be launched), where launches are recorded, the command, and settings added to the
    server's own environment for it."""

    scans_root: Path | None
    runs_dir: Path
    command: tuple[str, ...] = (sys.executable, "-m", "qor")
    environment: Mapping[str, str] = field(default_factory=dict)
    """Added to the web server's environment for the command (empty: the server's settings
    are the command's, as for an operator at the server's terminal)."""


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def scan_folder(root: Path, asked: str) -> Path:
    """The real folder ``asked`` names under the scans ``root`` (relative to it, or absolute).

    Refused with :class:`ScanFolderRefused` when it is missing, not a folder, outside the root
    (``..``, an absolute path elsewhere, a symbolic link out), or when any file or folder in it
    is a symbolic link out of the root: the command would read it (R10).
    """
    asked = asked.strip()
    if not asked or "\x00" in asked:
        raise ScanFolderRefused(asked, "give a folder under the scans root", kind="empty")
    try:
        real_root = root.resolve(strict=True)
    except OSError as e:
        raise ScanFolderRefused(asked, f"the scans root {root} is not readable ({e})",
                                kind="root") from e
    named = Path(asked) if Path(asked).is_absolute() else root / asked
    lexical = Path(os.path.normpath(named))
    real = named.resolve(strict=False)
    if not _inside(real, real_root):
        if _inside(lexical, root) or _inside(lexical, real_root):
            raise ScanFolderRefused(
                asked, f"it is a symbolic link out of the scans root {root}", kind="symlink")
        raise ScanFolderRefused(asked, f"it is outside the scans root {root}", kind="outside")
    if not real.is_dir():
        raise ScanFolderRefused(asked, f"no such folder under the scans root {root}",
                                kind="missing")
    for here, dirs, files in os.walk(real):
        for name in [*dirs, *files]:
            entry = Path(here) / name
            if entry.is_symlink() and not _inside(entry.resolve(strict=False), real_root):
                inner = str(entry.relative_to(real))
                raise ScanFolderRefused(
                    asked, f"{inner} is a symbolic link out of the scans root {root}",
                    kind="entry_symlink", entry=inner)
    return real


def scan_folders(root: Path, *, limit: int = 200) -> list[str]:
    """The folders directly under the scans root (a hint for the launch form), sorted."""
    try:
        names = sorted(e.name for e in os.scandir(root)
                       if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))
    except OSError:
        return []
    return names[:limit]


@dataclass(frozen=True)
class Launch:
    """One ``qor digitise`` run launched from the console, as recorded when it started."""

    id: str
    inventory_number: str
    folder: str
    """The folder as given, relative to the scans root when it is under it (digitise)."""
    path: str
    """The real folder the command was given (digitise)."""
    actor: str
    started_at: str
    pid: int
    host: str
    kind: LaunchKind = "digitise"
    bag_id: str = ""
    """The bag a repair checks and repairs."""

    @property
    def run_label(self) -> str:
        """The end of its flow run's name (``qor.cli._common.run_label``)."""
        return f"pid {self.pid}@{self.host}"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "inventory_number": self.inventory_number,
                "folder": self.folder, "path": self.path, "actor": self.actor,
                "started_at": self.started_at, "pid": self.pid, "host": self.host,
                "kind": self.kind, "bag_id": self.bag_id}


@dataclass(frozen=True)
class LaunchStatus:
    """Where a launched run stands: its state, its JSON summary once completed, and the tail
    of its messages once it failed."""

    launch: Launch
    state: LaunchState
    exit_code: int | None
    summary: dict[str, Any] | None
    log_tail: str

    @property
    def pages(self) -> list[dict[str, Any]]:
        """The per-page reports of ``qor digitise --json`` (``page_reports``)."""
        if self.summary is None:
            return []
        return [p for p in self.summary.get("page_reports") or () if isinstance(p, dict)]

    @property
    def flagged(self) -> list[dict[str, Any]]:
        """Pages whose OCR confidence is below the gate (the copy is marked for review)."""
        return [p for p in self.pages if p.get("below_gate")]


def _record_path(launcher: CommandLauncher, launch_id: str) -> Path:
    if not LAUNCH_ID.fullmatch(launch_id):
        raise InvalidParameter("run", "not a launch id")
    return launcher.runs_dir / f"{launch_id}.json"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)


def _reap(proc: subprocess.Popen[bytes], rc_path: Path) -> None:
    code = proc.wait()
    _write_atomic(rc_path, f"{code}\n")


def new_launch_id() -> str:
    """A fresh launch id (16 hex digits)."""
    return secrets.token_hex(8)


def launch_digitise(launcher: CommandLauncher, *, folder: Path, shown_as: str,
                    inventory_number: str, actor: str, launch_id: str | None = None) -> Launch:
    """Start ``qor digitise <folder> --inventory <number> --json`` detached (its own session:
    it goes on if the web request or the server ends) and record the launch.

    ``folder`` must come from :func:`scan_folder`. ``launch_id`` (16 hex digits) is made here
    unless the caller has already named it (in its audit-log entry, say).
    """
    return _start(launcher, ["digitise", str(folder), "--inventory", inventory_number, "--json"],
                  launch_id=launch_id or new_launch_id(), kind="digitise",
                  inventory_number=inventory_number, folder=shown_as, path=str(folder),
                  bag_id="", actor=actor)


def launch_repair(launcher: CommandLauncher, *, bag_id: str, inventory_number: str, actor: str,
                  launch_id: str | None = None) -> Launch:
    """Start ``qor fixity audit --bag <id> --json`` detached: a deep check of the bag that
    repairs from the replica whatever a good copy there can cure, and records the outcome in
    the register (:func:`integrity.audit.audit_bag`, :func:`integrity.records.record_bag_audit`).
    """
    return _start(launcher, ["fixity", "audit", "--bag", bag_id, "--json"],
                  launch_id=launch_id or new_launch_id(), kind="repair",
                  inventory_number=inventory_number, folder="", path="", bag_id=bag_id,
                  actor=actor)


def _start(launcher: CommandLauncher, command: list[str], *, launch_id: str, kind: LaunchKind,
           inventory_number: str, folder: str, path: str, bag_id: str, actor: str) -> Launch:
    record = _record_path(launcher, launch_id)
    launcher.runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    args = [*launcher.command, *command]
    env = {**os.environ, **launcher.environment}
    with (launcher.runs_dir / f"{launch_id}.out.json").open("wb") as out, \
            (launcher.runs_dir / f"{launch_id}.log").open("wb") as log:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=log,
                                env=env, start_new_session=True)
    launch = Launch(id=launch_id, inventory_number=inventory_number, folder=folder, path=path,
                    actor=actor, started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    pid=proc.pid, host=socket.gethostname(), kind=kind, bag_id=bag_id)
    _write_atomic(record, json.dumps(launch.as_dict(), ensure_ascii=False))
    # Reaped here so it leaves no zombie and its exit code is kept; a server restart loses
    # only the exit code (the summary tells a completed run then).
    threading.Thread(target=_reap, args=(proc, launcher.runs_dir / f"{launch_id}.rc"),
                     name=f"digitise-{launch_id}", daemon=True).start()
    return launch


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not running any more
        stat = Path(f"/proc/{pid}/stat").read_text("ascii")
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _exit_code(base: Path) -> int | None:
    try:
        return int(Path(f"{base}.rc").read_text("ascii").strip())
    except (OSError, ValueError):
        return None


def _load(record: Path) -> Launch:
    data = json.loads(record.read_text("utf-8"))
    return Launch(**{k: data[k] for k in ("id", "inventory_number", "folder", "path", "actor",
                                          "started_at", "pid", "host")},
                  kind="repair" if data.get("kind") == "repair" else "digitise",
                  bag_id=str(data.get("bag_id") or ""))


def launch_status(launcher: CommandLauncher, launch_id: str) -> LaunchStatus:
    """Where launch ``launch_id`` stands; :class:`InvalidParameter` for an unknown id."""
    record = _record_path(launcher, launch_id)
    try:
        launch = _load(record)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InvalidParameter("run", f"no digitisation run {launch_id} was launched here") \
            from e
    base = launcher.runs_dir / launch_id
    code = _exit_code(base)
    if code is None and not _alive(launch.pid) and launch.host == socket.gethostname():
        time.sleep(0.5)  # ended a moment ago: the reaper writes its exit code
        code = _exit_code(base)
    summary: dict[str, Any] | None = None
    try:
        parsed = json.loads(Path(f"{base}.out.json").read_text("utf-8"))
        summary = parsed if isinstance(parsed, dict) else None
    except (OSError, ValueError):
        summary = None
    running = code is None and launch.host == socket.gethostname() and _alive(launch.pid)
    state: LaunchState
    if running:
        state = "running"
    elif summary is not None and code in (0, None):
        state = "completed"
    elif code is not None:
        state = "failed"
    else:
        state = "stopped"
    tail = ""
    if state in ("failed", "stopped"):
        try:
            lines = Path(f"{base}.log").read_text("utf-8", "replace").splitlines()
        except OSError:
            lines = []
        tail = "\n".join(line for line in lines if line.strip())[-4000:]
        tail = "\n".join(tail.splitlines()[-LOG_TAIL_LINES:])
    return LaunchStatus(launch=launch, state=state, exit_code=code, summary=summary,
                        log_tail=tail)


def recent_launches(launcher: CommandLauncher, *, limit: int = 20,
                    kind: LaunchKind = "digitise") -> list[LaunchStatus]:
    """The latest launches of ``kind`` from the console, newest first."""
    try:
        records = [p for p in launcher.runs_dir.iterdir()
                   if p.suffix == ".json" and LAUNCH_ID.fullmatch(p.stem)]
    except OSError:
        return []
    records.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    out: list[LaunchStatus] = []
    for record in records:
        if len(out) >= limit:
            break
        try:
            status = launch_status(launcher, record.stem)
        except InvalidParameter:
            continue
        if status.launch.kind == kind:
            out.append(status)
    return out
