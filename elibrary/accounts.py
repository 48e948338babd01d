"""Reader and staff accounts, passwords (argon2id), lock-out and browser sessions.

* A reader account (оқырман · читатель) belongs to a reader of the register, found by reader
  ticket number (оқырман билеті · читательский билет); the ticket number is the sign-in name.
* Staff accounts are another table with a role (:class:`~elibrary.models.StaffRole`); a staff
  session can never act as a reader nor a reader's as staff (R10).
* Passwords are hashed with argon2id (``argon2-cffi``'s RFC 9106 low-memory profile); a hash
  made with weaker parameters is upgraded at the next sign-in.
* Failed sign-ins are throttled per account name **and** source address
  (:class:`SignInThrottle`): after ``max_failed`` wrong passwords from one source, that source
  waits, doubling each time up to ``lockout`` — even the right password is refused from there
  meanwhile — while the reader signs in from anywhere else: nobody can lock a reader out.
* Every refusal — unknown name, wrong password, throttled, disabled or blocked — is the same
  :class:`BadCredentials` after the same argon2 work, so neither the answer nor its time tells
  whether an account exists or is throttled (issue 15).
* A session is a random 256-bit token in the cookie; the database keeps only its SHA-256.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog_sync import audit
from catalog_sync.errors import ReaderNotFound
from catalog_sync.models import Reader, ReaderStatus, utcnow
from elibrary.errors import AccountError, BadCredentials
from elibrary.models import ReaderAccount, StaffAccount, StaffRole, WebSession

logger = logging.getLogger(__name__)

_HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
# Verified against when the name is unknown, so timing does not tell which names exist.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

READER = "reader"
STAFF = "staff"


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (refused if shorter than 10 or longer than 1024)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    return _HASHER.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def create_reader_account(
    session: Session, *, ticket_number: str, password: str, actor: str
) -> ReaderAccount:
    """Open an e-library account for the reader holding ``ticket_number`` (audited as
    ``reader.account_create``, without the password).

    Refused (:class:`AccountError`) for an unknown ticket or one that already has an account.
    """
    reader = session.scalar(select(Reader).where(Reader.ticket_number == ticket_number))
    if reader is None:
        raise AccountError(f"no reader with ticket {ticket_number!r} in the register")
    if session.scalar(select(ReaderAccount.id).where(ReaderAccount.reader_id == reader.id)):
        raise AccountError(f"reader {ticket_number} already has an e-library account")
    account = ReaderAccount(reader_id=reader.id, password_hash=hash_password(password),
                            failed_logins=0, disabled=False, created_at=utcnow())
    session.add(account)
    session.flush()
    audit.append(session, actor=actor, action="reader.account_create", entity="reader_account",
                 key=ticket_number, before=None, after={"ticket_number": ticket_number})
    return account


def create_staff_account(
    session: Session, *, username: str, role: StaffRole | str, password: str, actor: str
) -> StaffAccount:
    """Open a staff account with one role (refused if the name is taken or malformed); the
    hash-chained audit log records who opened it with which role (never the password)."""
    name = username.strip()
    if not name or len(name) > 64 or not name.replace("-", "").replace(".", "").isalnum():
        raise AccountError(f"staff user name {username!r}: 1–64 letters, digits, '.', '-'")
    try:
        role_value = StaffRole(role).value
    except ValueError:
        raise AccountError(
            f"unknown staff role {role!r} (one of {', '.join(r.value for r in StaffRole)})"
        ) from None
    if session.scalar(select(StaffAccount.id).where(StaffAccount.username == name)):
        raise AccountError(f"staff account {name!r} exists already")
    account = StaffAccount(username=name, role=role_value, password_hash=hash_password(password),
                           failed_logins=0, disabled=False, created_at=utcnow())
    session.add(account)
    session.flush()
    audit.append(session, actor=actor, action="staff.create", entity="staff_account", key=name,
                 before=None, after={"username": name, "role": role_value})
    return account


def set_password(
    session: Session, *, kind: str, name: str, password: str, actor: str
) -> None:
    """Set a new password and lift any lock-out (``kind`` is ``reader`` or ``staff``); the
    audit log records who reset whose password (never the password)."""
    account = _find(session, kind, name)
    if account is None:
        raise AccountError(f"no {kind} account {name!r}")
    account.password_hash = hash_password(password)
    account.failed_logins = 0
    account.locked_until = None
    session.flush()
    audit.append(session, actor=actor, action=f"{kind}.password_reset",
                 entity=f"{kind}_account", key=name, before=None, after={"reset": True})


def unlock(session: Session, *, kind: str, name: str) -> None:
    """Lift a lock-out before it ends (a librarian, after checking who asks)."""
    account = _find(session, kind, name)
    if account is None:
        raise AccountError(f"no {kind} account {name!r}")
    account.failed_logins = 0
    account.locked_until = None
    session.flush()


def _find(session: Session, kind: str, name: str) -> ReaderAccount | StaffAccount | None:
    if kind == READER:
        return session.scalar(
            select(ReaderAccount)
            .join(Reader, Reader.id == ReaderAccount.reader_id)
            .where(Reader.ticket_number == name)
        )
    if kind == STAFF:
        return session.scalar(select(StaffAccount).where(StaffAccount.username == name))
    raise AccountError(f"unknown account kind {kind!r}")


def authenticate(
    session: Session,
    *,
    kind: str,
    name: str,
    password: str,
    now: datetime | None = None,
) -> int:
    """The account id if ``password`` is right; else :class:`BadCredentials`, whatever the
    reason (throttling is the caller's, with :class:`SignInThrottle`). The caller commits
    either way (a failure is counted)."""
    when = now or utcnow()
    account = _find(session, kind, name[:64])
    if account is None or len(password) > MAX_PASSWORD_LENGTH:
        _verify(_DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
        raise BadCredentials()
    # Issue 15: a lock set by a librarian (or by an older Qor) is refused exactly like a wrong
    # password, after the same hashing work: the answer never tells that the account exists.
    locked = account.locked_until is not None and account.locked_until > when
    right = _verify(account.password_hash, password)
    if locked or account.disabled or not right:
        if not right:
            # Counted for the statistics only: a whole-account lock is what let anyone lock any
            # reader out; throttling is per account and source (SignInThrottle).
            account.failed_logins += 1
        session.flush()
        raise BadCredentials()
    if kind == READER:
        reader = session.get(Reader, account.reader_id)  # type: ignore[union-attr]
        if reader is None:
            raise ReaderNotFound(name)
        if reader.status != ReaderStatus.ACTIVE.value:
            # A blocked reader (R16 debts) keeps the account but cannot sign in meanwhile.
            raise BadCredentials()
    account.failed_logins = 0
    account.locked_until = None
    if _HASHER.check_needs_rehash(account.password_hash):
        account.password_hash = _HASHER.hash(password)
    session.flush()
    return account.id


def refuse_like_a_wrong_password(password: str) -> BadCredentials:
    """The refusal for a throttled attempt, after the argon2 work a real check costs (so the
    time does not tell it from a wrong password)."""
    _verify(_DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
    return BadCredentials()


def source_key(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> str:
    """The source a sign-in is throttled by: the IPv4 address, or the IPv6 /64 (one host
    picks freely inside its /64), or ``"unknown"``."""
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    v4 = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else address
    return str(v4)


class SignInThrottle:
    """Failed sign-ins per (kind, account name, source), with exponential backoff.

    After ``max_failed`` failures from one source for one name, that source is refused for
    ``base``, then twice as long after each further failure, up to ``cap``; a success from that
    source clears its count. Other sources are not affected, so a third party can slow down only
    its own guesses. Kept in the e-library process's memory (bounded to ``max_entries``; the
    oldest entries are dropped first) — a restart forgets it, which only gives an attacker a
    fresh ``max_failed`` guesses.
    """

    def __init__(self, *, max_failed: int, cap: timedelta, base: timedelta | None = None,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000) -> None:
        self.max_failed = max_failed
        self.cap = cap.total_seconds()
        self.base = min(self.cap, (base or timedelta(seconds=30)).total_seconds())
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str, str], tuple[int, float]] = OrderedDict()

    def blocked(self, kind: str, name: str, source: str) -> bool:
        """Whether this source must wait before trying this name again."""
        with self._lock:
            entry = self._entries.get((kind, name.casefold(), source))
        return entry is not None and entry[1] > self._clock()

    def failed(self, kind: str, name: str, source: str) -> None:
        key = (kind, name.casefold(), source)
        with self._lock:
            count = self._entries.pop(key, (0, 0.0))[0] + 1
            until = 0.0
            if count >= self.max_failed:
                wait = min(self.cap, self.base * 2 ** min(count - self.max_failed, 32))
                until = self._clock() + wait
            self._entries[key] = (count, until)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        if until:
            logger.warning("%s sign-in %r from %s throttled after %d failures", kind, name,
                           source, count)

    def succeeded(self, kind: str, name: str, source: str) -> None:
        with self._lock:
            self._entries.pop((kind, name.casefold(), source), None)


@dataclass(frozen=True)
class Principal:
    """Who a session belongs to: a reader (with the ticket) or a staff member (with a role)."""

    kind: str
    account_id: int
    name: str
    role: str | None = None

    @property
    def is_reader(self) -> bool:
        return self.kind == READER

    @property
    def is_staff(self) -> bool:
        return self.kind == STAFF


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start_session(
    session: Session, *, kind: str, account_id: int, lifetime: timedelta
) -> str:
    """A new session token (put it in the cookie); expired sessions are removed meanwhile."""
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_sha256=_token_digest(token), kind=kind, account_id=account_id,
                           created_at=now, expires_at=now + lifetime))
    session.flush()
    return token


def end_session(session: Session, token: str) -> None:
    """Sign out: the token stops working at once."""
    session.execute(delete(WebSession).where(WebSession.token_sha256 == _token_digest(token)))


def session_digest(token: str) -> str:
    """The SHA-256 (hex) a session is stored under (what IIIF access tokens are bound to)."""
    return _token_digest(token)


def session_principal(session: Session, token: str | None, *, kind: str) -> Principal | None:
    """Who holds ``token`` as a ``kind`` session, or None (unknown, expired, other kind)."""
    if not token or len(token) > 128:
        return None
    return principal_of_digest(session, _token_digest(token), kind=kind)


def principal_of_digest(session: Session, digest: str, *, kind: str) -> Principal | None:
    """Who holds the ``kind`` session stored under ``digest``, or None."""
    row = session.scalar(select(WebSession).where(WebSession.token_sha256 == digest))
    if row is None or row.kind != kind or row.expires_at <= utcnow():
        return None
    if kind == READER:
        found = session.execute(
            select(ReaderAccount, Reader)
            .join(Reader, Reader.id == ReaderAccount.reader_id)
            .where(ReaderAccount.id == row.account_id)
        ).first()
        if found is None or found[0].disabled or found[1].status != ReaderStatus.ACTIVE.value:
            return None
        return Principal(kind=READER, account_id=found[0].id, name=found[1].ticket_number)
    staff = session.get(StaffAccount, row.account_id)
    if staff is None or staff.disabled:
        return None
    return Principal(kind=STAFF, account_id=staff.id, name=staff.username, role=staff.role)


class ReaderPinCheck:
    """A reader's password (PIN) as a self-check machine gives it (SIP2 field AD): the same
    e-library password and argon2id check as the sign-in page, throttled per reader and machine
    address the same way (:class:`SignInThrottle`), so a kiosk cannot be used to guess PINs
    faster than the web page. Plugged into the SIP2 server as its
    :class:`~catalog_sync.sip2.session.PatronPasswordCheck`.

    Only the password is judged: a blocked reader's right password is right (the loan is then
    refused for the block, with its reason, by the circulation rules).
    """

    def __init__(self, throttle: SignInThrottle) -> None:
        self.throttle = throttle

    def __call__(self, session: Session, *, ticket: str, password: str,
                 source: str) -> bool | None:
        """``True`` right, ``False`` wrong or throttled, ``None`` when the reader has no
        e-library account (no password to check). The caller commits (a failure is counted)."""
        name = ticket[:64]
        if self.throttle.blocked(READER, name, source):
            refuse_like_a_wrong_password(password)
            return False
        account = _find(session, READER, name)
        if account is None or len(password) > MAX_PASSWORD_LENGTH:
            _verify(_DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
            return None if account is None else False
        if account.disabled or not _verify(account.password_hash, password):
            account.failed_logins += 1
            session.flush()
            self.throttle.failed(READER, name, source)
            return False
        self.throttle.succeeded(READER, name, source)
        if _HASHER.check_needs_rehash(account.password_hash):
            account.password_hash = _HASHER.hash(password)
            session.flush()
        return True
