"""R16: overdue reminders really delivered to an SMTP server, steps recorded once, blocking past
the threshold, settlement, the debt report; backdated returns and calendar changes never
create a wrong debt."""

from __future__ import annotations

import csv
import socket
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from catalog_sync import calendar_kz, circulation, debts, readers
from catalog_sync.calendar_kz import KazakhCalendar
from catalog_sync.errors import LoanRefused
from catalog_sync.mail import SmtpMailer
from catalog_sync.models import ReaderStatus, ServicePointKind
from tests.circulation.helpers import Inbox, body, make_item, make_point, make_reader
from tests.report_cells import assert_same_figures


def lend(
    session: Session,
    *,
    at: datetime,
    email_: str | None = "reader@example.kz",
    titles: tuple[str, ...] = ("Абай жолы",),
) -> tuple[Any, list[Any]]:
    desk = make_point(session, ServicePointKind.LENDING_DESK)
    reader = make_reader(session, email=email_, name="Гүлнар Омарова")
    loans = []
    for t in titles:
        item = make_item(session, title=t)
        loans.append(
            circulation.check_out(
                session,
                item_code=item.inventory_number,
                ticket_number=reader.ticket_number,
                service_point=desk.code,
                actor="desk",
                at=at,
                policy=circulation.CirculationPolicy(debt_limit=99),
            )
        )
    return reader, loans


def test_reminders_reach_the_smtp_server_with_name_items_and_due_dates(
    session: Session, smtp_server: tuple[str, Inbox]
) -> None:
    url, inbox = smtp_server
    reader, loans = lend(
        session, at=datetime(2025, 1, 6, 10, tzinfo=UTC), titles=("Абай жолы", "Қан мен тер")
    )
    due = loans[0].due_on  # 2025-02-05
    before = len(inbox.messages)
    report = debts.run_debt_steps(
        session,
        today=date(2025, 2, 13),
        mailer=SmtpMailer(url),
        sender="desk@library.kz",
        library="Ұлттық кітапхана",
    )
    # 8 days overdue: steps 1 and 7 reached, one message each; step 30 not yet.
    mine = [m for m in inbox.messages[before:] if m["To"] == "reader@example.kz"]
    assert report.reminders_sent >= 2 and len(mine) == 2
    text = body(mine[0])
    assert "Гүлнар Омарова" in text and reader.ticket_number in text
    assert "Абай жолы" in text and "Қан мен тер" in text
    assert due.strftime("%d.%m.%Y") in text
    for loan in loans:
        assert [(s.kind, s.step_days, s.outcome) for s in debts.debt_steps(session, loan.id)] == [
            ("reminder", 1, "sent"),
            ("reminder", 7, "sent"),
        ]
    # The same day again sends nothing more: each step is recorded once.
    again = debts.run_debt_steps(
        session,
        today=date(2025, 2, 13),
        mailer=SmtpMailer(url),
        sender="desk@library.kz",
        library="Ұлттық кітапхана",
    )
    assert reader.ticket_number not in again.readers_reminded


