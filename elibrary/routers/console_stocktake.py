"""The stocktake pages (librarian, R14): start a stocktake, scan, watch the live counts, close
it and read the act.

The scanning page never loses a fast scan (Koha bug 9844 does): the browser
(``static/console-scan.js``) puts every barcode typed with Enter into a queue at once and sends
the queue in numbered batches, one at a time and in order, again and again until the server
acknowledges each; the server stores a batch exactly once
(:func:`catalog_sync.stocktake.record_scan_batch`), so a batch whose answer was lost and is
sent again is not stored twice.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync import stocktake as st
from catalog_sync.models import Stocktake, StocktakeReason
from elibrary import console
from elibrary.accounts import Principal
from elibrary.console import LIBRARIAN, form_text
from elibrary.context import Elibrary, Lib, Visitor
from elibrary.errors import InvalidParameter
from qor.errors import QorError

router = APIRouter()
ROLES = (LIBRARIAN,)
MAX_BATCH = 500


def _list(request: Request, lib: Elibrary, visitor: Visitor, session: Session, *,
          error: str | None = None, status: int = 200) -> Response:
    rows = session.scalars(select(Stocktake).order_by(Stocktake.id.desc()).limit(50)).all()
    return console.render(request, lib, visitor, session, "console_stocktakes.html",
                          status=status, stocktakes=rows,
                          reasons=[r.value for r in StocktakeReason], error=error)


@router.get("/staff/stocktake", response_class=HTMLResponse)
def stocktakes(request: Request, lib: Lib) -> Response:
    return console.page(request, lib, ROLES,
                        lambda s, v, _w: _list(request, lib, v, s))


def _start(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        try:
            new = st.start_stocktake(
                session, reason=form_text(form, "reason", limit=32),
                responsible=form_text(form, "responsible", limit=128),
                scope=form_text(form, "scope", limit=128), actor=console.actor(who))
            session.commit()
        except ValueError:
            session.rollback()
            return _list(request, lib, visitor, session, status=400,
                         error=f"reason: one of {', '.join(r.value for r in StocktakeReason)}")
        except QorError as e:
            session.rollback()
            return _list(request, lib, visitor, session, error=e.message, status=e.http_status)
        return RedirectResponse(f"/staff/stocktake/{new.id}", status_code=303)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/stocktake")
async def start(request: Request, lib: Lib) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _start(request, lib, form))


@router.get("/staff/stocktake/{stocktake_id}", response_class=HTMLResponse)
def scanning_page(request: Request, lib: Lib, stocktake_id: int) -> Response:
    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        take = st.get_stocktake(session, stocktake_id)
        progress = st.stocktake_progress(session, stocktake_id)
        act = st.stocktake_act(session, stocktake_id) if take.closed_at is not None else None
        return console.render(request, lib, visitor, session, "console_stocktake.html",
                              take=take, progress=progress, act=act, line_why=st.line_why)

    return console.page(request, lib, ROLES, show)


@router.get("/staff/stocktake/{stocktake_id}/act.{fmt}")
def act_download(request: Request, lib: Lib, stocktake_id: int, fmt: str) -> Response:
    """A closed stocktake's act as the ``stocktake-<id>.html`` (in the page's language) or
    ``.csv`` (English machine keys) ``qor stocktake close --lang`` writes (R14)."""
    if fmt not in ("html", "csv"):
        raise InvalidParameter("format", "html or csv")

    def download(session: Session, visitor: Visitor, _who: Principal) -> Response:
        act = st.stocktake_act(session, stocktake_id)
        if fmt == "html":
            body = st.stocktake_act_html(act, library_name=lib.config.library_name,
                                         language=visitor.lang).encode("utf-8")
        else:
            buf = io.StringIO()
            csv.writer(buf).writerows(st.stocktake_act_rows(act))
            body = buf.getvalue().encode("utf-8-sig")
        media = "text/html" if fmt == "html" else "text/csv"
        return Response(body, media_type=f"{media}; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="stocktake-{stocktake_id}.{fmt}"'})

    return console.page(request, lib, ROLES, download)


def _progress(p: st.Progress) -> dict[str, int]:
    return {"scans": p.scans, "distinct": p.distinct_codes, "expected": p.expected,
            "found": p.found, "missing": p.missing, "unexpected": p.unexpected,
            "misplaced": p.misplaced}


def _scans(request: Request, lib: Elibrary, form: Any, stocktake_id: int) -> Response:
    def act(session: Session, _visitor: Visitor, who: Principal) -> Response:
        codes = [c for c in str(form.get("codes", "")).split("\n") if c.strip()]
        if len(codes) > MAX_BATCH:
            raise InvalidParameter("codes", f"at most {MAX_BATCH} scans per batch")
        try:
            ack = st.record_scan_batch(
                session, stocktake_id, codes, batch=form_text(form, "batch", limit=64),
                actor=console.actor(who), location=form_text(form, "location", limit=128) or None)
            progress = st.stocktake_progress(session, stocktake_id)
            session.commit()
        except QorError as e:
            session.rollback()
            return JSONResponse({"error": e.message, "retryable": e.retryable},
                                status_code=e.http_status)
        return JSONResponse({"stored": ack.stored, "duplicate": ack.duplicate,
                             "refused": list(ack.refused), **_progress(progress)})

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/stocktake/{stocktake_id}/scans")
async def scans(request: Request, lib: Lib, stocktake_id: int) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _scans(request, lib, form, stocktake_id))


def _close(request: Request, lib: Elibrary, form: Any, stocktake_id: int) -> Response:
    def act(session: Session, _visitor: Visitor, who: Principal) -> Response:
        st.close_stocktake(session, stocktake_id, actor=console.actor(who),
                           mark_missing=form.get("mark_missing") == "1")
        session.commit()
        return RedirectResponse(f"/staff/stocktake/{stocktake_id}", status_code=303)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/stocktake/{stocktake_id}/close")
async def close(request: Request, lib: Lib, stocktake_id: int) -> Response:
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _close(request, lib, form, stocktake_id))
