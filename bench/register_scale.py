"""Register at scale: 1,000,000 items on PostgreSQL.

Measures, in one run on the same data:
* p50/p99 of ``register.get_item`` (lookup by inventory number) and
  ``register.find_item_by_code`` (lookup by barcode), each against the anchor of a bare psycopg
  primary-key-style query on the same index (what any SQL client pays), and against the goal
  p99 < 5 ms;
* the time to build one year's summary book (goal < 2 s).

Data: ``--items`` items received through ``register.bulk_receive`` (the real path: triggers,
issued-number ledger, hash-chained audit) in receipt acts spread over ``--years`` years, 2 % of
them written off through ``register.write_off``. Bibliographic records are generated directly
(one per 20 items). Everything goes into a fresh database that is dropped at the end.

    .venv/bin/python bench/register_scale.py --items 1000000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal

import psycopg
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from catalog_sync import books, register
from catalog_sync.db import make_engine, session_factory, upgrade
from catalog_sync.models import AcquisitionSource, BibRecord, ItemStatus, MaterialType, utcnow

GOAL_LOOKUP_P99_MS = 5.0
GOAL_SUMMARY_S = 2.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--batch", type=int, default=5000, help="items per receipt act")
    ap.add_argument("--lookups", type=int, default=10_000)
    ap.add_argument("--url", default=os.environ.get("QOR_TEST_DATABASE_URL"))
    ap.add_argument("--keep", action="store_true", help="do not drop the database afterwards")
    args = ap.parse_args()
    if not args.url:
        print("set QOR_TEST_DATABASE_URL or --url (a PostgreSQL server)", file=sys.stderr)
        return 2
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    name = f"qor_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.url).set(database=name)
    engine = make_engine(url.render_as_string(hide_password=False))
    rng = random.Random(20260101)
    try:
        upgrade(engine)
        sessions = session_factory(engine)
        t0 = time.perf_counter()
        n_records = max(1, args.items // 20)
        materials = list(MaterialType)
        with sessions() as s:
            s.execute(
                insert(BibRecord),
                [
                    {
                        "title": f"Generated title {i}",
                        "authors": [f"Author {i % 5000}"],
                        "year": 1950 + i % 75,
                        "material_type": materials[i % len(materials)].value,
                        "legal_deposit": False,
                        "created_at": utcnow(),
                    }
                    for i in range(n_records)
                ],
            )
            s.commit()
        first_year = 2026 - args.years
        sources = [src for src in AcquisitionSource if src is not AcquisitionSource.LEGAL_DEPOSIT]
        made = 0
        act = 0
        all_numbers: list[str] = []
        while made < args.items:
            size = min(args.batch, args.items - made)
            day = date(first_year, 1, 1) + timedelta(
                days=int(act * 365 * args.years / (args.items / args.batch))
            )
            with sessions() as s:
                batch = register.open_receipt_batch(
                    s, act_number=f"R{act:05d}", received_on=day, actor="bench"
                )
                items = [
                    register.BulkItem(
                        record_id=1 + (made + k) % n_records,
                        inventory_number=f"{made + k + 1:07d}",
                        source=sources[(made + k) % len(sources)],
                        price=Decimal(rng.randrange(100, 2_000_000)) / 100,
                        barcode=f"BC{made + k + 1:09d}",
                        location=f"Hall-{(made + k) % 7}/S{(made + k) % 40:02d}",
                        status=ItemStatus.AVAILABLE,
                    )
                    for k in range(size)
                ]
                all_numbers += register.bulk_receive(s, batch=batch, items=items, actor="bench")
                s.commit()
            made += size
            act += 1
            if act % 20 == 0:
                print(f"  loaded {made:,} items ({time.perf_counter() - t0:.0f} s)", flush=True)
        gone = rng.sample(all_numbers, len(all_numbers) // 50)
        for w in range(0, len(gone), 1000):
            part = gone[w : w + 1000]
            with sessions() as s:
                received = max(register.get_item(s, n).receipt_batch.received_on for n in part)
                register.write_off(
                    s,
                    act_number=f"W{w // 1000:05d}",
                    act_date=received + timedelta(days=30),
                    reason="worn",
                    inventory_numbers=part,
                    actor="bench",
                )
                s.commit()
        load_s = time.perf_counter() - t0
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
        print(
            f"loaded {args.items:,} items + {len(gone):,} write-offs in {load_s:.0f} s "
            f"({args.items / load_s:,.0f} items/s through bulk_receive)"
        )

        sample = rng.sample(range(1, args.items + 1), min(args.lookups, args.items))
        inv_ms: list[float] = []
        code_ms: list[float] = []
        with sessions() as s:
            for n in sample:
                t = time.perf_counter()
                register.get_item(s, f"{n:07d}")
                inv_ms.append((time.perf_counter() - t) * 1000)
                s.expunge_all()
            for n in sample:
                t = time.perf_counter()
                register.find_item_by_code(s, f"BC{n:09d}")
                code_ms.append((time.perf_counter() - t) * 1000)
                s.expunge_all()
        raw_inv: list[float] = []
        raw_code: list[float] = []
        raw_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(raw_url) as conn:
            for n in sample:
                t = time.perf_counter()
                conn.execute(
                    "SELECT * FROM items WHERE inventory_number = %s", (f"{n:07d}",)
                ).fetchone()
                raw_inv.append((time.perf_counter() - t) * 1000)
            for n in sample:
                t = time.perf_counter()
                conn.execute("SELECT * FROM items WHERE barcode = %s", (f"BC{n:09d}",)).fetchone()
                raw_code.append((time.perf_counter() - t) * 1000)

        year = first_year + args.years // 2
        summary_s: list[float] = []
        for _ in range(3):
            with sessions() as s:
                t = time.perf_counter()
                book = books.summary_book(s, year=year)
                summary_s.append(time.perf_counter() - t)
        print()
        print(
            f"{'measure':34} {'p50':>9} {'p99':>9} {'anchor p99':>11} {'ratio':>7} "
            f"{'goal p99':>9} {'p99/goal':>9}"
        )
        for label, qor, raw in (
            ("lookup by inventory number (ms)", inv_ms, raw_inv),
            ("lookup by barcode (ms)", code_ms, raw_code),
        ):
            p99 = pct(qor, 0.99)
            print(
                f"{label:34} {statistics.median(qor):9.3f} {p99:9.3f} {pct(raw, 0.99):11.3f} "
                f"{p99 / pct(raw, 0.99):7.2f} {GOAL_LOOKUP_P99_MS:9.1f} "
                f"{p99 / GOAL_LOOKUP_P99_MS:9.2f}"
            )
        print(
            f"summary book {year} (s): first {summary_s[0]:.3f}, best {min(summary_s):.3f}; "
            f"goal {GOAL_SUMMARY_S:.1f} → ratio {summary_s[0] / GOAL_SUMMARY_S:.2f}; "
            f"closing balance {book.this_year.closing.total.count:,} items, "
            f"{book.this_year.closing.total.value:,} ₸"
        )
        print(
            f"anchor = the same query through bare psycopg on the same index; "
            f"{len(sample):,} lookups each; PostgreSQL {engine.dialect.server_version_info}"
        )
        return 0
    finally:
        engine.dispose()
        if not args.keep:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
