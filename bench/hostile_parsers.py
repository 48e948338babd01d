"""Hostile input against Qor's own parsers: peak memory and time to refusal, against the size of
the file (issue 15: "a 1 GB manifest line, a 1 GB tag file and a 1 GB MARC record against the
same file's size: goal peak RSS < 64 MiB growth and refusal in < 2 s").

Each case writes one hostile file of ``--size-mib`` (default 1024) — streamed in 1 MiB blocks,
so this script never holds it — then runs Qor's parser on it in a child process of its own:

* ``manifest-line``: ``manifest-sha256.txt`` whose second line is the whole file;
* ``manifest-lines``: ``manifest-sha256.txt`` of honest-looking short lines (millions of them,
  each naming a payload file the bag does not hold);
* ``manifest-long-lines``: ``manifest-sha256.txt`` of lines just under the line limit (60 KiB
  paths);
* ``bag-info``: ``bag-info.txt`` of honest-looking ``Label: value`` lines;
* ``tagmanifest-lines``: ``tagmanifest-sha256.txt`` of short lines naming tag files;
* ``marc-iso2709``: an ISO 2709 "record" whose leader claims 99 999 bytes and whose fields run
  on for the whole file (no record terminator where the leader says);
* ``marc-iso2709-short``: the same with the length ``00004`` (pymarc's own reader reads the
  whole rest of the file for it: ``read(4 - 5)``; for ``-0001`` it raised ValueError);
* ``marcxml``: one MARCXML ``<record>`` of honest-looking 500 notes filling the file.

The bag cases call ``integrity.validate.problems`` (what ``qor bag validate`` runs); the MARC
cases ``catalog_sync.marc.import_marc`` on an SQLite register (what ``qor marc import`` runs).
The child measures its own peak RSS growth over its baseline after imports and setup (VmHWM
after resetting it through ``/proc/self/clear_refs``; ``getrusage`` where that is not
available) and the time the call took; the anchor is the file's size, and the ratio printed is
growth / size. The child runs under an address-space limit (``--limit-gib``) and a timeout, so
a parser that misses the goal fails its row instead of the machine.

``--qor-root`` runs the children against another checkout of Qor (e.g. the main branch, to
compare before and after a fix; keep ``--size-mib`` small there).

    .venv/bin/python bench/hostile_parsers.py [--size-mib 1024] [--cases a,b] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

MIB = 1 << 20
GOAL_GROWTH_MIB = 64
GOAL_SECONDS = 2.0

PROBE = r"""
import json, os, resource, sys, time

def hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None

def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None

kind, target, work = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "bag":
    from integrity.validate import problems
    def call():
        found = problems(target, workers=1)
        return [type(p).__name__ + ": " + p.message[:160] for p in found]
else:
    from pathlib import Path
    from catalog_sync.db import make_engine, session_factory, upgrade
    from catalog_sync.marc import import_marc
    engine = make_engine(f"sqlite:///{work}/register.db")
    upgrade(engine)
    session = session_factory(engine)()
    session.connection()
    def call():
        report = import_marc(session, Path(target), actor="bench")
        session.rollback()
        return [f"record {p.position}: {p.reason[:160]}" for p in report.problems]

try:  # reset the peak to the current RSS (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    exact = True
except OSError:
    exact = False
before_rss = rss_kib()
before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
found = call()
seconds = time.perf_counter() - t0
if exact:
    growth = hwm_kib() - before_rss
else:
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_max
print(json.dumps({"seconds": seconds, "growth_kib": growth, "exact": exact,
                  "problems": len(found), "first": found[:3], "last": found[-1:]}))
