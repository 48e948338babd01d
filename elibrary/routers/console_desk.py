"""The circulation desk (librarian): check-out, check-in and renewal by barcode, reader lookup,
the reader's loans, holds and debts, at a chosen service point (R15, R16); the holds queue of a
title (брондау · бронирование); interlibrary loans through an interlibrary service point (МБА ·
кітапханааралық абонемент).

A keyboard-wedge scanner types the barcode's characters and Enter into the focused field, which
submits its form; the answer is the desk again with the barcode field focused for the next scan.
The service point is chosen per desk (kept in a cookie for this browser). Every operation is the
CLI's (:mod:`catalog_sync.circulation`, as ``qor loans out|in|renew|settle|ill-*|holds``), so
each loan's and hold's change lands in the hash-chained audit log. A check-in that keeps the
item for a waiting hold says so at the desk and e-mails the reader after the commit, as
``qor loans in`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from catalog_sync import circulation
from catalog_sync.calendar_kz import KazakhCalendar, load_calendar
from catalog_sync.errors import LoanNotFound
from catalog_sync.mail import SmtpMailer
from catalog_sync.models import (
    BibRecord,
    Hold,
    HoldStatus,
    IllDirection,
    Item,
    Loan,
    Reader,
    ServicePointKind,
    Settlement,
    utcnow,
)
from catalog_sync.readers import get_reader
from elibrary import console
from elibrary.accounts import Principal
from elibrary.console import LIBRARIAN, form_text
from elibrary.context import Elibrary, Lib, Visitor
from elibrary.errors import InvalidParameter
from qor.errors import QorError

router = APIRouter()
POINT_COOKIE = "qor-desk-point"
ROLES = (LIBRARIAN,)


def _points(session: Session) -> list[tuple[str, str]]:
    return [(p.code, p.name) for p in circulation.list_service_points(session)
            if p.kind != ServicePointKind.INTERLIBRARY]


def _point(request: Request, form: Any, points: list[tuple[str, str]]) -> str:
    chosen = (form_text(form, "point", limit=32) if form is not None else "") or \
        request.query_params.get("point") or request.cookies.get(POINT_COOKIE) or ""
    codes = [c for c, _ in points]
    if chosen in codes:
        return chosen
    return codes[0] if codes else ""


Translate = Callable[[str], str]
#: The hold shelf as the desk shows it: at most this many kept copies, oldest first.
SHELF_ROWS = 50


def _reader_holds(session: Session, reader: Reader) -> list[dict[str, Any]]:
    """The reader's waiting and ready holds, with their place in each title's queue."""
    rows = session.execute(
        select(Hold, BibRecord.title, Item.inventory_number)
        .join(BibRecord, BibRecord.id == Hold.record_id)
        .outerjoin(Item, Item.id == Hold.item_id)
        .where(Hold.reader_id == reader.id,
               Hold.status.in_([HoldStatus.WAITING.value, HoldStatus.READY.value]))
        .order_by(Hold.placed_at, Hold.id)
    ).all()
    out = []
    for hold, title, inv in rows:
        queue = [h.id for h in circulation.hold_queue(session, hold.record_id)]
        out.append({"id": hold.id, "record_id": hold.record_id, "title": title,
                    "status": hold.status, "position": queue.index(hold.id) + 1,
                    "queue": len(queue), "item": inv or "",
                    "placed": hold.placed_at.strftime("%Y-%m-%d %H:%M")})
    return out


def _hold_shelf(session: Session) -> list[dict[str, Any]]:
    """Copies kept for readers (ready holds), the longest-waiting first: what the desk hands
    over when the reader comes."""
    rows = session.execute(
        select(Hold.id, Hold.ready_at, Reader.ticket_number, Reader.name, BibRecord.title,
               Item.inventory_number, Item.barcode)
        .join(Reader, Reader.id == Hold.reader_id)
        .join(BibRecord, BibRecord.id == Hold.record_id)
        .join(Item, Item.id == Hold.item_id)
        .where(Hold.status == HoldStatus.READY.value)
        .order_by(Hold.ready_at, Hold.id).limit(SHELF_ROWS)
    ).all()
    return [{"id": r.id, "ready": r.ready_at.strftime("%Y-%m-%d %H:%M") if r.ready_at else "",
             "ticket": r.ticket_number, "name": r.name, "title": r.title,
             "item": r.inventory_number, "barcode": r.barcode or ""} for r in rows]


def desk(request: Request, lib: Elibrary, visitor: Visitor, session: Session, *,
         ticket: str = "", point: str | None = None, message: str | None = None,
         error: str | None = None, status: int = 200,
         calendar: KazakhCalendar | None = None) -> Response:
    """The desk page, with the reader's loans, holds and debts when a reader is chosen, and
    the copies kept for holds."""
    points = _points(session)
    point = point if point is not None else _point(request, None, points)
    reader: Reader | None = None
    loans: list[dict[str, Any]] = []
    holds: list[dict[str, Any]] = []
    today = utcnow().date()
    if ticket:
        try:
            reader = get_reader(session, ticket)
        except QorError as e:
            error = error or e.message
            status = e.http_status if status == 200 else status
        if reader is not None:
            calendar = calendar or load_calendar(session)
            for loan in session.scalars(
                select(Loan).where(Loan.reader_id == reader.id, Loan.returned_at.is_(None))
                .options(joinedload(Loan.item).joinedload(Item.record),
                         joinedload(Loan.service_point))
                .order_by(Loan.due_on, Loan.id)
            ):
                days = circulation.overdue_days(loan, today=today, calendar=calendar)
                loans.append({
                    "loan_id": loan.id,
                    "inventory_number": loan.item.inventory_number if loan.item else "",
                    "barcode": loan.item.barcode if loan.item else "",
                    "title": loan.item.record.title if loan.item else loan.external_item,
                    "due_on": loan.due_on, "renewals": loan.renewals,
                    "point": loan.service_point.code, "overdue_days": days,
                    "borrowed": loan.ill_direction == IllDirection.BORROWED,
                    "partner": loan.partner_library or "",
                })
            holds = _reader_holds(session, reader)
    debts = [x for x in loans if x["overdue_days"] > 0]
    response = console.render(
        request, lib, visitor, session, "console_desk.html", status=status, points=points,
        point=point, ticket=ticket, patron=reader, loans=loans, debts=len(debts),
        debt_rows=debts, holds=holds, shelf=_hold_shelf(session),
        settlements=SETTLEMENTS, message=message, error=error)
    if point and request.cookies.get(POINT_COOKIE) != point:
        response.set_cookie(POINT_COOKIE, point, secure=True, httponly=True, samesite="strict",
                            path="/staff", max_age=365 * 24 * 3600)
    return response


#: How a debt is settled at the desk when the item will not come back (R16).
SETTLEMENTS = (Settlement.REPLACED.value, Settlement.COMPENSATED.value)


def tell_reader(session: Session, lib: Elibrary, hold_id: int, _: Translate) -> str:
    """E-mail the reader that a copy is kept for their hold, as ``qor loans in`` does, and say
    at the desk whether it went. Called after the check-in committed (:func:`_post`): a failed
    e-mail never undoes the check-in, and the desk sees why and can phone the reader."""
    if not lib.config.smtp_url:
        return _("The reader was not e-mailed: no mail server is configured.")
    message = circulation.hold_ready_message(
        session, hold_id, sender=lib.config.mail_sender, library=lib.config.library_name,
        pickup_days=_policy(lib).hold_pickup_days)
    if message is None:
        return _("The reader was not e-mailed: there is no e-mail address on record.")
    try:
        # The librarian waits for this answer with the reader at the desk: 10 s, not the
        # debt flow's 30, before saying the server did not take it.
        SmtpMailer(lib.config.smtp_url, timeout_s=10.0).send(message)
    except QorError as e:
        return _("The reader was not e-mailed: %(reason)s") % {"reason": e.message}
    return _("The reader was told by e-mail (%(address)s).") % {"address": message["To"]}


def _returned(back: circulation.CheckIn, code: str, _: Translate) -> str:
    inv = back.loan.item.inventory_number if back.loan.item else code
    message = _("Returned %(item)s.") % {"item": inv}
    if back.overdue_days > 0:
        message += " " + _("It was %(days)s day(s) overdue.") % {"days": back.overdue_days}
    if back.kept_for:
        message += " " + _("Keep it for reader %(ticket)s (hold).") % {"ticket": back.kept_for}
    return message


@router.get("/staff/desk", response_class=HTMLResponse)
def desk_page(request: Request, lib: Lib) -> Response:
    ticket = request.query_params.get("ticket", "").strip()[:32]

    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        return desk(request, lib, visitor, session, ticket=ticket)

    return console.page(request, lib, ROLES, show)


Show = Callable[[Session, Visitor, str | None, str | None, int], Response]


@dataclass(frozen=True)
class Kept:
    """A committed check-in kept a copy for hold ``hold_id``: the reader is still to be told,
    and the desk to be shown (``show``) with ``message`` and how the telling went."""

    message: str
    hold_id: int
    show: Show


def _tell_later(kept: list[Kept], message: str, hold_id: int, show: Show) -> Response:
    kept.append(Kept(message, hold_id, show))
    # A stand-in: _post answers with the desk once the reader has been e-mailed.
    return Response(status_code=204)


def _post(request: Request, lib: Elibrary, form: Any,
          act: Callable[[Session, Visitor, Principal, list[Kept]], Response]) -> Response:
    """A desk form (:func:`console.post`); then, if it kept a copy for a hold, the e-mail to
    the reader and the desk page. The e-mail goes after the commit and outside the console's
    writers' slot: a slow or unreachable mail server holds neither the loan's transaction nor
    the other desks' check-outs."""
    kept: list[Kept] = []
    response = console.post(request, lib, form, ROLES, lambda s, v, w: act(s, v, w, kept))
    if not kept:
        return response
    done = kept[0]
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        told = tell_reader(session, lib, done.hold_id, lib.gettext(visitor.lang))
        return done.show(session, visitor, f"{done.message} {told}", None, 200)