def test_past_the_threshold_the_reader_is_blocked_and_settlement_unblocks(
    session: Session, smtp_server: tuple[str, Inbox]
) -> None:
    url, _ = smtp_server
    reader, (loan,) = lend(session, at=datetime(2024, 12, 2, tzinfo=UTC))  # due 2025-01-01
    report = debts.run_debt_steps(
        session,
        today=date(2025, 2, 10),
        mailer=SmtpMailer(url),
        sender="desk@library.kz",
        library="L",
        policy=debts.DebtPolicy(reminder_steps=(1, 7, 30), block_after_days=30),
    )
    assert reader.ticket_number in report.blocked
    assert reader.status == ReaderStatus.BLOCKED
    assert reader.blocked_reason is not None and reader.blocked_reason.startswith("R16 debt:")
    steps = [(s.kind, s.step_days) for s in debts.debt_steps(session, loan.id)]
    assert steps == [("reminder", 1), ("reminder", 7), ("reminder", 30), ("block", 30)]
    with pytest.raises(LoanRefused) as exc:
        circulation.check_out(
            session,
            item_code=make_item(session).inventory_number,
            ticket_number=reader.ticket_number,
            service_point=make_point(session, ServicePointKind.LENDING_DESK).code,
            actor="desk",
            at=datetime(2025, 2, 10, tzinfo=UTC),
        )
    assert exc.value.reason == "reader_blocked"
    circulation.settle_loan(
        session,
        loan.id,
        how="compensated",
        compensation_minor=250_000,
        note="receipt 77",
        actor="desk",
        at=datetime(2025, 2, 11, tzinfo=UTC),
    )
    assert reader.status == ReaderStatus.ACTIVE
    assert loan.settlement == "compensated" and loan.item is not None
    assert loan.item.status == "missing"  # leaves the fund only by a write-off act (R3–R4)


def test_a_manual_block_is_not_lifted_by_settling_a_debt(session: Session) -> None:
    reader, (loan,) = lend(session, at=datetime(2024, 12, 2, tzinfo=UTC))
    readers.block_reader(session, reader.ticket_number, reason="rude to staff", actor="head")
    circulation.settle_loan(
        session,
        loan.id,
        how="replaced",
        note="same edition",
        actor="desk",
        at=datetime(2025, 2, 11, tzinfo=UTC),
    )
    assert reader.status == ReaderStatus.BLOCKED


def test_reader_without_email_is_recorded_for_a_call(session: Session) -> None:
    reader, (loan,) = lend(session, at=datetime(2025, 1, 6, tzinfo=UTC), email_=None)
    report = debts.run_debt_steps(
        session, today=date(2025, 2, 7), mailer=None, sender="d@l.kz", library="L"
    )
    assert reader.ticket_number in report.no_address
    assert [s.outcome for s in debts.debt_steps(session, loan.id)] == ["no_address"]


def test_unreachable_smtp_records_nothing_so_the_next_run_retries(session: Session) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    reader, (loan,) = lend(session, at=datetime(2025, 1, 6, tzinfo=UTC))
    report = debts.run_debt_steps(
        session,
        today=date(2025, 2, 7),
        mailer=SmtpMailer(f"smtp://127.0.0.1:{dead}", timeout_s=2),
        sender="d@l.kz",
        library="L",
    )
    assert reader.ticket_number in report.failed
    assert debts.debt_steps(session, loan.id) == []


def test_backdated_return_creates_no_debt(session: Session) -> None:
    # Returned in the book drop on the due date, checked in 12 days later: no debt, no block.
    reader, (loan,) = lend(session, at=datetime(2025, 1, 6, tzinfo=UTC))
    assert loan.due_on == date(2025, 2, 5)
    back = circulation.check_in(
        session,
        item_code=loan.item.inventory_number,
        actor="desk",
        returned_on=date(2025, 2, 5),
        at=datetime(2025, 2, 17, tzinfo=UTC),
    )
    assert back.overdue_days == 0
    assert all(d.loan_id != loan.id for d in debts.open_debts(session, today=date(2025, 2, 17)))
    assert circulation.overdue_count(session, reader.id, today=date(2025, 2, 17)) == 0
    # Backdated a day late: counted to the real return date, not the check-in date.
    _, (late,) = lend(session, at=datetime(2025, 1, 6, tzinfo=UTC))
    assert (
        circulation.check_in(
            session,
            item_code=late.item.inventory_number,
            actor="desk",
            returned_on=date(2025, 2, 6),
            at=datetime(2025, 2, 17, tzinfo=UTC),
        ).overdue_days
        == 1
    )


