"""The catalogue (librarian): search items, an item's record and history, editing (never the
inventory number — R14), library processing (barcode, RFID tag, location — R8) and write-off
acts (есептен шығару акті · акт списания — R3–R4: an item leaves the fund only by a recorded,
reasoned act, and stays in the register, written off).

The same functions as ``qor items show|edit|process|write-off`` (:mod:`catalog_sync.items`);
every change is logged with old and new value in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload

from catalog_sync import items, register
from catalog_sync.errors import BulkRefused
from catalog_sync.models import (
    AcquisitionSource,
    BibRecord,
    Item,
    ItemStatus,
    WriteOffAct,
    WriteOffReason,
    utcnow,
)
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


# --- write-off acts (R3–R4) -----------------------------------------------------------------
# Registered before /staff/catalogue/{inventory_number}, which would otherwise take the path.

REASONS = tuple(r.value for r in WriteOffReason)
#: The latest acts the write-off page lists.
RECENT_ACTS = 20


def _write_off_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session, *,
                    query: str, values: dict[str, Any] | None = None,
                    error: str | None = None, status: int = 200) -> Response:
    """The write-off form: find items and tick them (or list inventory numbers), give the act's
    number, date and reason; and the latest acts."""
    acts = session.execute(
        select(WriteOffAct.act_number, WriteOffAct.act_date, WriteOffAct.reason,
               func.count(Item.id))
        .outerjoin(Item, Item.write_off_act_id == WriteOffAct.id)
        .group_by(WriteOffAct.id).order_by(WriteOffAct.created_at.desc(), WriteOffAct.id.desc())
        .limit(RECENT_ACTS)
    ).all()
    found = [i for i in search(session, query) if i.status != ItemStatus.WRITTEN_OFF]
    chosen = set((values or {}).get("items", ()))
    return console.render(
        request, lib, visitor, session, "console_write_off.html", status=status, q=query,
        results=found, chosen=chosen, reasons=REASONS, acts=acts,
        values=values or {"act_date": utcnow().date().isoformat()}, error=error)


@router.get("/staff/catalogue/write-off", response_class=HTMLResponse)
def write_off_form(request: Request, lib: Lib) -> Response:
    query = request.query_params.get("q", "")[:200]
    return console.page(request, lib, ROLES, lambda s, v, _w: _write_off_page(
        request, lib, v, s, query=query))


def _chosen_items(form: Any) -> list[str]:
    """The ticked items, then those typed one per line, each once, in that order."""
    ticked = [v.strip()[:64] for v in form.getlist("item") if isinstance(v, str)]
    typed = form_text(form, "more", limit=20000).splitlines()
    out: list[str] = []
    for inv in [*ticked, *(t.strip()[:64] for t in typed)]:
        if inv and inv not in out:
            out.append(inv)
    return out


def _write_off(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        numbers = _chosen_items(form)
        number, on_text = form_text(form, "act_number", limit=64), form_text(form, "act_date",
                                                                              limit=10)
        reason, note = form_text(form, "reason", limit=32), form_text(form, "note", limit=2000)
        values: dict[str, Any] = {"act_number": number, "act_date": on_text, "reason": reason,
                                  "note": note, "items": numbers}
        query = form_text(form, "q", limit=200)
        try:
            if not number:
                raise InvalidParameter("act_number", "the act needs its number")
            try:
                on = date.fromisoformat(on_text)
            except ValueError:
                raise InvalidParameter(
                    "act_date", f"{on_text!r} is not a date (YYYY-MM-DD)") from None
            # R3–R4: the domain refuses an act without items, an item twice, an item already
            # written off, a date before an item's receipt, and "other" without a note.
            items.write_off_items(session, act_number=number, act_date=on, reason=reason,
                                  inventory_numbers=numbers, actor=console.actor(who),
                                  note=note or None)
            session.commit()
        except QorError as e:
            session.rollback()
            return _write_off_page(request, lib, visitor, session, query=query, values=values,
                                   error=e.message, status=e.http_status)
        return RedirectResponse(
            f"/staff/catalogue/write-off/act?number={quote(number, safe='')}", status_code=303)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/catalogue/write-off")
async def write_off(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _write_off(request, lib, form))


@router.get("/staff/catalogue/write-off/act")
def write_off_act(request: Request, lib: Lib) -> Response:
    """A write-off act: on the page, or as the printable HTML document (in the page's
    language) or CSV that ``qor items write-off`` writes."""
    number = request.query_params.get("number", "")[:64]
    download = request.query_params.get("download", "")

    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        doc = items.write_off_document(session, number)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in doc.act_number)
        if download == "html":
            return HTMLResponse(items.write_off_html(doc, language=visitor.lang), headers={
                "Content-Disposition": f'attachment; filename="write-off-{safe}.html"'})
        if download == "csv":
            return Response(items.write_off_csv(doc), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition":
                                     f'attachment; filename="write-off-{safe}.csv"'})
        return console.render(request, lib, visitor, session, "console_write_off_act.html",
                              doc=doc, number=quote(doc.act_number, safe=""))

    return console.page(request, lib, ROLES, show)


# --- receipt acts and library processing (R5, R8, R9) -------------------------------------
# Also before /staff/catalogue/{inventory_number}. An act number may hold a "/" (ACT-2026/7),
# so the act's page takes the rest of the path, and its forms name the act in a field.

#: Receipt acts per page of their list.
RECEIPTS_PER_PAGE = 50
SOURCES = tuple(s.value for s in AcquisitionSource)


def _receipts_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session, *,
                   page_no: int = 1, values: dict[str, Any] | None = None,
                   error: str | None = None, status: int = 200) -> Response:
    """The receipt acts, newest first, a page at a time, and the form that opens one."""
    acts, total = items.receipt_summaries(session, limit=RECEIPTS_PER_PAGE,
                                          offset=(page_no - 1) * RECEIPTS_PER_PAGE)
    pages = max(1, -(-total // RECEIPTS_PER_PAGE))
    return console.render(
        request, lib, visitor, session, "console_receipts.html", status=status, acts=acts,
        total=total, page_no=page_no, pages=pages, error=error,
        values=values or {"received_on": utcnow().date().isoformat()})


@router.get("/staff/catalogue/receipts", response_class=HTMLResponse)
def receipts(request: Request, lib: Lib) -> Response:
    raw = request.query_params.get("page", "1")
    page_no = int(raw) if raw.isdigit() and 0 < int(raw) < 100000 else 1
    return console.page(request, lib, ROLES, lambda s, v, _w: _receipts_page(
        request, lib, v, s, page_no=page_no))


def _act_url(number: str) -> str:
    return f"/staff/catalogue/receipts/{quote(number, safe='')}"


def _open_receipt(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        number = form_text(form, "act_number", limit=64)
        on_text = form_text(form, "received_on", limit=10)
        supplier, note = form_text(form, "supplier", limit=500), form_text(form, "note",
                                                                           limit=2000)
        values = {"act_number": number, "received_on": on_text, "supplier": supplier,
                  "note": note}
        try:
            try:
                on = date.fromisoformat(on_text)
            except ValueError:
                raise InvalidParameter(
                    "received_on", f"{on_text!r} is not a date (YYYY-MM-DD)") from None
            # R9: the act is registered (and audit-logged) before any item is received in it;
            # the domain refuses an empty or an existing act number.
            register.open_receipt_batch(session, act_number=number, received_on=on,
                                        supplier=supplier or None, note=note or None,
                                        actor=console.actor(who))
            session.commit()
        except QorError as e:
            session.rollback()
            return _receipts_page(request, lib, visitor, session, values=values,
                                  error=e.message, status=e.http_status)
        return RedirectResponse(_act_url(number), status_code=303)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/catalogue/receipts")
async def open_receipt(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _open_receipt(request, lib, form))


def _receipt_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session,
                  number: str, *, values: dict[str, Any] | None = None,
                  rows: list[dict[str, str]] | None = None, error: str | None = None,
                  status: int = 200) -> Response:
    """A receipt act: its items with their status, the form that receives more copies into it,
    and the processing table of those still ``received`` (R8)."""
    batch = register.get_receipt_batch(session, number)
    listed = items.list_items(session, receipt_act=number)
    waiting = [i for i in listed if i.status == ItemStatus.RECEIVED]
    typed = {r["inventory_number"]: r for r in rows or ()}
    return console.render(
        request, lib, visitor, session, "console_receipt.html", status=status, batch=batch,
        listed=listed, waiting=waiting, typed=typed, sources=SOURCES, error=error,
        values=values or {"count": "1", "source": "purchase"}, max_copies=items.MAX_COPIES)


@router.get("/staff/catalogue/receipts/{act_number:path}", response_class=HTMLResponse)
def receipt(request: Request, lib: Lib, act_number: str) -> Response:
    return console.page(request, lib, ROLES, lambda s, v, _w: _receipt_page(
        request, lib, v, s, act_number[:64]))


def _receive(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        number = form_text(form, "act", limit=64)
        values = {k: form_text(form, k, limit=2000) for k in
                  ("title", "authors", "year", "language", "source", "price", "count")}
        try:
            register.get_receipt_batch(session, number)  # an unknown act: 404, as a page
            year, count = values["year"], values["count"]
            if year and not (year.isdigit() and len(year) <= 4):
                raise InvalidParameter("year", f"{year!r} is not a year")
            if not count.isdigit():
                raise InvalidParameter("count", f"{count!r} is not a number of copies")
            items.receive_copies(
                session, act_number=number, title=values["title"], actor=console.actor(who),
                count=int(count), authors=[a.strip() for a in values["authors"].split(";")
                                           if a.strip()],
                year=int(year) if year else None, language=values["language"] or None,
                source=values["source"] or None, price=values["price"] or None)
            session.commit()
        except QorError as e:
            session.rollback()
            return _receipt_page(request, lib, visitor, session, number, values=values,
                                 error=e.message, status=e.http_status)
        return RedirectResponse(_act_url(number), status_code=303)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/catalogue/receipts-receive")
async def receive(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _receive(request, lib, form))


def _process_rows(form: Any) -> tuple[list[dict[str, str]], list[int]]:
    """The processing table's filled rows (a row left blank is not processed this time) and
    each one's row number in the table."""
    invs = [v.strip()[:64] for v in form.getlist("inventory_number") if isinstance(v, str)]
    columns = {c: [v.strip()[:128] for v in form.getlist(c) if isinstance(v, str)]
               for c in ("barcode", "location", "shelf_mark")}
    rows, numbers = [], []
    for n, inv in enumerate(invs):
        row = {"inventory_number": inv,
               **{c: vals[n] if n < len(vals) else "" for c, vals in columns.items()}}
        if any(row[c] for c in columns):
            rows.append(row)
            numbers.append(n + 1)
    return rows, numbers


