"""The three circulation flows run for real on a temporary Prefect server, with settings from the
environment and the register on PostgreSQL: overdue reminders (R16) to a local SMTP server,
the legal-deposit watch (R7) writing claim letters, and the selection for digitisation (R13)."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from catalog_sync import circulation, debts, legal_deposit, readers
from catalog_sync.calendar_kz import load_calendar
from catalog_sync.models import DepositClaim, ReaderStatus, ServicePointKind
from flows.circulation import digitisation_selection, legal_deposit_watch, overdue_reminders
from qor import wiring
from qor.settings import load_settings
from tests.circulation.helpers import Inbox, body, make_item, make_point, make_reader
from tests.conftest import qor_environment

NO_LIMIT = circulation.CirculationPolicy(debt_limit=99)


def test_overdue_reminders_flow_mails_blocks_and_records_each_step_once(
    prefect_server: None,
    postgres_database_url: str,
    smtp_server: tuple[str, Inbox],
    tmp_path: Path,
) -> None:
    url, inbox = smtp_server
    env = {
        "database_url": postgres_database_url,
        "smtp_url": url,
        "mail_sender": "abonement@library.kz",
        "library_name": "Ұлттық кітапхана",
        "reminder_steps": "[1, 7, 30]",
        "block_after_days": "30",
    }
    with qor_environment(tmp_path / "data", **env):
        with wiring.register_session(load_settings()) as s:
            desk = make_point(s, ServicePointKind.LENDING_DESK)
            late = make_reader(s, email="late.reader@example.kz", name="Ержан Тұрсынов")
            later = make_reader(s, email="later.reader@example.kz", name="Мәди Ахметов")
            book = make_item(s, title="Көшпенділер")
            old = make_item(s, title="Ақ кеме")
            # Lending desk, adult: 30 days. Due 2025-02-05 and 2025-01-06.
            out = circulation.check_out(
                s,
                item_code=book.inventory_number,
                ticket_number=late.ticket_number,
                service_point=desk.code,
                actor="desk",
                at=datetime(2025, 1, 6, 10, tzinfo=UTC),
                policy=NO_LIMIT,
            )
            circulation.check_out(
                s,
                item_code=old.inventory_number,
                ticket_number=later.ticket_number,
                service_point=desk.code,
                actor="desk",
                at=datetime(2024, 12, 7, 10, tzinfo=UTC),
                policy=NO_LIMIT,
            )
            due = out.due_on
            tickets = late.ticket_number, later.ticket_number

        result = overdue_reminders(today=date(2025, 2, 13))

        # 8 days overdue: reminders of steps 1 and 7. 38 days: steps 1, 7, 30 and a block.
        to_late = inbox.to("late.reader@example.kz")
        assert len(to_late) == 2
        text = body(to_late[0])
        assert "Ержан Тұрсынов" in text and tickets[0] in text
        assert "Көшпенділер" in text and due.strftime("%d.%m.%Y") in text
        assert len(inbox.to("later.reader@example.kz")) == 3
        assert result["blocked"] == [tickets[1]]
        with wiring.register_session(load_settings()) as s:
            blocked = readers.get_reader(s, tickets[1])
            assert blocked.status == ReaderStatus.BLOCKED
            assert (blocked.blocked_reason or "").startswith(circulation.DEBT_BLOCK_PREFIX)
            steps = debts.debt_steps(s, out.id)
            assert [(x.kind, x.step_days, x.outcome) for x in steps] == [
                ("reminder", 1, "sent"),
                ("reminder", 7, "sent"),
            ]
        # The next run the same day sends nothing again.
        again = overdue_reminders(today=date(2025, 2, 13))
        assert again["reminders_sent"] == 0
        assert len(inbox.to("late.reader@example.kz")) == 2


def test_legal_deposit_watch_flow_writes_claims_in_kazakh_and_russian(
    prefect_server: None, postgres_database_url: str, tmp_path: Path
) -> None:
    with qor_environment(tmp_path / "data", database_url=postgres_database_url):
        with wiring.register_session(load_settings()) as s:
            pub = legal_deposit.register_publication(
                s,
                title="Дала әуендері",
                publisher="Фолиант баспасы",
                form="electronic",
                first_printed=date(2025, 3, 19),
                actor="deposit",
                calendar=load_calendar(s),
            )
            on_time = legal_deposit.register_publication(
                s,
                title="Жаңа кітап",
                publisher="Алматыкітап",
                form="electronic",
                first_printed=date(2025, 3, 19),
                actor="deposit",
                calendar=load_calendar(s),
            )
            (ob,) = pub.obligations  # electronic: the Book Chamber only, due Thu 27 Mar
            assert ob.due_on == date(2025, 3, 27)
            legal_deposit.register_receipt(
                s, on_time.obligations[0].id, received_on=date(2025, 3, 25), actor="deposit"
            )
            ob_id = ob.id
        out = tmp_path / "claims"

        assert legal_deposit_watch(today=date(2025, 3, 27), out_dir=str(out)) == []  # not late yet
        paths = legal_deposit_watch(today=date(2025, 3, 28), out_dir=str(out))

        assert len(paths) == 2  # this obligation, kk and ru; the received one is not claimed
        for pdf in map(Path, paths):
            assert pdf.read_bytes().startswith(b"%PDF")
        html_kk = (out / f"claim-{ob_id}-2025-03-28-kk.html").read_text(encoding="utf-8")
        html_ru = (out / f"claim-{ob_id}-2025-03-28-ru.html").read_text(encoding="utf-8")
        assert "Фолиант баспасы" in html_kk and "Дала әуендері" in html_kk
        assert "2025" in html_ru and "Фолиант баспасы" in html_ru
        with wiring.register_session(load_settings()) as s:
            claims = s.scalars(select(DepositClaim).where(DepositClaim.obligation_id == ob_id))
            assert sorted(c.language for c in claims) == ["kk", "ru"]
        # Claimed once a day: a second run the same day writes nothing.
        assert legal_deposit_watch(today=date(2025, 3, 28), out_dir=str(out)) == []


def test_digitisation_selection_flow_writes_the_work_list(
    prefect_server: None, postgres_database_url: str, tmp_path: Path
) -> None:
    with qor_environment(tmp_path / "data", database_url=postgres_database_url):
        with wiring.register_session(load_settings()) as s:
            room = make_point(s, ServicePointKind.READING_ROOM)
            plain = make_item(s, title="Қарапайым")
            precious = make_item(s, title="Қолжазба", value_flags=("historical", "scientific"))
            read = make_item(s, title="Сұранысты")
            for day in (3, 4, 5):
                at = datetime(2025, 3, day, 10, tzinfo=UTC)
                circulation.check_out(
                    s,
                    item_code=read.inventory_number,
                    ticket_number=make_reader(s).ticket_number,
                    service_point=room.code,
                    actor="room",
                    at=at,
                )
                circulation.check_in(s, item_code=read.inventory_number, actor="room", at=at)
            invs = precious.inventory_number, read.inventory_number, plain.inventory_number

        path = digitisation_selection(
            top=5, out=str(tmp_path / "work" / "list.csv"), today=date(2025, 6, 2)
        )

        with Path(path).open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        # Two flags × 5 = 10 beat three reading-room uses × 1.5 = 4.5; no demand, no place.
        assert [r["inventory_number"] for r in rows] == [invs[0], invs[1]]
        assert rows[1]["reading_room_uses"] == "3"
        assert rows[0]["command"] == f"qor digitise PAGES_DIR --inventory {invs[0]}"
