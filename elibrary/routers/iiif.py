"""IIIF for viewers: Presentation 3.0 manifests and collections, Content Search 2.0, and the
Authorization Flow 2.0 services (docs/elibrary.md, "IIIF").

* ``GET /iiif/presentation/{bag_id}/manifest.json`` — the copy's manifest (public metadata,
  like the record page; ``dark`` and unknown copies 404);
* ``GET /iiif/presentation/collection/{fund}.json`` — the manifests of one fund;
* ``GET /iiif/search/{bag_id}?q=…`` — Content Search 2.0 hits with ``xywh`` on the canvases
  (only for a visitor who may read the copy: R6/R10);
* ``GET /iiif/auth/probe/{bag_id}``, ``/iiif/auth/access``, ``/iiif/auth/token`` — the
  Authorization Flow 2.0 services of restricted copies; the token they give is accepted as
  ``Authorization: Bearer`` by every route that serves a copy (see
  :meth:`elibrary.context.Elibrary.bearer_reader`).
"""

from __future__ import annotations

import io
import json
import re
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from PIL import Image
from sqlalchemy import select

from catalog_sync.models import DigitalCopy, Item
from elibrary import iiif_presentation, iiif_search
from elibrary.context import Elibrary, Lib, refusal
from elibrary.errors import CopyNotAvailable, InvalidParameter
from elibrary.iiif_presentation import (
    MAIN_FUND,
    PRESENTATION_CONTEXT,
    build_collection,
    build_manifest,
    check_fund,
)
from elibrary.library import CopyView, visible_copies_by_id, visible_copy
from elibrary.models import LibraryCopy, Rights
from integrity import layout

router = APIRouter()

#: Bytes of a reading image decrypted to read its dimensions (the JPEG header).
HEAD_BYTES = 64 * 1024
SIZE_CACHE = 1024
MAX_COLLECTION = 10_000


def _json(body: dict[str, Any], request: Request, *, public: bool,
          context: str = PRESENTATION_CONTEXT) -> Response:
    accept = request.headers.get("accept", "")
    media = (f'application/ld+json;profile="{context}"' if "application/ld+json" in accept
             else "application/json")
    headers = ({"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}
               if public else {"Cache-Control": "private, no-store"})
    return JSONResponse(body, media_type=media, headers=headers)


def page_sizes(lib: Elibrary, view: CopyView) -> tuple[tuple[int, int], ...]:
    """(width, height) of every page's reading image, read from the decrypted JPEG headers;
    :class:`CopyNotAvailable` for a copy without reading images (before ``qor copies
    derive``)."""
    hit = lib.page_sizes.get(view.bag_id)
    if hit is not None and len(hit) == view.page_count:
        return hit
    sizes: list[tuple[int, int]] = []
    for page in range(1, view.page_count + 1):
        opened = lib.files.open_file(view, layout.web_page_path(page))
        head = b"".join(lib.files.iter_range(opened, 0, min(HEAD_BYTES, opened.plain_size)))
        try:
            with Image.open(io.BytesIO(head)) as im:
                sizes.append(im.size)
        except OSError:  # an unusually long header: decode from the whole file
            with Image.open(io.BytesIO(lib.files.read_all(opened))) as im:
                sizes.append(im.size)
    if not sizes:
        raise CopyNotAvailable(view.bag_id)
    result = tuple(sizes)
    lib.page_sizes[view.bag_id] = result
    while len(lib.page_sizes) > SIZE_CACHE:
        lib.page_sizes.popitem(last=False)
    return result


def base_url(lib: Elibrary) -> str:
    return lib.config.base_url.rstrip("/")


@router.get("/iiif/presentation/{bag_id}/manifest.json")
def manifest(request: Request, lib: Lib, bag_id: str) -> Response:
    with lib.sessions() as session:
        view = visible_copy(session, bag_id)  # dark or unknown: 404
    body = build_manifest(view, base=base_url(lib), sizes=page_sizes(lib, view))
    return _json(body, request, public=view.rights is Rights.OPEN)


@router.get("/iiif/presentation/collection/{fund}.json")
def collection(request: Request, lib: Lib, fund: str) -> Response:
    check_fund(fund)
    with lib.sessions() as session:
        where = (Item.location == fund) if fund != MAIN_FUND else (
            (Item.location.is_(None)) | (Item.location == MAIN_FUND))
        ids = list(session.scalars(
            select(DigitalCopy.id).join(Item, Item.id == DigitalCopy.item_id)
            .join(LibraryCopy, LibraryCopy.copy_id == DigitalCopy.id)
            .where(where, LibraryCopy.rights != Rights.DARK.value)
            .order_by(DigitalCopy.id).limit(MAX_COLLECTION)))
        views = visible_copies_by_id(session, ids)
    if not views:
        raise CopyNotAvailable(fund)
    body = build_collection(fund, [views[i] for i in ids if i in views], base=base_url(lib))
    return _json(body, request, public=True)


# -- Content Search 2.0 ----------------------------------------------------------------------

@router.get("/iiif/search/{bag_id}")
def search(request: Request, lib: Lib, bag_id: str) -> Response:
    q = request.query_params.get("q", "")
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        view = visible_copy(session, bag_id)  # dark or unknown: 404
        refused = refusal(view, visitor)
        if refused is not None:  # R6/R10, issue 15: no hits, no counts, no words
            raise refused
        terms = iiif_search.terms_of(q)
        pages = iiif_search.matching_pages(session, view.copy_id, terms)
    hits: list[tuple[int, str, str]] = []
    if pages:
        sizes = page_sizes(lib, view)
        altos = iiif_search.alto_paths(lib.files.list_paths(view, layout.TEXT_DIR),
                                       lib.files.list_paths(view, layout.MASTERS_DIR))
        for page in pages:
            path = altos.get(page)
            if path is None or page > len(sizes):
                continue
            alto_size, words = iiif_search.word_boxes(
                lib.files.read_all(lib.files.open_file(view, path)))
            hits.extend((page, word, xywh) for word, xywh in iiif_search.hits_on_page(
                words=words, alto_size=alto_size, canvas_size=sizes[page - 1], terms=terms))
            if len(hits) >= iiif_search.MAX_HITS:
                break
    body = iiif_search.annotation_page(view, base=base_url(lib), query=q, hits=hits)
    return _json(body, request, public=view.rights is Rights.OPEN,
                 context=iiif_search.SEARCH_CONTEXT)


# -- Authorization Flow 2.0 ------------------------------------------------------------------

_MESSAGE_ID = re.compile(r"^[\w.:-]{1,128}$")


def _site_origin(lib: Elibrary) -> str:
    parts = urlsplit(base_url(lib))
    return f"{parts.scheme}://{parts.netloc}"


def _script_page(script: str, *, title: str) -> HTMLResponse:
    """A tiny page whose only script is ``script`` (allowed by nonce); it may be framed by
    this site's pages only (the token service runs in the viewer's iframe)."""
    nonce = secrets.token_urlsafe(16)
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'</head><body><script nonce="{nonce}">{script}</script></body></html>')
    return HTMLResponse(html, headers={
        "Content-Security-Policy": (f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                    "frame-ancestors 'self'; base-uri 'none'"),
        "X-Frame-Options": "SAMEORIGIN",
        "Cache-Control": "no-store",
    })


