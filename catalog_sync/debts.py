"""Reader debts (оқырмандық берешек · читательская задолженность, R16): overdue loans, reminders
at configurable steps, blocking past a threshold, and the debt report.

:func:`run_debt_steps` is what the daily flow calls: for every reader with overdue items it sends
one reminder per step reached (e.g. 1, 7 and 30 days overdue) listing the reader's name, the
items and their due dates, and blocks the reader once an item is ``block_after_days`` overdue.
Each step is recorded once per loan (``debt_steps``: a unique key), so running the flow twice a
day, or after a missed day, never repeats or skips a step; a reminder is recorded only after the
SMTP server accepted it.

Overdue days are counted from the *effective* due date (the due date, or the next working day
when it is a day off under the current calendar) to the effective return date. A backdated
return therefore counts only up to the day the book really came back, and a holiday added to
the calendar later can only shorten a debt — the two ways Koha has been known to make wrong
charges. Settled debts (return, replacement, compensation) lift the debt block.
"""

from __future__ import annotations

import csv
import html
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Final, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync import vocabulary
from catalog_sync.calendar_kz import KazakhCalendar
from catalog_sync.circulation import DEBT_BLOCK_PREFIX, effective_due, overdue_days
from catalog_sync.errors import MailUnavailable, RegisterError
from catalog_sync.models import DebtStep, Loan, Reader, ReaderStatus, utcnow
from catalog_sync.readers import block_reader

logger = logging.getLogger(__name__)

REMINDER = "reminder"
BLOCK = "block"
AGE_BANDS: tuple[tuple[int, int | None, str], ...] = (
    (1, 7, "1–7 days"),
    (8, 30, "8–30 days"),
    (31, 90, "31–90 days"),
    (91, None, "over 90 days"),
)


class Mailer(Protocol):
    """Something that sends an e-mail message (:class:`catalog_sync.mail.SmtpMailer`)."""

    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class DebtPolicy:
    """When to remind and when to block (days overdue)."""

    reminder_steps: tuple[int, ...] = (1, 7, 30)
    block_after_days: int | None = 30

    def __post_init__(self) -> None:
        if not self.reminder_steps or any(s < 1 for s in self.reminder_steps):
            raise RegisterError(f"reminder steps must be positive days: {self.reminder_steps}")
        if self.block_after_days is not None and self.block_after_days < 1:
            raise RegisterError("block_after_days must be positive")


@dataclass(frozen=True)
class Debt:
    """One overdue loan as plain values."""

    loan_id: int
    ticket_number: str | None
    reader_name: str
    email: str | None
    inventory_number: str | None
    title: str
    service_point: str
    due_on: date
    days_overdue: int

    @property
    def age_band(self) -> str:
        """The report's age band."""
        for low, high, label in AGE_BANDS:
            if self.days_overdue >= low and (high is None or self.days_overdue <= high):
                return label
        return "not overdue"


def _debt(loan: Loan, days: int) -> Debt:
    reader, item = loan.reader, loan.item
    return Debt(
        loan_id=loan.id,
        ticket_number=None if reader is None else reader.ticket_number,
        reader_name=reader.name if reader is not None else f"partner: {loan.partner_library}",
        email=None if reader is None else reader.email,
        inventory_number=None if item is None else item.inventory_number,
        title=item.record.title if item is not None else (loan.external_item or ""),
        service_point=loan.service_point.name,
        due_on=loan.due_on,
        days_overdue=days,
    )


def open_debts(
    session: Session, *, today: date, calendar: KazakhCalendar | None = None
) -> list[Debt]:
    """Every open loan past its effective due date, most overdue first."""
    loans = session.scalars(
        select(Loan).where(Loan.returned_at.is_(None), Loan.due_on < today).order_by(Loan.due_on)
    ).all()
    out = []
    for loan in loans:
        days = overdue_days(loan, today=today, calendar=calendar)
        if days > 0:
            out.append(_debt(loan, days))
    return sorted(out, key=lambda d: (-d.days_overdue, d.loan_id))


