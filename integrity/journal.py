"""The checkpoint journal of a fixity audit run, so an interrupted audit resumes where it stopped.

One append-only JSON-lines file per run (``<dir>/<run-id>.jsonl``): a ``run`` header with the
plan (which bags, which mode), then one ``file`` line per object hashed, one ``bag`` line per bag
finished, and an ``end`` line. Each line is flushed as soon as it is written, so a run killed at
any moment (``SIGKILL`` included) loses at most the line it was writing; a torn last line is
ignored on reading. Starting the audit again finds the newest run of the same mode without an
``end`` line and checks only what it had not checked yet.

The journal is a working file, not the record: results go to the register as PREMIS events.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["AuditJournal", "JournalState"]


@dataclass
class JournalState:
    """What a journal says was done: the plan, the files checked per bag, the bags finished."""

    run_id: str
    mode: str
    bags: tuple[tuple[str, str], ...]
    """The plan: ``(bag_id, store_uri)`` in checking order."""
    started_at: datetime
    files: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """bag id → path → the ``file`` record (``size``, ``failures``)."""
    bags_done: dict[str, dict[str, Any]] = field(default_factory=dict)
    """bag id → the ``bag`` record (the bag's result as a dict)."""
    ended: bool = False


def _read(path: Path) -> JournalState | None:
    state: JournalState | None = None
    with path.open("r", encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s: ignoring a torn line (the run was killed while writing it)",
                               path)
                continue
            kind = rec.get("type")
            if kind == "run":
                state = JournalState(
                    run_id=rec["run_id"], mode=rec["mode"],
                    bags=tuple((b, u) for b, u in rec["bags"]),
                    started_at=datetime.fromisoformat(rec["started_at"]),
                )
            elif state is None:
                return None
            elif kind == "file":
                state.files.setdefault(rec["bag_id"], {})[rec["path"]] = rec
            elif kind == "bag":
                state.bags_done[rec["bag_id"]] = rec["result"]
                # Files of a finished bag are not needed any more: its result carries them.
                state.files.pop(rec["bag_id"], None)
            elif kind == "end":
                state.ended = True
    return state


class AuditJournal:
    """Writes (and, on resume, reads back) one run's checkpoint journal. Thread-safe."""

    def __init__(self, path: Path, state: JournalState) -> None:
        self.path = path
        self.state = state
        self._lock = threading.Lock()
        self._fh = path.open("a", encoding="utf-8")

    @classmethod
    def start(
        cls, directory: Path, *, mode: str, bags: Sequence[tuple[str, str]],
        resume: bool = True,
    ) -> AuditJournal:
        """Resume the newest unfinished run of ``mode`` in ``directory`` (if ``resume``), else
        start a new run with the plan ``bags`` (``(bag_id, store_uri)`` pairs)."""
        directory.mkdir(parents=True, exist_ok=True)
        if resume:
            for path in sorted(directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime,
                               reverse=True):
                state = _read(path)
                if state is not None and not state.ended and state.mode == mode:
                    logger.info("resuming fixity audit run %s (%d of %d bag(s) done)",
                                state.run_id, len(state.bags_done), len(state.bags))
                    return cls(path, state)
        now = datetime.now(UTC)
        run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        state = JournalState(run_id=run_id, mode=mode, bags=tuple(bags), started_at=now)
        journal = cls(directory / f"{run_id}.jsonl", state)
        journal._write({"type": "run", "run_id": run_id, "mode": mode,
                        "bags": [list(b) for b in bags], "started_at": now.isoformat()})
        return journal

    @property
    def resumed(self) -> bool:
        """Whether this run had already done some work before this process started."""
        return bool(self.state.bags_done or self.state.files)

    def _write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self._fh.write(line)
            # Flushed to the kernel: survives the process being killed (not a power cut, which
            # only costs re-checking a few files).
            self._fh.flush()

    def file_done(self, bag_id: str, path: str, size: int,
                  failures: Sequence[Mapping[str, Any]]) -> None:
        """Record that ``path`` of ``bag_id`` was hashed, with what was wrong with it."""
        rec = {"type": "file", "bag_id": bag_id, "path": path, "size": size,
               "failures": list(failures)}
        self._write(rec)
        self.state.files.setdefault(bag_id, {})[path] = rec

    def bag_done(self, bag_id: str, result: Mapping[str, Any]) -> None:
        """Record that ``bag_id`` is finished, with its result (its events are in the register)."""
        self._write({"type": "bag", "bag_id": bag_id, "result": dict(result)})
        self.state.bags_done[bag_id] = dict(result)
        self.state.files.pop(bag_id, None)

    def end(self, status: str) -> None:
        """Close the run: a later audit starts a new one."""
        self._write({"type": "end", "status": status,
                     "at": datetime.now(UTC).isoformat()})
        self.state.ended = True
        self.close()

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def checked_files(self, bag_id: str) -> Mapping[str, Mapping[str, Any]]:
        """The files of ``bag_id`` already hashed in this run (path → record)."""
        return self.state.files.get(bag_id, {})

    def pending(self) -> Iterator[tuple[str, str]]:
        """The planned bags not finished yet, in plan order."""
        for bag_id, uri in self.state.bags:
            if bag_id not in self.state.bags_done:
                yield bag_id, uri


def journal_files(directory: Path) -> list[Path]:
    """Every journal in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.jsonl"), key=os.path.getmtime)
