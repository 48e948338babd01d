"""Readers: registration, lookup, block with a reason (R16)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from catalog_sync import readers
from catalog_sync.errors import ReaderExists, ReaderNotFound, RegisterError
from catalog_sync.models import ReaderStatus
from tests.register.conftest import uid


def test_a_registered_reader_is_found_by_ticket(session: Session) -> None:
    ticket = uid("R")
    readers.add_reader(
        session,
        ticket_number=ticket,
        name="Айгерім Сәрсенова",
        category="student",
        email="aigerim@example.kz",
        registered_on=date(2025, 2, 3),
        actor="desk",
    )
    session.commit()
    found = readers.get_reader(session, ticket)
    assert (found.name, found.category, found.status) == ("Айгерім Сәрсенова", "student", "active")
    assert found.registered_on == date(2025, 2, 3)


def test_a_ticket_number_is_given_once(session: Session) -> None:
    ticket = uid("R")
    readers.add_reader(session, ticket_number=ticket, name="A", category="adult", actor="desk")
    with pytest.raises(ReaderExists, match=ticket):
        readers.add_reader(session, ticket_number=ticket, name="B", category="adult", actor="desk")


@pytest.mark.parametrize(
    ("ticket", "category", "email"),
    [
        ("", "adult", None),
        ("has space", "adult", None),
        ("R1", "alien", None),
        ("R1", "adult", "no-at"),
    ],
)
def test_bad_reader_input_is_refused(
    session: Session, ticket: str, category: str, email: str | None
) -> None:
    with pytest.raises(RegisterError):
        readers.add_reader(
            session, ticket_number=ticket, name="A", category=category, email=email, actor="desk"
        )


def test_block_keeps_the_reason_and_unblock_clears_it(session: Session) -> None:
    ticket = uid("R")
    readers.add_reader(session, ticket_number=ticket, name="A", category="adult", actor="desk")
    r = readers.block_reader(session, ticket, reason="lost the ticket", actor="desk")
    assert r.status == ReaderStatus.BLOCKED and r.blocked_reason == "lost the ticket"
    r = readers.unblock_reader(session, ticket, actor="desk")
    assert r.status == ReaderStatus.ACTIVE and r.blocked_reason is None


def test_unknown_ticket_is_named(session: Session) -> None:
    with pytest.raises(ReaderNotFound, match="NOPE-1"):
        readers.get_reader(session, "NOPE-1")
