"""Self-check machines over SIP2: 25 machines through an independent client vs the domain API.

Usage::

    QOR_TEST_DATABASE_URL=postgresql+psycopg://qor@127.0.0.1:55432/qor_test \\
        .venv/bin/python bench/sip2_load.py [--items 100000] [--readers 10000] \\
        [--machines 25] [--seconds 60] [--pace-ms 1000]

A fresh PostgreSQL database is loaded with COPY (``circulation_load.load``), then ``qor sip2
serve`` is started as its own process (plain TCP on a local port, one account per machine, all
at the lending desk) and each simulated self-check machine — a thread with its own connection —
logs in with the ``Sip2`` client library from PyPI and, once every ``--pace-ms``, checks an item
out to a reader (message 11) and back in (09).

The anchor is the same operations through the domain API in this process
(:func:`catalog_sync.circulation.check_out` / ``check_in``, a committed session each), from as
many threads at the same pace, on the same database. Prints p50/p99 per operation for both and
the ratios: what SIP2 (framing, TCP, a server thread, the client library) adds to the desk's own
path. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from circulation_load import RESERVED, load, pct

from catalog_sync import circulation
from catalog_sync.db import make_engine, session_factory, upgrade
from catalog_sync.errors import LoanRefused
from catalog_sync.sip2.accounts import hash_password

PASSWORD = "bench-kiosk-password"  # noqa: S105 - a throwaway account of the bench
Op = Callable[[str, str], bool]


def paced(
    machines: int, seconds: float, pace_s: float, items: int, readers: int,
    make_ops: Callable[[int], tuple[Op, Op, Callable[[], None]]], seed0: int,
) -> tuple[list[float], list[float], int]:
    """Run ``machines`` threads; each, every ``pace_s``, checks out a random item to a random
    reader, then checks it in. Returns check-out and check-in latencies (ms), refusals."""
    outs: list[float] = []
    ins: list[float] = []
    refused = [0]
    lock = threading.Lock()
    ready = threading.Barrier(machines + 1)
    start_at = [0.0]

    def machine(n: int) -> None:
        out_op, in_op, close = make_ops(n)
        rng = random.Random(seed0 + n)
        mine_out: list[float] = []
        mine_in: list[float] = []
        # Before the clock: one check-out and check-in of an item of its own (from the reserved
        # tail), so connections and statement caches are warm on both paths alike.
        warm = f"BC{items - n:07d}"
        assert out_op(warm, "T000001") and in_op(warm, "T000001"), f"warm-up of {warm} refused"
        ready.wait()
        next_op = start_at[0] + rng.random() * pace_s
        deadline = start_at[0] + seconds
        while True:
            time.sleep(max(0.0, next_op - time.time()))
            next_op += pace_s
            if time.time() >= deadline:
                break
            code = f"BC{rng.randint(1, items - RESERVED):07d}"
            ticket = f"T{rng.randint(1, readers):06d}"
            t = time.perf_counter()
            if not out_op(code, ticket):
                with lock:
                    refused[0] += 1
                continue
            mine_out.append((time.perf_counter() - t) * 1000)
            time.sleep(max(0.0, next_op - time.time()))
            next_op += pace_s
            t = time.perf_counter()
            assert in_op(code, ticket), f"check-in of {code} refused"
            mine_in.append((time.perf_counter() - t) * 1000)
        close()
        with lock:
            outs.extend(mine_out)
            ins.extend(mine_in)

    threads = [threading.Thread(target=machine, args=(n,)) for n in range(machines)]
    for t in threads:
        t.start()
    start_at[0] = time.time() + 1.0
    ready.wait()
    for t in threads:
        t.join()
    return outs, ins, refused[0]


def sip2_ops(port: int, log_dir: str) -> Callable[[int], tuple[Op, Op, Callable[[], None]]]:
    """Each machine: a ``Sip2`` client (PyPI) logged in as ``kiosk-N``."""
    from Sip2.sip2 import Sip2

    class QuietSip2(Sip2):  # type: ignore[misc]
        """The same client; its ``__del__`` prints "Sip2 object unset" at every collection,
        which would fill the bench's output. This one only closes the socket."""

        def __del__(self) -> None:
            with contextlib.suppress(Exception):
                self.disconnect()

    def make(n: int) -> tuple[Op, Op, Callable[[], None]]:
        sip: Any = QuietSip2()
        sip.hostName, sip.hostPort, sip.tlsEnable = "127.0.0.1", port, False
        sip.logfile_path, sip.loglevel = log_dir, "CRITICAL"
        sip.institutionId, sip.scLocation, sip.socketTimeout = "qor", "desk", 30
        sip.connect()
        login = sip.sip_login_response(sip.get_response(sip.sip_login_request(
            f"kiosk-{n}", PASSWORD)))
        assert login["fixed"]["Ok"] == "1", f"kiosk-{n} could not log in"

        def out_op(code: str, ticket: str) -> bool:
            sip.patron = ticket
            r = sip.sip_checkout_response(sip.get_response(sip.sip_checkout_request(code)))
            return bool(r["fixed"]["Ok"] == "1")

        def in_op(code: str, _ticket: str) -> bool:
            r = sip.sip_checkin_response(sip.get_response(sip.sip_checkin_request(code)))
            return bool(r["fixed"]["Ok"] == "1")

        return out_op, in_op, sip.disconnect

    return make


