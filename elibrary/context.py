"""What every router of the e-library shares: the application's parts and the visitor.

:class:`Elibrary` holds the configuration, the register's session factory, the stores, the
keyring, the read log and the sign-in throttle; a router gets it through the :data:`Lib`
dependency (``lib: Lib``) and asks it for the :class:`Visitor` of each request. The routers
(``elibrary/routers/``) hold no state of their own.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from elibrary import accounts, i18n
from elibrary.accounts import READER, STAFF, Principal
from elibrary.config import ElibraryConfig
from elibrary.delivery import CopyFiles, ReadLog
from elibrary.errors import (
    AccessDenied,
    CsrfRejected,
    ElibraryError,
    InvalidParameter,
    NotSignedIn,
)
from elibrary.library import CopyView, may_read
from elibrary.models import Rights, StaffRole
from storage import Keyring, ObjectStore

HERE = Path(__file__).resolve().parent
READER_COOKIE = "__Host-qor-reader"
STAFF_COOKIE = "qor-staff"
CSRF_COOKIE = "__Host-qor-csrf"
LANG_COOKIE = "qor-lang"


def rights_label(rights: Rights, gettext: Callable[[str], str]) -> str:
    """Readers' wording of a copy's rights."""
    return {
        Rights.OPEN: gettext("Open to everyone"),
        Rights.READERS: gettext("For signed-in readers"),
        Rights.READING_ROOM: gettext("Only in the library's reading rooms"),
        Rights.DARK: gettext("Not available"),
    }[rights]


#: How long an IIIF access token lives (seconds); viewers ask the token service again.
ACCESS_TOKEN_SECONDS = 600
_ACCESS_TOKEN = re.compile(r"^[0-9]{10,12}\.[0-9a-f]{64}\.[0-9a-f]{64}$")


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
        self.open_store = open_store
        self.keyring = keyring
        self.files = CopyFiles(open_store=open_store, keyring=keyring)
        self.read_log = ReadLog(sessions)
        #: (width, height) of each page's reading image, by bag id (the manifests' canvases).
        self.page_sizes: OrderedDict[str, tuple[tuple[int, int], ...]] = OrderedDict()
        self.throttle = accounts.SignInThrottle(max_failed=config.max_failed_logins,
                                                cap=timedelta(minutes=config.lockout_minutes))
        self._envs: dict[str, jinja2.Environment] = {}
        for code in i18n.CODES:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(HERE / "templates"),
                autoescape=True,
                extensions=["jinja2.ext.i18n"],
            )
            env.install_gettext_translations(i18n.translations(code), newstyle=True)  # type: ignore[attr-defined]
            env.filters["html_lang"] = i18n.html_lang
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
        if reader is None:  # IIIF Authorization Flow: the token the token service gave
            reader = self.bearer_reader(request, session)
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

    # -- IIIF access tokens (Authorization Flow 2.0) ---------------------------------------------

    def access_token(self, reader_token: str, *, now: float | None = None) -> tuple[str, int]:
        """A short-lived access token bound to the reader's session (HMAC with the server
        secret over expiry and the session's digest): ``(token, seconds it lives)``. Signing out
        ends the session and so every token of it."""
        expires = int((time.time() if now is None else now) + ACCESS_TOKEN_SECONDS)
        digest = accounts.session_digest(reader_token)
        mac = hmac.new(self.config.secret_key, f"iiif-token|{expires}|{digest}".encode(),
                       hashlib.sha256).hexdigest()
        return f"{expires}.{digest}.{mac}", ACCESS_TOKEN_SECONDS

    def bearer_reader(self, request: Request, session: Session) -> Principal | None:
        """The reader an ``Authorization: Bearer`` access token stands for, or None
        (malformed, forged, expired, or its session ended)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not _ACCESS_TOKEN.fullmatch(token.strip()):
            return None
        expires, digest, mac = token.strip().split(".")
        good = hmac.new(self.config.secret_key, f"iiif-token|{expires}|{digest}".encode(),
                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, good) or int(expires) <= time.time():
            return None
        return accounts.principal_of_digest(session, digest, kind=READER)

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


def safe_next(value: str | None) -> str:
    """A local path to go back to after signing in (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 32 for c in value) or len(value) > 512:
        return "/"
    return value


def int_param(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidParameter(name, "not a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidParameter(name, f"must be between {low} and {high}")
    return value


def refusal(view: CopyView, visitor: Visitor) -> ElibraryError | None:
    """Why this visitor may not read this copy (R6, R10), or ``None`` when they may."""
    if may_read(view.rights, visitor.reader, in_reading_room=visitor.in_reading_room):
        return None
    if view.rights is Rights.READERS and visitor.reader is None:
        return NotSignedIn(f"copy {view.bag_id} is for signed-in readers")
    if view.rights is Rights.READING_ROOM and visitor.reader is None:
        return NotSignedIn(f"copy {view.bag_id} is for readers in the reading rooms")
    return AccessDenied(f"copy {view.bag_id} is only available in the reading rooms")


def need_staff(visitor: Visitor, role: StaffRole | None = None) -> Principal:
    """The signed-in staff member, refusing anyone else (or anyone without ``role``) (R10)."""
    if visitor.staff is None:
        raise NotSignedIn("staff sign-in needed")
    if role is not None and visitor.staff.role != role.value:
        raise AccessDenied(f"this needs the {role.value} role")
    return visitor.staff


async def get_elibrary(request: Request) -> Elibrary:
    """The application's :class:`Elibrary` (set by :func:`elibrary.web.create_app`).

    ``async`` so FastAPI resolves it on the event loop, without a hop to the thread pool."""
    lib: Elibrary = request.app.state.elibrary
    return lib


Lib = Annotated[Elibrary, Depends(get_elibrary)]
"""Dependency: ``def route(request: Request, lib: Lib)`` receives the application's parts."""
