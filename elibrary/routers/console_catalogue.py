"""The catalogue (librarian): search items, an item's record and history, editing (never the
inventory number — R14) and library processing (barcode, RFID tag, location — R8).

The same functions as ``qor items show|edit|process`` (:mod:`catalog_sync.items`); every change
is logged with old and new value in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from catalog_sync import items
from catalog_sync.models import BibRecord, Item
from elibrary import console
from elibrary.accounts import Principal
from elibrary.console import LIBRARIAN, form_text
from elibrary.context import Elibrary, Lib, Visitor
from elibrary.errors import InvalidParameter
from qor.errors import QorError

router = APIRouter()
ROLES = (LIBRARIAN,)
#: The fields the edit form shows, in its order (the inventory number is not among them: R14).
FORM_FIELDS = ("title", "authors", "publisher", "year", "language", "isbn", "issn", "location",
               "shelf_mark", "condition", "price", "status")


def search(session: Session, query: str, *, limit: int = 100) -> list[items.ItemView]:
    """Items whose inventory number, barcode or RFID tag is ``query``, or whose title or
    author contains it."""
    q = query.strip()
    if not q:
        return []
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = session.scalars(
        select(Item).join(BibRecord, Item.record_id == BibRecord.id)
        .where(or_(Item.inventory_number == q, Item.barcode == q, Item.rfid == q,
                   BibRecord.title.ilike(like, escape="\\"),
                   BibRecord.title.like(like, escape="\\")))
        .options(joinedload(Item.record), joinedload(Item.receipt_batch),
                 joinedload(Item.write_off_act))
        .order_by(Item.sort_key).limit(limit)
    ).unique().all()
    return [items.view(i) for i in found]


@router.get("/staff/catalogue", response_class=HTMLResponse)
def catalogue(request: Request, lib: Lib) -> Response:
    query = request.query_params.get("q", "")[:200]

    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        return console.render(request, lib, visitor, session, "console_catalogue.html",
                              q=query, results=search(session, query))

    return console.page(request, lib, ROLES, show)


def _item_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session, inv: str,
               *, message: str | None = None, error: str | None = None,
               status: int = 200) -> Response:
    card = items.show_item(session, inv)
    values = card.item.as_dict()
    values["authors"] = "; ".join(card.item.authors)
    return console.render(request, lib, visitor, session, "console_item.html", status=status,
                          card=card, values=values, fields=FORM_FIELDS, message=message,
                          error=error)


@router.get("/staff/catalogue/{inventory_number}", response_class=HTMLResponse)
def item_page(request: Request, lib: Lib, inventory_number: str) -> Response:
    return console.page(request, lib, ROLES, lambda s, v, _w: _item_page(
        request, lib, v, s, inventory_number[:64]))


def _parse(name: str, raw: str) -> object:
    if name == "authors":
        return [a.strip() for a in raw.split(";") if a.strip()]
    if name == "year" and raw:
        if not raw.isdigit() or len(raw) > 4:
            raise InvalidParameter("year", f"{raw!r} is not a year")
        return int(raw)
    return raw or None


def _apply(request: Request, lib: Elibrary, visitor: Visitor, session: Session, inv: str,
           change: Callable[[], object]) -> Response:
    """Make ``change`` to item ``inv`` and commit, then back to its record; a refusal rolls
    back and shows the record again with the reason and the error's HTTP status."""
    try:
        change()
        session.commit()
    except QorError as e:
        session.rollback()
        return _item_page(request, lib, visitor, session, inv, error=e.message,
                          status=e.http_status)
    return RedirectResponse(f"/staff/catalogue/{inv}", status_code=303)


def _edit(request: Request, lib: Elibrary, form: Any, inv: str) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        current = items.show_item(session, inv).item.as_dict()
        current["authors"] = "; ".join(current["authors"])
        changes: dict[str, object] = {}

        def change() -> None:
            for name in form:
                if name == "csrf_token":
                    continue
                raw = form_text(form, name, limit=2000)
                if name not in FORM_FIELDS:
                    # Passed to the domain as asked, which refuses it: the inventory number
                    # above all (R14: inventory numbers are immutable).
                    changes[name] = raw
                elif raw != ("" if current.get(name) is None else str(current[name])):
                    changes[name] = _parse(name, raw)
            if changes:
                items.edit_item(session, inv, actor=console.actor(who), changes=changes)

        return _apply(request, lib, visitor, session, inv, change)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/catalogue/{inventory_number}/edit")
async def edit(request: Request, lib: Lib, inventory_number: str) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(
        lambda: _edit(request, lib, form, inventory_number[:64]))


def _process(request: Request, lib: Elibrary, form: Any, inv: str) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        return _apply(request, lib, visitor, session, inv, lambda: items.process_for_use(
            session, inv, actor=console.actor(who),
            barcode=form_text(form, "barcode", limit=64) or None,
            rfid=form_text(form, "rfid", limit=64) or None,
            location=form_text(form, "location", limit=128) or None,
            shelf_mark=form_text(form, "shelf_mark", limit=64) or None))

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/catalogue/{inventory_number}/process")
async def process(request: Request, lib: Lib, inventory_number: str) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(
        lambda: _process(request, lib, form, inventory_number[:64]))
