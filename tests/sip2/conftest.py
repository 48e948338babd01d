"""SIP2 tests: a real server on a local port (in a thread, or ``qor sip2 serve`` as a process)
on SQLite and PostgreSQL, spoken to by independent SIP2 implementations from PyPI: the
``pysip2`` codec (strict typed models of every 2.00 message, checksums verified on decode) over a
plain socket, and the ``Sip2`` client library (its own encoder, sockets and TLS)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pysip2
import pytest
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync.circulation import CirculationPolicy
from catalog_sync.mail import SmtpMailer
from catalog_sync.models import ServicePointKind
from catalog_sync.sip2.accounts import PatronPin, Sip2Account, hash_password
from catalog_sync.sip2.server import Sip2Server
from catalog_sync.sip2.session import Sip2Config
from elibrary.accounts import ReaderPinCheck, SignInThrottle
from tests.circulation.conftest import smtp_server
from tests.circulation.helpers import Inbox, make_point
from tests.register.conftest import register_engine, session, sessions

__all__ = ["register_engine", "session", "sessions", "smtp_server"]

PASSWORD = "kiosk-secret-1"
INSTITUTION = "KZ-NL"
ENCODING = "utf-8"
_HASH = hash_password(PASSWORD)


def now_stamp() -> str:
    """A SIP2 transaction date for requests."""
    return datetime.now().strftime("%Y%m%d    %H%M%S")


@dataclass
class Kiosk:
    """A running server and the account a machine logs in with."""

    host: str
    port: int
    login: str
    service_point: str
    inbox: Inbox
    pin_login: str = "kiosk-pin"
    """An account at the same point whose readers must give their PIN (``required``)."""


@pytest.fixture
def kiosk(sessions: sessionmaker[Session], smtp_server: tuple[str, Inbox]) -> Iterator[Kiosk]:
    """A SIP2 server (plain TCP, in a thread) with two machine accounts at a lending desk (a
    card is enough at one, the other requires the reader's PIN), readers' PINs checked as
    ``qor sip2 serve`` checks them (5 wrong from one machine throttle it); notices go to the
    test SMTP server."""
    with sessions.begin() as s:
        point = make_point(s, ServicePointKind.LENDING_DESK).code
    config = Sip2Config(
        accounts={"kiosk-1": Sip2Account("kiosk-1", _HASH, point),
                  "kiosk-pin": Sip2Account("kiosk-pin", _HASH, point, PatronPin.REQUIRED)},
        institution=INSTITUTION,
        library_name="Ұлттық кітапхана",
        encoding=ENCODING,
        policy=CirculationPolicy(),
        mailer=SmtpMailer(smtp_server[0]),
        mail_sender="library@example.kz",
        patron_passwords=ReaderPinCheck(
            SignInThrottle(max_failed=5, cap=timedelta(minutes=15))),
    )
    server = Sip2Server(("127.0.0.1", 0), config=config, sessions=sessions, idle_timeout_s=30)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield Kiosk("127.0.0.1", server.port, "kiosk-1", point, smtp_server[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Wire:
    """A self-check machine speaking through the pysip2 codec over a plain socket."""

    def __init__(self, kiosk: Kiosk) -> None:
        self.sock = socket.create_connection((kiosk.host, kiosk.port), timeout=10)
        self.seq = 0
        self.buffer = b""

    def raw(self, frame: bytes) -> bytes:
        """Send bytes as they are; the next reply frame as received (b"" if closed)."""
        self.sock.sendall(frame)
        while b"\r" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                return b""
            self.buffer += chunk
        reply, self.buffer = self.buffer.split(b"\r", 1)
        return reply + b"\r"

    def send(self, message: pysip2.SIPMessage) -> pysip2.SIPMessage:
        """Encode with checksum and sequence number, send, decode the reply (checksum
        verified by pysip2) and check it echoes the sequence number."""
        self.seq = (self.seq + 1) % 10
        frame = pysip2.encode_message(
            message, sequence_number=self.seq, checksum=True, encoding=ENCODING
        )
        reply = self.raw(frame)
        assert reply, f"the server closed the connection after {frame!r}"
        decoded = pysip2.decode_message(reply, encoding=ENCODING)
        assert decoded.checksum is not None
        assert decoded.sequence_number == self.seq
        return decoded.message

    def login(self, kiosk: Kiosk, password: str = PASSWORD, *,
              login: str | None = None) -> pysip2.LoginResponse:
        reply = self.send(pysip2.LoginRequest(
            uid_algorithm="0", pwd_algorithm="0", login_user_id=login or kiosk.login,
            login_password=password, location_code=kiosk.service_point,
        ))
        assert isinstance(reply, pysip2.LoginResponse)
        return reply

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def wire(kiosk: Kiosk) -> Iterator[Wire]:
    """A machine connected (not yet logged in)."""
    w = Wire(kiosk)
    try:
        yield w
    finally:
        w.close()
