"""Raising the alarm when a fixity audit fails: e-mail over SMTP and/or a webhook POST.

A failed audit must reach a person, not only a log: the flow and ``qor fixity audit`` call
:func:`send_alert` with every configured channel. Each channel is tried even if another fails;
what failed is raised together afterwards (:class:`AlertFailed`), so the caller can say so loudly.
"""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from qor.errors import QorError

logger = logging.getLogger(__name__)

__all__ = ["Alert", "AlertFailed", "send_alert"]


class AlertFailed(QorError):  # noqa: N818 - reads as what happened
    """No alert could be delivered on at least one configured channel (the reasons are listed)."""

    exit_code = 3
    http_status = 502
    retryable = True


@dataclass(frozen=True)
class Alert:
    """What to say: a one-line subject, a plain-text body, and data for machine readers."""

    subject: str
    body: str
    data: Mapping[str, Any]


def _send_email(alert: Alert, smtp_url: str, to: Sequence[str], sender: str | None,
                timeout: float) -> None:
    url = urlsplit(smtp_url)
    if url.scheme not in ("smtp", "smtps", "smtp+starttls") or not url.hostname:
        raise ValueError("alert SMTP URL must be smtp://, smtps:// or "
                         f"smtp+starttls://host[:port], not {url.scheme}://…")
    msg = EmailMessage()
    msg["Subject"] = alert.subject
    msg["From"] = sender or f"qor@{socket.getfqdn()}"
    msg["To"] = ", ".join(to)
    msg.set_content(alert.body)
    port = url.port or (465 if url.scheme == "smtps" else 25)
    smtp: smtplib.SMTP
    if url.scheme == "smtps":
        smtp = smtplib.SMTP_SSL(url.hostname, port, timeout=timeout,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(url.hostname, port, timeout=timeout)
    with smtp:
        if url.scheme == "smtp+starttls":
            smtp.starttls(context=ssl.create_default_context())
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(msg)


def _post_webhook(alert: Alert, webhook_url: str, timeout: float) -> None:
    if urlsplit(webhook_url).scheme not in ("http", "https"):
        raise ValueError("alert webhook URL must be http:// or https://")
    body = json.dumps({"text": f"{alert.subject}\n\n{alert.body}", "subject": alert.subject,
                       "body": alert.body, "data": alert.data},
                      ensure_ascii=False, default=str).encode("utf-8")
    req = urllib.request.Request(webhook_url, data=body, method="POST",  # noqa: S310 - checked
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked
        if resp.status >= 300:
            raise OSError(f"webhook answered HTTP {resp.status}")


def send_alert(
    alert: Alert,
    *,
    smtp_url: str | None = None,
    email_to: Sequence[str] = (),
    email_from: str | None = None,
    webhook_url: str | None = None,
    timeout: float = 15.0,
) -> list[str]:
    """Deliver ``alert`` on every configured channel; return the channels that got it.

    Raises :class:`AlertFailed` naming each channel that failed (after trying all of them), or
    if no channel is configured at all — an alert with nowhere to go is itself a failure.
    """
    delivered: list[str] = []
    errors: list[str] = []
    if smtp_url and email_to:
        try:
            _send_email(alert, smtp_url, email_to, email_from, timeout)
            delivered.append(f"e-mail to {', '.join(email_to)}")
        except (OSError, smtplib.SMTPException, ValueError) as e:
            errors.append(f"e-mail via {urlsplit(smtp_url).hostname}: {e}")
    elif smtp_url or email_to:
        errors.append("e-mail: both alert_smtp_url and alert_email_to must be set")
    if webhook_url:
        try:
            _post_webhook(alert, webhook_url, timeout)
            delivered.append(f"webhook {urlsplit(webhook_url).hostname}")
        except (OSError, urllib.error.URLError, ValueError) as e:
            errors.append(f"webhook {urlsplit(webhook_url).hostname}: {e}")
    if not delivered and not errors:
        errors.append("no alert channel is configured (set QOR_ALERT_SMTP_URL and "
                      "QOR_ALERT_EMAIL_TO, or QOR_ALERT_WEBHOOK_URL)")
    for d in delivered:
        logger.warning("fixity alert sent: %s (%s)", alert.subject, d)
    if errors:
        raise AlertFailed(f"alert {alert.subject!r} not delivered: " + "; ".join(errors))
    return delivered