def _operate(request: Request, lib: Elibrary, form: Any, operation: str) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal, kept: list[Kept]) -> Response:
        _ = lib.gettext(visitor.lang)
        points = _points(session)
        point = _point(request, form, points)
        asked = form_text(form, "point", limit=32)
        if asked and asked != point:
            # Never lend at another point than the one the desk asked for (R15).
            raise InvalidParameter("point", f"{asked!r} is not a lending service point here")
        ticket = form_text(form, "ticket", limit=32)
        code = form_text(form, "barcode", limit=64)
        if not code:
            raise InvalidParameter("barcode", "scan or type a barcode")
        policy = circulation.CirculationPolicy(debt_limit=lib.config.debt_limit)
        calendar = load_calendar(session)
        try:
            if operation == "out":
                if not ticket:
                    raise InvalidParameter("ticket", "choose a reader first")
                loan = circulation.check_out(
                    session, item_code=code, ticket_number=ticket, service_point=point,
                    actor=console.actor(who), policy=policy, calendar=calendar)
                inv, due = loan.item.inventory_number if loan.item else code, loan.due_on
                session.commit()
                message = _("Lent %(item)s to %(ticket)s, due %(due)s.") % {
                    "item": inv, "ticket": ticket, "due": due}
            elif operation == "in":
                back = circulation.check_in(session, item_code=code, actor=console.actor(who),
                                            policy=policy, calendar=calendar)
                ticket = ticket or (back.loan.reader.ticket_number if back.loan.reader else "")
                message = _returned(back, code, _)
                session.commit()
                if back.hold_id is not None:
                    return _tell_later(kept, message, back.hold_id, lambda se, vi, m, _e, _s:
                                       desk(request, lib, vi, se, ticket=ticket, point=point,
                                            message=m))
            else:
                loan = circulation.renew(session, item_code=code, actor=console.actor(who),
                                         policy=policy, calendar=calendar)
                inv, due = loan.item.inventory_number if loan.item else code, loan.due_on
                ticket = ticket or (loan.reader.ticket_number if loan.reader else "")
                session.commit()
                message = _("Renewed %(item)s, now due %(due)s.") % {"item": inv, "due": due}
        except QorError as e:
            session.rollback()
            return desk(request, lib, visitor, session, ticket=ticket, point=point,
                        error=e.message, status=e.http_status)
        return desk(request, lib, visitor, session, ticket=ticket, point=point,
                    message=message, calendar=calendar)

    return _post(request, lib, form, act)


