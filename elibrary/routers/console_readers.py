"""Readers (librarian): find, register and edit readers, open their e-library account and
reset its password (the reader signs in with the ticket number).

The same functions as ``qor readers add|edit`` and ``qor elibrary add-reader``
(:mod:`catalog_sync.readers`, :mod:`elibrary.accounts`); every change is in the audit log
(never a password).
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from catalog_sync import readers
from catalog_sync.models import Reader, ReaderCategory
from elibrary import accounts, console
from elibrary.accounts import READER, Principal
from elibrary.console import LIBRARIAN, form_text
from elibrary.context import Elibrary, Lib, Visitor
from elibrary.models import ReaderAccount
from qor.errors import QorError

router = APIRouter()
ROLES = (LIBRARIAN,)
CATEGORIES = [c.value for c in ReaderCategory]


def _list(request: Request, lib: Elibrary, visitor: Visitor, session: Session, query: str, *,
          error: str | None = None, status: int = 200) -> Response:
    found: list[Reader] = []
    if query:
        like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = list(session.scalars(
            select(Reader).where(or_(Reader.ticket_number == query,
                                     Reader.name.ilike(like, escape="\\")))
            .order_by(Reader.ticket_number).limit(100)))
    return console.render(request, lib, visitor, session, "console_readers.html", status=status,
                          q=query, found=found, categories=CATEGORIES, error=error)


@router.get("/staff/readers", response_class=HTMLResponse)
def readers_page(request: Request, lib: Lib) -> Response:
    query = request.query_params.get("q", "").strip()[:128]
    return console.page(request, lib, ROLES, lambda s, v, _w: _list(request, lib, v, s, query))


def _reader_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session,
                 ticket: str, *, message: str | None = None, error: str | None = None,
                 status: int = 200) -> Response:
    reader = readers.get_reader(session, ticket)
    account = session.scalar(select(ReaderAccount).where(ReaderAccount.reader_id == reader.id))
    return console.render(request, lib, visitor, session, "console_reader.html", status=status,
                          patron=reader, account=account, categories=CATEGORIES,
                          message=message, error=error)


@router.get("/staff/readers/{ticket}", response_class=HTMLResponse)
def reader_page(request: Request, lib: Lib, ticket: str) -> Response:
    return console.page(request, lib, ROLES,
                        lambda s, v, _w: _reader_page(request, lib, v, s, ticket[:32]))


def _add(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        ticket = form_text(form, "ticket", limit=32)
        try:
            readers.add_reader(session, ticket_number=ticket,
                               name=form_text(form, "name"),
                               category=form_text(form, "category", limit=16) or "adult",
                               email=form_text(form, "email") or None,
                               phone=form_text(form, "phone", limit=32) or None,
                               actor=console.actor(who))
            session.commit()
        except (QorError, ValueError) as e:
            session.rollback()
            message = e.message if isinstance(e, QorError) else \
                f"category: one of {', '.join(CATEGORIES)}"
            return _list(request, lib, visitor, session, "", error=message,
                         status=e.http_status if isinstance(e, QorError) else 400)
        return RedirectResponse(f"/staff/readers/{ticket}", status_code=303)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/readers")
async def add(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _add(request, lib, form))


def _change(request: Request, lib: Elibrary, form: Any, ticket: str, what: str) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        _ = lib.gettext(visitor.lang)
        try:
            if what == "edit":
                readers.update_reader(session, ticket, actor=console.actor(who),
                                      name=form_text(form, "name"),
                                      category=form_text(form, "category", limit=16) or None,
                                      email=form_text(form, "email"),
                                      phone=form_text(form, "phone", limit=32))
                message = _("Saved.")
            elif what == "account":
                accounts.create_reader_account(session, ticket_number=ticket,
                                               password=str(form.get("password", "")),
                                               actor=console.actor(who))
                message = _("The reader can now sign in to the e-library.")
            else:
                accounts.set_password(session, kind=READER, name=ticket,
                                      password=str(form.get("password", "")),
                                      actor=console.actor(who))
                message = _("New password set; any lock-out is lifted.")
            session.commit()
        except (QorError, ValueError) as e:
            session.rollback()
            message = e.message if isinstance(e, QorError) else \
                f"category: one of {', '.join(CATEGORIES)}"
            return _reader_page(request, lib, visitor, session, ticket, error=message,
                                status=e.http_status if isinstance(e, QorError) else 400)
        return _reader_page(request, lib, visitor, session, ticket, message=message)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/readers/{ticket}/edit")
async def edit(request: Request, lib: Lib, ticket: str) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _change(request, lib, form, ticket[:32], "edit"))


@router.post("/staff/readers/{ticket}/account")
async def open_account(request: Request, lib: Lib, ticket: str) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(
        lambda: _change(request, lib, form, ticket[:32], "account"))


@router.post("/staff/readers/{ticket}/password")
async def reset_password(request: Request, lib: Lib, ticket: str) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(
        lambda: _change(request, lib, form, ticket[:32], "password"))
