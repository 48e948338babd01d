"""A hostile bag cannot make validation hang or eat memory (issue 15, item 7): a manifest line of
hundreds of megabytes, a bag-info.txt of hundreds of megabytes and an oversized bag declaration
are each refused, named, in bounded time and memory (:data:`MAX_TAG_LINE`, :data:`MAX_BAG_INFO`).
Measured in a child process, so its peak memory is the validator's own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integrity.validate import MAX_BAG_INFO, MAX_TAG_LINE

HUGE = 200 * 1024 * 1024
PROBE = """
import json, resource, sys, time
from integrity.validate import problems
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
found = problems(sys.argv[1])
took = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": took, "growth_kib": after - before,
                  "problems": [[type(p).__name__, getattr(p, "file", getattr(p, "path", "")),
                                getattr(p, "line_no", None), getattr(p, "limit", None)]
                               for p in found]}))
"""


def minimal_bag(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.txt").write_bytes(b"alpha")
    (root / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    (root / "manifest-sha256.txt").write_text(
        "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8  data/a.txt\n")
    return root


def validate_in_child(bag: Path) -> dict[str, object]:
    run = subprocess.run([sys.executable, "-c", PROBE, str(bag)], capture_output=True,
                         text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(run.stdout)
    return result


def write_filler(path: Path, *, size: int, line: bytes | None) -> None:
    """``size`` bytes: one endless line (``line`` None) or ``line`` repeated."""
    block = (b"a" * (1 << 20)) if line is None else line * ((1 << 20) // len(line))
    with path.open("ab") as f:
        written = 0
        while written < size:
            f.write(block)
            written += len(block)


@pytest.fixture
def hostile_bag(tmp_path: Path) -> Path:
    return minimal_bag(tmp_path / "bag")


def test_a_manifest_line_of_200_megabytes_is_refused_unread(hostile_bag: Path) -> None:
    manifest = hostile_bag / "manifest-sha256.txt"
    write_filler(manifest, size=HUGE, line=None)
    started = time.monotonic()
    result = validate_in_child(hostile_bag)
    assert time.monotonic() - started < 60
    assert ["OversizedTagFile", "manifest-sha256.txt", 2, MAX_TAG_LINE] in result["problems"]
    assert float(result["seconds"]) < 2.0  # type: ignore[arg-type]
    assert int(result["growth_kib"]) < 64 * 1024  # type: ignore[call-overload]


def test_a_bag_info_of_200_megabytes_is_refused_unread(hostile_bag: Path) -> None:
    info = hostile_bag / "bag-info.txt"
    info.write_text("Source-Organization: State Library\n")
    write_filler(info, size=HUGE, line=b"Internal-Sender-Description: " + b"x" * 90 + b"\n")
    result = validate_in_child(hostile_bag)
    assert ["OversizedTagFile", "bag-info.txt", 0, MAX_BAG_INFO] in result["problems"]
    assert float(result["seconds"]) < 2.0  # type: ignore[arg-type]
    assert int(result["growth_kib"]) < 64 * 1024  # type: ignore[call-overload]


def test_an_oversized_bag_declaration_is_refused(hostile_bag: Path) -> None:
    write_filler(hostile_bag / "bagit.txt", size=8 * 1024 * 1024, line=b"X" * 100 + b"\n")
    result = validate_in_child(hostile_bag)
    assert ["OversizedTagFile", "bagit.txt", 0, 2 * MAX_TAG_LINE] in result["problems"]


def test_long_but_honest_lines_still_validate(hostile_bag: Path) -> None:
    """A path of 4,000 bytes (the most a file system holds) is far from the limit."""
    from integrity.validate import is_valid

    assert is_valid(hostile_bag)
    info = hostile_bag / "bag-info.txt"
    info.write_text("External-Description: " + "ә" * 2000 + "\n", encoding="utf-8")
    assert is_valid(hostile_bag)
