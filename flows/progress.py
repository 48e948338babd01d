"""Progress of long stages, for whoever is watching in this process.

Domain steps and flow tasks call :func:`report`; the CLI registers a Rich progress bar with
:func:`listening`. Nothing is registered on a remote worker, so there a report costs a lookup and
the Prefect progress artifact is what people watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ProgressListener = Callable[[str, int, int], None]
"""Called as ``listener(stage, done, total)``; must be quick and thread-safe."""

_lock = threading.Lock()
_listeners: list[ProgressListener] = []


@contextmanager
def listening(listener: ProgressListener) -> Iterator[None]:
    """Send every :func:`report` made inside the block to ``listener``."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def report(stage: str, done: int, total: int) -> None:
    """Tell listeners that ``done`` of ``total`` units of ``stage`` are finished."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(stage, done, total)
