"""Loans at the five kinds of service point (R15) and the refusals of R8 and R16, each in words a
librarian at the desk understands; the database's own guards on open and returned loans."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from catalog_sync import audit, circulation, gate, readers
from catalog_sync.calendar_kz import KazakhCalendar
from catalog_sync.errors import LoanClosed, LoanRefused
from catalog_sync.models import ItemStatus, Loan, ServicePointKind
from tests.circulation.helpers import make_item, make_point, make_reader

AT = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # a Monday


def refusal(exc: pytest.ExceptionInfo[LoanRefused]) -> tuple[str, str]:
    return exc.value.reason, str(exc.value)


def test_lending_desk_loan_due_by_category_and_material(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    book, journal = make_item(session), make_item(session, material="periodical")
    adult, child = make_reader(session), make_reader(session, category="schoolchild")
    a = circulation.check_out(
        session,
        item_code=book.barcode or "",
        ticket_number=adult.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=AT,
    )
    assert a.due_on == date(2025, 4, 2)  # 30 days
    j = circulation.check_out(
        session,
        item_code=journal.inventory_number,
        ticket_number=child.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=AT,
    )
    assert j.due_on == date(2025, 3, 13)  # periodicals: 10 days, for every category
    assert book.status == ItemStatus.ON_LOAN


def test_due_date_on_a_holiday_moves_to_the_next_working_day(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item, reader = make_item(session), make_reader(session)
    # 2025-02-19 + 30 days = 2025-03-21, Nauryz; 21–25 March are days off → Wed 26 March.
    loan = circulation.check_out(
        session,
        item_code=item.inventory_number,
        ticket_number=reader.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=datetime(2025, 2, 19, 9, tzinfo=UTC),
        calendar=KazakhCalendar(),
    )
    assert loan.due_on == date(2025, 3, 26)


def test_reading_room_loans_end_the_same_day(session: Session) -> None:
    room = make_point(session, ServicePointKind.READING_ROOM)
    item, reader = make_item(session), make_reader(session)
    loan = circulation.check_out(
        session,
        item_code=item.inventory_number,
        ticket_number=reader.ticket_number,
        service_point=room.code,
        actor="room",
        at=AT,
    )
    assert loan.due_on == AT.date()
    with pytest.raises(LoanRefused, match="reading room") as exc:
        circulation.renew(session, item_code=item.inventory_number, actor="room", at=AT)
    assert exc.value.reason == "renewal_limit"


def test_reading_room_only_item_is_refused_elsewhere_with_a_clear_message(session: Session) -> None:
    # R15: an item flagged for the reading room goes nowhere else.
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    outreach = make_point(session, ServicePointKind.OUTREACH)
    room = make_point(session, ServicePointKind.READING_ROOM)
    item, reader = make_item(session), make_reader(session)
    circulation.set_reading_room_only(session, item.inventory_number, True, actor="head")
    for point in (desk, outreach):
        with pytest.raises(LoanRefused) as exc:
            circulation.check_out(
                session,
                item_code=item.inventory_number,
                ticket_number=reader.ticket_number,
                service_point=point.code,
                actor="desk",
                at=AT,
            )
        reason, message = refusal(exc)
        assert reason == "reading_room_only"
        assert message == (
            f"item {item.inventory_number} may be used only in the reading room; "
            f"it cannot be lent at {point.name} (R15)"
        )
    loan = circulation.check_out(
        session,
        item_code=item.inventory_number,
        ticket_number=reader.ticket_number,
        service_point=room.code,
        actor="room",
        at=AT,
    )
    assert loan.due_on == AT.date()


@pytest.mark.parametrize(
    ("status", "reason", "words"),
    [
        (ItemStatus.RECEIVED, "not_processed", "has not been processed yet"),
        (ItemStatus.PROCESSED, "not_available", "not yet placed on the shelves"),
        (ItemStatus.WRITTEN_OFF, "written_off", "was written off and has left the fund"),
        (ItemStatus.IN_REPAIR, "in_repair", "is in repair"),
    ],
)
def test_items_that_may_not_go_out_are_refused(
    session: Session, status: ItemStatus, reason: str, words: str
) -> None:
    # R8: unprocessed items are not given out; written off, in repair: likewise.
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item, reader = make_item(session, status=status), make_reader(session)
    with pytest.raises(LoanRefused) as exc:
        circulation.check_out(
            session,
            item_code=item.inventory_number,
            ticket_number=reader.ticket_number,
            service_point=desk.code,
            actor="desk",
            at=AT,
        )
    assert exc.value.reason == reason
    assert str(exc.value).startswith(f"item {item.inventory_number} ")
    assert words in str(exc.value)


def test_unprocessed_item_message(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item, reader = make_item(session, status=ItemStatus.RECEIVED), make_reader(session)
    with pytest.raises(LoanRefused) as exc:
        circulation.check_out(
            session,
            item_code=item.inventory_number,
            ticket_number=reader.ticket_number,
            service_point=desk.code,
            actor="desk",
            at=AT,
        )
    assert str(exc.value) == (
        f"item {item.inventory_number} has not been processed yet (no barcode/RFID, not placed "
        "in the fund): unprocessed items are not given out (R8)"
    )


def test_item_on_loan_names_its_holder(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item, first, second = make_item(session), make_reader(session), make_reader(session)
    circulation.check_out(
        session,
        item_code=item.inventory_number,
        ticket_number=first.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=AT,
    )
    with pytest.raises(LoanRefused) as exc:
        circulation.check_out(
            session,
            item_code=item.inventory_number,
            ticket_number=second.ticket_number,
            service_point=desk.code,
            actor="desk",
            at=AT,
        )
    assert exc.value.reason == "on_loan"
    assert f"to reader {first.ticket_number}, due 2025-04-02" in str(exc.value)


def test_blocked_reader_is_refused_with_the_reason(session: Session) -> None:
    # R16: a blocked reader borrows nothing; the librarian sees why.
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item, reader = make_item(session), make_reader(session, name="Ержан Қасымов")
    readers.block_reader(session, reader.ticket_number, reason="damaged two books", actor="head")
    with pytest.raises(LoanRefused) as exc:
        circulation.check_out(
            session,
            item_code=item.inventory_number,
            ticket_number=reader.ticket_number,
            service_point=desk.code,
            actor="desk",
            at=AT,
        )
    assert exc.value.reason == "reader_blocked"
    assert str(exc.value) == (
        f"reader {reader.ticket_number} (Ержан Қасымов) is blocked: damaged two books; nothing "
        "can be lent until the block is lifted (R16)"
    )


def test_debts_above_the_limit_refuse_new_loans(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    reader = make_reader(session)
    old = make_item(session)
    circulation.check_out(
        session,
        item_code=old.inventory_number,
        ticket_number=reader.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=datetime(2025, 1, 10, tzinfo=UTC),
    )
    fresh = make_item(session)
    with pytest.raises(LoanRefused) as exc:
        circulation.check_out(
            session,
            item_code=fresh.inventory_number,
            ticket_number=reader.ticket_number,
            service_point=desk.code,
            actor="desk",
            at=AT,
        )
    assert exc.value.reason == "debt_limit"
    assert "1 overdue item(s), more than the 0 allowed" in str(exc.value)
    lenient = circulation.CirculationPolicy(debt_limit=1)
    circulation.check_out(
        session,
        item_code=fresh.inventory_number,
        ticket_number=reader.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=AT,
        policy=lenient,
    )


def test_special_service_and_outreach_points_lend_and_record_their_point(session: Session) -> None:
    reader = make_reader(session)
    for kind in (ServicePointKind.SPECIAL_SERVICE, ServicePointKind.OUTREACH):
        point, item = make_point(session, kind), make_item(session)
        loan = circulation.check_out(
            session,
            item_code=item.inventory_number,
            ticket_number=reader.ticket_number,
            service_point=point.code,
            actor="desk",
            at=AT,
        )
        facts = circulation.loan_facts(loan)
        assert (facts.service_point, facts.service_point_kind) == (point.name, kind.value)


def test_interlibrary_loans_carry_partner_and_direction(session: Session) -> None:
    ill = make_point(session, ServicePointKind.INTERLIBRARY)
    item, reader = make_item(session), make_reader(session)
    lent = circulation.lend_interlibrary(
        session,
        item_code=item.inventory_number,
        partner_library="Қарағанды облыстық кітапханасы",
        service_point=ill.code,
        actor="mba",
        at=AT,
        due_on=date(2025, 5, 1),
    )
    assert (lent.ill_direction, lent.partner_library, lent.due_on, lent.reader_id) == (
        "lent",
        "Қарағанды облыстық кітапханасы",
        date(2025, 5, 1),
        None,
    )
    borrowed = circulation.borrow_interlibrary(
        session,
        external_item="Materials of the Turkic congress, 1926",
        partner_library="National Library of Russia",
        ticket_number=reader.ticket_number,
        service_point=ill.code,
        due_on=date(2025, 4, 15),
        actor="mba",
        at=AT,
    )
    assert (borrowed.ill_direction, borrowed.item_id) == ("borrowed", None)
    circulation.return_borrowed(
        session, borrowed.id, actor="mba", at=datetime(2025, 4, 1, tzinfo=UTC)
    )
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    with pytest.raises(LoanRefused) as exc:
        circulation.lend_interlibrary(
            session,
            item_code=make_item(session).inventory_number,
            partner_library="X",
            service_point=desk.code,
            actor="mba",
        )
    assert exc.value.reason == "wrong_service_point"


def test_renewals_are_limited_and_wait_for_holds(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item, reader, other = make_item(session), make_reader(session), make_reader(session)
    circulation.check_out(
        session,
        item_code=item.inventory_number,
        ticket_number=reader.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=AT,
    )
    policy = circulation.CirculationPolicy(max_renewals=1)
    renewed = circulation.renew(
        session, item_code=item.inventory_number, actor="desk", at=AT, policy=policy
    )
    assert (renewed.due_on, renewed.renewals) == (date(2025, 5, 2), 1)
    with pytest.raises(LoanRefused) as exc:
        circulation.renew(
            session, item_code=item.inventory_number, actor="desk", at=AT, policy=policy
        )
    assert exc.value.reason == "renewal_limit"
    circulation.place_hold(
        session,
        ticket_number=other.ticket_number,
        item_code=item.inventory_number,
        actor="desk",
        at=AT,
    )
    with pytest.raises(LoanRefused) as exc:
        circulation.renew(session, item_code=item.inventory_number, actor="desk", at=AT)
    assert exc.value.reason == "holds_waiting"


def test_holds_queue_keeps_a_returned_item_for_the_first_reader(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item = make_item(session)
    holder, first, second = make_reader(session), make_reader(session), make_reader(session)
    circulation.check_out(
        session,
        item_code=item.inventory_number,
        ticket_number=holder.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=AT,
    )
    h1 = circulation.place_hold(
        session,
        ticket_number=first.ticket_number,
        item_code=item.inventory_number,
        actor="desk",
        at=AT,
    )
    circulation.place_hold(
        session,
        ticket_number=second.ticket_number,
        record_id=item.record_id,
        actor="desk",
        at=datetime(2025, 3, 3, 11, tzinfo=UTC),
    )
    back = circulation.check_in(
        session, item_code=item.inventory_number, actor="desk", at=datetime(2025, 3, 10, tzinfo=UTC)
    )
    assert back.kept_for == first.ticket_number
    with pytest.raises(LoanRefused) as exc:
        circulation.check_out(
            session,
            item_code=item.inventory_number,
            ticket_number=second.ticket_number,
            service_point=desk.code,
            actor="desk",
            at=datetime(2025, 3, 10, tzinfo=UTC),
        )
    assert exc.value.reason == "held_for_another"
    circulation.check_out(
        session,
        item_code=item.inventory_number,
        ticket_number=first.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=datetime(2025, 3, 10, tzinfo=UTC),
    )
    assert h1.status == "fulfilled"
    assert [h.reader_id for h in circulation.hold_queue(session, item.record_id)] == [second.id]


def test_holds_are_placed_kept_and_cancelled_in_the_audit_log(session: Session) -> None:
    # R3: every change is audited — a hold decides who gets a copy next, so placing one,
    # keeping a returned copy for it and cancelling it are each an entry of the hash chain.
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item = make_item(session)
    holder, first, second = make_reader(session), make_reader(session), make_reader(session)
    circulation.check_out(session, item_code=item.inventory_number,
                          ticket_number=holder.ticket_number, service_point=desk.code,
                          actor="desk", at=AT)
    h1 = circulation.place_hold(session, ticket_number=first.ticket_number,
                                item_code=item.inventory_number, actor="desk-1", at=AT)
    h2 = circulation.place_hold(session, ticket_number=second.ticket_number,
                                record_id=item.record_id, actor="desk-2", at=AT)
    circulation.check_in(session, item_code=item.inventory_number, actor="desk-3", at=AT)
    circulation.cancel_hold(session, h1.id, actor="desk-4", at=AT)  # the copy goes to h2

    def logged(hold_id: int) -> list[tuple[str, str, str | None, str | None]]:
        return [(e.action, e.actor, json.loads(e.after or "{}").get("status"),
                 json.loads(e.after or "{}").get("ticket_number"))
                for e in audit.history(session, "hold", str(hold_id))]

    assert logged(h1.id) == [("hold.place", "desk-1", "waiting", first.ticket_number),
                             ("hold.ready", "desk-3", "ready", first.ticket_number),
                             ("hold.cancel", "desk-4", "cancelled", first.ticket_number)]
    assert logged(h2.id) == [("hold.place", "desk-2", "waiting", second.ticket_number),
                             ("hold.ready", "desk-4", "ready", second.ticket_number)]
    assert audit.verify_log(session) == []


def test_check_out_disarms_and_check_in_arms_the_tag(session: Session) -> None:
    # R10: the gate clears an item on loan and raises the alarm for one not checked out.
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item, reader = make_item(session), make_reader(session)
    tag = item.rfid or ""
    assert not gate.gate_check(session, tag, gate="north").cleared
    circulation.check_out(
        session,
        item_code=tag,
        ticket_number=reader.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=AT,
    )
    verdict = gate.gate_check(session, tag, gate="north")
    assert verdict.cleared and verdict.inventory_number == item.inventory_number
    circulation.check_in(session, item_code=tag, actor="desk", at=AT)
    alarm = gate.gate_check(session, tag, gate="north")
    assert not alarm.cleared and "not checked out (tag armed)" in alarm.reason
    assert not gate.gate_check(session, "UNKNOWN-TAG").cleared
    logged = [
        e for e in gate.gate_events(session, alarms_only=True) if e.tag in (tag, "UNKNOWN-TAG")
    ]
    assert len(logged) == 3


def test_the_database_refuses_a_second_open_loan(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item, reader = make_item(session), make_reader(session)
    loan = circulation.check_out(
        session,
        item_code=item.inventory_number,
        ticket_number=reader.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=AT,
    )
    session.commit()
    with pytest.raises(IntegrityError):
        session.execute(
            text(
                "INSERT INTO loans (item_id, reader_id, service_point_id, loaned_at, due_on, "
                "renewals, loaned_by) VALUES (:i, :r, :p, :t, :d, 0, 'sql')"
            ),
            {"i": item.id, "r": reader.id, "p": desk.id, "t": AT, "d": date(2025, 4, 1)},
        )
    session.rollback()
    assert loan.id is not None


def test_a_returned_loan_never_changes(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    item, reader = make_item(session), make_reader(session)
    circulation.check_out(
        session,
        item_code=item.inventory_number,
        ticket_number=reader.ticket_number,
        service_point=desk.code,
        actor="desk",
        at=AT,
    )
    back = circulation.check_in(session, item_code=item.inventory_number, actor="desk", at=AT)
    session.commit()
    with pytest.raises(DBAPIError, match="QOR-LOAN-CLOSED"):
        session.execute(update(Loan).where(Loan.id == back.loan.id).values(due_on=date(2030, 1, 1)))
    session.rollback()
    with pytest.raises(LoanClosed):
        circulation.settle_loan(
            session, back.loan.id, how="compensated", compensation_minor=100, actor="desk"
        )