@router.post("/staff/desk/out")
async def desk_out(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _operate(request, lib, form, "out"))


@router.post("/staff/desk/in")
async def desk_in(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _operate(request, lib, form, "in"))


@router.post("/staff/desk/renew")
async def desk_renew(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _operate(request, lib, form, "renew"))


def _policy(lib: Elibrary) -> circulation.CirculationPolicy:
    return circulation.CirculationPolicy(debt_limit=lib.config.debt_limit)


Change = Callable[[Session, Principal, Translate], tuple[str, int | None]]


def _change(request: Request, lib: Elibrary, form: Any, change: Change, show: Show) -> Response:
    """Run one desk change through the domain API and commit; then tell the reader of a copy
    the change kept for their hold (``change`` returns the message and that hold's id). A
    refusal rolls back and shows the page again with the reason and its HTTP status."""
    def act(session: Session, visitor: Visitor, who: Principal, kept: list[Kept]) -> Response:
        _ = lib.gettext(visitor.lang)
        try:
            message, hold_id = change(session, who, _)
            session.commit()
        except QorError as e:
            session.rollback()
            return show(session, visitor, None, e.message, e.http_status)
        if hold_id is not None:
            return _tell_later(kept, message, hold_id, show)
        return show(session, visitor, message, None, 200)

    return _post(request, lib, form, act)


