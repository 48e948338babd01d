"""Readers (оқырман · читатель), identified by their reader ticket number (оқырман билеті ·
читательский билет).

Personal data is kept to what circulation needs: a name, a category (loan periods depend on it),
one e-mail address and one phone number for reminders (R16). Every change is appended to the
audit log in the caller's transaction; none of these functions commits.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import String, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog_sync import audit
from catalog_sync.errors import ReaderExists, ReaderNotFound, RegisterError
from catalog_sync.models import Reader, ReaderCategory, ReaderStatus, utcnow

_TICKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9./-]{0,31}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_ticket_number(ticket_number: str) -> str:
    """A reader ticket number: 1–32 letters, digits, ``.``, ``/`` or ``-``, starting with a letter
    or digit."""
    if not isinstance(ticket_number, str) or not _TICKET_RE.match(ticket_number):
        raise RegisterError(
            f"reader ticket number {ticket_number!r} is not valid: use 1–32 letters, digits, "
            "'.', '/' or '-'"
        )
    return ticket_number


def _email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    email = email.strip()
    if len(email) > 254 or not _EMAIL_RE.match(email):
        raise RegisterError(f"e-mail address {email!r} is not valid")
    return email


def reader_snapshot(reader: Reader) -> dict[str, Any]:
    """The audited view of a reader."""
    return {
        "ticket_number": reader.ticket_number,
        "name": reader.name,
        "category": reader.category,
        "email": reader.email,
        "phone": reader.phone,
        "status": reader.status,
        "blocked_reason": reader.blocked_reason,
        "registered_on": reader.registered_on,
    }


def add_reader(
    session: Session,
    *,
    ticket_number: str,
    name: str,
    category: ReaderCategory | str,
    actor: str,
    email: str | None = None,
    phone: str | None = None,
    registered_on: date | None = None,
) -> Reader:
    """Register a reader. Refused if the ticket number is taken (:class:`ReaderExists`)."""
    ticket = validate_ticket_number(ticket_number)
    if not name or not name.strip():
        raise RegisterError(f"reader {ticket}: the name is empty")
    try:
        cat = ReaderCategory(category)
    except ValueError:
        known = ", ".join(c.value for c in ReaderCategory)
        raise RegisterError(
            f"reader {ticket}: unknown category {category!r} (one of {known})"
        ) from None
    if session.scalar(select(Reader.id).where(Reader.ticket_number == ticket)) is not None:
        raise ReaderExists(ticket)
    now = utcnow()
    reader = Reader(
        ticket_number=ticket,
        name=name.strip(),
        category=cat.value,
        email=_email(email),
        phone=(phone or "").strip()[:32] or None,
        status=ReaderStatus.ACTIVE.value,
        registered_on=registered_on or now.date(),
        created_at=now,
        updated_at=now,
    )
    session.add(reader)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as e:  # a concurrent registration took the number first
        raise ReaderExists(ticket) from e
    audit.append(
        session,
        actor=actor,
        action="reader.add",
        entity="reader",
        key=ticket,
        before=None,
        after=reader_snapshot(reader),
        at=now,
    )
    return reader


# Built once: composing the statement per call costs more than the lookup itself.
_BY_TICKET: Final = select(Reader).where(Reader.ticket_number == bindparam("ticket", type_=String))
_BY_TICKET_FOR_UPDATE: Final = _BY_TICKET.with_for_update()


def get_reader(session: Session, ticket_number: str, *, for_update: bool = False) -> Reader:
    """The reader with this ticket number, or :class:`ReaderNotFound`."""
    reader = session.scalar(_BY_TICKET_FOR_UPDATE if for_update else _BY_TICKET,
                            {"ticket": ticket_number})
    if reader is None:
        raise ReaderNotFound(ticket_number)
    return reader


def list_readers(session: Session, *, status: ReaderStatus | str | None = None) -> list[Reader]:
    """Readers in ticket-number order, optionally only those with ``status``."""
    stmt = select(Reader).order_by(Reader.ticket_number)
    if status is not None:
        stmt = stmt.where(Reader.status == ReaderStatus(status).value)
    return list(session.scalars(stmt))


def _change(session: Session, reader: Reader, *, actor: str, action: str, **values: Any) -> Reader:
    before = reader_snapshot(reader)
    for name, value in values.items():
        setattr(reader, name, value)
    reader.updated_at = utcnow()
    session.flush()
    audit.append(
        session,
        actor=actor,
        action=action,
        entity="reader",
        key=reader.ticket_number,
        before=before,
        after=reader_snapshot(reader),
        at=reader.updated_at,
    )
    return reader


def update_reader(
    session: Session,
    ticket_number: str,
    *,
    actor: str,
    name: str | None = None,
    category: ReaderCategory | str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> Reader:
    """Change a reader's name, category or contacts (``None`` leaves a field as it is)."""
    reader = get_reader(session, ticket_number, for_update=True)
    values: dict[str, Any] = {}
    if name is not None:
        if not name.strip():
            raise RegisterError(f"reader {ticket_number}: the name is empty")
        values["name"] = name.strip()
    if category is not None:
        values["category"] = ReaderCategory(category).value
    if email is not None:
        values["email"] = _email(email)
    if phone is not None:
        values["phone"] = phone.strip()[:32] or None
    return _change(session, reader, actor=actor, action="reader.update", **values)


def block_reader(
    session: Session,
    ticket_number: str,
    *,
    reason: str,
    actor: str,
    at: datetime | None = None,
) -> Reader:
    """Block a reader (R16), with the reason a librarian reads at the desk."""
    if not reason.strip():
        raise RegisterError(f"reader {ticket_number}: a block needs a reason")
    reader = get_reader(session, ticket_number, for_update=True)
    return _change(
        session,
        reader,
        actor=actor,
        action="reader.block",
        status=ReaderStatus.BLOCKED.value,
        blocked_reason=reason.strip(),
        blocked_at=at or utcnow(),
    )


def unblock_reader(session: Session, ticket_number: str, *, actor: str, note: str = "") -> Reader:
    """Lift a reader's block."""
    reader = get_reader(session, ticket_number, for_update=True)
    action = "reader.unblock" if not note else f"reader.unblock: {note}"[:64]
    return _change(
        session,
        reader,
        actor=actor,
        action=action,
        status=ReaderStatus.ACTIVE.value,
        blocked_reason=None,
        blocked_at=None,
    )
