"""A thin TCP (optionally TLS) server around :class:`~catalog_sync.sip2.session.Sip2Session`.

One thread per connection (a self-check machine keeps its connection open all day and speaks
one message at a time); each message is read up to its carriage return and answered before
the next is read. A frame longer than :data:`MAX_FRAME` or a connection silent for the idle
timeout is closed; every session's start, end and error is logged.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import ssl
from pathlib import Path
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from catalog_sync.sip2.errors import Sip2ConfigError
from catalog_sync.sip2.session import CalendarCache, Sip2Config, Sip2Session

logger = logging.getLogger(__name__)

MAX_FRAME: Final = 16 * 1024


def tls_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or newer) from a PEM certificate and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(certfile), keyfile=str(keyfile))
    except (OSError, ssl.SSLError) as e:
        raise Sip2ConfigError(f"TLS certificate {certfile} / key {keyfile}: {e}") from None
    return context


class _Handler(socketserver.BaseRequestHandler):
    server: Sip2Server

    def handle(self) -> None:
        peer = "%s:%s" % self.client_address[:2]  # noqa: UP031 - an address tuple
        conn: socket.socket = self.request
        # One small reply per message: send it now, not after the peer's delayed ACK.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(conn, ssl.SSLSocket):
            conn.settimeout(10)  # a handshake that stalls does not hold a thread for long
            try:
                conn.do_handshake()
            except (OSError, ssl.SSLError) as e:
                logger.warning("sip2 %s: TLS handshake failed: %s", peer, e)
                return
        conn.settimeout(self.server.idle_timeout_s)
        session = Sip2Session(
            self.server.config, self.server.sessions, peer=peer, calendar=self.server.calendar
        )
        logger.info("sip2 %s: connected", peer)
        buffer = b""
        try:
            while not session.finished():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    logger.info("sip2 %s: idle for %.0f s; closing", peer,
                                self.server.idle_timeout_s)
                    return
                if not chunk:
                    return
                buffer += chunk
                while b"\r" in buffer:
                    frame, buffer = buffer.split(b"\r", 1)
                    frame = frame.lstrip(b"\n")  # some machines end lines with CR LF
                    if not frame:
                        continue
                    reply = session.handle(frame)
                    if reply is None:
                        return
                    conn.sendall(reply)
                    if session.finished():
                        return
                if len(buffer) > MAX_FRAME:
                    logger.warning("sip2 %s: message longer than %d bytes; closing", peer,
                                   MAX_FRAME)
                    return
        except (OSError, ssl.SSLError) as e:
            logger.info("sip2 %s: connection lost: %s", peer, e)
        except Exception:
            logger.exception("sip2 %s: unexpected error; closing the connection", peer)
        finally:
            who = session.account.login if session.account else "not logged in"
            logger.info("sip2 %s: session of %s ended", peer, who)


class Sip2Server(socketserver.ThreadingTCPServer):
    """``serve_forever()`` answers machines until ``shutdown()``; TLS when a context is given."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        config: Sip2Config,
        sessions: sessionmaker[Session],
        tls: ssl.SSLContext | None = None,
        idle_timeout_s: float = 3600.0,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.tls = tls
        self.idle_timeout_s = idle_timeout_s
        self.calendar = CalendarCache()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        conn, addr = super().get_request()
        if self.tls is None:
            return conn, addr
        # The handshake happens in the connection's own thread, never blocking accept().
        return self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

    @property
    def port(self) -> int:
        """The port it listens on (useful when started on port 0)."""
        return int(self.server_address[1])