def _process_batch(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        number = form_text(form, "act", limit=64)
        rows, numbers = _process_rows(form)
        try:
            register.get_receipt_batch(session, number)
            if not rows:
                raise InvalidParameter("barcode", "scan the barcode of at least one item")
            in_act = {i.inventory_number for i in items.list_items(
                session, receipt_act=number, status=ItemStatus.RECEIVED.value)}
            for n, row in zip(numbers, rows, strict=True):
                if row["inventory_number"] not in in_act:
                    raise InvalidParameter("inventory_number", (
                        f"row {n}: item {row['inventory_number']} is not waiting for "
                        "processing in this act; nothing was changed"))
            # R8: barcode and shelf location, then on the shelf; the same all-or-nothing run
            # as `qor items process --csv`: the first refused row refuses them all.
            try:
                items.bulk_apply(session, rows, operation="process", actor=console.actor(who))
            except BulkRefused as e:
                if e.line >= 2:  # line 1 is the header the rows are given under
                    # The page's row number, not the line of the CSV the rows are given as.
                    e.message = f"row {numbers[e.line - 2]}: {e.detail}; nothing was changed"
                raise
            session.commit()
        except QorError as e:
            session.rollback()
            return _receipt_page(request, lib, visitor, session, number, rows=rows,
                                 error=e.message, status=e.http_status)
        return RedirectResponse(_act_url(number), status_code=303)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/catalogue/receipts-process")
async def process_batch(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _process_batch(request, lib, form))


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
