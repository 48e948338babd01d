"""R7 deadlines against dates worked out by hand from Kazakhstan's official calendar, receipts
into the fund (R5), claims in Kazakh and Russian as HTML and PDF, compliance per publisher."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync import calendar_kz, legal_deposit, register
from catalog_sync.calendar_kz import KazakhCalendar, term_end
from catalog_sync.errors import ClaimLetterNotFound, DepositError, SourceNotAllowed
from catalog_sync.models import AuditEntry, Item
from tests.register.conftest import new_batch, uid

CAL = KazakhCalendar()


@pytest.mark.parametrize(
    ("first_printed", "due", "why"),
    [
        (date(2025, 1, 15), date(2025, 2, 14), "plain: 15 Jan + 30 = Fri 14 Feb"),
        (date(2025, 1, 31), date(2025, 3, 3), "month end: + 30 = Sun 2 Mar → Mon 3 Mar"),
        (date(2024, 12, 10), date(2025, 1, 9), "year end: + 30 = Thu 9 Jan 2025"),
        (
            date(2024, 12, 2),
            date(2025, 1, 5),
            "+30 = 1 Jan (New Year); 2 Jan holiday, 3 Jan moved day off, Sat 4; "
            "Sun 5 Jan 2025 worked",
        ),
        (
            date(2024, 2, 20),
            date(2024, 3, 26),
            "+30 = 21 Mar (Nauryz); 22–23 Nauryz, Sun 24, Mon 25 observed → Tue 26 Mar",
        ),
        (date(2023, 2, 28), date(2023, 3, 30), "non-leap February: 28 Feb + 30 = Thu 30 Mar"),
    ],
)
def test_paper_deadlines(first_printed: date, due: date, why: str) -> None:
    assert term_end("paper", first_printed, CAL).due_on == due, why


def test_paper_deadline_without_moving_off_days() -> None:
    end = term_end("paper", date(2025, 1, 31), CAL, move_off_days=False)
    assert end.due_on == date(2025, 3, 2) and end.moved_from is None


@pytest.mark.parametrize(
    ("first_printed", "due", "why"),
    [
        (date(2025, 2, 6), date(2025, 2, 11), "weekend: Fri 7, Mon 10, Tue 11"),
        (date(2025, 3, 19), date(2025, 3, 27), "Nauryz: Thu 20, (21–25 off), Wed 26, Thu 27"),
        (
            date(2024, 12, 30),
            date(2025, 1, 6),
            "New Year: Tue 31, (1–2 Jan, 3 Jan moved, Sat 4 off), Sun 5 Jan worked, Mon 6",
        ),
        (date(2024, 5, 2), date(2024, 5, 6), "moved day off: Fri 3, Sat 4 May 2024 worked, Mon 6"),
        (
            date(2024, 5, 6),
            date(2024, 5, 14),
            "7 May holiday, 8 May day off moved from 4 May, 9 May Victory: Fri 10, Mon 13, Tue 14",
        ),
    ],
)
def test_electronic_deadlines(first_printed: date, due: date, why: str) -> None:
    assert term_end("electronic", first_printed, CAL).due_on == due, why


def test_moved_deadline_says_why() -> None:
    end = term_end("paper", date(2024, 2, 20), CAL)
    assert end.moved_from == date(2024, 3, 21)
    assert "2024-03-21, a day off (Nowruz Holiday)" in end.reason
    assert "next working day 2024-03-26" in end.reason


def test_library_amendment_of_the_calendar_counts(session: Session) -> None:
    calendar_kz.amend_calendar(
        session, date(2025, 2, 10), kind="day_off", name="late decree", actor="head"
    )
    cal = calendar_kz.load_calendar(session)
    assert term_end("electronic", date(2025, 2, 6), cal).due_on == date(2025, 2, 12)
    session.rollback()


def test_due_for_each_recipient_by_form(session: Session) -> None:
    paper = legal_deposit.due_dates(
        session, form="paper", first_printed=date(2025, 1, 15), calendar=CAL
    )
    assert {r.code for r, _, _ in paper} == {"book_chamber", "nlrk", "nabrk"}
    electronic = legal_deposit.due_dates(
        session, form="electronic", first_printed=date(2025, 2, 6), calendar=CAL
    )
    assert [(r.code, d) for r, d, _ in electronic] == [("book_chamber", date(2025, 2, 11))]


def test_receipt_enters_the_fund_only_for_a_national_library(session: Session) -> None:
    pub = legal_deposit.register_publication(
        session,
        title="Қазақ әдебиеті тарихы",
        publisher=uid("Фолиант"),
        form="paper",
        first_printed=date(2025, 1, 15),
        actor="deposit",
        calendar=CAL,
    )
    legal_deposit.set_this_library(session, "nlrk", actor="admin")
    mine = next(o for o in pub.obligations if o.recipient_code == "nlrk")
    register.set_national_library(session, False, actor="admin")
    with pytest.raises(SourceNotAllowed):  # R5
        legal_deposit.register_receipt(
            session,
            mine.id,
            received_on=date(2025, 2, 1),
            actor="deposit",
            receipt_batch=new_batch(session),
        )
    register.set_national_library(session, True, actor="admin")
    ob = legal_deposit.register_receipt(
        session,
        mine.id,
        received_on=date(2025, 2, 1),
        actor="deposit",
        receipt_batch=new_batch(session),
    )
    item = session.get(Item, ob.item_id)
    assert item is not None and item.source == "legal_deposit" and item.status == "received"
    session.rollback()


def test_claims_in_kazakh_and_russian_html_and_pdf(session: Session, tmp_path: Path) -> None:
    publisher = uid("Атамұра")
    legal_deposit.register_publication(
        session,
        title="Абай жолы",
        publisher=publisher,
        form="paper",
        first_printed=date(2024, 2, 20),
        actor="deposit",
        calendar=CAL,
        publisher_address="Алматы",
    )
    on_time = legal_deposit.register_publication(
        session,
        title="Көшпенділер",
        publisher=publisher,
        form="electronic",
        first_printed=date(2025, 2, 6),
        actor="deposit",
        calendar=CAL,
    )
    legal_deposit.register_receipt(
        session, on_time.obligations[0].id, received_on=date(2025, 2, 10), actor="deposit"
    )
    claims = legal_deposit.write_claims(
        session, today=date(2024, 4, 1), out_dir=tmp_path, library="Ұлттық кітапхана",
        actor="deposit"
    )
    mine = [c for c in claims if publisher in Path(c.html_path).read_text(encoding="utf-8")]
    assert sorted({c.language for c in mine}) == ["kk", "ru"] and len(mine) == 6
    kk = next(c for c in mine if c.language == "kk")
    page = Path(kk.html_path).read_text(encoding="utf-8")
    assert "Талап хат" in page and "26.03.2024" in page and "Nowruz Holiday" in page
    ru_pdf = next(c for c in mine if c.language == "ru").pdf_path
    text = "".join(p.extract_text() for p in PdfReader(ru_pdf).pages)
    assert "Претензия" in text and "Абай жолы" in text and "26.03.2024" in text
    # R7: each claim is in the audit log; a second run the same day writes nothing again.
    logged = session.scalars(select(AuditEntry).where(AuditEntry.action == "deposit.claim")).all()
    assert {e.entity_key for e in logged} >= {str(c.obligation_id) for c in mine}
    assert (
        legal_deposit.write_claims(session, today=date(2024, 4, 1), out_dir=tmp_path, library="L",
                                   actor="deposit")
        == []
    )
    report = {
        c.publisher: c for c in legal_deposit.compliance_report(session, today=date(2025, 3, 1))
    }
    row = report[publisher]
    assert (row.obligations, row.on_time, row.overdue) == (4, 1, 3)
    session.rollback()


def test_one_claim_from_the_console_is_logged_and_refused_when_not_owed(
    session: Session, tmp_path: Path
) -> None:
    """R7: ``issue_claim`` claims one overdue obligation (both letters, one audit entry with the
    actor), and refuses one not yet due, one received, and a second claim the same day."""
    publisher = uid("Өнер")
    pub = legal_deposit.register_publication(
        session, title="Күй", publisher=publisher, form="paper", first_printed=date(2025, 1, 6),
        actor="deposit", calendar=CAL)
    late, received, *_ = pub.obligations
    legal_deposit.register_receipt(session, received.id, received_on=date(2025, 1, 20),
                                   actor="deposit")
    with pytest.raises(DepositError, match="not overdue"):
        legal_deposit.issue_claim(session, late.id, today=late.due_on, out_dir=tmp_path,
                                  library="L", actor="staff:aliya")
    with pytest.raises(DepositError, match="received"):
        legal_deposit.issue_claim(session, received.id, today=date(2025, 3, 1),
                                  out_dir=tmp_path, library="L", actor="staff:aliya")
    written = legal_deposit.issue_claim(session, late.id, today=date(2025, 3, 1),
                                        out_dir=tmp_path, library="L", actor="staff:aliya")
    assert sorted(c.language for c in written) == ["kk", "ru"]
    assert all(Path(c.pdf_path).is_file() and Path(c.html_path).is_file() for c in written)
    entries = session.scalars(select(AuditEntry).where(
        AuditEntry.action == "deposit.claim", AuditEntry.entity_key == str(late.id))).all()
    assert [e.actor for e in entries] == ["staff:aliya"]
    with pytest.raises(DepositError, match="already claimed"):
        legal_deposit.issue_claim(session, late.id, today=date(2025, 3, 1), out_dir=tmp_path,
                                  library="L", actor="staff:aliya")
    assert legal_deposit.claim_letter(session, written[0].id, "pdf") == Path(written[0].pdf_path)
    Path(written[0].pdf_path).unlink()
    with pytest.raises(ClaimLetterNotFound):
        legal_deposit.claim_letter(session, written[0].id, "pdf")
    session.rollback()
