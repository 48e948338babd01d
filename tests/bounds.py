"""Memory bounds for tests of hostile input (issue 15): the peak resident memory a block of
code adds to this process, C allocations (lxml, OpenSSL) included.

The peak is reset through ``/proc/self/clear_refs`` (Linux ≥ 4.0) at the start of the block and
read from ``VmHWM`` at its end, so the growth is the block's own: what it allocated above the
process's resident size when it started.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MiB = 1 << 20
_STATUS = Path("/proc/self/status")


def _status_kib(key: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in {_STATUS}")


@contextmanager
def peak_growth_below(limit_bytes: int, what: str = "the block") -> Iterator[None]:
    """Fail (AssertionError) if ``what`` raised this process's peak RSS more than
    ``limit_bytes`` above its RSS when the block started."""
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from the current RSS
    before = _status_kib("VmRSS:")
    yield
    growth = (_status_kib("VmHWM:") - before) * 1024
    assert growth < limit_bytes, (
        f"{what} grew the peak RSS by {growth / MiB:.1f} MiB (bound {limit_bytes / MiB:.0f} MiB)")