def _show_desk(request: Request, lib: Elibrary, ticket: str) -> Show:
    return lambda session, visitor, message, error, status: desk(
        request, lib, visitor, session, ticket=ticket, message=message, error=error,
        status=status)


# --- holds ------------------------------------------------------------------------------------


def _record_of(session: Session, request: Request) -> int | None:
    raw = request.query_params.get("record", "").strip()
    if raw:
        if not raw.isdigit() or len(raw) > 12:
            raise InvalidParameter("record", f"{raw[:20]!r} is not a record number")
        return int(raw)
    code = request.query_params.get("item", "").strip()[:64]
    return circulation.find_item_facts(session, code).record_id if code else None


def holds_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session,
               record_id: int | None, *, message: str | None = None, error: str | None = None,
               status: int = 200) -> Response:
    """A title's holds queue, first come first served, with the copy kept for the first."""
    record = session.get(BibRecord, record_id) if record_id is not None else None
    queue: list[dict[str, Any]] = []
    if record is not None:
        for n, hold in enumerate(circulation.hold_queue(session, record.id), 1):
            reader = session.get(Reader, hold.reader_id)
            item = session.get(Item, hold.item_id) if hold.item_id is not None else None
            queue.append({"n": n, "id": hold.id, "status": hold.status,
                          "ticket": reader.ticket_number if reader else "",
                          "name": reader.name if reader else "",
                          "placed": hold.placed_at.strftime("%Y-%m-%d %H:%M"),
                          "item": item.inventory_number if item else ""})
    elif record_id is not None:
        error, status = error or f"no bibliographic record {record_id}", 404
    return console.render(request, lib, visitor, session, "console_holds.html", status=status,
                          record=record, queue=queue, message=message, error=error)


@router.get("/staff/desk/holds", response_class=HTMLResponse)
def holds_queue(request: Request, lib: Lib) -> Response:
    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        try:
            record_id = _record_of(session, request)
        except QorError as e:
            return holds_page(request, lib, visitor, session, None, error=e.message,
                              status=e.http_status)
        return holds_page(request, lib, visitor, session, record_id)

    return console.page(request, lib, ROLES, show)


def _back(form: Any, ticket: str, record_id: int | None, request: Request,
          lib: Elibrary) -> Show:
    """Where a hold form answers: the title's queue when it was sent from there, else the
    reader at the desk."""
    if form_text(form, "back", limit=8) == "queue":
        return lambda session, visitor, message, error, status: holds_page(
            request, lib, visitor, session, record_id, message=message, error=error,
            status=status)
    return _show_desk(request, lib, ticket)


def _number(form: Any, name: str) -> int | None:
    raw = form_text(form, name, limit=12)
    if not raw:
        return None
    if not raw.isdigit():
        raise InvalidParameter(name, f"{raw!r} is not a number")
    return int(raw)


def _maybe_number(form: Any, name: str) -> int | None:
    """A number the answer page needs (which queue to show again): ignored when malformed."""
    raw = form_text(form, name, limit=12)
    return int(raw) if raw.isdigit() else None


@router.post("/staff/desk/holds")
async def hold_place(request: Request, lib: Lib) -> Response:
    form = await request.form()
    ticket = form_text(form, "ticket", limit=32)
    code = form_text(form, "item", limit=64)
    record_id = _maybe_number(form, "record")

    def change(session: Session, who: Principal, _: Translate) -> tuple[str, int | None]:
        if not ticket:
            raise InvalidParameter("ticket", "choose a reader first")
        if not code and record_id is None:
            raise InvalidParameter("item", "scan or type a copy of the title")
        hold = circulation.place_hold(
            session, ticket_number=ticket, item_code=code or None,
            record_id=None if code else record_id, actor=console.actor(who))
        record = session.get(BibRecord, hold.record_id)
        title = record.title if record is not None else str(hold.record_id)
        if hold.status == HoldStatus.READY:
            item = session.get(Item, hold.item_id) if hold.item_id is not None else None
            return _("A copy of %(title)s is on the shelf: keep %(item)s for reader "
                     "%(ticket)s.") % {"title": title, "ticket": ticket,
                                       "item": item.inventory_number if item else ""}, None
        place = len(circulation.hold_queue(session, hold.record_id))
        return _("Hold placed for reader %(ticket)s on %(title)s: number %(place)s in the "
                 "queue.") % {"ticket": ticket, "title": title, "place": place}, None

    return await anyio.to_thread.run_sync(lambda: _change(
        request, lib, form, change, _back(form, ticket, record_id, request, lib)))


