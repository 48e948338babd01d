"""The fault-injection seam of the digitise flow: where tests stop a run to kill it.

The flow calls :func:`reached` at its stage boundaries (and inside packaging and the upload);
it does nothing unless ``QOR_FAULT_STAGE`` names that point. Then the process:

* with ``QOR_FAULT_MARK`` set, writes its pid to that file and **holds** there until the file
  is removed (then goes on) — the test meanwhile kills it (``kill -9`` of the command or of the
  resident runner's child), or changes the world (fills the disk, stops the store) and lets
  it go on;
* without it, kills itself with SIGKILL on the spot.

Only this module reads those variables; ``tests/test_digitise_faults.py`` is their user. They
are test hooks, not settings: an operator never sets them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Literal

STAGE_ENV = "QOR_FAULT_STAGE"
MARK_ENV = "QOR_FAULT_MARK"

FaultPoint = Literal["after-ocr", "after-pdfa", "packaging", "uploading", "before-register"]
POINTS: tuple[FaultPoint, ...] = ("after-ocr", "after-pdfa", "packaging", "uploading",
                                  "before-register")
"""In run order: all pages OCR'd; PDF/A and derivatives made; one payload file of the bag
encrypted, the rest not; the bag's first object stored, the rest not; the bag stored and
verified, the register not yet written."""

#: How long a held run waits for its test before going on by itself.
HOLD_S = 900.0


_fired: set[str] = set()


def reached(point: FaultPoint) -> None:
    """The run is at ``point``: stop here if a test asked for it (see the module docstring).

    Once per process: a retried task (the upload after the store came back) passes again.
    """
    if os.environ.get(STAGE_ENV) != point or point in _fired:
        return
    _fired.add(point)
    mark = os.environ.get(MARK_ENV)
    if not mark:
        os.kill(os.getpid(), signal.SIGKILL)
        return
    path = Path(mark)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"pid": os.getpid(), "point": point}), encoding="utf-8")
    partial.replace(path)
    deadline = time.monotonic() + HOLD_S
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
