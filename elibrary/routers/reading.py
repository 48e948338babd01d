"""Readers' pages: search, a copy's record, the IIIF viewer (Mirador), the pdf.js reading page
(the download route), a page's OCR text and the copy's bytes.

Every copy's bytes are served only after its rights were checked (R6, R10); ``dark`` copies answer
exactly like unknown ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from markupsafe import Markup

from elibrary.context import Lib, int_param, refusal, rights_label
from elibrary.delivery import parse_range
from elibrary.errors import InvalidParameter
from elibrary.iiif_presentation import manifest_url
from elibrary.library import (
    may_read,
    readable_rights,
    visible_copies_by_id,
    visible_copy,
)
from elibrary.models import Rights
from elibrary.textindex import indexed_pages, page_bodies, page_text, search, snippet
from storage import DecryptionFailed, StorageError

logger = logging.getLogger(__name__)

RESULTS_PER_PAGE = 10
MAX_OFFSET = 10_000
MAX_PAGE = 100_000
#: Ranges up to this size are decrypted whole before answering; larger ones are streamed.
WHOLE_BODY_BYTES = 4 * 1024 * 1024
STREAM_CHUNK_BYTES = 1024 * 1024

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def home(request: Request, lib: Lib) -> Response:
    return search_page(request, lib)

@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, lib: Lib) -> Response:
    q = request.query_params.get("q", "").strip()
    offset = int_param(request, "offset", default=0, low=0, high=MAX_OFFSET)
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        results: list[dict[str, Any]] = []
        total = 0
        if q:
            # R6/R10 (issue 15): only copies this visitor may read are searched at all,
            # so restricted copies are neither listed nor counted.
            rights = readable_rights(visitor.reader,
                                     in_reading_room=visitor.in_reading_room)
            found = search(session, q, readable=rights, offset=offset,
                           limit=RESULTS_PER_PAGE)
            total = found.total
            views = visible_copies_by_id(session, [h.copy_id for h in found.hits])
            readable = [h for h in found.hits if h.copy_id in views and may_read(
                views[h.copy_id].rights, visitor.reader,
                in_reading_room=visitor.in_reading_room)]
            bodies = page_bodies(session, [h.text_id for h in readable])
            for h in readable:
                text = bodies.get(h.text_id)
                if h.page == 0:
                    shown: Markup | None = None
                else:
                    shown = snippet(text, found.terms) if text is not None else None
                results.append({"view": views[h.copy_id], "page": h.page, "snippet": shown})

        def link(at: int) -> str:
            return "/search?" + urlencode({"q": q, "offset": at})

        prev_url = link(max(0, offset - RESULTS_PER_PAGE)) if offset > 0 else None
        next_url = (link(offset + RESULTS_PER_PAGE)
                    if offset + RESULTS_PER_PAGE < total else None)
        return lib.render(request, visitor, "search.html", q=q, results=results, total=total,
                          offset=offset, prev_url=prev_url, next_url=next_url)

# -- records and reading -------------------------------------------------------------------

@router.get("/copies/{bag_id}", response_class=HTMLResponse)
def record(request: Request, lib: Lib, bag_id: str) -> Response:
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        view = visible_copy(session, bag_id)
        _ = lib.gettext(visitor.lang)
        refused = refusal(view, visitor)
        pages = indexed_pages(session, view.copy_id) if refused is None else []
        if refused is None and not pages:
            pages = list(range(1, view.page_count + 1))
        message = (_("Only in the library's reading rooms.")
                   if view.rights is Rights.READING_ROOM
                   else _("Sign in with your reader ticket to read this copy."))
        return lib.render(request, visitor, "record.html", copy=view,
                          rights_label=rights_label(view.rights, _),
                          can_read=refused is None, pages=pages, refusal=message,
                          manifest_url=manifest_url(lib.config.base_url.rstrip("/"),
                                                    view.bag_id))

@router.get("/copies/{bag_id}/read", response_class=HTMLResponse)
def read(request: Request, lib: Lib, bag_id: str) -> Response:
    page = int_param(request, "page", default=1, low=1, high=MAX_PAGE)
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        view = visible_copy(session, bag_id)
        refused = refusal(view, visitor)
        if refused is not None:
            raise refused
        return lib.render(request, visitor, "viewer.html", copy=view, page=page,
                          page_text=page_text(session, view.copy_id, page))

#: The viewer page's own policy: Mirador (its bundled MUI/emotion) writes ``<style>`` elements at
#: run time, so this page alone allows inline styles; scripts stay ``'self'`` only.
VIEW_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


@router.get("/copies/{bag_id}/view", response_class=HTMLResponse)
def view(request: Request, lib: Lib, bag_id: str) -> Response:
    """The copy in the IIIF viewer (Mirador): page turning, thumbnails, deep zoom from the
    Image API tiles, in-book search from the Content Search service. A visitor without the
    copy's rights gets the page with the IIIF authorization prompt and no image or text (R6,
    R10): the page's script probes the Auth Flow 2.0 probe service before any image is asked."""
    page = int_param(request, "page", default=1, low=1, high=MAX_PAGE)
    q = request.query_params.get("q", "").strip()[:200]
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        view = visible_copy(session, bag_id)
        refused = refusal(view, visitor)
        text = page_text(session, view.copy_id, page) if refused is None else None
        response = lib.render(request, visitor, "view.html", copy=view, page=page, q=q,
                              can_read=refused is None, page_text=text,
                              can_download=refused is None)
    response.headers["Content-Security-Policy"] = VIEW_CSP
    return response


