"""Sending e-mail through SMTP: the one place Qor talks to a mail server.

URLs: ``smtp://host:port`` (plain, as a local relay or a test server), ``smtp+starttls://user:pass@
host:587`` and ``smtps://user:pass@host:465``. Failures become :class:`MailUnavailable`
(retryable): the debt flow records a reminder only after the server accepted it, so the next
run sends what this one could not.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from catalog_sync.errors import MailUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpMailer:
    """Sends messages to the SMTP server at ``url``."""

    url: str
    timeout_s: float = 30.0

    def send(self, message: EmailMessage) -> None:
        """Hand ``message`` to the server, or raise :class:`MailUnavailable`."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname:
            raise MailUnavailable(
                f"SMTP URL {self._safe()!r} must be smtp://, smtp+starttls:// or smtps://host:port"
            )
        port = parts.port or {"smtp": 25, "smtp+starttls": 587, "smtps": 465}[parts.scheme]
        try:
            client: smtplib.SMTP
            if parts.scheme == "smtps":
                client = smtplib.SMTP_SSL(
                    parts.hostname,
                    port,
                    timeout=self.timeout_s,
                    context=ssl.create_default_context(),
                )
            else:
                client = smtplib.SMTP(parts.hostname, port, timeout=self.timeout_s)
            with client:
                if parts.scheme == "smtp+starttls":
                    client.starttls(context=ssl.create_default_context())
                if parts.username:
                    client.login(unquote(parts.username), unquote(parts.password or ""))
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as e:
            raise MailUnavailable(
                f"SMTP server {self._safe()} did not take the message to {message['To']}: {e}"
            ) from e
        logger.info("mail to %s sent via %s", message["To"], self._safe())

    def _safe(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"
