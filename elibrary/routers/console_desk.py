"""The circulation desk (librarian): check-out, check-in and renewal by barcode, reader lookup,
the reader's loans and debts, at a chosen service point (R15, R16).

A keyboard-wedge scanner types the barcode's characters and Enter into the focused field, which
submits its form; the answer is the desk again with the barcode field focused for the next scan.
The service point is chosen per desk (kept in a cookie for this browser). Every operation is the
CLI's (:mod:`catalog_sync.circulation`), so each loan's row lands in the audit log.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from catalog_sync import circulation
from catalog_sync.calendar_kz import KazakhCalendar, load_calendar
from catalog_sync.models import Item, Loan, Reader, ServicePointKind, utcnow
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


def desk(request: Request, lib: Elibrary, visitor: Visitor, session: Session, *,
         ticket: str = "", point: str | None = None, message: str | None = None,
         error: str | None = None, status: int = 200,
         calendar: KazakhCalendar | None = None) -> Response:
    """The desk page, with the reader's loans and debts when a reader is chosen."""
    points = _points(session)
    point = point if point is not None else _point(request, None, points)
    reader: Reader | None = None
    loans: list[dict[str, Any]] = []
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
                    "inventory_number": loan.item.inventory_number if loan.item else "",
                    "barcode": loan.item.barcode if loan.item else "",
                    "title": loan.item.record.title if loan.item else loan.external_item,
                    "due_on": loan.due_on, "renewals": loan.renewals,
                    "point": loan.service_point.code, "overdue_days": days,
                })
    response = console.render(
        request, lib, visitor, session, "console_desk.html", status=status, points=points,
        point=point, ticket=ticket, patron=reader, loans=loans,
        debts=sum(1 for x in loans if x["overdue_days"] > 0), message=message, error=error)
    if point and request.cookies.get(POINT_COOKIE) != point:
        response.set_cookie(POINT_COOKIE, point, secure=True, httponly=True, samesite="strict",
                            path="/staff", max_age=365 * 24 * 3600)
    return response


@router.get("/staff/desk", response_class=HTMLResponse)
def desk_page(request: Request, lib: Lib) -> Response:
    ticket = request.query_params.get("ticket", "").strip()[:32]

    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        return desk(request, lib, visitor, session, ticket=ticket)

    return console.page(request, lib, ROLES, show)


def _operate(request: Request, lib: Elibrary, form: Any, operation: str) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
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
                inv = back.loan.item.inventory_number if back.loan.item else code
                ticket = ticket or (back.loan.reader.ticket_number if back.loan.reader else "")
                session.commit()
                message = _("Returned %(item)s.") % {"item": inv}
                if back.overdue_days > 0:
                    message += " " + _("It was %(days)s day(s) overdue.") % {
                        "days": back.overdue_days}
                if back.kept_for:
                    message += " " + _("Keep it for reader %(ticket)s (hold).") % {
                        "ticket": back.kept_for}
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

    return console.post(request, lib, form, ROLES, act)


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
