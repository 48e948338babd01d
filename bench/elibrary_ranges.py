"""E-library range serving vs a plain static file server, on the same 100 MiB PDF, in one run.

50 concurrent clients each read random 1 MiB byte ranges. Anchor: the plaintext file served by
Starlette's StaticFiles under uvicorn (Range support, no decryption). Qor: the same file stored
encrypted in a bag (QORENC v1, 64 KiB segments) in a file store, served by the e-library's
``/copies/<bag>/file.pdf`` which decrypts only the segments each range touches. Each server runs
in its own process (one uvicorn worker each); the clients run in this process.

Prints throughput of each, the ratio (goal ≥ 0.5×) and latency percentiles (goal p99 < 100 ms).

    .venv/bin/python bench/elibrary_ranges.py [--size-mib 100] [--clients 50] [--requests 20]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(root: Path, size: int) -> tuple[Path, str]:
    """Write the plaintext file and the same bytes as an encrypted, registered, open copy."""
    from catalog_sync import db, register
    from elibrary.library import set_rights
    from elibrary.models import Rights
    from integrity.bag import BagInfo, PayloadFile, build_bag
    from storage import FileStore, LocalKeyring, encrypt_chunks

    plain = root / "static" / "copy.pdf"
    plain.parent.mkdir(parents=True)
    rng = random.Random(1)
    with plain.open("wb") as fh:
        fh.write(b"%PDF-1.7\n")
        left = size - 9
        while left > 0:
            n = min(left, 8 * MIB)
            fh.write(rng.randbytes(n))
            left -= n
    engine = db.make_engine(f"sqlite:///{root / 'register.sqlite3'}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    store = FileStore(root / "store", fsync=False)
    keyring = LocalKeyring(root / "keys")
    bag_key = keyring.new_bag_key()
    bag_id = "bench-bag"
    bag_dir = root / "bag" / bag_id
    bag_dir.parent.mkdir(parents=True)
    with sessions() as s, s.begin():
        batch = register.open_receipt_batch(s, act_number="bench", received_on=date.today(),
                                            actor="bench")
        rec = register.add_record(s, title="Bench copy", actor="bench")
        inv = register.receive_item(s, record=rec, source="purchase", receipt_batch=batch,
                                    actor="bench").inventory_number
    summary = build_bag(bag_dir, payload=[PayloadFile(plain, "access/copy.pdf")],
                        info=BagInfo(source_organization="Bench", external_identifier=inv),
                        transform=lambda fh, fid: encrypt_chunks(fh, bag_key=bag_key,
                                                                 file_id=fid))
    for p in sorted(x for x in bag_dir.rglob("*") if x.is_file()):
        store.put_file(f"bags/{bag_id}/{p.relative_to(bag_dir).as_posix()}", p)
    with sessions() as s, s.begin():
        register.add_digital_copy(
            s, inventory_number=inv, bag_id=bag_id, store_uri=store.uri, version=1,
            kek_id=bag_key.wrapped.kek_id, wrapped_key=bag_key.wrapped.wrapped,
            pdfa_verdict="bench", ocr_confidence=None, payload_bytes=summary.payload_octets,
            file_count=1, page_count=1, actor="bench")
        set_rights(s, bag_id=bag_id, rights=Rights.OPEN, actor="bench")
    return plain, bag_id


def serve_elibrary(root: Path, port: int) -> None:
    import uvicorn

    from catalog_sync import db
    from elibrary.config import ElibraryConfig
    from elibrary.web import create_app
    from storage import LocalKeyring, open_store

    engine = db.make_engine(f"sqlite:///{root / 'register.sqlite3'}")
    app = create_app(ElibraryConfig(secret_key=os.urandom(32)),
                     sessions=db.session_factory(engine), open_store=open_store,
                     keyring=LocalKeyring(root / "keys"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_static(folder: Path, port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    app = Starlette(routes=[Mount("/", StaticFiles(directory=folder))])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def load(port: int, path: str, size: int, clients: int, requests: int
         ) -> tuple[float, list[float]]:
    """Each client is a thread with one keep-alive connection (http.client: reading a body is
    C code, so the clients cost little next to the servers)."""
    import http.client
    import threading

    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def one_client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        for _ in range(requests):
            start = rng.randrange(0, size - MIB)
            t0 = time.perf_counter()
            conn.request("GET", path, headers={"Range": f"bytes={start}-{start + MIB - 1}"})
            r = conn.getresponse()
            body = r.read()
            mine.append(time.perf_counter() - t0)
            if r.status != 206 or len(body) != MIB:
                failures.append(f"{path}: {r.status}, {len(body)} bytes")
                return
        conn.close()
        with lock:
            latencies.extend(mine)

    warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    warm.request("GET", path, headers={"Range": "bytes=0-0"})  # opens the copy once
    warm.getresponse().read()
    warm.close()
    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise SystemExit(failures[0])
    return len(latencies) * MIB / elapsed, latencies


def wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=100)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        kind, where = args.serve
        port = int(os.environ["BENCH_PORT"])
        (serve_elibrary if kind == "elibrary" else serve_static)(Path(where), port)
        return
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="qor-bench-elib-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        plain, bag_id = prepare(root, size)
        print(f"prepared {args.size_mib} MiB plain + encrypted copy in "
              f"{time.perf_counter() - t0:.1f} s")
        results = {}
        for kind, where, path in (("static", plain.parent, "/copy.pdf"),
                                  ("elibrary", root, f"/copies/{bag_id}/file.pdf")):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve", kind, str(where)],
                env={**os.environ, "BENCH_PORT": str(port)})
            try:
                wait_up(port, proc)
                results[kind] = load(port, path, size, args.clients, args.requests)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        for kind, (rate, lat) in results.items():
            print(f"{kind:9s} {rate / MIB:8.1f} MiB/s   p50 {pct(lat, 50):6.1f} ms   "
                  f"p99 {pct(lat, 99):6.1f} ms   ({len(lat)} ranges of 1 MiB, "
                  f"{args.clients} clients)")
        ratio = results["elibrary"][0] / results["static"][0]
        p99 = pct(results["elibrary"][1], 99)
        print(f"throughput ratio e-library / static: {ratio:.2f}x (goal >= 0.5x)")
        print(f"e-library p99 latency: {p99:.1f} ms (goal < 100 ms)")


if __name__ == "__main__":
    main()
