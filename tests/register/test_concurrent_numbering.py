"""R14: ten desks receiving at once get distinct, gapless inventory numbers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import register
from catalog_sync.models import AcquisitionSource, utcnow

from .conftest import uid

THREADS = 10
PER_THREAD = 5


def test_ten_threads_get_distinct_gapless_numbers(sessions: sessionmaker[Session]) -> None:
    prefix = uid("C")
    with sessions() as s:
        register.configure_numbering(s, pattern=prefix + "-{number:05d}", actor="admin")
        record_id = register.add_record(s, title="Concurrent receipt", actor="acq").id
        act = register.open_receipt_batch(
            s, act_number=uid("ACT"), received_on=utcnow().date(), actor="acq"
        ).act_number
        s.commit()
    start = threading.Barrier(THREADS)

    def desk(n: int) -> list[str]:
        got: list[str] = []
        start.wait()
        for i in range(PER_THREAD + 1):
            with sessions() as s:
                inv = register.receive_item(
                    s,
                    record=record_id,
                    source=AcquisitionSource.PURCHASE,
                    receipt_batch=act,
                    actor=f"desk-{n}",
                ).inventory_number
                if i == n % (PER_THREAD + 1):
                    s.rollback()  # one abandoned receipt per desk: its number must come back
                else:
                    s.commit()
                    got.append(inv)
        return got

    with ThreadPoolExecutor(THREADS) as pool:
        results = [n for batch in pool.map(desk, range(THREADS)) for n in batch]
    assert len(results) == THREADS * PER_THREAD
    assert len(set(results)) == len(results), "a number was given twice"
    values = sorted(int(n.rsplit("-", 1)[1]) for n in results)
    assert values == list(range(1, THREADS * PER_THREAD + 1)), "the inventory book has a gap"
