"""What the command line costs an operator beyond the work itself, quiet and on a busy machine.

In one run, on the same scans, on the embedded defaults (file store, SQLite register, the
resident local Prefect server, started once before timing):

* **Qor**: ``qor digitise PAGES --inventory X --new-version --json`` as a subprocess; its
  *overhead* is the wall time minus the sum of the stage times the summary reports (Python
  start-up, imports, the flow and task engine, orchestration calls, shutdown);
* **the anchor**: the same stages called as plain functions in this one Python process (the
  digitise tasks' undecorated functions, in the flow's order, no Prefect engine), timed the same
  way.

Each on 1 page and on N pages, ``--runs`` times each, interleaved (Qor, anchor, Qor, …), first
quiet, then with CPU hogs keeping the load at ≥ 4 on 2 cores. Prints median and p95 of the
overhead and of the wall time, the ratio Qor wall / anchor wall, and any run that failed or
timed out. Then the start-up of commands that run no flow (``qor copies show``, ``qor items
add``, ``qor loans out``/``in``): median and p95 wall time, quiet and loaded.

Goals (the orchestration issue): overhead median < 1 s and p95 < 2 s, never a timeout; start-up
median < 0.5 s quiet.

    .venv/bin/python bench/cli_overhead.py [--runs 10] [--pages 10] [--hogs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QOR = [sys.executable, "-m", "qor"]


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QOR_", "PREFECT_")) or k.startswith(("QOR_TEST_", "QOR_VERAPDF"))}
    env["QOR_DATA_DIR"] = str(data_dir)
    return env


def run_qor(env: dict[str, str], *args: str, timeout: float = 900) -> tuple[float, Any, str]:
    """(wall seconds, parsed --json output or None, stderr) of one ``qor`` subprocess."""
    start = time.perf_counter()
    proc = subprocess.run([*QOR, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return wall, None, proc.stderr.strip()[-400:]
    try:
        return wall, json.loads(proc.stdout) if proc.stdout.strip() else {}, ""
    except ValueError:
        return wall, {}, ""


def q(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def write_scans(dest: Path, pages: int) -> list[Path]:
    """``pages`` A6 scans of Kazakh and Russian text at 300 dpi (about a second of OCR each)."""
    from flows.capture.samples import write_sample_batch

    return [s.path for s in write_sample_batch(dest, pages=pages, size_mm=(105.0, 148.0),
                                               font_size_pt=10.0)]


def anchor_digitise(pages: list[Path], inventory: str) -> tuple[float, float]:
    """The digitise stages as plain functions in this process: (wall, sum of stage times)."""
    from flows import digitise as d
    from flows.capture import DocumentMetadata
    from flows.steps import batch_fingerprint, remove_tree
    from qor.settings import load_settings

    stages: dict[str, float] = {}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        stages[name] = time.perf_counter() - t0

    start = time.perf_counter()
    settings = load_settings()
    options = d.capture_options(settings)
    with stage("check"):
        refs = d.check_inputs.fn([str(p) for p in pages], options)
        sources = list(dict.fromkeys(r.source for r in refs))
        fingerprint = batch_fingerprint(sources)
        facts = d.check_item.fn(inventory, fingerprint)
    version = facts.next_version
    bag_id = d.copy_bag_id(inventory, version, fingerprint)
    work = settings.work_dir / bag_id
    with stage("ocr"):
        page_dir = work / "pages"
        page_dir.mkdir(parents=True, exist_ok=True)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(settings.workers) as pool:
            results = list(pool.map(lambda r: d.ocr_page.fn(r, page_dir, options), refs))
    needs_review = any(p.mean_confidence < options.confidence_gate for p in results)
    metadata = DocumentMetadata(title=facts.title, identifier=inventory, creator=facts.creator,
                                date=facts.date, language=facts.language)
    with stage("pdfa"):
        pdf = d.make_pdfa.fn(results, work / "access.pdf", metadata, options)
        web_pdf, web_pages, web_description = d.make_derivatives.fn(results, work, metadata,
                                                                    options)
        verdict, web_verdict = d.check_pdfa.fn(pdf, web_pdf, web_description)
    with stage("package"):
        bag_dir, wrapped = d.make_bag.fn(
            dest=work / "bag" / bag_id, bag_id=bag_id, pages=results, pdf=pdf, sources=sources,
            metadata=metadata, version=version, fingerprint=fingerprint, pdfa_verdict=verdict,
            languages=options.languages, confidence_gate=options.confidence_gate,
            web_pdf=web_pdf, web_pages=web_pages, web_pdf_verdict=web_verdict)
    formats = d.pronom_ids((bag_dir / "metadata" / "premis.xml").read_bytes())
    with stage("store"):
        stored, replica = d.upload_bag.fn(bag_dir, bag_id, wrapped)
    with stage("register"):
        d.register_copy.fn(inventory_number=inventory, stored=stored, replica=replica,
                           version=version, wrapped=wrapped, pdfa_verdict=verdict,
                           pages=results, fingerprint=fingerprint, needs_review=needs_review,
                           formats=formats)
    remove_tree(work)
    return time.perf_counter() - start, sum(stages.values())


@contextmanager
def hogs(count: int) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(3)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def digitise_round(env: dict[str, str], batches: dict[int, list[Path]], runs: int,
                   label: str) -> None:
    print(f"\n== qor digitise, {label} (load average {os.getloadavg()[0]:.1f} at start)")
    print(f"  {'pages':>5} {'who':<7} {'overhead p50':>12} {'p95':>6} {'wall p50':>9} "
          f"{'p95':>6}  failures")
    for size, pages in batches.items():
        qor_over: list[float] = []
        qor_wall: list[float] = []
        anc_over: list[float] = []
        anc_wall: list[float] = []
        failures: list[str] = []
        for i in range(runs):
            wall, summary, err = run_qor(env, "digitise", *map(str, pages), "--inventory",
                                         f"BENCH-{size}", "--new-version", "--json")
            if summary is None:
                failures.append(err.splitlines()[-1] if err else "failed")
            else:
                stages = sum(summary["stage_seconds"].values())
                qor_over.append(wall - stages)
                qor_wall.append(wall)
            a_wall, a_stages = anchor_digitise(pages, f"BENCH-{size}")
            anc_over.append(a_wall - a_stages)
            anc_wall.append(a_wall)
            print(f"    round {i + 1}: qor {wall:6.2f} s (overhead "
                  f"{qor_over[-1] if summary else float('nan'):.2f}), anchor {a_wall:6.2f} s",
                  flush=True)
        for who, over, walls in (("qor", qor_over, qor_wall), ("anchor", anc_over, anc_wall)):
            if not walls:
                print(f"  {size:>5} {who:<7} {'—':>12}")
                continue
            print(f"  {size:>5} {who:<7} {statistics.median(over):12.2f} {q(over, .95):6.2f} "
                  f"{statistics.median(walls):9.2f} {q(walls, .95):6.2f}  "
                  f"{len(failures) if who == 'qor' else 0}")
        if qor_wall:
            print(f"  {size:>5} ratio   Qor wall / anchor wall: "
                  f"{statistics.median(qor_wall) / statistics.median(anc_wall):.2f}× (median)")
        for f in failures:
            print(f"        FAILED: {f}")


def startup_round(env: dict[str, str], runs: int, label: str,
                  lendable: Callable[[int], str]) -> None:
    print(f"\n== start-up of commands that run no flow, {label}")
    timings: dict[str, list[float]] = {"copies show": [], "items add": [], "loans out": [],
                                       "loans in": [], "copies show, own process": []}
    own = {**env, "QOR_NO_RUNNER": "1"}  # the same command not handed to the runner
    for i in range(runs):
        timings["copies show"].append(run_qor(env, "copies", "show", "BENCH-1", "--json")[0])
        timings["copies show, own process"].append(
            run_qor(own, "copies", "show", "BENCH-1", "--json")[0])
        timings["items add"].append(run_qor(env, "items", "add", f"BENCH-ADD-{label}-{i}",
                                            "--title", "Жаңа кітап", "--json")[0])
        item = lendable(i)
        timings["loans out"].append(run_qor(env, "loans", "out", item, "BENCH-R1", "LEND",
                                            "--json")[0])
        timings["loans in"].append(run_qor(env, "loans", "in", item, "--json")[0])
    for name, values in timings.items():
        print(f"  qor {name:<25} median {statistics.median(values):5.2f} s   "
              f"p95 {q(values, .95):5.2f} s")


def prepare_circulation(data_dir: Path, count: int) -> list[str]:
    """A reader, a lending desk and ``count`` lendable items, through the domain API."""
    from datetime import date

    from catalog_sync import circulation, readers, register
    from catalog_sync.models import ItemStatus
    from qor import wiring
    from qor.settings import load_settings

    with wiring.register_session(load_settings()) as s:
        readers.add_reader(s, ticket_number="BENCH-R1", name="Айгерім Сәрсенова",
                           category="adult", actor="bench")
        circulation.add_service_point(s, code="LEND", name="Lending desk", kind="lending_desk",
                                      actor="bench")
        record = register.add_record(s, title="Абай жолы", material_type="book", actor="bench")
        batch = register.open_receipt_batch(s, act_number="BENCH-ACT", received_on=date.today(),
                                            actor="bench")
        numbers = []
        for i in range(count):
            item = register.receive_item(s, record=record, source="purchase",
                                         receipt_batch=batch, actor="bench")
            register.process_item(s, item.inventory_number, barcode=f"BC-{i:05d}",
                                  rfid=f"RF-{i:05d}", location="Hall-1", actor="bench")
            register.set_status(s, item.inventory_number, ItemStatus.AVAILABLE, actor="bench")
            numbers.append(item.inventory_number)
    return numbers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="runs of each size (default 10)")
    ap.add_argument("--pages", type=int, default=10, help="pages of the larger batch")
    ap.add_argument("--hogs", type=int, default=max(4, 2 * (os.cpu_count() or 2)),
                    help="CPU hogs of the loaded phase (default: load ≥ 4 on 2 cores)")
    ap.add_argument("--startup-runs", type=int, default=10)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="qor-bench-cli-") as tmp:
        root = Path(tmp)
        data_dir = root / "qor"
        env = embedded_env(data_dir)
        os.environ.update({k: v for k, v in env.items() if k.startswith("QOR_")})
        for k in [k for k in os.environ if k.startswith("PREFECT_")]:
            del os.environ[k]
        batches = {1: write_scans(root / "one", 1), args.pages: write_scans(root / "many",
                                                                             args.pages)}
        for size in batches:
            run_qor(env, "items", "add", f"BENCH-{size}", "--title", "Қолжазба", "--json")
        t0 = time.perf_counter()
        started = run_qor(env, "server", "start", "--json")
        print(f"local orchestration service started in {time.perf_counter() - t0:.1f} s "
              f"(once, not counted): {started[1]}")
        # Warm both paths once (page cache, veraPDF's JVM classes, the anchor's imports).
        run_qor(env, "digitise", *map(str, batches[1]), "--inventory", "BENCH-1",
                "--new-version", "--json")
        anchor_digitise(batches[1], "BENCH-1")
        items = prepare_circulation(data_dir, 2 * args.startup_runs)
        try:
            digitise_round(env, batches, args.runs, "quiet")
            startup_round(env, args.startup_runs, "quiet", lambda i: items[i])
            with hogs(args.hogs):
                digitise_round(env, batches, args.runs, f"loaded ({args.hogs} CPU hogs)")
                startup_round(env, args.startup_runs, "loaded",
                              lambda i: items[args.startup_runs + i])
        finally:
            run_qor(env, "server", "stop", "--json")


if __name__ == "__main__":
    main()
