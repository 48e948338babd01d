"""R15 under concurrency: two desks scanning the same item at the same moment. The item row is
locked by the first desk; the second waits, then is refused with the holder named — never a
second open loan, never a database error. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import circulation
from catalog_sync.calendar_kz import KazakhCalendar
from catalog_sync.errors import LoanClosed, LoanNotFound, LoanRefused
from catalog_sync.models import Loan, ServicePointKind
from tests.circulation.helpers import make_item, make_point, make_reader

AT = datetime(2025, 4, 1, 10, tzinfo=UTC)


def test_two_desks_lend_the_same_item_at_once(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        desk = make_point(s, ServicePointKind.LENDING_DESK)
        item = make_item(s)
        first, second = make_reader(s), make_reader(s)
        s.commit()
        code, point = item.barcode or "", desk.code
        tickets = first.ticket_number, second.ticket_number
    outcome: dict[str, object] = {}
    started = threading.Event()

    def other_desk() -> None:
        with sessions() as s2:
            started.set()
            try:
                circulation.check_out(
                    s2,
                    item_code=code,
                    ticket_number=tickets[1],
                    service_point=point,
                    actor="desk-2",
                    at=AT,
                )
                s2.commit()
                outcome["second"] = "lent"
            except LoanRefused as e:
                outcome["second"] = e

    with sessions() as s1:
        circulation.check_out(
            s1,
            item_code=code,
            ticket_number=tickets[0],
            service_point=point,
            actor="desk-1",
            at=AT,
        )
        thread = threading.Thread(target=other_desk)
        thread.start()
        started.wait(5)
        thread.join(0.5)  # the second desk is waiting for the first one's lock
        assert thread.is_alive()
        s1.commit()
    thread.join(30)
    refused = outcome["second"]
    assert isinstance(refused, LoanRefused) and refused.reason == "on_loan"
    assert f"to reader {tickets[0]}" in refused.message
    with sessions() as s:
        assert s.scalar(select(func.count(Loan.id)).where(Loan.item_id == item.id)) == 1


def test_two_desks_return_the_same_item_at_once(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        desk = make_point(s, ServicePointKind.LENDING_DESK)
        item = make_item(s)
        reader = make_reader(s)
        loan = circulation.check_out(
            s,
            item_code=item.inventory_number,
            ticket_number=reader.ticket_number,
            service_point=desk.code,
            actor="desk",
            at=AT,
        )
        s.commit()
        code, loan_id = item.inventory_number, loan.id
    outcome: dict[str, object] = {}

    def other_desk() -> None:
        with sessions() as s2:
            try:
                circulation.check_in(s2, item_code=code, actor="desk-2")
                s2.commit()
                outcome["second"] = "returned"
            except (LoanClosed, LoanNotFound) as e:
                outcome["second"] = e

    with sessions() as s1:
        circulation.check_in(s1, item_code=code, actor="desk-1")
        thread = threading.Thread(target=other_desk)
        thread.start()
        thread.join(0.5)
        s1.commit()
    thread.join(30)
    assert isinstance(outcome["second"], LoanClosed | LoanNotFound)
    with sessions() as s:
        closed = s.get(Loan, loan_id)
        assert closed is not None and closed.returned_by == "desk-1"


def test_a_loan_due_on_a_holiday_is_not_a_debt_at_the_next_check_out(session: Session) -> None:
    # R16: a loan due on Sat 22 Mar 2025 (Nauryz) may come back on the next working day,
    # Wed 26 Mar (21–25 March are days off). On Tue 25 March the reader is not in debt: the
    # quick check (stored due dates) is not sure, so the full check with the calendar decides,
    # and the loan it gives is the same as a reader without any loan gets.
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    with_loan, without = make_reader(session), make_reader(session)
    first = circulation.check_out(
        session,
        item_code=make_item(session).inventory_number,
        ticket_number=with_loan.ticket_number,
        service_point=desk.code,
        actor="d",
        at=datetime(2025, 2, 20, 10, tzinfo=UTC),
    )
    assert first.due_on.isoformat() == "2025-03-22"
    on = datetime(2025, 3, 25, 10, tzinfo=UTC)
    calendar = KazakhCalendar()
    loans = [
        circulation.check_out(
            session,
            item_code=make_item(session).inventory_number,
            ticket_number=who.ticket_number,
            service_point=desk.code,
            actor="d",
            at=on,
            calendar=calendar,
        )
        for who in (with_loan, without)
    ]
    assert loans[0].due_on == loans[1].due_on
    assert loans[0].due_on.isoformat() == "2025-04-24"
    # Without the calendar, the stored due date is all there is: the reader is in debt.
    with pytest.raises(LoanRefused) as refused:
        circulation.check_out(
            session,
            item_code=make_item(session).inventory_number,
            ticket_number=with_loan.ticket_number,
            service_point=desk.code,
            actor="d",
            at=on,
        )
    assert refused.value.reason == "debt_limit"