@router.get("/copies/{bag_id}/pages/{page}/text")
def page_ocr_text(request: Request, lib: Lib, bag_id: str, page: int) -> Response:
    """The OCR text of one page as plain text (the viewer shows it for screen readers); only
    after the copy's rights were checked (R6, R10)."""
    if not 1 <= page <= MAX_PAGE:
        raise InvalidParameter("page", f"must be between 1 and {MAX_PAGE}")
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        view = visible_copy(session, bag_id)
        refused = refusal(view, visitor)
        if refused is not None:
            raise refused
        text = page_text(session, view.copy_id, page)
    return PlainTextResponse(text or "", headers={"Cache-Control": "private, no-store"})


@router.api_route("/copies/{bag_id}/file.pdf", methods=["GET", "HEAD"])
def copy_file(request: Request, lib: Lib, bag_id: str) -> Response:
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        view = visible_copy(session, bag_id)
        refused = refusal(view, visitor)
        account_id = visitor.reader.account_id if visitor.reader else None
    if refused is not None:
        raise refused
    try:
        opened = lib.files.open(view)
    except (StorageError, DecryptionFailed) as e:
        logger.error("copy %s cannot be opened: %s", bag_id, e)
        raise
    size = opened.plain_size
    etag = f'"{bag_id}"'
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range != etag:
        range_header = None
    span = parse_range(range_header, size)
    start, end = span if span is not None else (0, size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
        "ETag": etag,
        "Cache-Control": "public, max-age=3600" if view.rights is Rights.OPEN
        else "private, no-store",
        "Content-Disposition": f'inline; filename="{bag_id}.pdf"',
    }
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/pdf")
    pieces = lib.files.iter_range(opened, start, end)
    if end - start <= WHOLE_BODY_BYTES:
        # Small ranges (what pdf.js asks for) are decrypted here in one go: one hop to
        # the thread pool instead of one per segment; an authentication failure is an
        # error page, never a truncated body.
        data = b"".join(pieces)
        lib.read_log.record(copy_id=view.copy_id, account_id=account_id,
                            place=visitor.place, nbytes=len(data))
        return Response(data, status_code=status, headers=headers,
                        media_type="application/pdf")
    # Decrypt the first piece now: a wrong key or damaged file is an error page, not a
    # truncated body.
    first = next(pieces, b"")

    def body() -> Iterator[bytes]:
        sent = 0
        batch: list[bytes] = [first]
        size = len(first)
        try:
            for piece in pieces:
                batch.append(piece)
                size += len(piece)
                if size >= STREAM_CHUNK_BYTES:
                    out = b"".join(batch)
                    batch, size = [], 0
                    sent += len(out)
                    yield out
            if batch:
                out = b"".join(batch)
                sent += len(out)
                yield out
        finally:
            lib.read_log.record(copy_id=view.copy_id, account_id=account_id,
                                place=visitor.place, nbytes=sent)

    return StreamingResponse(body(), status_code=status, headers=headers,
                             media_type="application/pdf")
