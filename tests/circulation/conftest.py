"""Circulation tests run on SQLite and PostgreSQL, like the register's (same fixtures), and
send reminders to a real SMTP server (aiosmtpd) started here."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from tests.circulation.helpers import Inbox
from tests.register.conftest import register_engine, session, sessions

__all__ = ["register_engine", "session", "sessions", "smtp_server"]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    """A real SMTP server (aiosmtpd) on a free local port, and what it received."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        controller.stop()
