"""Cost as the work grows: a long book digitised, a big bag stored and deep-audited.

    .venv/bin/python bench/scale_item.py [--pages 500] [--pages-small 50]
                                         [--bag-gib 20] [--bag-gib-small 1] [--dir /tmp]

In one run:

* **digitise** — ``qor digitise`` (a subprocess, embedded SQLite register and FileStore, the
  test Prefect server when ``QOR_TEST_PREFECT_API_URL`` is set) of a synthetic book of
  ``--pages-small`` and then ``--pages`` A5 pages (Kazakh/Russian text rendered as 300 dpi grey
  scans): peak RSS of the Qor process (``wait4``'s ``ru_maxrss``; Tesseract's own processes
  are not counted) and wall time per page. Goals (issue 18): peak RSS at the long book within
  1.2× the short one's, time per page within 1.1×.
* **store and deep audit** — a bag of ``--bag-gib-small`` and one of ``--bag-gib`` (payload
  files of 256 MiB, random bytes, sha256 + sha512), each stored into a FileStore and, when
  ``QOR_TEST_S3_*`` are set, into the S3 server on loopback, and deep-audited
  (``integrity.audit.deep_check``), each step in its own process: peak RSS of each (goal: the
  big bag within 64 MiB of the small one) and audit throughput against the hashing limit —
  plain ``hashlib`` of the bag's algorithms, one read per file, one thread per core (the anchor
  of ``bench/fixity_vs_bagit.py``; goal ≥ 0.9×).

CI size (``infra/run-benches``): a few small pages and bags of 64/256 MiB; ``--full`` is the
issue's 50/500 pages and 1/20 GiB (needs about 45 GB free under ``--dir``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixity_vs_bagit import bag_algorithms, hashing_limit

MiB = 1 << 20
FILE_BYTES = 256 * MiB


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; its wall seconds, its own peak RSS in MiB, and its stdout."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}… exited {proc.returncode}:\n{err.decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, text  # ru_maxrss is in KiB on Linux


# -- digitise ---------------------------------------------------------------------------------

def qor_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QOR_") or
           k.startswith("QOR_TEST_") or k in ("QOR_VERAPDF", "QOR_ALTO_SCHEMA")}
    env["QOR_DATA_DIR"] = str(data_dir)
    api = os.environ.get("QOR_TEST_PREFECT_API_URL")
    if api and "PREFECT_API_URL" not in env:
        env["PREFECT_API_URL"] = api
    return env


def digitise(pages: list[Path], work: Path, tag: str) -> tuple[float, float, float]:
    """Digitise ``pages`` with the CLI: wall seconds, peak RSS (MiB), the flow's own seconds
    (its stages, without the command's start-up)."""
    data_dir = work / f"qor-{tag}"
    env = qor_env(data_dir)
    inventory = f"BENCH-{tag}"
    run_measured([sys.executable, "-m", "qor", "items", "add", inventory, "--title",
                  f"Scale bench {tag}"], env)
    elapsed, rss, out = run_measured(
        [sys.executable, "-m", "qor", "digitise", *map(str, pages), "-i", inventory, "--json"],
        env)
    shutil.rmtree(data_dir, ignore_errors=True)
    stages = json.loads(out)["stage_seconds"]
    return elapsed, rss, float(sum(stages.values()))


# -- store and audit --------------------------------------------------------------------------

def make_bag(root: Path, total: int) -> Path:
    """A bag of ``total`` bytes in 256 MiB payload files (the last one shorter)."""
    from integrity.bag import BagInfo, PayloadFile, build_bag

    src = root / "payload"
    src.mkdir(parents=True)
    block = os.urandom(MiB)
    files: list[PayloadFile] = []
    left, i = total, 0
    while left > 0:
        size = min(FILE_BYTES, left)
        path = src / f"part-{i:04d}.bin"
        with path.open("wb") as f:
            written = 0
            while written < size:
                chunk = (i.to_bytes(4, "big") + block)[: min(MiB, size - written)]
                f.write(chunk)
                written += len(chunk)
                block = block[1:] + block[:1]
        files.append(PayloadFile(path, f"masters/part-{i:04d}.bin"))
        left -= size
        i += 1
    summary = build_bag(root / "bag", payload=files,
                        info=BagInfo(source_organization="Bench", external_identifier="BENCH"))
    shutil.rmtree(src)
    return summary.path


def open_target(spec: str, work: Path) -> object:
    from storage import FileStore, S3Options, open_store

    if spec == "file":
        return FileStore(work / "store", create=True)
    opts = S3Options(endpoint_url=os.environ["QOR_TEST_S3_ENDPOINT"],
                     access_key=os.environ["QOR_TEST_S3_ACCESS_KEY"],
                     secret_key=os.environ["QOR_TEST_S3_SECRET_KEY"],
                     region=os.environ.get("QOR_TEST_S3_REGION", "us-east-1"))
    return open_store(spec, s3=opts)


def child(args: argparse.Namespace) -> int:
    """One measured step in its own process: ``store`` the bag, or deep-``audit`` it."""
    from flows.steps import store_bag
    from integrity.audit import deep_check

    store = open_target(args.target, Path(args.work))
    if args.child == "store":
        store_bag(Path(args.bag), bag_id="bench", store=store)  # type: ignore[arg-type]
    else:
        start = time.perf_counter()
        failures, files, octets = deep_check(store, "bench")  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        if failures:
            raise SystemExit(f"the deep audit found problems in a good bag: {failures[:3]}")
        print(json.dumps({"files": files, "bytes": octets, "seconds": seconds}))
    return 0


def s3_bucket() -> tuple[str, object] | None:
    endpoint = os.environ.get("QOR_TEST_S3_ENDPOINT")
    if not endpoint:
        return None
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint,
                          aws_access_key_id=os.environ["QOR_TEST_S3_ACCESS_KEY"],
                          aws_secret_access_key=os.environ["QOR_TEST_S3_SECRET_KEY"],
                          region_name=os.environ.get("QOR_TEST_S3_REGION", "us-east-1"))
    bucket = f"qor-bench-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return bucket, client


