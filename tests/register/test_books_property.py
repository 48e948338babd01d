"""R9: the summary book's totals equal the sum of the inventory book's lines.

Property test over generated fund histories: 10,000 items received over 5 years in receipt acts of
varied material types, sources and prices, and write-off acts taking items out along the way.
Each example gets a fresh register (SQLite file or PostgreSQL database).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from catalog_sync import books, register
from catalog_sync.db import session_factory
from catalog_sync.models import AcquisitionSource, MaterialType

from .conftest import drop_postgres_database, fresh_engine

YEARS = (2019, 2020, 2021, 2022, 2023)
ITEMS = 10_000
SOURCES = [s.value for s in AcquisitionSource if s is not AcquisitionSource.LEGAL_DEPOSIT]


@dataclass(frozen=True)
class History:
    """A generated fund history: receipt acts and write-off fractions, decided by hypothesis."""

    rng_seed: int
    batch_sizes: tuple[int, ...]
    write_off_acts: tuple[tuple[int, float], ...]  # (day offset in the 5 years, share of fund)


@st.composite
def histories(draw: st.DrawFn) -> History:
    n_batches = draw(st.integers(min_value=5, max_value=40))
    cuts = sorted(
        draw(
            st.lists(
                st.integers(1, ITEMS - 1),
                min_size=n_batches - 1,
                max_size=n_batches - 1,
                unique=True,
            )
        )
    )
    sizes = tuple(b - a for a, b in zip([0, *cuts], [*cuts, ITEMS], strict=True))
    acts = draw(
        st.lists(
            st.tuples(st.integers(0, 5 * 365 - 1), st.floats(0.0, 0.3)), min_size=0, max_size=12
        )
    )
    return History(draw(st.integers(0, 2**32 - 1)), sizes, tuple(acts))


def _load(session: Session, h: History) -> None:
    rng = random.Random(h.rng_seed)
    start = date(YEARS[0], 1, 1)
    records = {
        m: register.add_record(session, title=f"Record {m.value}", material_type=m, actor="gen").id
        for m in MaterialType
    }
    receipts = sorted(
        (start + timedelta(days=rng.randrange(5 * 365)), size) for size in h.batch_sizes
    )
    events = [(day, "receipt", size) for day, size in receipts] + [
        (start + timedelta(days=off), "write_off", share) for off, share in h.write_off_acts
    ]
    in_fund: list[str] = []
    counter = 0
    for i, (day, kind, amount) in enumerate(sorted(events, key=lambda e: (e[0], e[1]))):
        if kind == "receipt":
            batch = register.open_receipt_batch(
                session, act_number=f"R{i:03d}", received_on=day, actor="gen"
            )
            items = []
            for _ in range(int(amount)):
                counter += 1
                material = rng.choice(list(MaterialType))
                items.append(
                    register.BulkItem(
                        record_id=records[material],
                        inventory_number=f"{counter:06d}",
                        source=rng.choice([*SOURCES, None]),
                        price=None
                        if rng.random() < 0.05
                        else Decimal(rng.randrange(0, 5_000_000)) / 100,
                    )
                )
            in_fund += register.bulk_receive(session, batch=batch, items=items, actor="gen")
        else:
            take = int(len(in_fund) * float(amount))
            if take == 0:
                continue
            rng.shuffle(in_fund)
            gone, in_fund = in_fund[:take], in_fund[take:]
            register.write_off(
                session,
                act_number=f"W{i:03d}",
                act_date=day,
                reason="worn",
                inventory_numbers=gone,
                actor="gen",
            )
    session.commit()


def _check(session: Session) -> None:
    lines = books.inventory_book(session)
    assert len(lines) == ITEMS
    assert [ln.inventory_number for ln in lines] == [f"{n:06d}" for n in range(1, ITEMS + 1)]
    for year in YEARS:
        end = date(year, 12, 31)
        book = books.summary_book(session, year=year)
        y = book.this_year

        def totals(
            pred: object,
        ) -> tuple[books.Totals, dict[str, books.Totals], dict[str, books.Totals]]:
            total = books.Totals()
            by_m: dict[str, books.Totals] = defaultdict(books.Totals)
            by_s: dict[str, books.Totals] = defaultdict(books.Totals)
            for ln in lines:
                if pred(ln):  # type: ignore[operator]
                    t = books.Totals(1, ln.price_minor or 0)
                    total += t
                    by_m[ln.material_type] += t
                    by_s[ln.source or books.NOT_RECORDED] += t
            return total, dict(sorted(by_m.items())), dict(sorted(by_s.items()))

        in_fund = totals(
            lambda ln, end=end: (
                ln.received_on <= end and not (ln.write_off_date and ln.write_off_date <= end)
            )
        )
        got = totals(lambda ln, year=year: ln.received_on.year == year)
        lost = totals(
            lambda ln, year=year: ln.write_off_date is not None and ln.write_off_date.year == year
        )
        assert (y.closing.total, dict(y.closing.by_material), dict(y.closing.by_source)) == in_fund
        assert (y.received.total, dict(y.received.by_material), dict(y.received.by_source)) == got
        assert (
            y.written_off.total,
            dict(y.written_off.by_material),
            dict(y.written_off.by_source),
        ) == lost
        assert sum((r.totals.total for r in book.receipts), books.Totals()) == got[0]
        assert sum((w.totals.total for w in book.write_offs), books.Totals()) == lost[0]
        assert Counter(
            ln.write_off_act for ln in lines if ln.write_off_date and ln.write_off_date.year == year
        ) == {w.act_number: w.totals.total.count for w in book.write_offs}
        for earlier, later in zip(book.balance, book.balance[1:], strict=False):
            assert later.opening == earlier.closing


def _run(backend: str, tmp: Path, h: History) -> None:
    engine, url = fresh_engine(backend, tmp, "qor_books")
    try:
        with session_factory(engine)() as s:
            _load(s, h)
            _check(s)
    finally:
        engine.dispose()
        if url is not None:
            drop_postgres_database(url)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_summary_totals_equal_inventory_lines(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    @settings(
        max_examples=3 if backend == "sqlite" else 2,
        deadline=None,
        derandomize=False,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(histories())
    def prop(h: History) -> None:
        _run(backend, tmp_path_factory.mktemp("books"), h)

    prop()
