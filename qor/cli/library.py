"""Library desk commands: ``qor library readers|loans|gate|debts|deposit|select``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qor.cli._common import (
    JsonOpt,
    LangOpt,
    cli_settings,
    console,
    emit_json,
    fail,
    report_language,
)
from qor.errors import QorError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from catalog_sync.models import Reader

app = typer.Typer(
    help="Readers, loans, the security gate, debts, legal deposit, selection.", no_args_is_help=True
)
readers_app = typer.Typer(help="Readers (оқырман · читатель).", no_args_is_help=True)
loans_app = typer.Typer(help="Loans at the service points (R15).", no_args_is_help=True)
gate_app = typer.Typer(help="The security gate (R10).", no_args_is_help=True)
debts_app = typer.Typer(help="Reader debts (R16).", no_args_is_help=True)
deposit_app = typer.Typer(help="Legal deposit (R7).", no_args_is_help=True)
app.add_typer(readers_app, name="readers")
app.add_typer(loans_app, name="loans")
app.add_typer(gate_app, name="gate")
app.add_typer(debts_app, name="debts")
app.add_typer(deposit_app, name="deposit")

holds_app = typer.Typer(help="Holds queue (брондау · бронирование).", no_args_is_help=True)
points_app = typer.Typer(help="Service points (R15).", no_args_is_help=True)
calendar_app = typer.Typer(help="The library's amendments to the calendar (R7).")
loans_app.add_typer(holds_app, name="holds")
loans_app.add_typer(points_app, name="points")
deposit_app.add_typer(calendar_app, name="calendar")

Actor = Annotated[str, typer.Option("--actor", help="Who does it (for the record).")]
DateOpt = Annotated[str | None, typer.Option(help="A date, YYYY-MM-DD (default: today).")]


@contextmanager
def _desk() -> Iterator[Session]:
    """A register session that commits at the end; a Qor error exits with its code."""
    from qor.wiring import register_session

    try:
        with register_session(cli_settings()) as s:
            yield s
    except QorError as e:
        raise fail(e) from e


def _date(text: str | None, what: str) -> date:
    from catalog_sync.errors import RegisterError

    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(RegisterError(f"{what} {text!r} is not a date (YYYY-MM-DD)")) from None


def _reader_dict(r: Reader) -> dict[str, object]:
    return {
        "ticket_number": r.ticket_number,
        "name": r.name,
        "category": r.category,
        "email": r.email,
        "phone": r.phone,
        "status": r.status,
        "blocked_reason": r.blocked_reason,
        "registered_on": r.registered_on.isoformat(),
    }


@readers_app.command("add")
def readers_add(
    ticket: str,
    name: str,
    category: str = "adult",
    email: str | None = None,
    phone: str | None = None,
    actor: Actor = "cli",
) -> None:
    """Register a reader."""
    from catalog_sync import readers
    from qor.wiring import register_session

    try:
        with register_session(cli_settings()) as s:
            r = readers.add_reader(
                s,
                ticket_number=ticket,
                name=name,
                category=category,
                email=email,
                phone=phone,
                actor=actor,
            )
            console.print(f"reader {r.ticket_number} registered")
    except QorError as e:
        raise fail(e) from e


@readers_app.command("block")
def readers_block(ticket: str, reason: str, actor: Actor = "cli") -> None:
    """Block a reader with a reason."""
    from catalog_sync import readers
    from qor.wiring import register_session

    try:
        with register_session(cli_settings()) as s:
            readers.block_reader(s, ticket, reason=reason, actor=actor)
        console.print(f"reader {ticket} blocked: {reason}")
    except QorError as e:
        raise fail(e) from e


@loans_app.command("out")
def loans_out(
    item: str, ticket: str, point: str, actor: Actor = "cli", as_json: JsonOpt = False
) -> None:
    """Lend ITEM (inventory number, barcode or RFID) to reader TICKET at service point POINT."""
    from catalog_sync import circulation
    from catalog_sync.calendar_kz import load_calendar
    from qor.wiring import circulation_policy, register_session

    try:
        with register_session(cli_settings()) as s:
            loan = circulation.check_out(
                s,
                item_code=item,
                ticket_number=ticket,
                service_point=point,
                actor=actor,
                policy=circulation_policy(cli_settings()),
                calendar=load_calendar(s),
            )
            facts = circulation.loan_facts(loan)
        if as_json:
            emit_json(facts.as_dict())
        else:
            console.print(f"{facts.inventory_number} lent to {ticket}, due {facts.due_on}")
    except QorError as e:
        raise fail(e) from e


@loans_app.command("in")
def loans_in(
    item: str, returned_on: DateOpt = None, actor: Actor = "cli", as_json: JsonOpt = False
) -> None:
    """Take ITEM back (--returned-on backdates the return: debt counts to that day)."""
    from catalog_sync import circulation
    from catalog_sync.calendar_kz import load_calendar
    from qor.wiring import circulation_policy

    day = _date(returned_on, "--returned-on") if returned_on else None
    with _desk() as s:
        back = circulation.check_in(
            s,
            item_code=item,
            actor=actor,
            calendar=load_calendar(s),
            returned_on=day,
            policy=circulation_policy(cli_settings()),
        )
        data = circulation.loan_facts(back.loan).as_dict() | {
            "overdue_days": back.overdue_days,
            "kept_for": back.kept_for,
        }
    if back.hold_id is not None:
        data["notice"] = _hold_notice(back.hold_id)
    if as_json:
        emit_json(data)
        return
    kept = f"; keep it for reader {back.kept_for}" if back.kept_for else ""
    console.print(f"{data['inventory_number']} returned, {back.overdue_days} day(s) overdue{kept}")
    if back.hold_id is not None:
        console.print(f"reader notified: {data['notice']}")


def _hold_notice(hold_id: int) -> str:
    """Tell the reader an item was kept for their hold (after the check-in committed)."""
    from catalog_sync import circulation
    from catalog_sync.mail import SmtpMailer
    from qor.wiring import circulation_policy

    settings = cli_settings()
    if not settings.smtp_url:
        return "no (QOR_SMTP_URL is not set)"
    with _desk() as s:
        message = circulation.hold_ready_message(
            s, hold_id, sender=settings.mail_sender, library=settings.library_name,
            pickup_days=circulation_policy(settings).hold_pickup_days,
        )
    if message is None:
        return "no (the reader has no e-mail address)"
    try:
        SmtpMailer(settings.smtp_url).send(message)
    except QorError as e:
        return f"no ({e})"
    return f"yes ({message['To']})"


@gate_app.command("check")
def gate_check(tag: str, gate: str = "main", as_json: JsonOpt = False) -> None:
    """Say whether the item with TAG may leave; alarms are logged (exit 1 on alarm)."""
    from catalog_sync import gate as gate_mod
    from qor.wiring import register_session

    try:
        with register_session(cli_settings()) as s:
            verdict = gate_mod.gate_check(s, tag, gate=gate)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json(verdict.as_dict())
    else:
        console.print(("CLEARED: " if verdict.cleared else "ALARM: ") + verdict.reason)
    if not verdict.cleared:
        raise typer.Exit(1)


@debts_app.command("report")
def debts_report(html: Path | None = None, csv: Path | None = None,
                 lang: LangOpt = None) -> None:
    """Open debts by age and service point (HTML in ``--lang`` and/or CSV; a summary on
    screen)."""
    from catalog_sync import debts
    from catalog_sync.calendar_kz import load_calendar
    from qor.wiring import register_session

    settings = cli_settings()
    language = report_language(lang, settings)
    try:
        with register_session(settings) as s:
            found = debts.open_debts(s, today=date.today(), calendar=load_calendar(s))
        debts.write_debt_report(
            found, today=date.today(), library=settings.library_name, html_path=html,
            csv_path=csv, language=language,
        )
    except QorError as e:
        raise fail(e) from e
    for row in debts.summarise(found):
        console.print(f"{row.service_point}\t{row.age_band}\t{row.count}")
    console.print(f"{len(found)} open debt(s)")


@deposit_app.command("due")
def deposit_due(
    form: Annotated[str, typer.Option("--form", help="paper or electronic")],
    first_printed: Annotated[str, typer.Option("--first-printed", help="YYYY-MM-DD")],
    as_json: JsonOpt = False,
) -> None:
    """Each recipient's due date for a publication of FORM first printed on DATE (R7), and why
    (a term ending on a day off moves to the next working day)."""
    from catalog_sync import legal_deposit
    from catalog_sync.calendar_kz import load_calendar
    from catalog_sync.errors import DepositError
    from catalog_sync.models import DepositForm

    if form not in {f.value for f in DepositForm}:
        raise fail(DepositError(f"unknown form {form!r} (paper or electronic)"))
    printed = _date(first_printed, "--first-printed")
    settings = cli_settings()
    with _desk() as s:
        rows = legal_deposit.due_dates(
            s,
            form=form,
            first_printed=printed,
            calendar=load_calendar(s),
            move_off_days=settings.deposit_move_off_days,
        )
        out = [
            {"recipient": r.code, "name": r.name_ru, "due_on": d.isoformat(), "why": w}
            for r, d, w in rows
        ]
    if as_json:
        emit_json(out)
    else:
        for row in out:
            console.print(f"{row['recipient']}\t{row['due_on']}\t{row['why']}")


@deposit_app.command("report")
def deposit_report(as_json: JsonOpt = False) -> None:
    """Compliance per publisher."""
    from catalog_sync import legal_deposit

    with _desk() as s:
        rows = legal_deposit.compliance_report(s, today=date.today())
    if as_json:
        emit_json([r.__dict__ | {"rate": r.rate} for r in rows])
    else:
        for r in rows:
            console.print(
                f"{r.publisher}\t{r.obligations}\ton time {r.on_time}\tlate {r.late}\t"
                f"overdue {r.overdue}\tpending {r.pending}\t{r.rate:.0%}"
            )


@app.command("select")
def select_cmd(
    top: Annotated[int, typer.Option("--top")] = 50,
    out: Path | None = None,
    as_json: JsonOpt = False,
) -> None:
    """Items most worth digitising now (R13), best first."""
    from catalog_sync import selection

    with _desk() as s:
        ranked = selection.rank_for_digitisation(s, today=date.today(), top=top)
    if out is not None:
        selection.write_work_list(ranked, out)
    if as_json:
        emit_json([c.as_dict() for c in ranked])
    else:
        for i, c in enumerate(ranked, 1):
            console.print(f"{i}\t{c.inventory_number}\t{c.score:.1f}\t{c.title}")


# --- readers --------------------------------------------------------------------------------


@readers_app.command("show")
def readers_show(ticket: str, as_json: JsonOpt = False) -> None:
    """A reader's details, status and open loans."""
    from catalog_sync import circulation, readers

    with _desk() as s:
        data = _reader_dict(readers.get_reader(s, ticket))
        data["open_loans"] = [
            circulation.loan_facts(ln).as_dict()
            for ln in circulation.open_loans(s, ticket_number=ticket)
        ]
    if as_json:
        emit_json(data)
        return
    status = str(data["status"])
    if data["blocked_reason"]:
        status += f" ({data['blocked_reason']})"
    console.print(f"{data['ticket_number']}  {data['name']}  [{data['category']}]  {status}")
    console.print(
        f"e-mail {data['email'] or '—'}  phone {data['phone'] or '—'}  "
        f"registered {data['registered_on']}"
    )
    loans = data["open_loans"]
    assert isinstance(loans, list)
    for ln in loans:
        console.print(
            f"  {ln['inventory_number'] or ln['external_item']}\t{ln['title']}\t"
            f"due {ln['due_on']}\t{ln['service_point']}"
        )
    console.print(f"{len(loans)} open loan(s)")