@dataclass
class DebtRunReport:
    """What one daily run did."""

    today: date
    reminders_sent: int = 0
    readers_reminded: list[str] = field(default_factory=list)
    no_address: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            "today": self.today.isoformat(),
            "reminders_sent": self.reminders_sent,
            "readers_reminded": self.readers_reminded,
            "no_address": self.no_address,
            "failed": self.failed,
            "blocked": self.blocked,
        }


def reminder_message(
    *, reader: Reader, debts: Sequence[Debt], step: int, sender: str, library: str, today: date
) -> EmailMessage:
    """The reminder e-mail (Kazakh and Russian, then English): the reader's name, each item
    with its due date and days overdue."""
    lines = [
        f"  - {d.title} (инв. № {d.inventory_number or '—'}), мерзімі / срок: "
        f"{d.due_on.strftime('%d.%m.%Y')}, {d.days_overdue} күн / дн."
        for d in debts
    ]
    body = "\n".join(
        [
            f"Құрметті {reader.name}! / Уважаемый(ая) {reader.name}!",
            "",
            f"{library}: сіздің қайтару мерзімі өткен басылымдарыңыз бар. / "
            "У вас есть издания с истёкшим сроком возврата:",
            *lines,
            "",
            "Басылымдарды кітапханаға қайтаруыңызды сұраймыз. / "
            "Просим вернуть издания в библиотеку.",
            f"Оқырман билеті / Читательский билет: {reader.ticket_number}",
            "",
            f"Dear {reader.name}, the items above were due back at {library}; "
            f"this is reminder step {step} ({today.isoformat()}).",
        ]
    )
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = reader.email or ""
    msg["Subject"] = f"{library}: қайтару мерзімі өтті / просрочен возврат ({len(debts)})"
    msg.set_content(body)
    return msg


def run_debt_steps(
    session: Session,
    *,
    today: date,
    mailer: Mailer | None,
    sender: str,
    library: str,
    actor: str = "debt-flow",
    policy: DebtPolicy = DebtPolicy(),
    calendar: KazakhCalendar | None = None,
) -> DebtRunReport:
    """R16: send due reminders, block readers past the threshold, record each step once.

    One e-mail per reader and step, listing all the reader's items that reached that step. A
    reader without an e-mail address gets a recorded ``no_address`` step (the desk calls them).
    The caller commits; an SMTP failure leaves that reader's steps unrecorded for the next run.
    """
    report = DebtRunReport(today=today)
    done = {
        (loan_id, kind, step)
        for loan_id, kind, step in session.execute(
            select(DebtStep.loan_id, DebtStep.kind, DebtStep.step_days)
        )
    }
    by_reader: dict[int, list[tuple[Loan, int]]] = defaultdict(list)
    for loan in session.scalars(
        select(Loan).where(
            Loan.returned_at.is_(None), Loan.due_on < today, Loan.reader_id.is_not(None)
        )
    ):
        days = overdue_days(loan, today=today, calendar=calendar)
        if days > 0 and loan.reader_id is not None:
            by_reader[loan.reader_id].append((loan, days))
    now = utcnow()
    for reader_id in sorted(by_reader):
        reader = session.get(Reader, reader_id)
        if reader is None:
            continue
        entries = by_reader[reader_id]
        for step in sorted(policy.reminder_steps):
            pending = [
                (ln, d) for ln, d in entries if d >= step and (ln.id, REMINDER, step) not in done
            ]
            if not pending:
                continue
            debts = [_debt(ln, d) for ln, d in pending]
            if reader.email:
                msg = reminder_message(
                    reader=reader,
                    debts=debts,
                    step=step,
                    sender=sender,
                    library=library,
                    today=today,
                )
                if mailer is None:
                    raise RegisterError("reminders need a mailer (set QOR_SMTP_URL)")
                try:
                    mailer.send(msg)
                except MailUnavailable as e:
                    logger.warning("reminder to %s not sent: %s", reader.ticket_number, e)
                    report.failed.append(reader.ticket_number)
                    break  # later steps would fail the same way; the next run retries
                outcome, recipient = "sent", reader.email
                report.reminders_sent += 1
                report.readers_reminded.append(reader.ticket_number)
            else:
                outcome, recipient = "no_address", None
                report.no_address.append(reader.ticket_number)
            for ln, d in pending:
                session.add(
                    DebtStep(
                        loan_id=ln.id,
                        kind=REMINDER,
                        step_days=step,
                        at=now,
                        outcome=outcome,
                        recipient=recipient,
                        detail=f"{d} days overdue, due {ln.due_on.isoformat()}",
                    )
                )
                done.add((ln.id, REMINDER, step))
        limit = policy.block_after_days
        if limit is None:
            continue
        worst = [(ln, d) for ln, d in entries if d >= limit and (ln.id, BLOCK, limit) not in done]
        if not worst:
            continue
        if reader.status != ReaderStatus.BLOCKED:
            items = ", ".join(
                ln.item.inventory_number if ln.item is not None else (ln.external_item or "?")
                for ln, _ in worst
            )
            block_reader(
                session,
                reader.ticket_number,
                actor=actor,
                at=now,
                reason=(
                    f"{DEBT_BLOCK_PREFIX} {len(worst)} item(s) over {limit} days overdue ({items})"
                ),
            )
            report.blocked.append(reader.ticket_number)
        for ln, d in worst:
            session.add(
                DebtStep(
                    loan_id=ln.id,
                    kind=BLOCK,
                    step_days=limit,
                    at=now,
                    outcome="blocked",
                    recipient=None,
                    detail=f"{d} days overdue, due {ln.due_on.isoformat()}",
                )
            )
    session.flush()
    return report


