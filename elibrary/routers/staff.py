"""The staff pages under ``/staff``: reading statistics and copies' rights (R10)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog_sync.errors import DigitalCopyNotFound
from elibrary import console
from elibrary.context import Elibrary, Lib, Visitor, need_staff
from elibrary.errors import CopyNotAvailable
from elibrary.library import check_bag_id, parse_rights, set_rights, visible_copies_by_id
from elibrary.models import ReadRecord, Rights, StaffRole

router = APIRouter()


def staff_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session,
               message: str | None = None) -> Response:
    assert visitor.staff is not None
    stats: list[dict[str, Any]] = []
    if visitor.staff.role == StaffRole.STATISTICIAN:
        rows = session.execute(
            select(ReadRecord.copy_id, ReadRecord.day, func.count(),
                   func.sum(ReadRecord.bytes_served))
            .group_by(ReadRecord.copy_id, ReadRecord.day)
        ).all()
        per: dict[tuple[str, int], list[int]] = {}
        for copy_id, day, n, nbytes in rows:
            acc = per.setdefault((day.strftime("%Y-%m"), copy_id), [0, 0])
            acc[0] += int(n)
            acc[1] += int(nbytes or 0)
        views = visible_copies_by_id(session, list({c for _, c in per}))
        for (month, copy_id), (n, nbytes) in sorted(per.items(), reverse=True):
            inv = views[copy_id].inventory_number if copy_id in views else f"#{copy_id}"
            stats.append({"month": month, "inventory_number": inv, "reads": n,
                          "bytes": nbytes})
    return console.render(request, lib, visitor, session, "staff.html", stats=stats,
                          message=message, rights=[r.value for r in Rights])

@router.get("/staff", response_class=HTMLResponse)
def staff_home(request: Request, lib: Lib) -> Response:
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        if visitor.staff is None:
            return RedirectResponse("/staff/login", status_code=303)
        return staff_page(request, lib, visitor, session)

def do_rights(request: Request, lib: Elibrary, form: Any) -> Response:
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        lib.check_csrf(request, visitor, form.get("csrf_token"))
        who = need_staff(visitor, StaffRole.LIBRARIAN)
        bag_id = check_bag_id(str(form.get("bag_id", "")).strip())
        rights = parse_rights(str(form.get("rights", "")))
        try:
            set_rights(session, bag_id=bag_id, rights=rights,
                       actor=f"staff:{who.name}", default_rights=lib.config.default_rights)
            session.commit()
        except DigitalCopyNotFound:
            raise CopyNotAvailable(bag_id) from None
        _ = lib.gettext(visitor.lang)
        return staff_page(request, lib, visitor, session,
                          message=_("Saved: %(bag)s is now %(rights)s.")
                          % {"bag": bag_id, "rights": rights.value})

@router.post("/staff/rights")
async def staff_rights(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: do_rights(request, lib, form))
