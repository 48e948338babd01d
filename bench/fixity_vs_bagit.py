"""Deep fixity check of a 2 GiB bag: Qor's validator against bagit-python and the hashing limit.

In one run, on the same bag (200 files, 2 GiB by default, sha256 + sha512 manifests), with the
files in the page cache for every contender, the contenders interleaved round by round and the
best round of each compared:

* Qor: ``integrity.validate.problems(bag)`` (one read per file, all algorithms, threads);
* bagit-python: ``bagit.Bag(bag).validate(processes=<cores>)``;
* the hashing limit: plain ``hashlib`` of the bag's own algorithms (read from its manifest
  names), each file read once into a reused buffer and fed to every algorithm, one thread per
  core (hashlib releases the GIL) — no parsing, no checking: what hashing these bytes costs.

Prints throughput and the ratios issue 18 sets as goals (Qor ≥ 0.95× the limit, ≥ 1.0×
bagit-python). Then Qor's deep fixity audit (``integrity.audit.deep_check``) of the same
bag stored in a FileStore, and — when ``QOR_TEST_S3_ENDPOINT``/``_ACCESS_KEY``/``_SECRET_KEY``
are set — of the same bag stored on that S3 server (loopback), reported as a ratio to the
FileStore figure.

    .venv/bin/python bench/fixity_vs_bagit.py [--size-mib 2048] [--files 200] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bagit

from integrity.validate import problems


def make_bag(root: Path, files: int, total: int) -> Path:
    folder = root / "bag"
    folder.mkdir()
    size = total // files
    block = os.urandom(1 << 20)
    for i in range(files):
        with (folder / f"page-{i:04d}.bin").open("wb") as f:
            left = size
            while left:
                # Vary every block so no two files (or blocks) are alike.
                chunk = (i.to_bytes(4, "big") + block)[: min(left, len(block))]
                f.write(chunk)
                left -= len(chunk)
                block = block[1:] + block[:1]
    bagit.make_bag(str(folder), {"External-Identifier": "BENCH"},
                   processes=os.cpu_count() or 1, checksums=["sha256", "sha512"])
    return folder


def timed(label: str, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"  {label:<44} {elapsed:7.2f} s", flush=True)
    return elapsed


def bag_algorithms(bag: Path) -> list[str]:
    """The algorithms of the bag's payload manifests, as hashlib names."""
    names = sorted(m.group(1) for p in bag.iterdir()
                   if (m := re.match(r"^manifest-(.+)\.txt$", p.name)))
    return [n.replace("-", "_") for n in names]


def hashing_limit(files: Sequence[Path], algorithms: Sequence[str], cores: int) -> None:
    """Read each file once (1 MiB reads into a reused buffer), feeding every algorithm; one
    thread per core, largest file first."""

    def one(path: Path) -> None:
        hashers = [hashlib.new(a) for a in algorithms]
        buf = memoryview(bytearray(1 << 20))
        with path.open("rb", buffering=0) as f:
            while n := f.readinto(buf):
                view = buf[:n]
                for h in hashers:
                    h.update(view)
        for h in hashers:
            h.hexdigest()

    order = sorted(files, key=lambda p: -p.stat().st_size)
    with ThreadPoolExecutor(max_workers=cores) as pool:
        list(pool.map(one, order))


def qor(bag: Path) -> None:
    found = problems(bag)
    if found:
        raise SystemExit(f"Qor found problems in a good bag: {found[:3]}")


def bagit_python(bag: Path, cores: int) -> None:
    bagit.Bag(str(bag)).validate(processes=cores)


