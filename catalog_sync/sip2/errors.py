"""Errors of the SIP2 server. Under :class:`qor.errors.QorError`, like every Qor error."""

from __future__ import annotations

from qor.errors import QorError


class Sip2Error(QorError):
    """Base of the SIP2 server's errors."""

    exit_code = 1
    http_status = 400
    retryable = False


class Sip2FrameError(Sip2Error):
    """A message could not be read (wrong checksum, unknown or truncated): answered with 96."""

    retryable = True


class Sip2ConfigError(Sip2Error):
    """The SIP2 accounts or TLS settings are unusable (named in the message)."""

    exit_code = 3
    http_status = 500
