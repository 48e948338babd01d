"""Check-out/check-in load on PostgreSQL: 1,000,000 items, 100,000 readers, 25 concurrent desks.

Usage::

    QOR_TEST_DATABASE_URL=postgresql+psycopg://qor@127.0.0.1:55432/qor_test \
        .venv/bin/python bench/circulation_load.py [--items 1000000] [--readers 100000] \
        [--desks 25] [--seconds 60] [--pace-ms 1000]

Creates a fresh database on that server, migrates it, and loads the fixture with PostgreSQL
``COPY`` (not through ``register.bulk_receive``: the fixture is not what is measured, and COPY
loads 1M items in about a minute). Desks are threads — the librarians' clients — served by
``--workers`` processes (default: two per core), as a circulation service would be deployed; each
request runs :func:`catalog_sync.circulation.check_out` (a random item to a random reader) and
commits, then :func:`~catalog_sync.circulation.check_in` and commits — the full code path with
every refusal check, the partial unique index, the closed-loan trigger, and (issue 17) the
loan's row appended to the register's hash-chained audit log (issue 20: to whichever of its 32
chains is free, written in the same statement as the loan). The latency is what
the desk sees: waiting for a worker, the hand-over and the operation. ``--workers 0`` gives every
desk a process of its own instead (on 2 cores, 25 processes and their 25 database backends
mostly wait for each other: fewer operations per second, not more).

Two runs on the same data:

* **paced**: each desk starts one operation every ``--pace-ms`` (default 1000 ms — already far
  busier than a librarian scanning books); the latency a librarian sees at 25 busy desks.
* **saturated**: no pause at all; the most operations per second this machine sustains, and the
  latency when every desk queues for the same two cores (by Little's law, 25 desks / throughput).

Prints p50/p99 latency per operation and operations per second for each. The goals: paced p99 <
20 ms; saturated >= 1,000 operations/s with p99 < 50 ms. The anchor is FOLIO's published
check-in average of about 340 ms at 25 users (a published figure, not measured in this run).

Then, on the same data, one desk at a time:

* **lookup** by inventory number: ``register.item_facts`` (the desk's lean path, issue 20) and
  ``register.get_item`` (the ORM), each against the very ``SELECT`` it sends run by bare psycopg
  (prepared, one connection) — the anchor; in one session and a session per lookup, all four
  interleaved code by code; p50/p99 and the ratios, ``--lookup-runs`` times (default 2) so a
  second run shows whether the verdict holds.
* **a reader with 1,000 open loans vs one with none**: check-out + check-in of fresh items,
  alternating between the two readers; p50/p99 and the ratio (Koha bug 30004 makes such a
  reader's check-out take seconds).
* **statements per operation**: what one check-out and one check-in send to the server.

The database is dropped at the end. The last ``RESERVED`` items are kept out of the desks' draw
for these two measurements.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing.queues import Queue

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import circulation
from catalog_sync.db import make_engine, session_factory, upgrade
from catalog_sync.errors import LoanRefused

FOLIO_CHECKIN_MS = 340.0
RESERVED = 2_000  # the last items: 1,000 on the heavy reader's loans, 1,000 for the ratio runs
HEAVY_LOANS = 1_000


def _copy(conn: psycopg.Connection, sql: str, rows: io.StringIO) -> None:
    rows.seek(0)
    with conn.cursor() as cur, cur.copy(sql) as cp:
        while chunk := rows.read(1 << 20):
            cp.write(chunk)


def load(url: str, items: int, readers: int) -> None:
    now = datetime.now(UTC).isoformat()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        records = max(1, items // 10)
        buf = io.StringIO()
        for i in range(1, records + 1):
            buf.write(f"{i}\tTitle {i}\t[]\tbook\tf\t{now}\n")
        _copy(
            conn,
            "COPY bib_records (id, title, authors, material_type, legal_deposit, "
            "created_at) FROM STDIN",
            buf,
        )
        conn.execute(
            "INSERT INTO receipt_batches (id, act_number, received_on, created_at, "
            "created_by) VALUES (1, 'BENCH', '2024-01-01', now(), 'bench')"
        )
        for start in range(0, items, 200_000):
            buf = io.StringIO()
            for i in range(start + 1, min(items, start + 200_000) + 1):
                inv = f"B{i:07d}"
                buf.write(
                    f"{i}\t{inv}\t{inv}\t{(i - 1) // 10 + 1}\t1\tpurchase\tBC{i:07d}\t"
                    f"Hall-1\tavailable\tf\tf\tf\t{now}\t{now}\n"
                )
            _copy(
                conn,
                "COPY items (id, inventory_number, sort_key, record_id, receipt_batch_id, "
                "source, barcode, location, status, value_scientific, value_historical, "
                "value_artistic, created_at, updated_at) FROM STDIN",
                buf,
            )
        buf = io.StringIO()
        for i in range(1, readers + 1):
            buf.write(f"{i}\tT{i:06d}\tReader {i}\tadult\tactive\t2024-01-01\t{now}\t{now}\n")
        _copy(
            conn,
            "COPY readers (id, ticket_number, name, category, status, registered_on, "
            "created_at, updated_at) FROM STDIN",
            buf,
        )
        conn.execute(
            "INSERT INTO service_points (code, name, kind) VALUES "
            "('desk', 'Lending desk', 'lending_desk')"
        )
        # Reader "HEAVY" with 1,000 open loans (not overdue), reader "LIGHT" with none.
        conn.execute(
            "INSERT INTO readers (id, ticket_number, name, category, status, registered_on, "
            "created_at, updated_at) VALUES "
            "(%s, 'HEAVY', 'Heavy reader', 'adult', 'active', '2024-01-01', now(), now()), "
            "(%s, 'LIGHT', 'Light reader', 'adult', 'active', '2024-01-01', now(), now())",
            (readers + 1, readers + 2),
        )
        first = items - RESERVED + 1
        buf = io.StringIO()
        for i in range(first, first + HEAVY_LOANS):
            buf.write(f"{i}\t{readers + 1}\t1\t{now}\t2999-01-01\t0\tbench\n")
        _copy(
            conn,
            "COPY loans (item_id, reader_id, service_point_id, loaned_at, due_on, renewals, "
            "loaned_by) FROM STDIN",
            buf,
        )
        conn.execute(
            "UPDATE items SET status = 'on_loan' WHERE id BETWEEN %s AND %s",
            (first, first + HEAVY_LOANS - 1),
        )
        for table in ("bib_records", "items", "readers", "loans"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        conn.execute("ANALYZE")
        conn.commit()


Latencies = tuple[list[float], list[float], int]


def desk(
    url: str,
    seed: int,
    items: int,
    readers: int,
    start_at: float,
    seconds: float,
    pace_s: float,
    out: Queue[Latencies],
) -> None:
    """One desk: check out and check in until the time is up; sends its latencies to ``out``."""
    engine = make_engine(url, pool_size=1)
    sessions = session_factory(engine)
    rng = random.Random(seed)
    outs: list[float] = []
    ins: list[float] = []
    refused = 0
    # Before the clock starts: connect, and run one check-out/check-in of an item of this desk's
    # own so the statement caches are warm (a desk's client runs for hours, not ten scans).
    warm = f"BC{seed % items + 1:07d}"
    with sessions() as s:
        circulation.check_out(
            s,
            item_code=warm,
            ticket_number=f"T{seed % readers + 1:06d}",
            service_point="desk",
            actor=f"desk{seed}",
        )
        s.commit()
    with sessions() as s:
        circulation.check_in(s, item_code=warm, actor=f"desk{seed}")
        s.commit()
    while time.time() < start_at:
        time.sleep(0.005)
    deadline = start_at + seconds
    next_op = start_at + rng.random() * pace_s  # desks do not all scan at the same instant
    while True:
        if pace_s:
            pause = next_op - time.time()
            if pause > 0:
                time.sleep(pause)
            next_op += pace_s
        if time.time() >= deadline:
            break
        code = f"BC{rng.randint(1, items - RESERVED):07d}"
        ticket = f"T{rng.randint(1, readers):06d}"
        t = time.perf_counter()
        with sessions() as s:
            try:
                circulation.check_out(
                    s,
                    item_code=code,
                    ticket_number=ticket,
                    service_point="desk",
                    actor=f"desk{seed}",
                )
                s.commit()
            except LoanRefused:
                s.rollback()
                refused += 1
                continue
        outs.append((time.perf_counter() - t) * 1000)
        if pace_s:
            pause = next_op - time.time()
            if pause > 0:
                time.sleep(pause)
            next_op += pace_s
        t = time.perf_counter()
        with sessions() as s:
            circulation.check_in(s, item_code=code, actor=f"desk{seed}")
            s.commit()
        ins.append((time.perf_counter() - t) * 1000)
    engine.dispose()
    out.put((outs, ins, refused))


def run(url: str, args: argparse.Namespace, pace_s: float) -> tuple[float, Latencies]:
    """Start the desks, wait for them, gather what they measured."""
    if args.workers:
        return run_served(url, args, pace_s)
    ctx = multiprocessing.get_context("fork")
    out: Queue[Latencies] = ctx.Queue()
    start_at = time.time() + 5.0 + args.desks * 0.1
    procs = [
        ctx.Process(
            target=desk,
            args=(
                url,
                1000 * round(pace_s * 1000) + i,
                args.items,
                args.readers,
                start_at,
                args.seconds,
                pace_s,
                out,
            ),
        )
        for i in range(args.desks)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    outs = [x for r in results for x in r[0]]
    ins = [x for r in results for x in r[1]]
    return args.seconds, (outs, ins, sum(r[2] for r in results))


# --- desks served by a pool of worker processes (how a circulation service is deployed) -------

_sessions: sessionmaker[Session] | None = None


def _init_worker(url: str) -> None:
    global _sessions
    _sessions = session_factory(make_engine(url, pool_size=1))


def _serve(op: str, code: str, ticket: str, actor: str) -> bool:
    """One desk request in a worker: check-out (False if refused) or check-in, committed."""
    assert _sessions is not None
    with _sessions() as s:
        if op == "out":
            try:
                circulation.check_out(
                    s, item_code=code, ticket_number=ticket, service_point="desk", actor=actor
                )
            except LoanRefused:
                return False
        else:
            circulation.check_in(s, item_code=code, actor=actor)
        s.commit()
    return True


def run_served(url: str, args: argparse.Namespace, pace_s: float) -> tuple[float, Latencies]:
    """Desks are threads (the librarians' clients); ``--workers`` processes serve them. The
    latency is what the desk sees: queueing for a worker, the hand-over, and the operation."""
    ctx = multiprocessing.get_context("fork")
    outs: list[float] = []
    ins: list[float] = []
    refused = [0]
    lock = threading.Lock()
    with ProcessPoolExecutor(
        args.workers, mp_context=ctx, initializer=_init_worker, initargs=(url,)
    ) as pool:
        # Warm every worker (connection, statement caches) before the clock starts.
        warm = [f"BC{i + 1:07d}" for i in range(args.workers * 4)]
        for op in ("out", "in"):
            list(
                pool.map(
                    _serve, [op] * len(warm), warm, ["T000001"] * len(warm), ["warm"] * len(warm)
                )
            )
        start_at = time.time() + 1.0
        deadline = start_at + args.seconds

        def one_desk(seed: int) -> None:
            rng = random.Random(seed)
            mine_out: list[float] = []
            mine_in: list[float] = []
            n_refused = 0
            while time.time() < start_at:
                time.sleep(0.005)
            next_op = start_at + rng.random() * pace_s
            while True:
                if pace_s:
                    time.sleep(max(0.0, next_op - time.time()))
                    next_op += pace_s
                if time.time() >= deadline:
                    break
                code = f"BC{rng.randint(1, args.items - RESERVED):07d}"
                ticket = f"T{rng.randint(1, args.readers):06d}"
                t = time.perf_counter()
                if not pool.submit(_serve, "out", code, ticket, f"desk{seed}").result():
                    n_refused += 1
                    continue
                mine_out.append((time.perf_counter() - t) * 1000)
                if pace_s:
                    time.sleep(max(0.0, next_op - time.time()))
                    next_op += pace_s
                t = time.perf_counter()
                pool.submit(_serve, "in", code, ticket, f"desk{seed}").result()
                mine_in.append((time.perf_counter() - t) * 1000)
            with lock:
                outs.extend(mine_out)
                ins.extend(mine_in)
                refused[0] += n_refused

        seed0 = 1000 * round(pace_s * 1000)
        desks = [threading.Thread(target=one_desk, args=(seed0 + i,)) for i in range(args.desks)]
        for d in desks:
            d.start()
        for d in desks:
            d.join()
    return args.seconds, (outs, ins, refused[0])


def pct(xs: list[float], q: int) -> float:
    """The ``q``-th percentile."""
    return statistics.quantiles(xs, n=100)[q - 1] if len(xs) > 1 else float("nan")


def report(label: str, elapsed: float, lat: Latencies, desks: int) -> None:
    """Print one run's figures."""
    outs, ins, refused = lat
    ops = len(outs) + len(ins)
    print(
        f"\n{label}: {desks} desks, {elapsed:.0f} s, {ops:,} operations "
        f"({ops / elapsed:,.0f} ops/s), {refused} refused (item already out)"
    )
    for name, xs in (("check-out", outs), ("check-in", ins), ("all", outs + ins)):
        print(
            f"  {name:9s} n={len(xs):7,d}  p50 {pct(xs, 50):7.2f} ms  "
            f"p99 {pct(xs, 99):7.2f} ms  mean {statistics.fmean(xs):7.2f} ms"
        )
    mean_in = statistics.fmean(ins)
    print(
        f"  check-in mean {mean_in:.1f} ms vs FOLIO's published ~{FOLIO_CHECKIN_MS:.0f} ms at "
        f"25 users: {FOLIO_CHECKIN_MS / mean_in:.1f}x (published figure, not measured here)"
    )
    print(f"  goal p99 < 20 ms: {'met' if pct(outs + ins, 99) < 20 else 'NOT met'}")


#: per mode: per path ("orm", "lean"), the path's times and the anchor's on the same codes
Lookups = dict[str, dict[str, tuple[list[float], list[float]]]]


def measure_lookups(url: str, items: int, n: int, seed: int) -> Lookups:
    """Lookup by inventory number, two Qor paths each against bare psycopg sending the very
    statement that path sends (prepared by psycopg, one connection):

    * ``orm``: ``register.get_item`` (an ORM ``Item``, the path callers that change it take);
    * ``lean``: ``register.item_facts`` (issue 20: a frozen ``ItemFacts``, the desk's path);

    in two modes:

    * ``in one session``: many lookups in one open session/transaction (as ``register_scale``
      measures it) vs the same on one psycopg connection inside a transaction;
    * ``a transaction each``: a session per lookup (pool checkout, BEGIN, SELECT, ROLLBACK — a
      desk's scan) vs psycopg doing BEGIN, SELECT, ROLLBACK per lookup.

    The four are interleaved code by code (in a rotating order), so a burst of load on the
    machine falls on all of them alike rather than on whichever ran then.
    """
    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql

    from catalog_sync import register
    from catalog_sync.models import Item

    rng = random.Random(seed)
    sample = [f"B{rng.randint(1, items):07d}" for _ in range(n)]
    warmup = sample[:200]
    stmt = select(Item).where(Item.inventory_number == "x")
    orm_sql = str(stmt.compile(dialect=postgresql.dialect())).replace(
        "%(inventory_number_1)s", "%s"
    )
    lean_sql = register.facts_sql("postgresql", "inventory_number")
    engine = make_engine(url, pool_size=1)
    sessions = session_factory(engine)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    out: Lookups = {}

    def timed(fns: list[Callable[[str], object]]) -> list[list[float]]:
        for inv in warmup:
            for fn in fns:
                fn(inv)
        xs: list[list[float]] = [[] for _ in fns]
        order = list(range(len(fns)))
        for k, inv in enumerate(sample):
            for j in order[k % len(fns) :] + order[: k % len(fns)]:
                t = time.perf_counter()
                fns[j](inv)
                xs[j].append((time.perf_counter() - t) * 1000)
        return xs

    with sessions() as s, psycopg.connect(dsn) as conn:

        def orm_in_session(inv: str) -> None:
            register.get_item(s, inv)
            s.expunge_all()

        def lean_in_session(inv: str) -> None:
            register.item_facts(s, inv)

        def raw_orm_sql(inv: str) -> None:
            conn.execute(orm_sql, (inv,), prepare=True).fetchone()

        def raw_lean_sql(inv: str) -> None:
            conn.execute(lean_sql, (inv,), prepare=True).fetchone()

        orm, raw_o, lean, raw_l = timed(
            [orm_in_session, raw_orm_sql, lean_in_session, raw_lean_sql]
        )
        out["in one session"] = {"orm": (orm, raw_o), "lean": (lean, raw_l)}

        def orm_per_tx(inv: str) -> None:
            with sessions() as s2:
                register.get_item(s2, inv)

        def lean_per_tx(inv: str) -> None:
            with sessions() as s2:
                register.item_facts(s2, inv)

        def raw_orm_per_tx(inv: str) -> None:
            conn.execute(orm_sql, (inv,), prepare=True).fetchone()
            conn.rollback()

        def raw_lean_per_tx(inv: str) -> None:
            conn.execute(lean_sql, (inv,), prepare=True).fetchone()
            conn.rollback()

        s.rollback()
        conn.rollback()
        orm, raw_o, lean, raw_l = timed([orm_per_tx, raw_orm_per_tx, lean_per_tx, raw_lean_per_tx])
        out["a transaction each"] = {"orm": (orm, raw_o), "lean": (lean, raw_l)}
    engine.dispose()
    return out


def report_lookups(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """Print ``--lookup-runs`` runs of :func:`measure_lookups` (fresh codes each); returns the
    lean path's p99 ratio per mode and run."""
    paths = {"orm": "register.get_item  ", "lean": "register.item_facts"}
    lean_p99: dict[str, list[float]] = {}
    for run_no in range(1, args.lookup_runs + 1):
        print(
            f"\nlookup by inventory number, run {run_no} of {args.lookup_runs}: "
            f"{args.lookups:,} codes, each path and its anchor (bare psycopg, the same "
            f"statement) interleaved; load average {os.getloadavg()[0]:.1f}"
        )
        for mode, by_path in measure_lookups(url, args.items, args.lookups, seed=run_no).items():
            print(f"  {mode}:")
            for path, (qor, raw) in by_path.items():
                r50, r99 = pct(qor, 50) / pct(raw, 50), pct(qor, 99) / pct(raw, 99)
                if path == "lean":
                    lean_p99.setdefault(mode, []).append(r99)
                print(
                    f"    {paths[path]} p50 {pct(qor, 50):.3f} / p99 {pct(qor, 99):.3f} ms; "
                    f"psycopg p50 {pct(raw, 50):.3f} / p99 {pct(raw, 99):.3f} ms; "
                    f"ratio p50 {r50:.2f}x, p99 {r99:.2f}x "
                    f"(goal p99 <= 2x: {'met' if r99 <= 2 else 'NOT met'})"
                )
    return lean_p99


def measure_heavy_reader(url: str, items: int, rounds: int) -> tuple[list[float], list[float]]:
    """Check-out + check-in (each committed) for reader HEAVY (1,000 open loans) and LIGHT
    (none), alternating, on fresh items from the reserved tail."""
    engine = make_engine(url, pool_size=1)
    sessions = session_factory(engine)
    first = items - RESERVED + HEAVY_LOANS + 1
    times: dict[str, list[float]] = {"HEAVY": [], "LIGHT": []}
    pool = [f"BC{i:07d}" for i in range(first, items + 1)]
    for n in range(rounds * 2 + 40):
        ticket = "HEAVY" if n % 2 == 0 else "LIGHT"
        code = pool[n % len(pool)]
        t = time.perf_counter()
        with sessions() as s:
            circulation.check_out(
                s, item_code=code, ticket_number=ticket, service_point="desk", actor="bench"
            )
            s.commit()
        with sessions() as s:
            circulation.check_in(s, item_code=code, actor="bench")
            s.commit()
        if n >= 40:  # the first rounds warm the statement caches
            times[ticket].append((time.perf_counter() - t) * 1000)
    engine.dispose()
    return times["HEAVY"], times["LIGHT"]


def count_statements(url: str, items: int) -> tuple[int, int]:
    """Statements sent for one check-out and one check-in (each committed), on a reserved item;
    BEGIN and COMMIT are two more round trips each."""
    from sqlalchemy import event

    engine = make_engine(url, pool_size=1)
    sessions = session_factory(engine)
    sent = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: object) -> None:
        sent[0] += 1

    code = f"BC{items:07d}"
    counts = []
    for _ in range(3):  # the last round: statement caches warm
        sent[0] = 0
        with sessions() as s:
            circulation.check_out(
                s, item_code=code, ticket_number="LIGHT", service_point="desk", actor="bench"
            )
            s.commit()
        out = sent[0]
        sent[0] = 0
        with sessions() as s:
            circulation.check_in(s, item_code=code, actor="bench")
            s.commit()
        counts = [out, sent[0]]
    engine.dispose()
    return counts[0], counts[1]


def load_runs(url: str, args: argparse.Namespace) -> tuple[float, float, float]:
    """The paced and the saturated run; returns paced p99, saturated ops/s and p99."""
    elapsed, lat = run(url, args, args.pace_ms / 1000)
    served = f"{args.workers} worker processes" if args.workers else "one process per desk"
    report(
        f"paced (one operation per desk every {args.pace_ms:.0f} ms; {served})",
        elapsed,
        lat,
        args.desks,
    )
    print(f"  load average now {os.getloadavg()[0]:.1f}")
    paced_p99 = pct(lat[0] + lat[1], 99)
    elapsed, lat = run(url, args, 0.0)
    report(f"saturated (no pause; {served})", elapsed, lat, args.desks)
    sat_ops = (len(lat[0]) + len(lat[1])) / elapsed
    sat_p99 = pct(lat[0] + lat[1], 99)
    print(
        f"  goal >= 1,000 ops/s with p99 < 50 ms: "
        f"{'met' if sat_ops >= 1000 and sat_p99 < 50 else 'NOT met'}"
    )
    print(f"  load average now {os.getloadavg()[0]:.1f}")
    return paced_p99, sat_ops, sat_p99


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--readers", type=int, default=100_000)
    ap.add_argument("--desks", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--pace-ms", type=float, default=1000.0)
    ap.add_argument("--lookups", type=int, default=10_000)
    ap.add_argument("--lookup-runs", type=int, default=2,
                    help="repeat the lookup measurement, to show the verdict holds")
    ap.add_argument("--heavy-rounds", type=int, default=500)
    ap.add_argument("--no-load", action="store_true",
                    help="skip the paced and saturated runs (lookup and reader figures only)")
    ap.add_argument(
        "--workers",
        type=int,
        default=2 * (os.cpu_count() or 1),
        help="worker processes serving the desks (0: one process per desk)",
    )
    args = ap.parse_args()
    admin = os.environ.get("QOR_TEST_DATABASE_URL")
    if not admin:
        print("QOR_TEST_DATABASE_URL is not set (PostgreSQL from infra/test-services)")
        return 2
    name = f"qor_circ_bench_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
        settings = {
            k: c.execute(text(f"SHOW {k}")).scalar() for k in ("fsync", "synchronous_commit")
        }
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()  # the desks are forked: each opens its own connection
        t0 = time.perf_counter()
        load(url, args.items, args.readers)
        print(
            f"loaded {args.items:,} items, {args.readers:,} readers with COPY in "
            f"{time.perf_counter() - t0:.1f} s; server fsync={settings['fsync']}, "
            f"synchronous_commit={settings['synchronous_commit']}; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        paced_p99 = sat_ops = sat_p99 = float("nan")
        if not args.no_load:
            paced_p99, sat_ops, sat_p99 = load_runs(url, args)
        ratios = report_lookups(url, args)
        lookup_ratio = max(ratios["in one session"])
        heavy, light = measure_heavy_reader(url, args.items, args.heavy_rounds)
        heavy_ratio = pct(heavy, 99) / pct(light, 99)
        print(
            f"check-out + check-in, {len(heavy):,} each: reader with {HEAVY_LOANS:,} open loans "
            f"p50 {pct(heavy, 50):.2f} / p99 {pct(heavy, 99):.2f} ms; reader with none p50 "
            f"{pct(light, 50):.2f} / p99 {pct(light, 99):.2f} ms; ratio p50 "
            f"{pct(heavy, 50) / pct(light, 50):.2f}x, p99 {heavy_ratio:.2f}x "
            f"(goal <= 1.2x: {'met' if heavy_ratio <= 1.2 else 'NOT met'})"
        )
        n_out, n_in = count_statements(url, args.items)
        print(
            f"statements per operation: check-out {n_out}, check-in {n_in} "
            f"(round trips: {n_out + 2} and {n_in + 2} with BEGIN and COMMIT)"
        )
        print(
            f"\nsummary: paced p99 {paced_p99:.1f} ms | saturated {sat_ops:,.0f} ops/s, p99 "
            f"{sat_p99:.1f} ms | lean lookup p99 at most {lookup_ratio:.2f}x bare psycopg over "
            f"{args.lookup_runs} runs (in a session; at most "
            f"{max(ratios['a transaction each']):.2f}x a transaction each) | 1,000-loan "
            f"reader {heavy_ratio:.2f}x a reader with none (p99)"
        )
    finally:
        with admin_engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
