"""Signing in and out (readers and staff, separate cookies and tables — R10) and a reader's
own reading history."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from elibrary import accounts
from elibrary.accounts import READER, STAFF
from elibrary.context import (
    CSRF_COOKIE,
    READER_COOKIE,
    STAFF_COOKIE,
    Elibrary,
    Lib,
    Visitor,
    safe_next,
)
from elibrary.errors import AccessDenied, BadCredentials, InvalidParameter, NotSignedIn
from elibrary.library import visible_copies_by_id
from elibrary.models import ReadRecord

_TICKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9./-]{0,31}$")

router = APIRouter()


def login_form(request: Request, lib: Elibrary, visitor: Visitor, *, staff: bool,
               error: str | None = None, name: str = "", status: int = 200,
               next_path: str = "/") -> Response:
    _ = lib.gettext(visitor.lang)
    return lib.render(
        request, visitor, "login.html", status=status, error=error, name=name,
        next=next_path,
        heading=_("Staff sign-in") if staff else _("Sign in with your reader ticket"),
        name_label=_("User name") if staff else _("Reader ticket number"),
        action="/staff/login" if staff else "/login",
    )

@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, lib: Lib) -> Response:
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
    return login_form(request, lib, visitor, staff=False,
                      next_path=safe_next(request.query_params.get("next")))

def do_login(request: Request, lib: Elibrary, form: Any, *, kind: str) -> Response:
    staff = kind == STAFF
    name = str(form.get("name", ""))[:64].strip()
    password = str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "/"))) if not staff else "/staff"
    source = accounts.source_key(lib.client_ip(request))
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        lib.check_csrf(request, visitor, form.get("csrf_token"))
        _ = lib.gettext(visitor.lang)
        try:
            # Issue 15: throttled per account and source; a throttled attempt gets the
            # same answer, after the same hashing work, as a wrong password.
            if lib.throttle.blocked(kind, name, source):
                raise accounts.refuse_like_a_wrong_password(password)
            account_id = accounts.authenticate(session, kind=kind, name=name,
                                               password=password)
            token = accounts.start_session(
                session, kind=kind, account_id=account_id,
                lifetime=timedelta(hours=lib.config.session_hours))
            session.commit()
        except BadCredentials:
            session.commit()  # keep the failure count
            lib.throttle.failed(kind, name, source)
            return login_form(request, lib, visitor, staff=staff, name=name, status=401,
                              error=_("Wrong ticket number (or user name) or password."),
                              next_path=next_path)
        lib.throttle.succeeded(kind, name, source)
    response = RedirectResponse(next_path, status_code=303)
    cookie = STAFF_COOKIE if staff else READER_COOKIE
    response.set_cookie(cookie, token, secure=True, httponly=True,
                        samesite="strict" if staff else "lax",
                        path="/staff" if staff else "/",
                        max_age=lib.config.session_hours * 3600)
    # A new anti-forgery cookie after signing in (no fixation of the old one).
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(32), secure=True, httponly=True,
                        samesite="strict", path="/")
    return response

@router.post("/login")
async def login(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: do_login(request, lib, form, kind=READER))

def do_logout(request: Request, lib: Elibrary, form: Any, *, kind: str) -> Response:
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        lib.check_csrf(request, visitor, form.get("csrf_token"))
        token = visitor.staff_token if kind == STAFF else visitor.reader_token
        if token:
            accounts.end_session(session, token)
            session.commit()
    response = RedirectResponse("/staff/login" if kind == STAFF else "/", status_code=303)
    response.delete_cookie(STAFF_COOKIE if kind == STAFF else READER_COOKIE,
                           path="/staff" if kind == STAFF else "/", secure=True,
                           httponly=True)
    return response

@router.post("/logout")
async def logout(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: do_logout(request, lib, form, kind=READER))

@router.get("/readers/{ticket}/reads", response_class=HTMLResponse)
def my_reads(request: Request, lib: Lib, ticket: str) -> Response:
    if not _TICKET.fullmatch(ticket):
        raise InvalidParameter("ticket", "not a reader ticket number")
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        if visitor.reader is None:
            raise NotSignedIn("sign in to see your reads")
        if visitor.reader.name != ticket:
            # Another reader's data: refused whatever the id (R10).
            raise AccessDenied("a reader sees only their own reads")
        rows = session.execute(
            select(ReadRecord.day, ReadRecord.copy_id, func.sum(ReadRecord.bytes_served))
            .where(ReadRecord.reader_account_id == visitor.reader.account_id)
            .group_by(ReadRecord.day, ReadRecord.copy_id)
            .order_by(ReadRecord.day.desc())
        ).all()
        views = visible_copies_by_id(session, list({r[1] for r in rows}))
        reads = [{"day": r[0], "title": views[r[1]].title,
                  "inventory_number": views[r[1]].inventory_number, "bytes": int(r[2])}
                 for r in rows if r[1] in views]
        return lib.render(request, visitor, "reads.html", reads=reads,
                          keep_days=lib.config.read_log_days)


@router.get("/staff/login", response_class=HTMLResponse)
def staff_login_page(request: Request, lib: Lib) -> Response:
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
    return login_form(request, lib, visitor, staff=True)

@router.post("/staff/login")
async def staff_login(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: do_login(request, lib, form, kind=STAFF))

@router.post("/staff/logout")
async def staff_logout(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: do_logout(request, lib, form, kind=STAFF))