def _js(value: object) -> str:
    """JSON safe inside a ``<script>`` element."""
    return (json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


@router.get("/iiif/auth/probe/{bag_id}")
def probe(request: Request, lib: Lib, bag_id: str) -> Response:
    """The probe service: may the bearer of this token (or cookie) read the copy?"""
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        view = visible_copy(session, bag_id)
    refused = refusal(view, visitor)
    body: dict[str, Any] = {"@context": iiif_presentation.AUTH_CONTEXT,
                            "type": "AuthProbeResult2",
                            "status": 200 if refused is None else refused.http_status}
    if refused is not None:
        body["heading"] = {"kk": ["Бұл дананы оқуға рұқсат жоқ"],
                           "ru": ["Нет доступа к этому экземпляру"],
                           "en": ["You may not read this copy"]}
        body["note"] = ({"kk": ["Тек оқу залдарында."], "ru": ["Только в читальных залах."],
                         "en": ["Only in the library's reading rooms."]}
                        if view.rights is Rights.READING_ROOM and visitor.reader is not None
                        else {"kk": ["Оқырман билетіңізбен кіріңіз."],
                              "ru": ["Войдите по читательскому билету."],
                              "en": ["Sign in with your reader ticket."]})
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/iiif/auth/access")
def access(request: Request, lib: Lib) -> Response:
    """The access service (``active`` profile): opened by the viewer in a new window; signs the
    reader in with the e-library's own sign-in page, then closes itself."""
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
    if visitor.reader is None or visitor.reader_token is None:
        back = "/iiif/auth/access?" + urlencode({"origin": request.query_params.get(
            "origin", "")[:256]})
        return RedirectResponse("/login?" + urlencode({"next": back}), status_code=303)
    return _script_page("window.close();", title="Signed in")


@router.get("/iiif/auth/token")
def token(request: Request, lib: Lib) -> Response:
    """The token service: in the viewer's iframe, posts an access token bound to the reader's
    session to the viewer (only to this site's own origin), or the reason there is none."""
    message_id = request.query_params.get("messageId", "")
    origin = request.query_params.get("origin", "")
    if not _MESSAGE_ID.fullmatch(message_id):
        raise InvalidParameter("messageId", "missing or malformed")
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
    msg: dict[str, Any] = {"@context": iiif_presentation.AUTH_CONTEXT, "messageId": message_id}
    if origin != _site_origin(lib):
        # a token goes only to the e-library's own pages (no other site may frame this)
        msg.update(type="AuthAccessTokenError2", profile="invalidOrigin")
    elif visitor.reader is None or visitor.reader_token is None:
        msg.update(type="AuthAccessTokenError2", profile="missingAspect",
                   heading={"en": ["Not signed in"], "ru": ["Вход не выполнен"],
                            "kk": ["Кірмедіңіз"]})
    else:
        value, seconds = lib.access_token(visitor.reader_token)
        msg.update(type="AuthAccessToken2", accessToken=value, expiresIn=seconds)
    target = origin if origin == _site_origin(lib) else _site_origin(lib)
    return _script_page(f"window.parent.postMessage({_js(msg)}, {_js(target)});",
                        title="Token")
