"""Loans are in the register's hash-chained audit log: check-out, renewal and check-in each
append the loan's row, and a loan row changed in the database behind the register's back is
found by ``verify_loans`` (what ``qor register verify-log`` runs)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from catalog_sync import audit, circulation
from catalog_sync.models import ServicePointKind
from tests.circulation.helpers import make_item, make_point, make_reader

AT = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def test_loans_are_chained_and_a_tampered_loan_row_is_detected(session: Session) -> None:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    reader = make_reader(session)
    book, other = make_item(session), make_item(session)
    loan = circulation.check_out(session, item_code=book.barcode or "",
                                 ticket_number=reader.ticket_number, service_point=desk.code,
                                 actor="desk-1", at=AT)
    circulation.renew(session, item_code=book.inventory_number, actor="desk-2", at=AT)
    circulation.check_in(session, item_code=book.barcode or "", actor="desk-3", at=AT)
    still_out = circulation.check_out(session, item_code=other.inventory_number,
                                      ticket_number=reader.ticket_number,
                                      service_point=desk.code, actor="desk-1", at=AT)
    session.flush()
    entries = audit.history(session, "loan", str(loan.id))
    assert [(e.action, e.actor) for e in entries] == [
        ("loan.check_out", "desk-1"), ("loan.renew", "desk-2"), ("loan.close.returned", "desk-3")]
    assert audit.verify_log(session) == []
    assert audit.verify_loans(session) == []

    # Someone with database access moves a due date forward to hide a debt.
    session.execute(text("UPDATE loans SET due_on = '2030-01-01' WHERE id = :id"),
                    {"id": still_out.id})
    problems = audit.verify_loans(session)
    assert [(p.kind, str(still_out.id) in p.detail) for p in problems] == [("loan-altered", True)]
    assert audit.verify_log(session) == []  # the chain itself is intact: only the row lies

    # A loan inserted directly, never through the desk, is not in the chain either.
    session.execute(text(
        "INSERT INTO loans (item_id, reader_id, service_point_id, loaned_at, due_on, renewals, "
        "loaned_by) VALUES (:item, :reader, :point, :at, '2025-04-01', 0, 'ghost')"),
        {"item": book.id, "reader": reader.id, "point": desk.id, "at": AT})
    assert sorted(p.kind for p in audit.verify_loans(session)) == ["loan-altered",
                                                                   "loan-unlogged"]
