"""Property test of the circulation rules (R8, R15, R16) over random operation sequences.

A plain-Python model says, for each operation, whether a rule refuses it and why; the real
functions run on the database (SQLite and PostgreSQL). After every step: the refusal reasons
agree exactly, no item is on two open loans, and every returned loan is unchanged since it was
returned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import circulation, readers
from catalog_sync.errors import LoanNotFound, LoanRefused
from catalog_sync.models import ItemStatus, Loan, ServicePointKind
from tests.circulation.helpers import make_item, make_point, make_reader

N_ITEMS, N_READERS = 4, 3
STATES = [ItemStatus.AVAILABLE, ItemStatus.AVAILABLE, ItemStatus.RECEIVED, ItemStatus.IN_REPAIR]
START = datetime(2025, 3, 3, 9, tzinfo=UTC)

operation = st.one_of(
    st.tuples(
        st.just("out"),
        st.integers(0, N_ITEMS - 1),
        st.integers(0, N_READERS - 1),
        st.sampled_from(["desk", "room"]),
    ),
    st.tuples(st.just("in"), st.integers(0, N_ITEMS - 1), st.just(0), st.just("")),
    st.tuples(st.just("block"), st.just(0), st.integers(0, N_READERS - 1), st.just("")),
    st.tuples(st.just("unblock"), st.just(0), st.integers(0, N_READERS - 1), st.just("")),
    st.tuples(st.just("wait"), st.integers(1, 40), st.just(0), st.just("")),
)


def closed_snapshot(session: Session) -> dict[int, tuple[object, ...]]:
    return {
        ln.id: (ln.item_id, ln.reader_id, ln.due_on, ln.returned_on, ln.settlement, ln.renewals)
        for ln in session.scalars(select(Loan).where(Loan.returned_at.is_not(None)))
    }


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(operation, min_size=5, max_size=25))
def test_random_operation_sequences_follow_the_rules(
    sessions: sessionmaker[Session], ops: list[tuple[str, int, int, str]]
) -> None:
    with sessions() as session:
        points = {
            "desk": make_point(session, ServicePointKind.LENDING_DESK),
            "room": make_point(session, ServicePointKind.READING_ROOM),
        }
        items = [make_item(session, status=s) for s in STATES]
        people = [make_reader(session) for _ in range(N_READERS)]
        # The model: who holds each item, each loan's due date, who is blocked.
        holder: dict[int, tuple[int, datetime]] = {}
        blocked: set[int] = set()
        now = START
        closed: dict[int, tuple[object, ...]] = {}
        for op, i, r, where in ops:
            if op == "wait":
                now += timedelta(days=i)
                continue
            if op == "block":
                readers.block_reader(session, people[r].ticket_number, reason="test", actor="t")
                blocked.add(r)
                continue
            if op == "unblock":
                readers.unblock_reader(session, people[r].ticket_number, actor="t")
                blocked.discard(r)
                continue
            item = items[i]
            if op == "in":
                expected_in = i in holder
                try:
                    circulation.check_in(
                        session, item_code=item.inventory_number, actor="t", at=now
                    )
                    assert expected_in
                    del holder[i]
                except LoanNotFound:
                    assert not expected_in
                continue
            # check-out: the first rule that applies, in the order a librarian meets them.
            overdue = sum(1 for (rr, due) in holder.values() if rr == r and due.date() < now.date())
            if STATES[i] is ItemStatus.RECEIVED:
                expected = "not_processed"
            elif STATES[i] is ItemStatus.IN_REPAIR:
                expected = "in_repair"
            elif i in holder:
                expected = "on_loan"
            elif r in blocked:
                expected = "reader_blocked"
            elif overdue > 0:
                expected = "debt_limit"
            else:
                expected = ""
            try:
                loan = circulation.check_out(
                    session,
                    item_code=item.inventory_number,
                    ticket_number=people[r].ticket_number,
                    service_point=points[where].code,
                    actor="t",
                    at=now,
                )
                got = ""
                holder[i] = (r, datetime.combine(loan.due_on, datetime.min.time(), UTC))
            except LoanRefused as e:
                got = e.reason
            assert got == expected, (op, i, r, where, now)
            session.flush()
            # Invariants, straight from the database.
            doubled = session.scalar(
                select(func.count()).select_from(
                    select(Loan.item_id)
                    .where(Loan.returned_at.is_(None), Loan.item_id.is_not(None))
                    .group_by(Loan.item_id)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
            assert doubled == 0
            snap = closed_snapshot(session)
            assert all(snap[k] == v for k, v in closed.items())
            closed = snap
        session.rollback()