def drop_bucket(bucket: str, client: object) -> None:
    c: object = client
    for page in c.get_paginator("list_object_versions").paginate(Bucket=bucket):  # type: ignore[attr-defined]
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            c.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])  # type: ignore[attr-defined]
    c.delete_bucket(Bucket=bucket)  # type: ignore[attr-defined]


def store_and_audit(work: Path, total: int, tag: str) -> dict[str, tuple[float, float, float]]:
    """Per target: (store RSS MiB, audit RSS MiB, audit MiB/s); plus the hashing limit."""
    root = work / f"bag-{tag}"
    bag = make_bag(root, total)
    files = sorted((bag / "data" / "masters").iterdir())
    algorithms = bag_algorithms(bag)
    cores = os.cpu_count() or 1
    hashing_limit(files, algorithms, cores)  # page cache warm for everyone
    t_limit = min(_timed(lambda: hashing_limit(files, algorithms, cores)) for _ in range(2))
    mib = total / MiB
    out: dict[str, tuple[float, float, float]] = {"limit": (0.0, 0.0, mib / t_limit)}
    me = [sys.executable, str(Path(__file__).resolve())]
    targets = [("FileStore", "file", None)]
    s3 = s3_bucket()
    if s3 is not None:
        targets.append(("S3 on loopback", f"s3://{s3[0]}", s3))
    try:
        for label, spec, _ in targets:
            store_dir = root / "store-work"
            store_dir.mkdir(exist_ok=True)
            common = ["--target", spec, "--work", str(store_dir), "--bag", str(bag)]
            _t, rss_store, _ = run_measured([*me, "--child", "store", *common])
            # Throughput from the audit's own time (not the child's start-up and imports).
            _t, rss_audit, report = run_measured([*me, "--child", "audit", *common])
            out[label] = (rss_store, rss_audit, mib / json.loads(report)["seconds"])
            shutil.rmtree(store_dir, ignore_errors=True)
    finally:
        if s3 is not None:
            drop_bucket(s3[0], s3[1])
        shutil.rmtree(root, ignore_errors=True)
    return out


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--pages-small", type=int, default=50)
    ap.add_argument("--page-mm", default="148x210", help="page size in mm, WIDTHxHEIGHT")
    ap.add_argument("--bag-gib", type=float, default=20.0)
    ap.add_argument("--bag-gib-small", type=float, default=1.0)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--child", choices=["store", "audit"], help=argparse.SUPPRESS)
    ap.add_argument("--target", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--bag", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    from flows.capture.samples import write_sample_batch

    width, height = (float(v) for v in args.page_mm.split("x"))
    work = Path(tempfile.mkdtemp(prefix="qor-bench-scale-", dir=args.dir))
    try:
        print(f"writing {args.pages} synthetic {args.page_mm} mm pages ...", flush=True)
        samples = write_sample_batch(work / "pages", pages=args.pages, size_mm=(width, height))
        paths = [s.path for s in samples]
        small = digitise(paths[: args.pages_small], work, f"{args.pages_small}p")
        print(f"  digitise {args.pages_small:>4} pages: {small[0]:7.1f} s wall, flow "
              f"{small[2]:7.1f} s = {small[2] / args.pages_small:5.2f} s/page, peak RSS "
              f"{small[1]:7.1f} MiB", flush=True)
        big = digitise(paths, work, f"{args.pages}p")
        print(f"  digitise {args.pages:>4} pages: {big[0]:7.1f} s wall, flow "
              f"{big[2]:7.1f} s = {big[2] / args.pages:5.2f} s/page, peak RSS "
              f"{big[1]:7.1f} MiB", flush=True)
        shutil.rmtree(work / "pages", ignore_errors=True)
        print(f"  peak RSS {args.pages} / {args.pages_small} pages : {big[1] / small[1]:5.2f}x"
              "   (goal <= 1.20x)")
        per_small, per_big = small[2] / args.pages_small, big[2] / args.pages
        print(f"  time per page {args.pages} / {args.pages_small}   : "
              f"{per_big / per_small:5.2f}x   (goal <= 1.10x)")
        print()
        results = {}
        for gib in (args.bag_gib_small, args.bag_gib):
            print(f"bag of {gib:g} GiB: build, store, deep audit ...", flush=True)
            results[gib] = store_and_audit(work, int(gib * (1 << 30)), f"{gib:g}")
            limit = results[gib]["limit"][2]
            print(f"  hashing limit: {limit:7.1f} MiB/s")
            for label, (rss_store, rss_audit, rate) in results[gib].items():
                if label == "limit":
                    continue
                print(f"  {label:<15} store peak RSS {rss_store:7.1f} MiB, audit peak RSS "
                      f"{rss_audit:7.1f} MiB, audit {rate:7.1f} MiB/s = {rate / limit:4.2f}x the "
                      "limit (goal >= 0.90x)", flush=True)
        print()
        small_r, big_r = results[args.bag_gib_small], results[args.bag_gib]
        for label in (k for k in big_r if k != "limit"):
            d_store = big_r[label][0] - small_r[label][0]
            d_audit = big_r[label][1] - small_r[label][1]
            print(f"  {label:<15} peak RSS {args.bag_gib:g} GiB − {args.bag_gib_small:g} GiB: "
                  f"store {d_store:+7.1f} MiB, audit {d_audit:+7.1f} MiB   (goal <= 64 MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