@router.post("/staff/desk/holds/{hold_id}/cancel")
async def hold_cancel(request: Request, lib: Lib, hold_id: int) -> Response:
    form = await request.form()
    ticket = form_text(form, "ticket", limit=32)
    record_id = _maybe_number(form, "record")

    def change(session: Session, who: Principal, _: Translate) -> tuple[str, int | None]:
        circulation.cancel_hold(session, hold_id, actor=console.actor(who))
        return _("Hold %(id)s cancelled.") % {"id": hold_id}, None

    return await anyio.to_thread.run_sync(lambda: _change(
        request, lib, form, change, _back(form, ticket, record_id, request, lib)))


# --- debts (R16) ------------------------------------------------------------------------------


def _tiyn(raw: str) -> int | None:
    """A compensation in tenge (``1500`` or ``1500.50``) as tiyn, the register's unit."""
    if not raw:
        return None
    try:
        amount = Decimal(raw.replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        raise InvalidParameter("amount", f"{raw!r} is not an amount in tenge") from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise InvalidParameter("amount", f"{raw!r} is not an amount in tenge")
    return int(amount * 100)


@router.post("/staff/desk/settle")
async def settle(request: Request, lib: Lib) -> Response:
    form = await request.form()
    ticket = form_text(form, "ticket", limit=32)

    def change(session: Session, who: Principal, _: Translate) -> tuple[str, int | None]:
        loan_id = _number(form, "loan")
        how = form_text(form, "how", limit=16)
        if loan_id is None:
            raise InvalidParameter("loan", "which loan is settled")
        if how not in SETTLEMENTS:
            raise InvalidParameter("how", f"{how!r}: one of {', '.join(SETTLEMENTS)}")
        amount = _tiyn(form_text(form, "amount", limit=20))
        note = form_text(form, "note", limit=500) or None
        # R16: the item will not come back; a replacement copy or compensation closes the debt.
        loan = circulation.settle_loan(
            session, loan_id, how=how, actor=console.actor(who), compensation_minor=amount,
            note=note, policy=_policy(lib), calendar=load_calendar(session))
        inv = loan.item.inventory_number if loan.item else (loan.external_item or "")
        if how == Settlement.REPLACED.value:
            return _("Debt for %(item)s settled: the reader brought a replacement copy.") % {
                "item": inv}, None
        return _("Debt for %(item)s settled: compensation of %(amount)s tenge.") % {
            "item": inv, "amount": f"{(amount or 0) / 100:.2f}"}, None

    return await anyio.to_thread.run_sync(lambda: _change(
        request, lib, form, change, _show_desk(request, lib, ticket)))


# --- interlibrary loans -----------------------------------------------------------------------


def _ill_points(session: Session) -> list[tuple[str, str]]:
    return [(p.code, p.name) for p in circulation.list_service_points(session)
            if p.kind == ServicePointKind.INTERLIBRARY]


def ill_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session, *,
             message: str | None = None, error: str | None = None,
             status: int = 200) -> Response:
    """Interlibrary loans (МБА): our items lent to partner libraries and partners' items lent
    to our readers, still open, the earliest due first."""
    today = utcnow().date()
    calendar = load_calendar(session)
    open_ill = []
    for loan in session.scalars(
        select(Loan).where(Loan.ill_direction.is_not(None), Loan.returned_at.is_(None))
        .options(joinedload(Loan.item).joinedload(Item.record), joinedload(Loan.reader),
                 joinedload(Loan.service_point))
        .order_by(Loan.due_on, Loan.id)
    ):
        open_ill.append({
            "id": loan.id, "lent": loan.ill_direction == IllDirection.LENT,
            "partner": loan.partner_library or "",
            "item": loan.item.inventory_number if loan.item else "",
            "title": loan.item.record.title if loan.item else (loan.external_item or ""),
            "ticket": loan.reader.ticket_number if loan.reader else "",
            "due_on": loan.due_on, "point": loan.service_point.code,
            "overdue_days": circulation.overdue_days(loan, today=today, calendar=calendar),
        })
    return console.render(request, lib, visitor, session, "console_ill.html", status=status,
                          points=_ill_points(session), loans=open_ill, today=today,
                          message=message, error=error)


