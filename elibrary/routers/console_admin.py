"""Staff accounts (admin): the accounts and their roles, and opening a new one (R10, R11).

The same function as ``qor elibrary add-staff`` (:func:`elibrary.accounts.create_staff_account`),
which records the new account and its role in the audit log.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from elibrary import accounts, console
from elibrary.accounts import Principal
from elibrary.console import ADMIN, form_text
from elibrary.context import Elibrary, Lib, Visitor
from elibrary.models import StaffAccount, StaffRole
from qor.errors import QorError

router = APIRouter()
ROLES = (ADMIN,)


def _page(request: Request, lib: Elibrary, visitor: Visitor, session: Session, *,
          message: str | None = None, error: str | None = None, status: int = 200) -> Response:
    rows = session.scalars(select(StaffAccount).order_by(StaffAccount.username)).all()
    return console.render(request, lib, visitor, session, "console_admin.html", status=status,
                          accounts=rows, roles=[r.value for r in StaffRole], message=message,
                          error=error)


@router.get("/staff/admin/accounts", response_class=HTMLResponse)
def staff_accounts(request: Request, lib: Lib) -> Response:
    return console.page(request, lib, ROLES, lambda s, v, _w: _page(request, lib, v, s))


def _create(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        name = form_text(form, "username", limit=64)
        role = form_text(form, "role", limit=16)
        try:
            accounts.create_staff_account(session, username=name, role=role,
                                          password=str(form.get("password", "")),
                                          actor=console.actor(who))
            session.commit()
        except QorError as e:
            session.rollback()
            return _page(request, lib, visitor, session, error=e.message, status=e.http_status)
        _ = lib.gettext(visitor.lang)
        return _page(request, lib, visitor, session,
                     message=_("Staff account %(name)s (%(role)s) created.")
                     % {"name": name, "role": role})

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/admin/accounts")
async def create(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _create(request, lib, form))
