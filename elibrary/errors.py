"""Errors the e-library (электронды кітапхана · электронная библиотека) raises on purpose.

Every class derives from :class:`qor.errors.QorError`; the web layer answers with
``http_status`` and a page that names the reason without revealing what a visitor may not know
(a ``dark`` copy is answered exactly like a copy that does not exist).
"""

# ruff: noqa: N818 - domain names (NotSignedIn, AccountLocked…) are the API other packages use

from __future__ import annotations

from qor.errors import QorError


class ElibraryError(QorError):
    """Base of the e-library's errors."""

    exit_code = 1
    http_status = 400
    retryable = False


class InvalidParameter(ElibraryError):
    """A parameter of a request or command is malformed (path tricks, bad numbers, bad ids)."""

    http_status = 400

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"parameter {name!r} refused: {reason}")
        self.name = name


class NotSignedIn(ElibraryError):
    """The page or copy needs a signed-in reader (R6: `readers` copies are for readers)."""

    http_status = 401


class AccessDenied(ElibraryError):
    """Signed in, but this account or network may not reach this (R10: only what one needs)."""

    http_status = 403


class CopyNotAvailable(ElibraryError):
    """No copy by this id that may be shown (unknown, or ``dark``: both answer the same)."""

    http_status = 404

    def __init__(self, bag_id: str) -> None:
        super().__init__(f"no digital copy {bag_id!r} in the e-library")
        self.bag_id = bag_id


class CsrfRejected(ElibraryError):
    """A form arrived without the anti-forgery token of the visitor's browser."""

    http_status = 403

    def __init__(self) -> None:
        super().__init__("form refused: missing or wrong anti-forgery (CSRF) token")


class BadCredentials(ElibraryError):
    """Wrong reader ticket / user name or password (never says which)."""

    http_status = 401

    def __init__(self) -> None:
        super().__init__("wrong ticket number (or user name) or password")


class AccountLocked(ElibraryError):
    """Too many wrong passwords in a row: sign-in is refused until ``until``."""

    http_status = 423

    def __init__(self, account: str, until: str) -> None:
        super().__init__(
            f"account {account!r} is locked after repeated wrong passwords until {until}"
        )
        self.account = account
        self.until = until


class AccountError(ElibraryError):
    """An account cannot be created or changed (unknown reader ticket, weak password, taken)."""

    http_status = 409


class RangeNotSatisfiable(ElibraryError):
    """The requested byte range lies outside the file (HTTP 416)."""

    http_status = 416

    def __init__(self, header: str, size: int) -> None:
        super().__init__(f"range {header!r} not satisfiable for a file of {size} bytes")
        self.size = size


class IndexingFailed(ElibraryError):
    """A copy's OCR text could not be read into the search index."""

    exit_code = 4
    http_status = 500

    def __init__(self, bag_id: str, reason: str) -> None:
        super().__init__(f"search index of copy {bag_id}: {reason}")
        self.bag_id = bag_id


class ScanFolderRefused(ElibraryError):
    """A folder the console may not digitise: not under the configured scans root (``..``, an
    absolute path elsewhere, a symbolic link out), or not a folder (R10)."""

    http_status = 400

    def __init__(self, folder: str, reason: str, *, kind: str, entry: str | None = None) -> None:
        super().__init__(f"folder {folder!r} refused: {reason}")
        self.folder = folder
        self.reason = reason
        self.kind = kind
        """``empty``, ``root`` (the root is unreadable), ``outside``, ``symlink``, ``missing``
        or ``entry_symlink`` (``entry``, inside the folder, links out): for the page's words."""
        self.entry = entry
