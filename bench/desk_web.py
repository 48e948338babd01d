"""Check-out + check-in through the staff console's web desk at 25 concurrent desks, against the
same operations through the domain API in-process (issue 17).

Usage::

    QOR_TEST_DATABASE_URL=postgresql+psycopg://qor@127.0.0.1:55432/qor_test \\
        .venv/bin/python bench/desk_web.py [--desks 25] [--seconds 20] [--pace-ms 500]

Creates a fresh PostgreSQL database on that server, migrates it, and makes (through the domain
API) a lending desk, one reader and one librarian account per desk, and ``--items-per-desk``
processed items per desk. Then, on the same data:

* **web**: the e-library app (``elibrary.web.create_app``, the console included) served by
  uvicorn in its own process on 127.0.0.1; ``--desks`` threads in this process, each an HTTP
  client (httpx, keep-alive) signed in as its own librarian, post the desk's forms — check-out
  (``/staff/desk/out``: reader ticket, service point, barcode) then check-in
  (``/staff/desk/in``) — and wait for the rendered desk page, as a browser would. Every request
  carries the session cookie and the anti-forgery token; every operation lands in the audit log.
* **domain**: the same check-out + check-in, ``catalog_sync.circulation.check_out`` /
  ``check_in`` with the policy and the register's calendar (as ``qor loans out|in``) and a
  commit each, from ``--desks`` threads in this process (the anchor: what the
  web adds is HTTP, sign-in session, CSRF, role check and rendering the page).

Each desk starts one operation every ``--pace-ms`` (default 1000: a librarian scanning a book
every second is far busier than a real desk), the desks spread evenly over the period; ``--pace-ms
0`` saturates. Prints p50/p99 per
operation for both and the ratios. Goal: web p99 < 100 ms. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from catalog_sync import circulation, readers, register
from catalog_sync.calendar_kz import load_calendar
from catalog_sync.db import make_engine, session_factory, upgrade
from elibrary.accounts import create_staff_account

PASSWORD = "bench-desk-password"  # noqa: S105 - the bench's own throwaway accounts
_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def barcode(desk: int, n: int) -> str:
    return f"4{desk:04d}{n:08d}"


def prepare(url: str, desks: int, per_desk: int) -> None:
    sessions = session_factory(make_engine(url))
    with sessions() as s, s.begin():
        circulation.add_service_point(s, code="DESK", name="Abonement", kind="lending_desk",
                                      actor="bench")
        batch = register.open_receipt_batch(s, act_number="BENCH-DESK",
                                            received_on=date(2026, 1, 1), actor="bench")
        rec = register.add_record(s, title="Bench title", authors=[], actor="bench")
        items = [register.BulkItem(record_id=rec.id, source="purchase", barcode=barcode(d, n),
                                   location="Hall-1/S1", status="available")
                 for d in range(desks) for n in range(per_desk)]
        register.bulk_receive(s, batch=batch, items=items, actor="bench")
        for d in range(desks):
            readers.add_reader(s, ticket_number=f"D-{d:04d}", name=f"Reader {d}",
                               category="adult", actor="bench")
            create_staff_account(s, username=f"desk{d}", role="librarian", password=PASSWORD,
                                 actor="bench")


def serve(url: str, port: int, root: str) -> None:
    """The e-library app under uvicorn (a separate process: the server has its own GIL)."""
    import uvicorn

    from elibrary.config import ElibraryConfig
    from elibrary.web import create_app
    from storage import LocalKeyring, open_store

    config = ElibraryConfig(secret_key=b"bench secret key for the desk benchmark, 48 b",
                            base_url=f"http://127.0.0.1:{port}")
    app = create_app(config, sessions=session_factory(make_engine(url, pool_size=30)),
                     open_store=lambda uri: open_store(uri),
                     keyring=LocalKeyring(Path(root) / "keys"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class Desk:
    """One librarian's browser: cookies kept by hand (they are ``Secure``; this is plain HTTP
    on localhost, which browsers treat as secure but httpx does not)."""

    def __init__(self, base: str, n: int) -> None:
        self.base = base
        self.n = n
        self.client = httpx.Client(base_url=base, timeout=60)
        self.cookies: dict[str, str] = {}
        self.token = ""

    def _keep(self, r: httpx.Response) -> None:
        for header in r.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value and "max-age=0" not in header.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)

    def request(self, method: str, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        r = self.client.request(method, path, data=data, headers={"cookie": cookie})
        self._keep(r)
        m = _TOKEN.search(r.text)
        if m:
            self.token = m.group(1)
        return r

    def sign_in(self) -> None:
        self.request("GET", "/staff/login")
        r = self.request("POST", "/staff/login", {"csrf_token": self.token,
                                                  "name": f"desk{self.n}", "password": PASSWORD})
        if r.status_code != 303:
            raise SystemExit(f"desk {self.n}: sign-in answered {r.status_code}")
        self.request("GET", "/staff/desk?point=DESK")

    def out(self, code: str) -> None:
        r = self.request("POST", "/staff/desk/out", {
            "csrf_token": self.token, "ticket": f"D-{self.n:04d}", "point": "DESK",
            "barcode": code})
        if r.status_code != 200 or "id=\"message\"" not in r.text:
            raise SystemExit(f"desk {self.n}: check-out of {code} answered {r.status_code}")

    def back(self, code: str) -> None:
        r = self.request("POST", "/staff/desk/in", {"csrf_token": self.token, "point": "DESK",
                                                    "barcode": code})
        if r.status_code != 200 or "id=\"message\"" not in r.text:
            raise SystemExit(f"desk {self.n}: check-in of {code} answered {r.status_code}")


def run_desks(desks: int, seconds: float, pace: float, per_desk: int,
              make: Callable[[int], tuple[Callable[[str], None], Callable[[str], None]]]
              ) -> tuple[list[float], list[float], int]:
    """Each desk: check-out then check-in of its items in turn, one operation per ``pace``."""
    outs: list[float] = []
    ins: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    ready = threading.Barrier(desks + 1)

    def desk(n: int) -> None:
        try:
            do_out, do_in = make(n)
            warm = barcode(n, per_desk - 1)  # a first round, not measured (connections, caches)
            do_out(warm)
            do_in(warm)
        except BaseException as e:
            errors.append(e)
            ready.abort()
            return
        ready.wait()
        end = time.monotonic() + seconds
        k = 0
        # Desks are independent: each starts at its own offset within the pace (all starting
        # together would make every operation a burst of 25 at once, which no library has).
        next_at = time.monotonic() + pace * n / desks
        try:
            while time.monotonic() < end:
                code = barcode(n, k % per_desk)
                k += 1
                for op, into in ((do_out, outs), (do_in, ins)):
                    if pace:
                        time.sleep(max(0.0, next_at - time.monotonic()))
                        next_at = max(next_at + pace, time.monotonic())
                    t = time.perf_counter()
                    op(code)
                    dt = time.perf_counter() - t
                    with lock:
                        into.append(dt)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=desk, args=(n,)) for n in range(desks)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"a desk failed: {errors[0]}")
    return outs, ins, int(time.monotonic() - t0)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


def report(name: str, outs: list[float], ins: list[float], secs: int) -> tuple[float, float]:
    both = outs + ins
    print(f"{name:7s} check-out p50 {pct(outs, 50):6.1f} ms p99 {pct(outs, 99):6.1f} ms | "
          f"check-in p50 {pct(ins, 50):6.1f} ms p99 {pct(ins, 99):6.1f} ms | "
          f"all p50 {pct(both, 50):6.1f} ms p99 {pct(both, 99):6.1f} ms | "
          f"{len(both)} operations in {secs} s ({len(both) / max(secs, 1):.0f}/s, "
          f"mean {statistics.fmean(both) * 1000:.1f} ms)", flush=True)
    return pct(both, 50), pct(both, 99)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--desks", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--pace-ms", type=float, default=1000.0)
    ap.add_argument("--items-per-desk", type=int, default=50)
    args = ap.parse_args()
    admin = os.environ.get("QOR_TEST_DATABASE_URL")
    if not admin:
        print("QOR_TEST_DATABASE_URL is not set (PostgreSQL from infra/test-services)")
        return 2
    name = f"qor_desk_bench_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    server: multiprocessing.Process | None = None
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        t0 = time.perf_counter()
        prepare(url, args.desks, args.items_per_desk)
        print(f"{args.desks} desks, readers and librarians, {args.desks * args.items_per_desk} "
              f"items made through the domain API in {time.perf_counter() - t0:.1f} s; "
              f"pace {args.pace_ms:.0f} ms per operation per desk, {args.seconds:.0f} s per run; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        pace = args.pace_ms / 1000
        port = free_port()
        root = tempfile.mkdtemp(prefix="qor-desk-bench-")
        server = multiprocessing.get_context("spawn").Process(target=serve,
                                                              args=(url, port, root))
        server.start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/staff/login", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or not server.is_alive():
                    raise SystemExit("the web server did not start") from None
                time.sleep(0.2)

        def web_desk(n: int) -> tuple[Callable[[str], None], Callable[[str], None]]:
            d = Desk(base, n)
            d.sign_in()
            return d.out, d.back

        w_outs, w_ins, w_secs = run_desks(args.desks, args.seconds, pace, args.items_per_desk,
                                          web_desk)
        web50, web99 = report("web", w_outs, w_ins, w_secs)
        server.terminate()
        server.join(10)
        server = None

        sessions = session_factory(make_engine(url, pool_size=args.desks))

        def domain_desk(n: int) -> tuple[Callable[[str], None], Callable[[str], None]]:
            # As `qor loans out|in` call them: the policy and the register's calendar.
            policy = circulation.CirculationPolicy(debt_limit=0)

            def do_out(code: str) -> None:
                with sessions() as s:
                    circulation.check_out(s, item_code=code, ticket_number=f"D-{n:04d}",
                                          service_point="DESK", actor=f"bench:desk{n}",
                                          policy=policy, calendar=load_calendar(s))
                    s.commit()

            def do_in(code: str) -> None:
                with sessions() as s:
                    circulation.check_in(s, item_code=code, actor=f"bench:desk{n}",
                                         policy=policy, calendar=load_calendar(s))
                    s.commit()

            return do_out, do_in

        d_outs, d_ins, d_secs = run_desks(args.desks, args.seconds, pace, args.items_per_desk,
                                          domain_desk)
        dom50, dom99 = report("domain", d_outs, d_ins, d_secs)
        print(f"ratio web/domain: p50 {web50 / dom50:.1f}x, p99 {web99 / dom99:.1f}x; "
              f"goal web p99 < 100 ms: {'met' if web99 < 100 else 'NOT met'} "
              f"({web99:.1f} ms)", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.join(10)
        with admin_engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