def domain_ops(url: str) -> Callable[[int], tuple[Op, Op, Callable[[], None]]]:
    """Each thread: the domain API in this process, a committed session per operation."""
    engine = make_engine(url, pool_size=30)
    sessions = session_factory(engine)

    def make(n: int) -> tuple[Op, Op, Callable[[], None]]:
        def out_op(code: str, ticket: str) -> bool:
            with sessions() as s:
                try:
                    circulation.check_out(s, item_code=code, ticket_number=ticket,
                                          service_point="desk", actor=f"thread{n}")
                except LoanRefused:
                    return False
                s.commit()
            return True

        def in_op(code: str, _ticket: str) -> bool:
            with sessions() as s:
                circulation.check_in(s, item_code=code, actor=f"thread{n}")
                s.commit()
            return True

        return out_op, in_op, lambda: None

    return make


def line(name: str, xs: list[float], anchor: list[float]) -> str:
    return (
        f"  {name:9s} n={len(xs):6,d}  SIP2 p50 {pct(xs, 50):6.2f} / p99 {pct(xs, 99):6.2f} ms"
        f"   domain API p50 {pct(anchor, 50):6.2f} / p99 {pct(anchor, 99):6.2f} ms"
        f"   ratio p50 {pct(xs, 50) / pct(anchor, 50):5.2f}x  p99 "
        f"{pct(xs, 99) / pct(anchor, 99):5.2f}x"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--readers", type=int, default=10_000)
    ap.add_argument("--machines", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--pace-ms", type=float, default=1000.0)
    args = ap.parse_args()
    admin = os.environ.get("QOR_TEST_DATABASE_URL")
    if not admin:
        print("QOR_TEST_DATABASE_URL is not set (PostgreSQL from infra/test-services)")
        return 2
    name = f"qor_sip2_bench_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    work = tempfile.mkdtemp(prefix="qor-sip2-bench-")
    server: subprocess.Popen[str] | None = None
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        load(url, args.items, args.readers)
        hashed = hash_password(PASSWORD)
        accounts = {f"kiosk-{n}": {"password_hash": hashed, "service_point": "desk"}
                    for n in range(args.machines)}
        env = {k: v for k, v in os.environ.items() if not k.startswith("QOR_")}
        env.update(QOR_DATA_DIR=work, QOR_DATABASE_URL=url, QOR_SIP2_INSTITUTION="qor",
                   QOR_SIP2_ACCOUNTS=json.dumps(accounts))
        log = Path(work, "server.log").open("w")  # noqa: SIM115 - closed with the server
        server = subprocess.Popen(
            [sys.executable, "-m", "qor", "sip2", "serve", "--port", "0"], env=env,
            stdout=subprocess.PIPE, stderr=log, text=True, stdin=subprocess.DEVNULL)
        assert server.stdout is not None
        first = server.stdout.readline()
        if "listening on" not in first:
            print(f"qor sip2 serve did not start: {Path(work, 'server.log').read_text()}")
            return 1
        port = int(first.split("listening on ")[1].split(" ")[0].rsplit(":", 1)[1])
        print(
            f"loaded {args.items:,} items, {args.readers:,} readers; `qor sip2 serve` on port "
            f"{port}; {args.machines} machines, one operation each every {args.pace_ms:.0f} "
            f"ms, {args.seconds:.0f} s per run; load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores"
        )
        pace = args.pace_ms / 1000
        s_out, s_in, s_ref = paced(args.machines, args.seconds, pace, args.items, args.readers,
                                   sip2_ops(port, work), seed0=1)
        d_out, d_in, d_ref = paced(args.machines, args.seconds, pace, args.items, args.readers,
                                   domain_ops(url), seed0=1_000)
        print(f"\nSIP2 through the Sip2 client (PyPI) vs the domain API in-process "
              f"({s_ref} / {d_ref} refused: item already out)")
        print(line("check-out", s_out, d_out))
        print(line("check-in", s_in, d_in))
        print(line("all", s_out + s_in, d_out + d_in))
        print(f"  mean: SIP2 {statistics.fmean(s_out + s_in):.2f} ms, domain API "
              f"{statistics.fmean(d_out + d_in):.2f} ms; load average now "
              f"{os.getloadavg()[0]:.1f}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        with admin_engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
