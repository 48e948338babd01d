"""The library desk's commands end to end (``qor readers|loans|gate|debts|deposit|select``) on
the embedded register, as a librarian or a script runs them: exit codes, ``--json`` output and
the messages printed on refusal."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from catalog_sync import circulation
from catalog_sync.calendar_kz import KazakhCalendar
from catalog_sync.models import ItemStatus, ServicePointKind
from qor import wiring
from qor.cli import app
from qor.settings import load_settings
from tests.circulation.helpers import Inbox, body, make_item, make_point, make_reader
from tests.conftest import qor_environment

runner = CliRunner()


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Path]:
    """An embedded register (SQLite in the data folder) the commands use; yields the folder."""
    data = tmp_path / "data"
    with qor_environment(data, library_name="Ұлттық кітапхана"):
        yield data


def qor(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def qor_json(*args: str) -> Any:
    return json.loads(qor(*args, "--json"))


def seed(**make: Any) -> Any:
    """Run ``make`` builders in one committed register session; return their results."""
    with wiring.register_session(load_settings()) as s:
        return {name: fn(s) for name, fn in make.items()}


def test_a_desk_day_through_the_cli(library: Path) -> None:
    qor("loans", "points", "add", "desk", "Абонемент", "lending_desk")
    qor("loans", "points", "add", "room", "Оқу залы", "reading_room")
    assert {p["code"] for p in qor_json("loans", "points", "list")} == {"desk", "room"}
    qor(
        "readers",
        "add",
        "T-1",
        "Айгүл Серікова",
        "--category",
        "student",
        "--email",
        "aigul@example.kz",
    )
    qor("readers", "add", "T-2", "Болат Нұрланов")
    qor("readers", "update", "T-1", "--phone", "+7 701 000 00 00")
    shown = qor_json("readers", "show", "T-1")
    assert shown["name"] == "Айгүл Серікова" and shown["category"] == "student"
    assert shown["phone"] == "+7 701 000 00 00" and shown["open_loans"] == []
    assert [r["ticket_number"] for r in qor_json("readers", "list")] == ["T-1", "T-2"]
    made = seed(book=lambda s: make_item(s, title="Абай жолы"))
    inv, rfid = made["book"].inventory_number, made["book"].rfid

    loan = qor_json("loans", "out", rfid, "T-1", "desk")
    assert loan["inventory_number"] == inv and loan["ticket_number"] == "T-1"
    assert date.fromisoformat(loan["due_on"]) >= date.today() + timedelta(days=30)
    gate = qor_json("gate", "check", rfid)  # R10: disarmed and on loan: may leave
    assert gate["cleared"] is True
    assert qor_json("readers", "show", "T-1")["open_loans"][0]["inventory_number"] == inv
    renewed = qor_json("loans", "renew", inv)
    assert renewed["renewals"] == 1 and renewed["due_on"] > loan["due_on"]
    hold = qor_json("loans", "holds", "place", inv, "T-2")
    assert hold["status"] == "waiting"
    assert [h["ticket_number"] for h in qor_json("loans", "holds", "queue", inv)] == ["T-2"]
    assert "cannot be renewed: 1 reader(s) wait" in qor("loans", "renew", inv, code=1)

    back = qor_json("loans", "in", inv)
    assert back["kept_for"] == "T-2" and back["overdue_days"] == 0
    assert back["notice"] == "no (QOR_SMTP_URL is not set)"  # said, not silently skipped
    # Armed again: the item on the shelf raises the alarm, exit 1, and the alarm is logged.
    assert "ALARM" in qor("gate", "check", rfid, code=1)
    alarms = qor_json("gate", "events", "--alarms")
    assert alarms[0]["tag"] == rfid and alarms[0]["cleared"] is False
    assert "kept for reader T-2" in qor("loans", "out", inv, "T-1", "desk", code=1)
    qor("loans", "out", inv, "T-2", "room")
    assert qor_json("loans", "list", "--reader", "T-2")[0]["due_on"] == date.today().isoformat()


def test_refusals_and_bad_input_exit_1_with_a_message_a_librarian_understands(
    library: Path,
) -> None:
    made = seed(
        desk=lambda s: make_point(s, ServicePointKind.LENDING_DESK),
        raw=lambda s: make_item(s, status=ItemStatus.RECEIVED),
        book=lambda s: make_item(s),
        reader=lambda s: make_reader(s),
    )
    desk, ticket = made["desk"].code, made["reader"].ticket_number
    raw, book = made["raw"].inventory_number, made["book"].inventory_number
    # R8: an unprocessed item is not given out.
    assert "has not been processed yet" in qor("loans", "out", raw, ticket, desk, code=1)
    # R16: a blocked reader is refused with the reason; unblocking lets the loan through.
    qor("readers", "block", ticket, "lost library card")
    refused = qor("loans", "out", book, ticket, desk, code=1)
    assert "is blocked: lost library card" in refused
    assert qor_json("readers", "list", "--status", "blocked")[0]["ticket_number"] == ticket
    qor("readers", "unblock", ticket, "--note", "card found")
    qor("loans", "out", book, ticket, desk)
    # Hostile input: nothing changes, the message names the thing and the reason.
    assert "is not a date" in qor("loans", "in", book, "--returned-on", "2025-02-30", code=1)
    assert "unknown service point kind 'kiosk'" in qor(
        "loans", "points", "add", "k", "Kiosk", "kiosk", code=1
    )
    assert "unknown category 'vip'" in qor("readers", "update", ticket, "--category", "vip", code=1)
    assert "no reader with ticket number 'NOPE'" in qor("readers", "show", "NOPE", code=1)
    assert "replaced or compensated" in qor("loans", "settle", "1", "--how", "returned", code=1)
    assert qor_json("loans", "list", "--reader", ticket)[0]["inventory_number"] == book


def test_interlibrary_loans_and_settlement_through_the_cli(library: Path) -> None:
    made = seed(
        ill=lambda s: make_point(s, ServicePointKind.INTERLIBRARY),
        desk=lambda s: make_point(s, ServicePointKind.LENDING_DESK),
        ours=lambda s: make_item(s, title="Қазақ тарихы"),
        lost=lambda s: make_item(s, title="Жоғалған"),
        reader=lambda s: make_reader(s),
    )
    ill, ticket = made["ill"].code, made["reader"].ticket_number
    due = (date.today() + timedelta(days=20)).isoformat()
    lent = qor_json(
        "loans", "ill-lend", made["ours"].inventory_number, "ЕНУ кітапханасы", ill, "--due", due
    )
    assert lent["partner_library"] == "ЕНУ кітапханасы" and lent["ill_direction"] == "lent"
    assert lent["due_on"] == due
    borrowed = qor_json(
        "loans", "ill-borrow", "Rare atlas, 1890", "Omsk library", ticket, ill, "--due", due
    )
    assert borrowed["ill_direction"] == "borrowed" and borrowed["ticket_number"] == ticket
    closed = qor_json("loans", "ill-return", str(borrowed["loan_id"]))
    assert closed["returned_on"] == date.today().isoformat()
    # R16: a lost item is settled by compensation (in tiyn), recorded on the loan.
    out = qor_json("loans", "out", made["lost"].inventory_number, ticket, made["desk"].code)
    settled = qor_json(
        "loans",
        "settle",
        str(out["loan_id"]),
        "--how",
        "compensated",
        "--amount",
        "450000",
        "--note",
        "receipt 17",
    )
    assert settled["settlement"] == "compensated"
    assert "compensation needs a positive amount" in qor(
        "loans", "settle", str(lent["loan_id"]), "--how", "compensated", code=1
    )


def test_debt_run_mails_and_the_report_lists_debts_by_age_and_point(
    library: Path, smtp_server: tuple[str, Inbox], tmp_path: Path
) -> None:
    url, inbox = smtp_server

    def overdue(s: Any) -> tuple[str, str, date]:
        desk = make_point(s, ServicePointKind.LENDING_DESK)
        reader = make_reader(s, email="cli.debtor@example.kz", name="Сая Бекова")
        item = make_item(s, title="Мұхтар Әуезов")
        loan = circulation.check_out(
            s,
            item_code=item.inventory_number,
            ticket_number=reader.ticket_number,
            service_point=desk.code,
            actor="desk",
            at=datetime.now(UTC) - timedelta(days=45),  # due about 15 days ago
        )
        return desk.name, item.inventory_number, loan.due_on

    point, inv, due = seed(loan=overdue)["loan"]
    # Counted from the effective due date (a due date on a day off moves to the working day).
    days = (date.today() - KazakhCalendar().next_working_day(due)).days
    with qor_environment(library, smtp_url=url, mail_sender="desk@library.kz"):
        run = qor_json("debts", "run")
    assert run["reminders_sent"] == 2  # steps 1 and 7; 30 not reached, no block yet
    mails = inbox.to("cli.debtor@example.kz")
    assert len(mails) == 2 and "Сая Бекова" in body(mails[0]) and "Мұхтар Әуезов" in body(mails[0])

    html, table = tmp_path / "debts.html", tmp_path / "debts.csv"
    printed = qor("debts", "report", "--html", str(html), "--csv", str(table))
    line = next(ln for ln in printed.splitlines() if ln.startswith(point))
    assert "8–30 days" in line and line.split()[-1] == "1" and "1 open debt(s)" in printed
    with table.open(encoding="utf-8-sig", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["inventory_number"] == inv and row["days_overdue"] == str(days)
    assert row["age_band"] == "8–30 days" and row["reader"] == "Сая Бекова"
    page = html.read_text(encoding="utf-8")
    assert "Reader debts" in page and inv in page and "Сая Бекова" in page  # QOR_REPORT_LANGUAGE
    # The same report in Russian (R16: the service points' staff read it): same rows and CSV.
    ru_html, ru_table = tmp_path / "debts-ru.html", tmp_path / "debts-ru.csv"
    qor("debts", "report", "--html", str(ru_html), "--csv", str(ru_table), "--lang", "ru")
    ru_page = ru_html.read_text(encoding="utf-8")
    assert "Читательская задолженность" in ru_page and inv in ru_page and "Сая Бекова" in ru_page
    assert "Reader debts" not in ru_page
    assert ru_table.read_bytes() == table.read_bytes()


def test_deposit_commands(library: Path, tmp_path: Path) -> None:
    # R7, worked by hand: 20 Feb 2024 + 30 = 21 Mar, Nauryz; 22–23 Mar Nauryz, Sun 24, Mon 25
    # the moved day off → Tue 26 Mar 2024, for each recipient of paper copies.
    paper = qor_json("deposit", "due", "--form", "paper", "--first-printed", "2024-02-20")
    assert {r["recipient"] for r in paper} == {"book_chamber", "nlrk", "nabrk"}
    assert {r["due_on"] for r in paper} == {"2024-03-26"}
    assert "Nowruz" in paper[0]["why"]
    electronic = qor_json("deposit", "due", "--form", "electronic", "--first-printed", "2025-03-19")
    assert [(r["recipient"], r["due_on"]) for r in electronic] == [("book_chamber", "2025-03-27")]
    assert "not a date" in qor(
        "deposit", "due", "--form", "paper", "--first-printed", "19.03.2025", code=1
    )
    assert "paper or electronic" in qor(
        "deposit", "due", "--form", "parchment", "--first-printed", "2025-03-19", code=1
    )

    pub = qor_json(
        "deposit", "register", "Дала", "Фолиант", "--form", "paper", "--first-printed", "2024-02-20"
    )
    assert {ob["due_on"] for ob in pub["obligations"]} == {"2024-03-26"}
    first = pub["obligations"][0]["obligation_id"]
    qor("deposit", "receive", str(first), "--received-on", "2024-03-01")
    claims = qor_json("deposit", "claims", "--out", str(tmp_path / "claims"))
    assert len(claims) == 4  # two late obligations × (kk, ru)
    assert all(Path(c["pdf"]).read_bytes().startswith(b"%PDF") for c in claims)
    (report,) = qor_json("deposit", "report")
    assert report["publisher"] == "Фолиант" and report["on_time"] == 1
    assert report["overdue"] == 2

    qor("deposit", "calendar", "amend", "2025-03-26", "decree", "--kind", "day_off")
    moved = qor_json("deposit", "due", "--form", "electronic", "--first-printed", "2025-03-19")
    assert moved[0]["due_on"] == "2025-03-28"


def test_select_top_n(library: Path, tmp_path: Path) -> None:
    made = seed(
        one=lambda s: make_item(s, value_flags=("historical",)),
        three=lambda s: make_item(s, value_flags=("historical", "artistic", "scientific")),
        two=lambda s: make_item(s, value_flags=("historical", "artistic")),
        none=lambda s: make_item(s),
    )
    ranked = qor_json("select", "--top", "2")
    assert [c["inventory_number"] for c in ranked] == [
        made["three"].inventory_number,
        made["two"].inventory_number,
    ]
    assert ranked[0]["score"] == 15.0
    qor("select", "--top", "3", "--out", str(tmp_path / "work.csv"))
    with (tmp_path / "work.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["inventory_number"] for r in rows][-1] == made["one"].inventory_number
    assert "at least one item" in qor("select", "--top", "0", code=1)