def test_backdated_return_lifts_a_debt_block(
    session: Session, smtp_server: tuple[str, Inbox]
) -> None:
    reader, (loan,) = lend(session, at=datetime(2024, 12, 2, tzinfo=UTC))
    debts.run_debt_steps(
        session,
        today=date(2025, 2, 10),
        mailer=SmtpMailer(smtp_server[0]),
        sender="d@l.kz",
        library="L",
    )
    assert reader.status == ReaderStatus.BLOCKED
    circulation.check_in(
        session,
        item_code=loan.item.inventory_number,
        actor="desk",
        returned_on=date(2025, 1, 20),
        at=datetime(2025, 2, 10, 12, tzinfo=UTC),
    )
    assert reader.status == ReaderStatus.ACTIVE


def test_a_holiday_added_later_never_makes_a_loan_overdue(session: Session) -> None:
    _, (loan,) = lend(session, at=datetime(2025, 4, 8, tzinfo=UTC))
    assert loan.due_on == date(2025, 5, 8)  # a Thursday, working day
    # The government later declares 8 May a day off: returning on the 12th (Mon; 9 May is
    # Victory Day, 10–11 the weekend) is on time under the new calendar.
    calendar_kz.amend_calendar(
        session, date(2025, 5, 8), kind="day_off", name="transfer decree", actor="head"
    )
    cal = calendar_kz.load_calendar(session)
    assert circulation.effective_due(loan.due_on, cal) == date(2025, 5, 12)
    later = debts.open_debts(session, today=date(2025, 5, 12), calendar=cal)
    assert all(d.loan_id != loan.id for d in later)
    back = circulation.check_in(
        session,
        item_code=loan.item.inventory_number,
        actor="desk",
        at=datetime(2025, 5, 12, 9, tzinfo=UTC),
        calendar=cal,
    )
    assert back.overdue_days == 0
    # …and the stored loan is untouched: the due date a reader was told is never rewritten.
    assert loan.due_on == date(2025, 5, 8)


def test_debt_report_by_age_and_service_point(session: Session, tmp_path: Path) -> None:
    lend(session, at=datetime(2025, 1, 6, tzinfo=UTC))
    found = debts.open_debts(session, today=date(2025, 3, 1), calendar=KazakhCalendar())
    assert found and all(d.days_overdue > 0 for d in found)
    debts.write_debt_report(
        found,
        today=date(2025, 3, 1),
        library="Ұлттық кітапхана",
        html_path=tmp_path / "d.html",
        csv_path=tmp_path / "d.csv",
    )
    rows = list(csv.DictReader((tmp_path / "d.csv").open(encoding="utf-8-sig")))
    assert len(rows) == len(found)
    assert {r["age_band"] for r in rows} <= {"1–7 days", "8–30 days", "31–90 days", "over 90 days"}
    page = (tmp_path / "d.html").read_text(encoding="utf-8")
    assert "Ұлттық кітапхана" in page and "Гүлнар Омарова" in page
    summary = debts.summarise(found)
    assert sum(r.count for r in summary) == len(found)
    # R16: the same report in Kazakh and Russian — the librarians' words, the same figures.
    english = debts.debt_report_html(found, today=date(2025, 3, 1), library="L")
    assert page == debts.debt_report_html(found, today=date(2025, 3, 1),
                                          library="Ұлттық кітапхана")
    for language, words in (
        ("kk", ["Оқырмандық берешек — 2025-03-01", "Қызмет көрсету орны", "Оқырман билеті",
                "Кешіктірілген күн", found[0].age_band.replace("days", "күн")
                .replace("over 90 күн", "90 күннен артық")]),
        ("ru", ["Читательская задолженность — 2025-03-01", "Пункт обслуживания",
                "Читательский билет", "Дней просрочки", found[0].age_band.replace("days", "дней")
                .replace("over 90 дней", "более 90 дней")]),
    ):
        translated = debts.debt_report_html(found, today=date(2025, 3, 1), library="L",
                                            language=language)
        assert all(word in translated for word in words), language
        assert "Days overdue" not in translated and "Гүлнар Омарова" in translated
        assert_same_figures(english, translated)
