"""SIP2 accounts: one per self-check machine or gate, each at a service point (R15).

A machine logs in (message 93) with its account's name and password; everything it does is
then done at the account's service point and recorded as ``sip2:<login>`` (the actor of its
loans and returns). Passwords are kept only as argon2id hashes (``qor sip2 hash-password``).

Each account also says how the machine's readers prove who they are (``patron_pin``, a
:class:`PatronPin`):

* ``if-given`` (the default): a reader's password (PIN, field AD) is checked whenever the machine
  sends one, and a wrong one refuses the operation; a card alone is enough where the machine
  sends none (a staffed desk's scanner, a card-only kiosk);
* ``required``: every patron, check-out, renewal and payment message must carry the reader's
  right password; without one it is refused.

The reader's password is the e-library account's (:mod:`elibrary.accounts`, checked and throttled
there); a reader without an e-library account has none, so a ``required`` machine refuses them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

from catalog_sync.sip2.errors import Sip2ConfigError

_HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
# Checked against for an unknown login, so the answer's timing does not tell which exist.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 10


class PatronPin(StrEnum):
    """Whether a machine's readers must give their password (PIN, SIP2 field AD)."""

    IF_GIVEN = "if-given"
    REQUIRED = "required"


@dataclass(frozen=True)
class Sip2Account:
    """A machine's account: its login, its password's argon2id hash, its service point code,
    and whether its readers must give their password (``patron_pin``, see the module)."""

    login: str
    password_hash: str
    service_point: str
    patron_pin: PatronPin = PatronPin.IF_GIVEN

    @property
    def requires_patron_pin(self) -> bool:
        """Whether every patron operation must carry the reader's right password."""
        return self.patron_pin is PatronPin.REQUIRED

    @property
    def actor(self) -> str:
        """The name its operations are recorded under."""
        return f"sip2:{self.login}"


def hash_password(password: str) -> str:
    """An argon2id hash of a machine's password (at least 10 characters)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Sip2ConfigError(f"a SIP2 password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def parse_accounts(raw: Mapping[str, Mapping[str, str]]) -> dict[str, Sip2Account]:
    """The accounts of setting ``QOR_SIP2_ACCOUNTS``; a malformed one is named and refused."""
    accounts: dict[str, Sip2Account] = {}
    for login, entry in raw.items():
        where = f"QOR_SIP2_ACCOUNTS[{login!r}]"
        if not login.strip() or "|" in login:
            raise Sip2ConfigError(f"{where}: a login must be non-empty and carry no '|'")
        unknown = set(entry) - {"password_hash", "service_point", "patron_pin"}
        if unknown:
            raise Sip2ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        password_hash = entry.get("password_hash", "")
        point = entry.get("service_point", "").strip()
        if not password_hash.startswith("$argon2"):
            raise Sip2ConfigError(
                f"{where}: password_hash must be an argon2 hash from `qor sip2 hash-password`"
            )
        if not point:
            raise Sip2ConfigError(f"{where}: service_point is missing (R15: every loan has one)")
        rule = entry.get("patron_pin", PatronPin.IF_GIVEN.value).strip()
        if rule not in {p.value for p in PatronPin}:
            raise Sip2ConfigError(
                f"{where}: patron_pin {rule!r} is not one of "
                f"{', '.join(p.value for p in PatronPin)}"
            )
        accounts[login] = Sip2Account(login=login, password_hash=password_hash,
                                      service_point=point, patron_pin=PatronPin(rule))
    return accounts


def authenticate(
    accounts: Mapping[str, Sip2Account], login: str, password: str
) -> Sip2Account | None:
    """The account when ``login`` and ``password`` match, else ``None`` (same cost either way)."""
    account = accounts.get(login)
    ok: bool
    try:
        ok = _HASHER.verify(account.password_hash if account else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    return account if ok and account is not None else None