def audit_stores(bag: Path, work: Path, gib: float, rounds: int) -> None:
    """Deep fixity audit of the bag stored in a FileStore and on the S3 server if configured,
    interleaved, best of ``rounds``; plus what reading the objects from S3 alone costs (boto3,
    no hashing), the transport's own ceiling on this machine."""
    import uuid

    from flows.steps import store_bag
    from integrity.audit import deep_check
    from storage import FileStore, S3Options, open_store

    def audit(store: object) -> None:
        failures, _files, _bytes = deep_check(store, "bench")  # type: ignore[arg-type]
        if failures:
            raise SystemExit(f"the deep audit found problems in a good bag: {failures[:3]}")

    fs = FileStore(work / "store", create=True)
    store_bag(bag, bag_id="bench", store=fs)
    endpoint = os.environ.get("QOR_TEST_S3_ENDPOINT")
    if not endpoint:
        t_fs = min(timed("Qor deep audit, FileStore", lambda: audit(fs)) for _ in range(rounds))
        print(f"  {'FileStore audit':<14} {gib / t_fs * 1024:8.1f} MiB/s")
        print("  (S3: QOR_TEST_S3_ENDPOINT unset; source the test-services env to compare)")
        return
    import boto3

    bucket = f"qor-bench-{uuid.uuid4().hex[:10]}"
    opts = S3Options(endpoint_url=endpoint, access_key=os.environ["QOR_TEST_S3_ACCESS_KEY"],
                     secret_key=os.environ["QOR_TEST_S3_SECRET_KEY"],
                     region=os.environ.get("QOR_TEST_S3_REGION", "us-east-1"))
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=opts.access_key,
                          aws_secret_access_key=opts.secret_key, region_name=opts.region)
    client.create_bucket(Bucket=bucket)
    try:
        s3 = open_store(f"s3://{bucket}", s3=opts)
        store_bag(bag, bag_id="bench", store=s3)

        def read_only() -> None:
            from concurrent.futures import ThreadPoolExecutor

            keys = [o.key for o in s3.list("bags/bench/")]

            def one(key: str) -> None:
                with s3.open_read(key) as f:
                    while f.read(1 << 20):
                        pass

            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                list(pool.map(one, keys))

        t_fs = t_s3 = t_read = float("inf")
        for n in range(1, rounds + 1):
            print(f"audit round {n} of {rounds}", flush=True)
            t_fs = min(t_fs, timed("Qor deep audit, FileStore", lambda: audit(fs)))
            t_s3 = min(t_s3, timed("Qor deep audit, S3 on loopback", lambda: audit(s3)))
            t_read = min(t_read, timed("S3 read only, no hashing (transport)", read_only))
        print(f"  {'FileStore audit':<14} {gib / t_fs * 1024:8.1f} MiB/s")
        print(f"  {'S3 audit':<14} {gib / t_s3 * 1024:8.1f} MiB/s")
        print(f"  {'S3 read only':<14} {gib / t_read * 1024:8.1f} MiB/s   (server and client "
              "share the cores)")
        print(f"  S3 / FileStore audit    : {t_fs / t_s3:5.2f}x   (goal >= 0.80x)")
    finally:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                client.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
        client.delete_bucket(Bucket=bucket)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    total = args.size_mib << 20
    work = Path(tempfile.mkdtemp(prefix="qor-bench-fixity-", dir=args.dir))
    try:
        print(f"building a {args.size_mib} MiB bag of {args.files} files in {work} ...", flush=True)
        bag = make_bag(work, args.files, total)
        files = sorted((bag / "data").iterdir())
        gib = sum(f.stat().st_size for f in files) / (1 << 30)
        algorithms = bag_algorithms(bag)
        print(f"{gib:.2f} GiB, {cores} cores; {' + '.join(algorithms)}; files in page cache",
              flush=True)
        hashing_limit(files, algorithms, cores)  # warm the page cache for everyone
        # Rounds interleave the contenders, so a burst of load on this shared machine hits
        # each of them alike; the best round of each is what is compared.
        rounds: dict[str, list[float]] = {"raw": [], "qor": [], "bagit": []}
        for n in range(1, args.rounds + 1):
            print(f"round {n} of {args.rounds}", flush=True)
            rounds["raw"].append(timed(f"hashlib limit, one read ({cores} threads)",
                                       lambda: hashing_limit(files, algorithms, cores)))
            rounds["qor"].append(timed("Qor integrity.validate", lambda: qor(bag)))
            rounds["bagit"].append(timed(f"bagit-python validate(processes={cores})",
                                         lambda: bagit_python(bag, cores)))
        t_raw, t_qor, t_bagit = (min(rounds[k]) for k in ("raw", "qor", "bagit"))
        print(f"best of {args.rounds} round(s):")
        print()
        for label, t in (("hashing limit", t_raw), ("Qor", t_qor), ("bagit-python", t_bagit)):
            print(f"  {label:<14} {gib / t * 1024:8.1f} MiB/s")
        print()
        print(f"  Qor / hashing limit     : {t_raw / t_qor:5.2f}x   (goal >= 0.95x)")
        print(f"  Qor / bagit-python      : {t_bagit / t_qor:5.2f}x   (goal >= 1.00x)")
        print()
        audit_stores(bag, work, gib, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