def debt_steps(session: Session, loan_id: int) -> list[DebtStep]:
    """The steps recorded on a loan, in order."""
    return list(
        session.scalars(select(DebtStep).where(DebtStep.loan_id == loan_id).order_by(DebtStep.id))
    )


@dataclass(frozen=True)
class DebtSummaryRow:
    """Count of open debts for one service point and age band."""

    service_point: str
    age_band: str
    count: int


def summarise(debts: Sequence[Debt]) -> list[DebtSummaryRow]:
    """Open debts counted by service point and age band."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for d in debts:
        counts[(d.service_point, d.age_band)] += 1
    order = {label: i for i, (_, _, label) in enumerate(AGE_BANDS)}
    return [
        DebtSummaryRow(sp, band, n)
        for (sp, band), n in sorted(
            counts.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9))
        )
    ]


def write_debt_report(
    debts: Sequence[Debt],
    *,
    today: date,
    library: str,
    html_path: Path | None = None,
    csv_path: Path | None = None,
    language: str = "en",
) -> None:
    """Write the debt report as A4 HTML (in ``language``) and/or CSV (UTF-8 with BOM for
    spreadsheets; English keys)."""
    if csv_path is not None:
        with csv_path.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "service_point",
                    "age_band",
                    "days_overdue",
                    "ticket_number",
                    "reader",
                    "inventory_number",
                    "title",
                    "due_on",
                ]
            )
            for d in sorted(debts, key=lambda d: (d.service_point, -d.days_overdue)):
                w.writerow(
                    [
                        d.service_point,
                        d.age_band,
                        d.days_overdue,
                        d.ticket_number or "",
                        d.reader_name,
                        d.inventory_number or "",
                        d.title,
                        d.due_on.isoformat(),
                    ]
                )
    if html_path is not None:
        html_path.write_text(debt_report_html(debts, today=today, library=library,
                                              language=language), encoding="utf-8")


#: The debt report's words (оқырмандық берешек · читательская задолженность, R16).
_DEBT_WORDS: Final[Mapping[str, Mapping[str, str]]] = {
    "kk": {"title": "Оқырмандық берешек — {day}", "open": "Ашық берешек: {n}.",
           "by": "Қызмет көрсету орындары және мерзімі бойынша", "items": "Даналар",
           "point": "Қызмет көрсету орны", "age": "Мерзімі", "count": "Даналар",
           "days": "Кешіктірілген күн", "ticket": "Оқырман билеті", "reader": "Оқырман",
           "inv": "Инв. №", "book": "Атауы", "due": "Қайтару мерзімі",
           "1–7 days": "1–7 күн", "8–30 days": "8–30 күн", "31–90 days": "31–90 күн",
           "over 90 days": "90 күннен артық"},
    "ru": {"title": "Читательская задолженность — {day}", "open": "Открытых задолженностей: {n}.",
           "by": "По пунктам обслуживания и сроку", "items": "Экземпляры",
           "point": "Пункт обслуживания", "age": "Срок", "count": "Экземпляров",
           "days": "Дней просрочки", "ticket": "Читательский билет", "reader": "Читатель",
           "inv": "Инв. №", "book": "Заглавие", "due": "Срок возврата",
           "1–7 days": "1–7 дней", "8–30 days": "8–30 дней", "31–90 days": "31–90 дней",
           "over 90 days": "более 90 дней"},
    "en": {"title": "Reader debts — {day}", "open": "{n} open debt(s).",
           "by": "By service point and age", "items": "Items",
           "point": "Service point", "age": "Age", "count": "Items",
           "days": "Days overdue", "ticket": "Ticket", "reader": "Reader",
           "inv": "Inventory No.", "book": "Title", "due": "Due"},
}


def debt_report_html(
    debts: Sequence[Debt], *, today: date, library: str, language: str = "en"
) -> str:
    """The debt report as one A4 HTML page, its headings, labels and age bands in
    ``language`` (kk, ru or en); the CSV keeps English keys and band names."""
    w = _DEBT_WORDS[vocabulary.check_language(language)]
    e = html.escape
    summary = "".join(
        f"<tr><td>{e(r.service_point)}</td><td>{e(w.get(r.age_band, r.age_band))}</td>"
        f"<td>{r.count}</td></tr>"
        for r in summarise(debts)
    )
    rows = "".join(
        f"<tr><td>{e(d.service_point)}</td><td>{d.days_overdue}</td>"
        f"<td>{e(d.ticket_number or '')}</td><td>{e(d.reader_name)}</td>"
        f"<td>{e(d.inventory_number or '')}</td><td>{e(d.title)}</td>"
        f"<td>{d.due_on.isoformat()}</td></tr>"
        for d in sorted(debts, key=lambda d: (d.service_point, -d.days_overdue))
    )
    title = w["title"].format(day=today.isoformat())
    return f"""<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8">
<title>{e(title)}</title>
<style>@page {{ size: A4; margin: 15mm }} body {{ font-family: sans-serif; font-size: 10pt }}
table {{ border-collapse: collapse; width: 100% }}
td, th {{ border: 1px solid #999; padding: 2px 4px }}
</style></head><body>
<h1>{e(library)}</h1>
<h2>{e(title)}</h2>
<p>{w["open"].format(n=len(debts))}</p>
<h3>{w["by"]}</h3>
<table><tr><th>{w["point"]}</th><th>{w["age"]}</th><th>{w["count"]}</th></tr>{summary}</table>
<h3>{w["items"]}</h3>
<table><tr><th>{w["point"]}</th><th>{w["days"]}</th><th>{w["ticket"]}</th><th>{w["reader"]}</th>
<th>{w["inv"]}</th><th>{w["book"]}</th><th>{w["due"]}</th></tr>{rows}</table>
</body></html>
"""


def effective_due_on(loan: Loan, calendar: KazakhCalendar | None) -> date:
    """The effective due date of a loan (see :func:`catalog_sync.circulation.effective_due`)."""
    return effective_due(loan.due_on, calendar)
