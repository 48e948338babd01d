"""Alerts reach a real SMTP server and a real HTTP endpoint (both started by the test)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from integrity.alert import Alert, AlertFailed, send_alert

ALERT = Alert(subject="[Qor] FIXITY FAILURE: 1 bag(s) damaged",
              body="bag KZ-1-v1: data/access/KZ-1.pdf: sha256 checksum … does not match",
              data={"bags": [{"bag_id": "KZ-1-v1"}]})


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, _Inbox]]:
    inbox = _Inbox()
    with socket.socket() as probe:  # a free port (the controller's own check cannot use 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        ctl.stop()


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_alert_is_mailed_and_posted(smtp_server: tuple[str, _Inbox],
                                    webhook_server: tuple[str, list[dict[str, Any]]]) -> None:
    smtp_url, inbox = smtp_server
    hook, received = webhook_server
    sent = send_alert(ALERT, smtp_url=smtp_url, email_to=["keeper@library.kz"],
                      email_from="qor@library.kz", webhook_url=hook)
    assert len(sent) == 2
    (mail_from, to, content), = inbox.messages
    msg = message_from_bytes(content)
    assert to == ["keeper@library.kz"] and mail_from == "qor@library.kz"
    assert msg["Subject"] == ALERT.subject
    assert "data/access/KZ-1.pdf" in msg.get_payload()
    (post,) = received
    assert post["subject"] == ALERT.subject and post["data"]["bags"][0]["bag_id"] == "KZ-1-v1"


def test_an_unreachable_channel_is_a_loud_failure_but_the_other_still_gets_it(
    webhook_server: tuple[str, list[dict[str, Any]]],
) -> None:
    hook, received = webhook_server
    with pytest.raises(AlertFailed, match=r"e-mail via 127\.0\.0\.1"):
        send_alert(ALERT, smtp_url="smtp://127.0.0.1:1", email_to=["k@l.kz"], webhook_url=hook,
                   timeout=3)
    assert len(received) == 1


def test_an_alert_with_nowhere_to_go_is_a_failure() -> None:
    with pytest.raises(AlertFailed, match="no alert channel is configured"):
        send_alert(ALERT)
    with pytest.raises(AlertFailed, match="must be set"):
        send_alert(ALERT, smtp_url="smtp://127.0.0.1:25")
