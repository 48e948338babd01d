"""The readers' web service (FastAPI, pages rendered on the server with Jinja2).

Build it with :func:`create_app` from plain values; ``qor elibrary serve`` runs it under uvicorn.

Security in one place (each point has a test in ``tests/elibrary/test_security.py``):

* readers' and staff sessions are different cookies (``__Host-qor-reader`` for the whole site,
  ``qor-staff`` only under ``/staff``), tables and sign-in pages; neither acts as the other (R10);
* cookies are ``Secure``, ``HttpOnly`` and ``SameSite``; every POST form carries an anti-forgery
  token bound to a per-browser random cookie (HMAC with the server secret), and a foreign
  ``Origin`` is refused;
* every path and query parameter is checked by shape before use (bag ids, page numbers,
  ticket numbers, ``next`` redirects, languages);
* a copy's bytes are served only after its rights were checked; ``dark`` copies answer exactly
  like unknown ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog_sync.errors import DigitalCopyNotFound
from elibrary import accounts, i18n, iiif_image, oai
from elibrary.accounts import READER, STAFF, Principal
from elibrary.config import ElibraryConfig
from elibrary.delivery import CopyFiles, ReadLog, parse_range
from elibrary.errors import (
    AccessDenied,
    BadCredentials,
    CopyNotAvailable,
    CsrfRejected,
    ElibraryError,
    InvalidParameter,
    NotSignedIn,
    RangeNotSatisfiable,
)
from elibrary.library import (
    CopyView,
    check_bag_id,
    may_read,
    parse_rights,
    readable_rights,
    set_rights,
    visible_copies_by_id,
    visible_copy,
)
from elibrary.models import ReadRecord, Rights, StaffRole
from elibrary.textindex import indexed_pages, page_bodies, page_text, search, snippet
from storage import DecryptionFailed, Keyring, ObjectStore, StorageError

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
READER_COOKIE = "__Host-qor-reader"
STAFF_COOKIE = "qor-staff"
CSRF_COOKIE = "__Host-qor-csrf"
LANG_COOKIE = "qor-lang"
RESULTS_PER_PAGE = 10
MAX_OFFSET = 10_000
MAX_PAGE = 100_000
#: Ranges up to this size are decrypted whole before answering; larger ones are streamed.
WHOLE_BODY_BYTES = 4 * 1024 * 1024
STREAM_CHUNK_BYTES = 1024 * 1024
_TICKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9./-]{0,31}$")
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def rights_label(rights: Rights, gettext: Callable[[str], str]) -> str:
    """Readers' wording of a copy's rights."""
    return {
        Rights.OPEN: gettext("Open to everyone"),
        Rights.READERS: gettext("For signed-in readers"),
        Rights.READING_ROOM: gettext("Only in the library's reading rooms"),
        Rights.DARK: gettext("Not available"),
    }[rights]


@dataclass
class Visitor:
    """What the application knows about the browser making a request."""

    lang: str
    reader: Principal | None
    staff: Principal | None
    csrf_cookie: str
    new_csrf: bool
    in_reading_room: bool
    reader_token: str | None
    staff_token: str | None

    @property
    def place(self) -> str:
        return "reading-room" if self.in_reading_room else "remote"


class Elibrary:
    """The application's parts, shared by the routes."""

    def __init__(self, config: ElibraryConfig, *, sessions: sessionmaker[Session],
                 open_store: Callable[[str], ObjectStore], keyring: Keyring) -> None:
        self.config = config
        self.sessions = sessions
        self.files = CopyFiles(open_store=open_store, keyring=keyring)
        self.read_log = ReadLog(sessions)
        self._envs: dict[str, jinja2.Environment] = {}
        for code in i18n.CODES:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(HERE / "templates"),
                autoescape=True,
                extensions=["jinja2.ext.i18n"],
            )
            env.install_gettext_translations(i18n.translations(code), newstyle=True)  # type: ignore[attr-defined]
            self._envs[code] = env

    # -- per request --------------------------------------------------------------------------

    def client_ip(self, request: Request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The visitor's address: the peer, or (behind a trusted proxy) the last address in
        ``X-Forwarded-For`` that is not a trusted proxy."""
        peer = request.client.host if request.client else None
        try:
            ip = ipaddress.ip_address(peer) if peer else None
        except ValueError:
            return None
        forwarded = request.headers.get("x-forwarded-for")
        if ip is None or not forwarded or not self._trusted(ip):
            return ip
        for part in reversed([p.strip() for p in forwarded.split(",")][:20]):
            try:
                hop = ipaddress.ip_address(part)
            except ValueError:
                return None
            if not self._trusted(hop):
                return hop
        return ip

    def _trusted(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in net for net in self.config.trusted_proxies)

    def visitor(self, request: Request, session: Session) -> Visitor:
        lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or ""
        if lang not in i18n.CODES:
            lang = i18n.negotiate(request.headers.get("accept-language"))
        reader_token = request.cookies.get(READER_COOKIE)
        staff_token = request.cookies.get(STAFF_COOKIE)
        reader = accounts.session_principal(session, reader_token, kind=READER)
        staff = (accounts.session_principal(session, staff_token, kind=STAFF)
                 if request.url.path.startswith("/staff") else None)
        csrf = request.cookies.get(CSRF_COOKIE, "")
        new_csrf = not re.fullmatch(r"[A-Za-z0-9_-]{43}", csrf)
        if new_csrf:
            csrf = secrets.token_urlsafe(32)
        ip = self.client_ip(request)
        room = ip is not None and any(ip in net for net in self.config.reading_room_networks)
        return Visitor(lang=lang, reader=reader, staff=staff, csrf_cookie=csrf, new_csrf=new_csrf,
                       in_reading_room=room, reader_token=reader_token, staff_token=staff_token)

    def csrf_token(self, visitor: Visitor) -> str:
        return hmac.new(self.config.secret_key, b"csrf|" + visitor.csrf_cookie.encode(),
                        hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, visitor: Visitor, token: object) -> None:
        """Refuse a POST without this browser's anti-forgery token or from another origin."""
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            raise CsrfRejected()
        if visitor.new_csrf or not isinstance(token, str) or not hmac.compare_digest(
            token, self.csrf_token(visitor)
        ):
            raise CsrfRejected()

    def gettext(self, lang: str) -> Callable[[str], str]:
        return i18n.translations(lang).gettext

    def render(self, request: Request, visitor: Visitor, template: str, *,
               status: int = 200, **context: Any) -> HTMLResponse:
        env = self._envs[visitor.lang]
        html = env.get_template(template).render(
            lang=visitor.lang, languages=i18n.LANGUAGES, library_name=self.config.library_name,
            reader=visitor.reader, staff=visitor.staff, csrf_token=self.csrf_token(visitor),
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        self.finish(request, visitor, response)
        return response

    def finish(self, request: Request, visitor: Visitor, response: Response) -> None:
        """Cookies every answer may need: the anti-forgery cookie and the chosen language."""
        if visitor.new_csrf:
            response.set_cookie(CSRF_COOKIE, visitor.csrf_cookie, secure=True, httponly=True,
                                samesite="strict", path="/")
        if request.query_params.get("lang") in i18n.CODES:
            response.set_cookie(LANG_COOKIE, visitor.lang, secure=True, httponly=True,
                                samesite="lax", path="/", max_age=365 * 24 * 3600)


class SecurityHeaders:
    """Adds the security headers (and ``Cache-Control: no-store`` outside the static files)
    to every answer that does not set them. A plain ASGI middleware: the decorator form
    (``@app.middleware("http")``) costs about half the throughput of small answers such as
    IIIF tiles (measured by ``bench/elibrary_ranges.py``: 0.33× → 0.64× nginx)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                         for k, v in _SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = not str(scope["path"]).startswith(("/static", "/pdfjs"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                headers.extend(h for h in self._headers if h[0] not in have)
                if no_store and b"cache-control" not in have:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _safe_next(value: str | None) -> str:
    """A local path to go back to after signing in (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 32 for c in value) or len(value) > 512:
        return "/"
    return value


def _int_param(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidParameter(name, "not a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidParameter(name, f"must be between {low} and {high}")
    return value


def create_app(
    config: ElibraryConfig,
    *,
    sessions: sessionmaker[Session],
    open_store: Callable[[str], ObjectStore],
    keyring: Keyring,
    flush_seconds: float = 2.0,
) -> FastAPI:
    """The e-library as an ASGI application.

    ``sessions`` opens register sessions (schema at ``0003_elibrary`` or later);
    ``open_store(uri)`` opens the store a copy's ``store_uri`` names; ``keyring`` opens the
    copies' data keys. Reads are written to the read log every ``flush_seconds``.
    """
    lib = Elibrary(config, sessions=sessions, open_store=open_store, keyring=keyring)
    throttle = accounts.SignInThrottle(max_failed=config.max_failed_logins,
                                       cap=timedelta(minutes=config.lockout_minutes))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async def flusher() -> None:
            while True:
                await asyncio.sleep(flush_seconds)
                try:
                    await anyio.to_thread.run_sync(lib.read_log.flush)
                except Exception:
                    logger.exception("could not write the read log (kept for the next try)")

        task = asyncio.create_task(flusher())
        try:
            yield
        finally:
            task.cancel()
            await anyio.to_thread.run_sync(lib.read_log.flush)

    app = FastAPI(title="Qor e-library", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.elibrary = lib
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/pdfjs", StaticFiles(directory=config.pdfjs_dir, check_dir=False), name="pdfjs")
    app.include_router(iiif_image.make_router(lib, visitor=lib.visitor,
                                                reader_cookie=READER_COOKIE))

    app.add_middleware(SecurityHeaders)

    def error_page(request: Request, exc: ElibraryError) -> Response:
        with lib.sessions() as session:
            visitor = lib.visitor(request, session)
        _ = lib.gettext(visitor.lang)
        headings = {
            400: _("Request refused"), 401: _("Please sign in"), 403: _("Not allowed"),
            404: _("Not found"), 416: _("Range not satisfiable"), 423: _("Account locked"),
        }
        messages = {
            CopyNotAvailable: _("There is no such copy in the e-library."),
            NotSignedIn: _("This copy is for signed-in readers."),
            CsrfRejected: _("The form has expired or did not come from this site. "
                            "Please go back, reload the page and try again."),
        }
        message = next((m for t, m in messages.items() if isinstance(exc, t)), None)
        if message is None:
            message = (_("You may not open this page.") if exc.http_status == 403
                       else exc.message if exc.http_status in (400, 416)
                       else _("Something went wrong."))
        response = lib.render(
            request, visitor, "error.html", status=exc.http_status,
            heading=headings.get(exc.http_status, _("Error")), message=message,
            show_login=exc.http_status == 401, next=_safe_next(request.url.path),
        )
        if isinstance(exc, RangeNotSatisfiable):
            response.headers["Content-Range"] = f"bytes */{exc.size}"
        return response

    @app.exception_handler(ElibraryError)
    async def on_elibrary_error(request: Request, exc: ElibraryError) -> Response:
        return await anyio.to_thread.run_sync(error_page, request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        err = InvalidParameter("request", "malformed parameters")
        return await anyio.to_thread.run_sync(error_page, request, err)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            err: ElibraryError = CopyNotAvailable("?")
            err.message = "not found"
            return await anyio.to_thread.run_sync(error_page, request, err)
        return Response(status_code=exc.status_code)

    # -- search ------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        return search_page(request)

    @app.get("/search", response_class=HTMLResponse)
    def search_page(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        offset = _int_param(request, "offset", default=0, low=0, high=MAX_OFFSET)
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

    def refusal(view: CopyView, visitor: Visitor) -> ElibraryError | None:
        if may_read(view.rights, visitor.reader, in_reading_room=visitor.in_reading_room):
            return None
        if view.rights is Rights.READERS and visitor.reader is None:
            return NotSignedIn(f"copy {view.bag_id} is for signed-in readers")
        if view.rights is Rights.READING_ROOM and visitor.reader is None:
            return NotSignedIn(f"copy {view.bag_id} is for readers in the reading rooms")
        return AccessDenied(f"copy {view.bag_id} is only available in the reading rooms")

    @app.get("/copies/{bag_id}", response_class=HTMLResponse)
    def record(request: Request, bag_id: str) -> Response:
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
                              can_read=refused is None, pages=pages, refusal=message)

    @app.get("/copies/{bag_id}/read", response_class=HTMLResponse)
    def read(request: Request, bag_id: str) -> Response:
        page = _int_param(request, "page", default=1, low=1, high=MAX_PAGE)
        with lib.sessions() as session:
            visitor = lib.visitor(request, session)
            view = visible_copy(session, bag_id)
            refused = refusal(view, visitor)
            if refused is not None:
                raise refused
            return lib.render(request, visitor, "viewer.html", copy=view, page=page,
                              page_text=page_text(session, view.copy_id, page))

    @app.api_route("/copies/{bag_id}/file.pdf", methods=["GET", "HEAD"])
    def copy_file(request: Request, bag_id: str) -> Response:
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

    # -- readers' sign-in ----------------------------------------------------------------------

    def login_form(request: Request, visitor: Visitor, *, staff: bool, error: str | None = None,
                   name: str = "", status: int = 200, next_path: str = "/") -> Response:
        _ = lib.gettext(visitor.lang)
        return lib.render(
            request, visitor, "login.html", status=status, error=error, name=name,
            next=next_path,
            heading=_("Staff sign-in") if staff else _("Sign in with your reader ticket"),
            name_label=_("User name") if staff else _("Reader ticket number"),
            action="/staff/login" if staff else "/login",
        )

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        with lib.sessions() as session:
            visitor = lib.visitor(request, session)
        return login_form(request, visitor, staff=False,
                          next_path=_safe_next(request.query_params.get("next")))

    def do_login(request: Request, form: Any, *, kind: str) -> Response:
        staff = kind == STAFF
        name = str(form.get("name", ""))[:64].strip()
        password = str(form.get("password", ""))
        next_path = _safe_next(str(form.get("next", "/"))) if not staff else "/staff"
        source = accounts.source_key(lib.client_ip(request))
        with lib.sessions() as session:
            visitor = lib.visitor(request, session)
            lib.check_csrf(request, visitor, form.get("csrf_token"))
            _ = lib.gettext(visitor.lang)
            try:
                # Issue 15: throttled per account and source; a throttled attempt gets the
                # same answer, after the same hashing work, as a wrong password.
                if throttle.blocked(kind, name, source):
                    raise accounts.refuse_like_a_wrong_password(password)
                account_id = accounts.authenticate(session, kind=kind, name=name,
                                                   password=password)
                token = accounts.start_session(
                    session, kind=kind, account_id=account_id,
                    lifetime=timedelta(hours=config.session_hours))
                session.commit()
            except BadCredentials:
                session.commit()  # keep the failure count
                throttle.failed(kind, name, source)
                return login_form(request, visitor, staff=staff, name=name, status=401,
                                  error=_("Wrong ticket number (or user name) or password."),
                                  next_path=next_path)
            throttle.succeeded(kind, name, source)
        response = RedirectResponse(next_path, status_code=303)
        cookie = STAFF_COOKIE if staff else READER_COOKIE
        response.set_cookie(cookie, token, secure=True, httponly=True,
                            samesite="strict" if staff else "lax",
                            path="/staff" if staff else "/",
                            max_age=config.session_hours * 3600)
        # A new anti-forgery cookie after signing in (no fixation of the old one).
        response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(32), secure=True, httponly=True,
                            samesite="strict", path="/")
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        return await anyio.to_thread.run_sync(lambda: do_login(request, form, kind=READER))

    def do_logout(request: Request, form: Any, *, kind: str) -> Response:
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

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        form = await request.form()
        return await anyio.to_thread.run_sync(lambda: do_logout(request, form, kind=READER))

    @app.get("/readers/{ticket}/reads", response_class=HTMLResponse)
    def my_reads(request: Request, ticket: str) -> Response:
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
                              keep_days=config.read_log_days)

    # -- staff ---------------------------------------------------------------------------------

    @app.get("/staff/login", response_class=HTMLResponse)
    def staff_login_page(request: Request) -> Response:
        with lib.sessions() as session:
            visitor = lib.visitor(request, session)
        return login_form(request, visitor, staff=True)

    @app.post("/staff/login")
    async def staff_login(request: Request) -> Response:
        form = await request.form()
        return await anyio.to_thread.run_sync(lambda: do_login(request, form, kind=STAFF))

    @app.post("/staff/logout")
    async def staff_logout(request: Request) -> Response:
        form = await request.form()
        return await anyio.to_thread.run_sync(lambda: do_logout(request, form, kind=STAFF))

    def staff_page(request: Request, visitor: Visitor, session: Session,
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
        return lib.render(request, visitor, "staff.html", stats=stats, message=message,
                          rights=[r.value for r in Rights])

    def need_staff(visitor: Visitor, role: StaffRole | None = None) -> Principal:
        if visitor.staff is None:
            raise NotSignedIn("staff sign-in needed")
        if role is not None and visitor.staff.role != role.value:
            raise AccessDenied(f"this needs the {role.value} role")
        return visitor.staff

    @app.get("/staff", response_class=HTMLResponse)
    def staff_home(request: Request) -> Response:
        with lib.sessions() as session:
            visitor = lib.visitor(request, session)
            if visitor.staff is None:
                return RedirectResponse("/staff/login", status_code=303)
            return staff_page(request, visitor, session)

    def do_rights(request: Request, form: Any) -> Response:
        with lib.sessions() as session:
            visitor = lib.visitor(request, session)
            lib.check_csrf(request, visitor, form.get("csrf_token"))
            who = need_staff(visitor, StaffRole.LIBRARIAN)
            bag_id = check_bag_id(str(form.get("bag_id", "")).strip())
            rights = parse_rights(str(form.get("rights", "")))
            try:
                set_rights(session, bag_id=bag_id, rights=rights,
                           actor=f"staff:{who.name}", default_rights=config.default_rights)
                session.commit()
            except DigitalCopyNotFound:
                raise CopyNotAvailable(bag_id) from None
            _ = lib.gettext(visitor.lang)
            return staff_page(request, visitor, session,
                              message=_("Saved: %(bag)s is now %(rights)s.")
                              % {"bag": bag_id, "rights": rights.value})

    @app.post("/staff/rights")
    async def staff_rights(request: Request) -> Response:
        form = await request.form()
        return await anyio.to_thread.run_sync(lambda: do_rights(request, form))

    # -- OAI-PMH -------------------------------------------------------------------------------

    @app.api_route("/oai", methods=["GET", "POST"])
    async def oai_endpoint(request: Request) -> Response:
        if request.method == "POST":
            form = await request.form()
            pairs = [(k, str(v)) for k, v in form.multi_items()]
        else:
            pairs = list(request.query_params.multi_items())

        def answer() -> bytes:
            with lib.sessions() as session:
                return oai.respond(session, pairs, config=oai.OaiConfig.from_config(config))

        body = await anyio.to_thread.run_sync(answer)
        return Response(body, media_type="text/xml; charset=utf-8")

    return app

