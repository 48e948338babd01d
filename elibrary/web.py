"""The readers' web service (FastAPI, pages rendered on the server with Jinja2).

Build it with :func:`create_app` from plain values; ``qor elibrary serve`` runs it under uvicorn.
The routes live in ``elibrary/routers/`` (one module per area); this module builds the app:
middleware, error pages, the read-log flusher, the static mounts, and the routers.

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
import logging
import mimetypes
from collections.abc import AsyncIterator, Callable

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from elibrary import iiif_image
from elibrary.config import ElibraryConfig
from elibrary.context import HERE, READER_COOKIE, Elibrary, safe_next
from elibrary.errors import (
    CopyNotAvailable,
    CsrfRejected,
    ElibraryError,
    InvalidParameter,
    NotSignedIn,
    RangeNotSatisfiable,
)
from elibrary.routers import (
    accounts,
    console_admin,
    console_books,
    console_catalogue,
    console_desk,
    console_fixity,
    console_jobs,
    console_readers,
    console_reports,
    console_stocktake,
    iiif,
    oai,
    reading,
    staff,
)
from qor.errors import QorError
from storage import Keyring, ObjectStore

logger = logging.getLogger(__name__)

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


class PrecompressedStaticFiles(StaticFiles):
    """Static files of a versioned package (Mirador from npm): ``name.gz`` beside ``name`` is
    sent with ``Content-Encoding: gzip`` to browsers that accept it; the files never change
    under their versioned folder, so browsers may keep them for a year."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        accept = dict(scope.get("headers", [])).get(b"accept-encoding", b"")
        if b"gzip" in accept:
            full, stat = await anyio.to_thread.run_sync(self.lookup_path, path + ".gz")
            if full and stat is not None and stat.st_size > 0:
                media = mimetypes.guess_type(path)[0] or "application/octet-stream"
                return FileResponse(full, stat_result=stat, media_type=media, headers={
                    "Content-Encoding": "gzip", "Vary": "Accept-Encoding",
                    "Cache-Control": "public, max-age=31536000, immutable"})
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


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
        no_store = not str(scope["path"]).startswith(("/static", "/pdfjs", "/mirador"))

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
    # Mirador's bundle from npm (infra/web-assets), served from here, never from a CDN.
    app.mount("/mirador", PrecompressedStaticFiles(directory=config.mirador_dir,
                                                   check_dir=False), name="mirador")

    app.include_router(iiif_image.make_router(lib, visitor=lib.visitor,
                                                reader_cookie=READER_COOKIE))
    app.add_middleware(SecurityHeaders)

    def error_page(request: Request, exc: QorError) -> Response:
        with lib.sessions() as session:
            visitor = lib.visitor(request, session)
        _ = lib.gettext(visitor.lang)
        headings = {
            400: _("Request refused"), 401: _("Please sign in"), 403: _("Not allowed"),
            404: _("Not found"), 409: _("Refused"), 416: _("Range not satisfiable"),
            423: _("Account locked"),
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
                       else exc.message if exc.http_status in (400, 416) or (
                           not isinstance(exc, ElibraryError) and exc.http_status < 500)
                       else _("Something went wrong."))
        response = lib.render(
            request, visitor, "error.html", status=exc.http_status,
            heading=headings.get(exc.http_status, _("Error")), message=message,
            show_login=exc.http_status == 401, next=safe_next(request.url.path),
        )
        if isinstance(exc, RangeNotSatisfiable):
            response.headers["Content-Range"] = f"bytes */{exc.size}"
        return response

    @app.exception_handler(ElibraryError)
    async def on_elibrary_error(request: Request, exc: ElibraryError) -> Response:
        return await anyio.to_thread.run_sync(error_page, request, exc)

    @app.exception_handler(QorError)
    async def on_domain_error(request: Request, exc: QorError) -> Response:
        # The register's refusals (unknown item, closed stocktake, ...) reached from a staff
        # console page; anywhere else a domain error stays a server error (a damaged copy is
        # never explained to a reader).
        if not request.url.path.startswith("/staff"):
            raise exc
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

    for router in (reading.router, iiif.router, accounts.router, staff.router, oai.router,
                   console_desk.router, console_stocktake.router, console_catalogue.router,
                   console_readers.router, console_books.router, console_reports.router,
                   console_fixity.router, console_jobs.router,
                   console_admin.router):
        app.include_router(router)
    return app