@readers_app.command("list")
def readers_list(
    status: Annotated[str | None, typer.Option(help="active or blocked")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Readers by ticket number."""
    from catalog_sync import readers
    from catalog_sync.errors import RegisterError
    from catalog_sync.models import ReaderStatus

    if status is not None and status not in {s.value for s in ReaderStatus}:
        raise fail(RegisterError(f"unknown reader status {status!r} (active or blocked)"))
    with _desk() as s:
        rows = [_reader_dict(r) for r in readers.list_readers(s, status=status)]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        console.print(f"{r['ticket_number']}\t{r['name']}\t{r['category']}\t{r['status']}")


@readers_app.command("update")
def readers_update(
    ticket: str,
    name: str | None = None,
    category: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    actor: Actor = "cli",
) -> None:
    """Change a reader's name, category or contacts (only the options given)."""
    from catalog_sync import readers
    from catalog_sync.errors import RegisterError
    from catalog_sync.models import ReaderCategory

    if category is not None and category not in {c.value for c in ReaderCategory}:
        known = ", ".join(c.value for c in ReaderCategory)
        raise fail(RegisterError(f"unknown category {category!r} (one of {known})"))
    with _desk() as s:
        readers.update_reader(
            s, ticket, actor=actor, name=name, category=category, email=email, phone=phone
        )
    console.print(f"reader {ticket} updated")


@readers_app.command("unblock")
def readers_unblock(ticket: str, note: str = "", actor: Actor = "cli") -> None:
    """Lift a reader's block."""
    from catalog_sync import readers

    with _desk() as s:
        readers.unblock_reader(s, ticket, actor=actor, note=note)
    console.print(f"reader {ticket} unblocked")


# --- loans -----------------------------------------------------------------------------------


def _print_loan(facts: object, as_json: bool, line: str) -> None:
    from catalog_sync.circulation import LoanFacts

    assert isinstance(facts, LoanFacts)
    if as_json:
        emit_json(facts.as_dict())
    else:
        console.print(line)


@loans_app.command("renew")
def loans_renew(item: str, actor: Actor = "cli", as_json: JsonOpt = False) -> None:
    """Renew the loan of ITEM by one loan period (within the policy's limit)."""
    from catalog_sync import circulation
    from catalog_sync.calendar_kz import load_calendar
    from qor.wiring import circulation_policy

    with _desk() as s:
        loan = circulation.renew(
            s,
            item_code=item,
            actor=actor,
            policy=circulation_policy(cli_settings()),
            calendar=load_calendar(s),
        )
        facts = circulation.loan_facts(loan)
    _print_loan(
        facts, as_json, f"{facts.inventory_number} renewed ({facts.renewals}), due {facts.due_on}"
    )


@loans_app.command("list")
def loans_list(
    reader: Annotated[str | None, typer.Option(help="Only this reader's loans.")] = None,
    overdue: Annotated[bool, typer.Option(help="Only loans past their due date.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Open loans, earliest due first."""
    from catalog_sync import circulation

    with _desk() as s:
        rows = [
            circulation.loan_facts(ln).as_dict()
            for ln in circulation.open_loans(
                s, ticket_number=reader, overdue_on=date.today() if overdue else None
            )
        ]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        who = r["ticket_number"] or f"partner {r['partner_library']}"
        console.print(
            f"{r['loan_id']}\t{r['inventory_number'] or r['external_item']}\t{who}\t"
            f"due {r['due_on']}\t{r['service_point']}"
        )
    console.print(f"{len(rows)} open loan(s)")


@loans_app.command("ill-lend")
def loans_ill_lend(
    item: str,
    partner: str,
    point: str,
    due: DateOpt = None,
    actor: Actor = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Lend ITEM to the PARTNER library through interlibrary loan point POINT (МБА)."""
    from catalog_sync import circulation

    due_on = _date(due, "due date") if due else None
    with _desk() as s:
        loan = circulation.lend_interlibrary(
            s,
            item_code=item,
            partner_library=partner,
            service_point=point,
            actor=actor,
            due_on=due_on,
        )
        facts = circulation.loan_facts(loan)
    _print_loan(
        facts,
        as_json,
        f"{facts.inventory_number} lent to {partner}, due {facts.due_on} (loan {facts.loan_id})",
    )


@loans_app.command("ill-borrow")
def loans_ill_borrow(
    description: str,
    partner: str,
    ticket: str,
    point: str,
    due: Annotated[str, typer.Option(help="The partner's due date, YYYY-MM-DD.")],
    actor: Actor = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Give reader TICKET an item (DESCRIPTION) borrowed from the PARTNER library."""
    from catalog_sync import circulation
    from catalog_sync.calendar_kz import load_calendar
    from qor.wiring import circulation_policy

    due_on = _date(due, "due date")
    with _desk() as s:
        loan = circulation.borrow_interlibrary(
            s,
            external_item=description,
            partner_library=partner,
            ticket_number=ticket,
            service_point=point,
            due_on=due_on,
            actor=actor,
            policy=circulation_policy(cli_settings()),
            calendar=load_calendar(s),
        )
        facts = circulation.loan_facts(loan)
    _print_loan(
        facts,
        as_json,
        f"{description!r} from {partner} lent to {ticket}, due "
        f"{facts.due_on} (loan {facts.loan_id})",
    )


@loans_app.command("ill-return")
def loans_ill_return(
    loan_id: int, returned_on: DateOpt = None, actor: Actor = "cli", as_json: JsonOpt = False
) -> None:
    """Close loan LOAN_ID of an item borrowed from a partner (the reader brought it back)."""
    from catalog_sync import circulation

    day = _date(returned_on, "return date") if returned_on else None
    with _desk() as s:
        loan = circulation.return_borrowed(s, loan_id, actor=actor, returned_on=day)
        facts = circulation.loan_facts(loan)
    _print_loan(facts, as_json, f"loan {loan_id} closed, returned {facts.returned_on}")


@loans_app.command("settle")
def loans_settle(
    loan_id: int,
    how: Annotated[str, typer.Option(help="replaced or compensated")],
    amount: Annotated[
        int | None, typer.Option(help="Compensation in tiyn (1 tenge = 100 tiyn).")
    ] = None,
    note: str | None = None,
    actor: Actor = "cli",
    as_json: JsonOpt = False,
) -> None:
    """R16: settle the debt of loan LOAN_ID by a replacement copy or compensation."""
    from catalog_sync import circulation
    from catalog_sync.calendar_kz import load_calendar
    from catalog_sync.errors import RegisterError
    from catalog_sync.models import Settlement
    from qor.wiring import circulation_policy

    if how not in (Settlement.REPLACED.value, Settlement.COMPENSATED.value):
        raise fail(
            RegisterError(f"--how {how!r}: replaced or compensated (a return is 'qor loans in')")
        )
    with _desk() as s:
        loan = circulation.settle_loan(
            s,
            loan_id,
            how=how,
            actor=actor,
            compensation_minor=amount,
            note=note,
            policy=circulation_policy(cli_settings()),
            calendar=load_calendar(s),
        )
        facts = circulation.loan_facts(loan)
    _print_loan(facts, as_json, f"loan {loan_id} settled: {how}")


@loans_app.command("room-only")
def loans_room_only(
    item: str,
    off: Annotated[bool, typer.Option("--off", help="Lift the flag.")] = False,
    actor: Actor = "cli",
) -> None:
    """Flag ITEM for use in the reading room only (R15), or lift the flag with --off."""
    from catalog_sync import circulation

    with _desk() as s:
        circulation.set_reading_room_only(s, item, not off, actor=actor)
    console.print(f"{item}: reading room only {'lifted' if off else 'set'}")


@holds_app.command("place")
def holds_place(item: str, ticket: str, actor: Actor = "cli", as_json: JsonOpt = False) -> None:
    """Put reader TICKET in the queue for the title of ITEM."""
    from catalog_sync import circulation

    with _desk() as s:
        hold = circulation.place_hold(s, ticket_number=ticket, item_code=item, actor=actor)
        data = {"hold_id": hold.id, "status": hold.status, "record_id": hold.record_id}
    if as_json:
        emit_json(data)
    else:
        ready = (
            " — a copy is on the shelf, kept for the reader" if data["status"] == "ready" else ""
        )
        console.print(f"hold {data['hold_id']} placed for {ticket}{ready}")


@holds_app.command("cancel")
def holds_cancel(hold_id: int, actor: Actor = "cli") -> None:
    """Cancel hold HOLD_ID (a kept copy goes to the next reader)."""
    from catalog_sync import circulation

    with _desk() as s:
        circulation.cancel_hold(s, hold_id, actor=actor)
    console.print(f"hold {hold_id} cancelled")


@holds_app.command("queue")
def holds_queue(item: str, as_json: JsonOpt = False) -> None:
    """The holds queue for the title of ITEM, first come first served."""
    from catalog_sync import circulation
    from catalog_sync.models import Reader

    with _desk() as s:
        record_id = circulation.find_item_facts(s, item).record_id
        rows = []
        for h in circulation.hold_queue(s, record_id):
            reader = s.get(Reader, h.reader_id)
            rows.append(
                {
                    "hold_id": h.id,
                    "ticket_number": None if reader is None else reader.ticket_number,
                    "status": h.status,
                    "placed_at": h.placed_at.isoformat(),
                }
            )
    if as_json:
        emit_json(rows)
        return
    for i, r in enumerate(rows, 1):
        console.print(f"{i}\t{r['ticket_number']}\t{r['status']}\t{r['placed_at']}")


@points_app.command("add")
def points_add(code: str, name: str, kind: str, actor: Actor = "cli") -> None:
    """Create service point CODE of KIND (lending_desk, reading_room, special_service,
    outreach, interlibrary)."""
    from catalog_sync import circulation
    from catalog_sync.errors import RegisterError
    from catalog_sync.models import ServicePointKind

    if kind not in {k.value for k in ServicePointKind}:
        known = ", ".join(k.value for k in ServicePointKind)
        raise fail(RegisterError(f"unknown service point kind {kind!r} (one of {known})"))
    with _desk() as s:
        circulation.add_service_point(s, code=code, name=name, kind=kind, actor=actor)
    console.print(f"service point {code} ({kind}) added")


@points_app.command("list")
def points_list(as_json: JsonOpt = False) -> None:
    """Service points by code."""
    from catalog_sync import circulation

    with _desk() as s:
        rows = [
            {"code": p.code, "name": p.name, "kind": p.kind}
            for p in circulation.list_service_points(s)
        ]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        console.print(f"{r['code']}\t{r['kind']}\t{r['name']}")


# --- gate, debts -------------------------------------------------------------------------------


@gate_app.command("events")
def gate_events(
    alarms: Annotated[bool, typer.Option("--alarms", help="Only the alarms.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Reads logged at the gate, newest first."""
    from catalog_sync import gate as gate_mod

    with _desk() as s:
        rows = [
            {
                "at": e.at.isoformat(),
                "gate": e.gate,
                "tag": e.tag,
                "cleared": e.cleared,
                "reason": e.reason,
            }
            for e in gate_mod.gate_events(s, alarms_only=alarms)
        ]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        console.print(
            f"{r['at']}\t{r['gate']}\t{'cleared' if r['cleared'] else 'ALARM'}\t{r['reason']}"
        )


@debts_app.command("run")
def debts_run(today: DateOpt = None, as_json: JsonOpt = False) -> None:
    """R16: the daily debt step now (reminders by e-mail, blocks), as the flow runs it."""
    from catalog_sync import debts
    from catalog_sync.calendar_kz import load_calendar
    from catalog_sync.mail import SmtpMailer

    settings = cli_settings()
    day = _date(today, "--today")
    with _desk() as s:
        report = debts.run_debt_steps(
            s,
            today=day,
            mailer=SmtpMailer(settings.smtp_url) if settings.smtp_url else None,
            sender=settings.mail_sender,
            library=settings.library_name,
            policy=debts.DebtPolicy(
                reminder_steps=tuple(settings.reminder_steps),
                block_after_days=settings.block_after_days,
            ),
            calendar=load_calendar(s),
        )
    if as_json:
        emit_json(report.as_dict())
        return
    console.print(
        f"{report.reminders_sent} reminder(s) sent; blocked: "
        f"{', '.join(report.blocked) or 'none'}; no e-mail address: "
        f"{', '.join(report.no_address) or 'none'}; failed: "
        f"{', '.join(report.failed) or 'none'}"
    )


# --- legal deposit ----------------------------------------------------------------------------


@deposit_app.command("register")
def deposit_register(
    title: str,
    publisher: str,
    form: Annotated[str, typer.Option("--form", help="paper or electronic")],
    first_printed: Annotated[str, typer.Option("--first-printed", help="YYYY-MM-DD")],
    publisher_email: str | None = None,
    publisher_address: str | None = None,
    isbn: str | None = None,
    actor: Actor = "cli",
    as_json: JsonOpt = False,
) -> None:
    """R7: register a publication; its obligations (one per recipient) get their due dates."""
    from catalog_sync import legal_deposit
    from catalog_sync.calendar_kz import load_calendar
    from catalog_sync.errors import DepositError
    from catalog_sync.models import DepositForm

    if form not in {f.value for f in DepositForm}:
        raise fail(DepositError(f"unknown form {form!r} (paper or electronic)"))
    printed = _date(first_printed, "--first-printed")
    settings = cli_settings()
    with _desk() as s:
        pub = legal_deposit.register_publication(
            s,
            title=title,
            publisher=publisher,
            form=form,
            first_printed=printed,
            actor=actor,
            calendar=load_calendar(s),
            publisher_email=publisher_email,
            publisher_address=publisher_address,
            isbn=isbn,
            move_off_days=settings.deposit_move_off_days,
        )
        data = {
            "publication_id": pub.id,
            "obligations": [
                {
                    "obligation_id": ob.id,
                    "recipient": ob.recipient_code,
                    "due_on": ob.due_on.isoformat(),
                    "why": ob.due_reason,
                }
                for ob in pub.obligations
            ],
        }
    if as_json:
        emit_json(data)
        return
    console.print(f"publication {data['publication_id']} registered")
    obligations = data["obligations"]
    assert isinstance(obligations, list)
    for ob in obligations:
        console.print(f"  obligation {ob['obligation_id']}\t{ob['recipient']}\tdue {ob['due_on']}")


@deposit_app.command("receive")
def deposit_receive(
    obligation_id: int,
    received_on: DateOpt = None,
    act: Annotated[
        str | None, typer.Option(help="Receipt act number (copies received by this library).")
    ] = None,
    actor: Actor = "cli",
) -> None:
    """R7: record that the recipient of OBLIGATION_ID received its copy."""
    from catalog_sync import legal_deposit
    from catalog_sync.models import Item

    day = _date(received_on, "--received-on")
    with _desk() as s:
        ob = legal_deposit.register_receipt(
            s, obligation_id, received_on=day, actor=actor, receipt_batch=act
        )
        item = None if ob.item_id is None else s.get(Item, ob.item_id)
        inv = None if item is None else item.inventory_number
    entered = f"; entered the fund as {inv} (source legal_deposit)" if inv else ""
    console.print(f"obligation {obligation_id} received on {day}{entered}")


@deposit_app.command("claims")
def deposit_claims(
    out: Annotated[Path | None, typer.Option(help="Folder for the letters.")] = None,
    today: DateOpt = None,
    as_json: JsonOpt = False,
    actor: Actor = "cli",
) -> None:
    """R7: write claim letters (kk, ru; HTML and PDF) for every overdue obligation now (each
    claim is logged in the audit log)."""
    from catalog_sync import legal_deposit

    settings = cli_settings()
    day = _date(today, "--today")
    target = out or settings.data_dir / "deposit-claims"
    with _desk() as s:
        claims = legal_deposit.write_claims(
            s, today=day, out_dir=target, library=settings.library_name, actor=actor
        )
        rows = [
            {
                "obligation_id": c.obligation_id,
                "language": c.language,
                "html": c.html_path,
                "pdf": c.pdf_path,
            }
            for c in claims
        ]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        console.print(f"{r['obligation_id']}\t{r['language']}\t{r['pdf']}")
    console.print(f"{len(rows)} claim letter(s) written to {target}")


@calendar_app.command("amend")
def calendar_amend(
    day: str,
    kind: Annotated[str, typer.Option(help="day_off or working")],
    name: str,
    actor: Actor = "cli",
) -> None:
    """Record DAY as a day off or a working day (a late transfer decree, a correction)."""
    from catalog_sync.calendar_kz import amend_calendar

    when = _date(day, "day")
    with _desk() as s:
        amend_calendar(s, when, kind=kind, name=name, actor=actor)
    console.print(f"{when} recorded as {kind}: {name}")


def install(root: typer.Typer) -> None:
    """Register ``qor readers|loans|gate|debts|deposit`` and ``qor select`` on the root app."""
    for sub, name in (
        (readers_app, "readers"),
        (loans_app, "loans"),
        (gate_app, "gate"),
        (debts_app, "debts"),
        (deposit_app, "deposit"),
    ):
        root.add_typer(sub, name=name)
    root.command("select")(select_cmd)
