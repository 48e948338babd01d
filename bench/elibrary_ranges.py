"""E-library range serving vs a plain static file server, on the same 100 MiB PDF, in one run.

50 concurrent clients each read random 1 MiB byte ranges. Anchor: the plaintext file served by
Starlette's StaticFiles under uvicorn (Range support, no decryption). Qor: the same file stored
encrypted in a bag (QORENC v1, 64 KiB segments) in a file store, served by the e-library's
``/copies/<bag>/file.pdf`` which decrypts only the segments each range touches. Each server runs
in its own process (one uvicorn worker each); the clients run in this process.

Prints throughput of each, the ratio (goal ≥ 0.5×) and latency percentiles (goal p99 < 100 ms).

Then **IIIF tiles** (issue 16): a copy of ``--pages`` synthetic pages (reading images of
2400 × 3394 px, stored encrypted in the bag as ``data/web/pages/NNNN.jpg``), every tile of
every scale factor its info.json announces requested as IIIF URLs by ``--clients`` readers at
random. Anchor: nginx (Debian package, started here as a non-daemon with its own configuration
in a temporary folder, one worker process like the one uvicorn process) serving the very same
tile bytes decrypted on disk under the same paths. Both are warmed with one pass over all
tiles first (Qor's bounded cache, nginx's page cache), then measured: throughput (tiles/s) and
p50/p99 of a 512 px tile. Goal: p99 < 100 ms and ≥ 0.5× nginx.

    .venv/bin/python bench/elibrary_ranges.py [--size-mib 100] [--clients 50] [--requests 20]
        [--pages 4] [--tile-clients 50] [--tile-requests 40] [--skip-ranges]
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


def prepare_tiles(root: Path, pages: int) -> tuple[str, list[str]]:
    """An open copy with ``pages`` reading images in its bag; returns (bag id, tile paths)."""
    import io

    from PIL import Image, ImageDraw

    from catalog_sync import db, register
    from elibrary.iiif_image import TILE, scale_factors
    from elibrary.library import set_rights
    from elibrary.models import Rights
    from integrity.bag import BagInfo, PayloadFile, build_bag
    from storage import FileStore, LocalKeyring, encrypt_chunks

    src = root / "pages"
    src.mkdir()
    rng = random.Random(5)
    payload = []
    width, height = 2400, 3394
    for n in range(1, pages + 1):
        im = Image.new("L", (width, height), 235)
        draw = ImageDraw.Draw(im)
        for y in range(150, height - 150, 48):  # lines of "words"
            x = 150
            while x < width - 300:
                w = rng.randrange(40, 220)
                draw.rectangle((x, y, x + w, y + 26), fill=rng.randrange(10, 80))
                x += w + rng.randrange(18, 40)
        buffer = io.BytesIO()
        im.save(buffer, "JPEG", quality=80)
        path = src / f"{n:04d}.jpg"
        path.write_bytes(buffer.getvalue())
        payload.append(PayloadFile(path, f"web/pages/{n:04d}.jpg"))
    engine = db.make_engine(f"sqlite:///{root / 'register.sqlite3'}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    store = FileStore(root / "store", fsync=False)
    keyring = LocalKeyring(root / "keys")
    bag_key = keyring.new_bag_key()
    bag_id = "bench-tiles"
    bag_dir = root / "bag" / bag_id
    bag_dir.parent.mkdir(parents=True, exist_ok=True)
    with sessions() as s, s.begin():
        batch = register.open_receipt_batch(s, act_number="bench-t", received_on=date.today(),
                                            actor="bench")
        rec = register.add_record(s, title="Bench tiles", actor="bench")
        inv = register.receive_item(s, record=rec, source="purchase", receipt_batch=batch,
                                    actor="bench").inventory_number
    summary = build_bag(bag_dir, payload=payload,
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
            file_count=pages, page_count=pages, actor="bench")
        set_rights(s, bag_id=bag_id, rights=Rights.OPEN, actor="bench")
    tiles: list[str] = []
    for n in range(1, pages + 1):
        for f in scale_factors(width, height):
            step = TILE * f
            for y in range(0, height, step):
                for x in range(0, width, step):
                    w, h = min(step, width - x), min(step, height - y)
                    tiles.append(f"/iiif/3/{bag_id}~{n}/{x},{y},{w},{h}/{-(-w // f)},"
                                 "/0/default.jpg")
    return bag_id, tiles


def fetch_all(port: int, paths: list[str]) -> dict[str, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out: dict[str, bytes] = {}
    for path in paths:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"{path}: {r.status}")
        out[path] = body
    conn.close()
    return out


def load_tiles(port: int, paths: list[str], clients: int, requests: int
               ) -> tuple[float, list[float]]:
    """Tiles per second and the latencies of full 512 px tiles (scale factor 1 and interior)."""
    import http.client
    import threading

    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []
    full = [p for p in paths if "/512,/" in p and ",512,512/" in p]

    def one_client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        for i in range(requests):
            path = rng.choice(full if i % 2 == 0 else paths)
            t0 = time.perf_counter()
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if path in full:
                mine.append(time.perf_counter() - t0)
            if r.status != 200 or not body.startswith(b"\xff\xd8"):
                failures.append(f"{path}: {r.status}")
                return
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise SystemExit(failures[0])
    return clients * requests / elapsed, latencies


def start_nginx(root: Path, www: Path, port: int) -> subprocess.Popen[bytes]:
    conf = root / "nginx.conf"
    temp = root / "nginx-tmp"
    temp.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {temp}/nginx.pid;\n"
        f"error_log {temp}/error.log warn;\nevents {{ worker_connections 1024; }}\n"
        "http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n"
        "  keepalive_requests 1000000;\n  types { image/jpeg jpg; }\n"
        f"  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n"
        f"  fastcgi_temp_path {temp}/fcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n"
        f"  scgi_temp_path {temp}/scgi;\n"
        f"  server {{ listen 127.0.0.1:{port}; root {www}; }}\n}}\n", "utf-8")
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(temp), "-e",
                             str(temp / "error.log")])


def tiles_bench(root: Path, *, pages: int, clients: int, requests: int) -> None:
    import shutil

    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        raise SystemExit("nginx is not installed (infra/install-system installs it)")
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin"
    t0 = time.perf_counter()
    _bag_id, paths = prepare_tiles(root, pages)
    print(f"prepared {pages} encrypted reading image(s) of 2400 x 3394 px, "
          f"{len(paths)} tiles, in {time.perf_counter() - t0:.1f} s")
    results: dict[str, tuple[float, list[float]]] = {}
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "elibrary", str(root)],
                            env={**os.environ, "BENCH_PORT": str(port)})
    try:
        wait_up(port, proc)
        tiles = fetch_all(port, paths)  # warm-up pass; the same bytes go to nginx
        results["qor iiif"] = load_tiles(port, paths, clients, requests)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    www = root / "www"
    for path, body in tiles.items():
        target = www / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    port = free_port()
    nginx = start_nginx(root, www, port)
    try:
        wait_up(port, nginx)
        fetch_all(port, paths)
        results["nginx"] = load_tiles(port, paths, clients, requests)
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
    sizes = sorted(len(b) for p, b in tiles.items() if ",512,512/" in p)
    print(f"512 px tiles: median {statistics.median(sizes) / 1024:.0f} KiB")
    for kind, (rate, lat) in results.items():
        print(f"{kind:9s} {rate:8.0f} tiles/s   512 px tile p50 {pct(lat, 50):6.1f} ms   "
              f"p99 {pct(lat, 99):6.1f} ms   ({clients} readers x {requests} tiles)")
    ratio = results["qor iiif"][0] / results["nginx"][0]
    print(f"throughput ratio Qor IIIF / nginx: {ratio:.2f}x (goal >= 0.5x)")
    print(f"Qor 512 px tile p99 latency: {pct(results['qor iiif'][1], 99):.1f} ms "
          "(goal < 100 ms)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=100)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--pages", type=int, default=4)
    ap.add_argument("--tile-requests", type=int, default=40)
    ap.add_argument("--tile-clients", type=int, default=50)
    ap.add_argument("--skip-ranges", action="store_true")
    ap.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        kind, where = args.serve
        port = int(os.environ["BENCH_PORT"])
        (serve_elibrary if kind == "elibrary" else serve_static)(Path(where), port)
        return
    if not args.skip_ranges:
        ranges_bench(args)
    with tempfile.TemporaryDirectory(prefix="qor-bench-tiles-") as tmp:
        tiles_bench(Path(tmp), pages=args.pages, clients=args.tile_clients,
                    requests=args.tile_requests)


def ranges_bench(args: argparse.Namespace) -> None:
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