"""


def fill(path: Path, size: int, head: bytes, lines: Iterator[bytes] | None,
         tail: bytes = b"") -> None:
    """``head``, then ``lines`` (or one endless run of ``a``) until ``size`` bytes, then
    ``tail``; written in blocks of about 1 MiB. Lines containing ``@@@@@@`` are formatted
    once, into a 1 MiB template, and the marker is replaced by the block's number in each
    block: every line of the file is distinct, and writing 1 GiB takes seconds, not minutes."""
    with path.open("wb") as f:
        f.write(head)
        written = len(head)
        template = b"a" * MIB
        if lines is not None:
            parts: list[bytes] = []
            got = 0
            while got < MIB:
                line = next(lines)
                parts.append(line)
                got += len(line)
            template = b"".join(parts)
        k = 0
        while written < size - len(tail):
            out = template.replace(MARK, b"%06d" % k)[: size - len(tail) - written]
            if lines is not None and len(out) < len(template):
                f.write(out[: out.rfind(b"\n") + 1])  # whole lines: the file stays well-formed
                break
            f.write(out)
            written += len(out)
            k += 1
        f.write(tail)


MARK = b"@@@@@@"


def minimal_bag(root: Path) -> Path:
    bag = root / "bag"
    (bag / "data").mkdir(parents=True)
    (bag / "data" / "a.txt").write_bytes(b"alpha")
    (bag / "bagit.txt").write_bytes(b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    digest = hashlib.sha256(b"alpha").hexdigest()
    (bag / "manifest-sha256.txt").write_bytes(f"{digest}  data/a.txt\n".encode())
    return bag


def manifest_lines(prefix: str) -> Iterator[bytes]:
    n = 0
    while True:
        n += 1
        yield f"{n * 0x9E3779B97F4A7C15:064x}  {prefix}{n:08d}-@@@@@@.tif\n".encode()


def make_manifest_line(root: Path, size: int) -> tuple[str, Path, Path]:
    bag = minimal_bag(root)
    man = bag / "manifest-sha256.txt"
    fill(man, size, man.read_bytes(), None)
    return "bag", bag, man


def make_manifest_lines(root: Path, size: int) -> tuple[str, Path, Path]:
    bag = minimal_bag(root)
    man = bag / "manifest-sha256.txt"
    fill(man, size, man.read_bytes(), manifest_lines("data/page-"))
    return "bag", bag, man


def make_manifest_long_lines(root: Path, size: int) -> tuple[str, Path, Path]:
    bag = minimal_bag(root)
    man = bag / "manifest-sha256.txt"

    def lines() -> Iterator[bytes]:
        n = 0
        while True:
            n += 1
            yield f"{n:064x}  data/@@@@@@-{n:06d}{'x' * 60_000}.tif\n".encode()

    fill(man, size, man.read_bytes(), lines())
    return "bag", bag, man


def make_bag_info(root: Path, size: int) -> tuple[str, Path, Path]:
    bag = minimal_bag(root)
    info = bag / "bag-info.txt"

    def lines() -> Iterator[bytes]:
        n = 0
        while True:
            n += 1
            yield f"Internal-Sender-Description: batch @@@@@@-{n}, State Library\n".encode()

    fill(info, size, b"Source-Organization: State Library\n", lines())
    return "bag", bag, info


def make_tagmanifest_lines(root: Path, size: int) -> tuple[str, Path, Path]:
    bag = minimal_bag(root)
    tag = bag / "tagmanifest-sha256.txt"
    fill(tag, size, b"", manifest_lines("metadata/extra-"))
    return "bag", bag, tag


def _iso_field_lines() -> Iterator[bytes]:
    while True:
        yield b"500  " + b"\x1fa" + "Ескерту: түпнұсқа қолжазба. ".encode() * 4 + b"\x1e"


def make_marc_iso(root: Path, size: int) -> tuple[str, Path, Path]:
    path = root / "record.mrc"
    fill(path, size, b"99999nam a2200025 a 4500", _iso_field_lines())
    return "marc", path, path


def make_marc_iso_short(root: Path, size: int) -> tuple[str, Path, Path]:
    path = root / "record.mrc"
    fill(path, size, b"00004nam a2200025 a 4500", _iso_field_lines())
    return "marc", path, path


def make_marcxml(root: Path, size: int) -> tuple[str, Path, Path]:
    path = root / "record.xml"
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<collection xmlns="http://www.loc.gov/MARC21/slim"><record>'
            '<leader>00000nam a2200000 a 4500</leader>'
            '<controlfield tag="001">HOSTILE-1</controlfield>'
            '<datafield tag="245" ind1="0" ind2="0"><subfield code="a">Абай жолы</subfield>'
            '</datafield>').encode()

    def lines() -> Iterator[bytes]:
        note = ('<datafield tag="500" ind1=" " ind2=" "><subfield code="a">Ескерту: түпнұсқа '
                'қолжазба.</subfield></datafield>\n').encode()
        while True:
            yield note

    fill(path, size, head, lines(), b"</record></collection>\n")
    return "marc", path, path


CASES: dict[str, Callable[[Path, int], tuple[str, Path, Path]]] = {
    "manifest-line": make_manifest_line,
    "manifest-lines": make_manifest_lines,
    "manifest-long-lines": make_manifest_long_lines,
    "bag-info": make_bag_info,
    "tagmanifest-lines": make_tagmanifest_lines,
    "marc-iso2709": make_marc_iso,
    "marc-iso2709-short": make_marc_iso_short,
    "marcxml": make_marcxml,
}


def run_child(kind: str, target: Path, work: Path, *, qor_root: Path, limit: int,
              timeout: float) -> dict[str, object]:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, PYTHONPATH=str(qor_root))
    started = time.perf_counter()
    try:
        run = subprocess.run([sys.executable, "-c", PROBE, kind, str(target), str(work)],
                             cwd=qor_root, env=env, capture_output=True, text=True,
                             timeout=timeout, preexec_fn=limited, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {timeout:.0f} s (killed)",
                "wall": time.perf_counter() - started}
    wall = time.perf_counter() - started
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"child exited {run.returncode}: {tail[:200]}", "wall": wall}
    result: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024, help="size of each hostile file")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated: {', '.join(CASES)}")
    ap.add_argument("--dir", type=Path, default=None, help="where the files are written")
    ap.add_argument("--qor-root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="the Qor checkout the children import (default: this one)")
    ap.add_argument("--limit-gib", type=float, default=4.0,
                    help="address-space limit of each child (protects the machine)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per child")
    args = ap.parse_args()
    names = [c for c in args.cases.split(",") if c]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    size = args.size_mib * MIB
    limit = int(args.limit_gib * 1024**3)
    qor_root = args.qor_root.resolve()
    print(f"hostile parsers: {args.size_mib} MiB files, Qor from {qor_root}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; goal: growth < "
          f"{GOAL_GROWTH_MIB} MiB, refusal < {GOAL_SECONDS:.0f} s", flush=True)
    rows: list[dict[str, object]] = []
    for name in names:
        work = Path(tempfile.mkdtemp(prefix=f"qor-hostile-{name}-", dir=args.dir))
        try:
            t0 = time.perf_counter()
            kind, target, hostile = CASES[name](work, size)
            written = time.perf_counter() - t0
            file_size = hostile.stat().st_size
            result = run_child(kind, target, work, qor_root=qor_root, limit=limit,
                               timeout=args.timeout)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        row: dict[str, object] = {"case": name, "file_bytes": file_size,
                                  "write_seconds": round(written, 2), **result}
        if "growth_kib" in result:
            growth = int(result["growth_kib"]) * 1024  # type: ignore[call-overload]
            row["growth_bytes"] = growth
            row["growth_per_file_byte"] = growth / file_size
            row["goal_met"] = (growth < GOAL_GROWTH_MIB * MIB
                               and float(result["seconds"]) < GOAL_SECONDS)  # type: ignore[arg-type]
        else:
            row["goal_met"] = False
        rows.append(row)
        print(f"  {name}: {json.dumps(row, ensure_ascii=False)}", flush=True)

    print()
    head = (f"{'case':<22} {'file MiB':>9} {'RSS growth MiB':>15} {'growth/size':>12} "
            f"{'refused in s':>13} {'problems':>9}  goal  first problem")
    print(head)
    print("-" * len(head))
    for row in rows:
        if "error" in row:
            print(f"{row['case']:<22} {int(row['file_bytes']) / MIB:>9.0f} "  # type: ignore[call-overload]
                  f"{'-':>15} {'-':>12} {'-':>13} {'-':>9}  MISS  {row['error']}")
            continue
        first = (row.get("first") or ["(none)"])[0]  # type: ignore[index]
        print(f"{row['case']:<22} {int(row['file_bytes']) / MIB:>9.0f} "  # type: ignore[call-overload]
              f"{int(row['growth_bytes']) / MIB:>15.1f} "  # type: ignore[call-overload]
              f"{float(row['growth_per_file_byte']):>12.2e} "  # type: ignore[arg-type]
              f"{float(row['seconds']):>13.3f} {row['problems']:>9}  "  # type: ignore[arg-type]
              f"{'ok' if row['goal_met'] else 'MISS':<4}  {str(first)[:90]}")
    print()
    print("JSON " + json.dumps({"bench": "hostile_parsers", "size_mib": args.size_mib,
                               "goal_growth_mib": GOAL_GROWTH_MIB, "goal_seconds": GOAL_SECONDS,
                               "load": os.getloadavg()[0], "rows": rows}, ensure_ascii=False))


if __name__ == "__main__":
    main()