@router.get("/staff/desk/ill", response_class=HTMLResponse)
def ill(request: Request, lib: Lib) -> Response:
    return console.page(request, lib, ROLES, lambda s, v, _w: ill_page(request, lib, v, s))


def _show_ill(request: Request, lib: Elibrary) -> Show:
    return lambda session, visitor, message, error, status: ill_page(
        request, lib, visitor, session, message=message, error=error, status=status)


def _due(form: Any, *, required: bool) -> date | None:
    raw = form_text(form, "due", limit=10)
    if not raw:
        if required:
            raise InvalidParameter("due", "the partner library's due date is needed")
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter("due", f"{raw!r} is not a date (YYYY-MM-DD)") from None


@router.post("/staff/desk/ill/lend")
async def ill_lend(request: Request, lib: Lib) -> Response:
    form = await request.form()
    code, partner = form_text(form, "barcode", limit=64), form_text(form, "partner", limit=200)
    point = form_text(form, "point", limit=32)

    def change(session: Session, who: Principal, _: Translate) -> tuple[str, int | None]:
        due = _due(form, required=False)
        if not code:
            raise InvalidParameter("barcode", "scan or type a barcode")
        # R15: only through an interlibrary service point (the domain refuses any other).
        loan = circulation.lend_interlibrary(
            session, item_code=code, partner_library=partner, service_point=point,
            actor=console.actor(who), due_on=due, policy=_policy(lib))
        inv = loan.item.inventory_number if loan.item else code
        return _("Lent %(item)s to %(partner)s, due %(due)s.") % {
            "item": inv, "partner": partner, "due": loan.due_on}, None

    return await anyio.to_thread.run_sync(
        lambda: _change(request, lib, form, change, _show_ill(request, lib)))


@router.post("/staff/desk/ill/borrow")
async def ill_borrow(request: Request, lib: Lib) -> Response:
    form = await request.form()
    description = form_text(form, "description", limit=500)
    partner, ticket = form_text(form, "partner", limit=200), form_text(form, "ticket", limit=32)
    point = form_text(form, "point", limit=32)

    def change(session: Session, who: Principal, _: Translate) -> tuple[str, int | None]:
        due = _due(form, required=True)
        assert due is not None
        circulation.borrow_interlibrary(
            session, external_item=description, partner_library=partner, ticket_number=ticket,
            service_point=point, due_on=due, actor=console.actor(who), policy=_policy(lib),
            calendar=load_calendar(session))
        return _("Lent %(item)s from %(partner)s to %(ticket)s, due %(due)s.") % {
            "item": description, "partner": partner, "ticket": ticket, "due": due}, None

    return await anyio.to_thread.run_sync(
        lambda: _change(request, lib, form, change, _show_ill(request, lib)))


@router.post("/staff/desk/ill/{loan_id}/return")
async def ill_return(request: Request, lib: Lib, loan_id: int) -> Response:
    form = await request.form()

    def change(session: Session, who: Principal, _: Translate) -> tuple[str, int | None]:
        loan = session.get(Loan, loan_id)
        if loan is None or loan.ill_direction is None:
            raise LoanNotFound(f"no interlibrary loan {loan_id}")
        if loan.ill_direction == IllDirection.BORROWED:
            # The partner's item: the reader brought it back; it goes back to the partner.
            circulation.return_borrowed(session, loan_id, actor=console.actor(who))
            return _("Loan %(id)s closed: %(item)s is back from the reader.") % {
                "id": loan_id, "item": loan.external_item or ""}, None
        # Our item came back from the partner: an ordinary check-in (tag armed, a waiting
        # hold gets the copy).
        assert loan.item is not None
        back = circulation.check_in(session, item_code=loan.item.inventory_number,
                                    actor=console.actor(who), policy=_policy(lib),
                                    calendar=load_calendar(session))
        return _returned(back, loan.item.inventory_number, _), back.hold_id

    return await anyio.to_thread.run_sync(
        lambda: _change(request, lib, form, change, _show_ill(request, lib)))
