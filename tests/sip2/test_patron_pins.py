"""Readers' PINs at the self-check machine (SIP2 field AD, answered in CQ), spoken through the
independent ``pysip2`` codec: a wrong PIN lends nothing and learns nothing of the reader; a
machine whose account requires PINs refuses a card alone; guessing is throttled per machine
(5 wrong PINs from one address, as the e-library's sign-in page)."""

from __future__ import annotations

import pysip2
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync.models import AuditEntry, Item, ItemStatus, Loan
from catalog_sync.sip2.accounts import parse_accounts
from catalog_sync.sip2.errors import Sip2ConfigError
from elibrary.accounts import create_reader_account
from elibrary.models import ReaderAccount
from tests.circulation.helpers import make_item, make_reader
from tests.sip2.conftest import _HASH, INSTITUTION, Kiosk, Wire, now_stamp

PIN = "reader-pin-2026"


def reader_with_pin(sessions: sessionmaker[Session], *, pin: str | None = PIN,
                    email: str = "reader@example.kz") -> tuple[str, str]:
    """A reader (with an e-library password ``pin`` unless None) and an available item's
    barcode."""
    with sessions.begin() as s:
        reader = make_reader(s, email=email)
        item = make_item(s)
        s.flush()
        if pin is not None:
            create_reader_account(s, ticket_number=reader.ticket_number, password=pin,
                                  actor="desk")
        return reader.ticket_number, str(item.barcode)


def check_out(wire: Wire, ticket: str, item: str, pin: str | None) -> pysip2.CheckoutResponse:
    reply = wire.send(pysip2.CheckoutRequest(
        sc_renewal_policy="N", no_block="N", transaction_date=now_stamp(),
        nb_due_date=now_stamp(), institution_id=INSTITUTION, patron_identifier=ticket,
        item_identifier=item, terminal_password="", patron_password=pin,
    ))
    assert isinstance(reply, pysip2.CheckoutResponse)
    return reply


def patron_info(wire: Wire, ticket: str, pin: str | None) -> pysip2.PatronInformationResponse:
    reply = wire.send(pysip2.PatronInformationRequest(
        language="000", transaction_date=now_stamp(), summary="  Y       ",
        institution_id=INSTITUTION, patron_identifier=ticket, terminal_password="",
        patron_password=pin))
    assert isinstance(reply, pysip2.PatronInformationResponse)
    return reply


def patron_status(wire: Wire, ticket: str, pin: str) -> pysip2.PatronStatusResponse:
    reply = wire.send(pysip2.PatronStatusRequest(
        language="000", transaction_date=now_stamp(), institution_id=INSTITUTION,
        patron_identifier=ticket, terminal_password="", patron_password=pin))
    assert isinstance(reply, pysip2.PatronStatusResponse)
    return reply


def loans_of(sessions: sessionmaker[Session], barcode: str) -> tuple[int, str]:
    """(open loans of the item, its status)."""
    with sessions() as s:
        item = s.scalar(select(Item).where(Item.barcode == barcode))
        assert item is not None
        open_loans = s.scalar(select(func.count()).select_from(Loan).where(
            Loan.item_id == item.id, Loan.returned_at.is_(None)))
        return int(open_loans or 0), str(item.status)


def loan_entries(sessions: sessionmaker[Session]) -> int:
    """Loan rows in the hash-chained audit log."""
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntry)
                            .where(AuditEntry.entity == "loan")) or 0)


def test_a_wrong_pin_lends_nothing_and_tells_nothing(
    kiosk: Kiosk, wire: Wire, sessions: sessionmaker[Session]
) -> None:
    ticket, barcode = reader_with_pin(sessions)
    wire.login(kiosk)  # a card is enough here, but a PIN given is checked
    logged = loan_entries(sessions)
    refused = check_out(wire, ticket, barcode, "not-my-pin-0")
    assert (refused.ok, refused.desensitize) == ("0", "N")
    assert refused.screen_message == ("wrong PIN",)
    assert loans_of(sessions, barcode) == (0, ItemStatus.AVAILABLE.value)
    assert loan_entries(sessions) == logged
    # The machine learns the card is valid, not whose it is, what they hold or how to reach them.
    status = patron_status(wire, ticket, "not-my-pin-0")
    assert (status.valid_patron, status.valid_patron_password) == ("Y", "N")
    assert status.personal_name == ""
    info = patron_info(wire, ticket, "not-my-pin-0")
    assert (info.valid_patron, info.valid_patron_password) == ("Y", "N")
    assert (info.personal_name, info.email_address) == ("", None)
    assert info.charged_items_count == "0000" and not info.charged_items
    # The right PIN: the same operations go through, and CQ says so.
    lent = check_out(wire, ticket, barcode, PIN)
    assert (lent.ok, lent.desensitize) == ("1", "Y")  # R10: the tag is disarmed
    assert loans_of(sessions, barcode) == (1, ItemStatus.ON_LOAN.value)
    assert loan_entries(sessions) == logged + 1
    info = patron_info(wire, ticket, PIN)
    assert (info.valid_patron_password, info.personal_name) == ("Y", "Айгерім Сәрсенова")
    assert info.charged_items_count == "0001" and info.email_address == "reader@example.kz"


def test_a_machine_that_requires_pins_refuses_a_card_alone(
    kiosk: Kiosk, wire: Wire, sessions: sessionmaker[Session]
) -> None:
    ticket, barcode = reader_with_pin(sessions)
    no_account, other_barcode = reader_with_pin(sessions, pin=None)
    wire.login(kiosk, login=kiosk.pin_login)
    card_only = check_out(wire, ticket, barcode, None)
    assert card_only.ok == "0"
    assert card_only.screen_message == ("this machine needs your PIN: please enter it",)
    info = patron_info(wire, ticket, None)
    assert (info.valid_patron_password, info.personal_name) == ("N", "")
    # A reader with no e-library account has no PIN to check: refused whatever is typed.
    assert check_out(wire, no_account, other_barcode, "anything-at-all").ok == "0"
    assert loans_of(sessions, barcode)[0] == loans_of(sessions, other_barcode)[0] == 0
    assert check_out(wire, ticket, barcode, PIN).ok == "1"
    assert loans_of(sessions, barcode) == (1, ItemStatus.ON_LOAN.value)


def test_pin_guessing_is_throttled_per_machine(
    kiosk: Kiosk, sessions: sessionmaker[Session]
) -> None:
    ticket, barcode = reader_with_pin(sessions)
    guesser = Wire(kiosk)
    try:
        guesser.login(kiosk)
        for n in range(5):
            assert check_out(guesser, ticket, barcode, f"guess-{n:06d}").ok == "0"
        # Past the limit even the right PIN is refused from this machine meanwhile ...
        throttled = check_out(guesser, ticket, barcode, PIN)
        assert throttled.ok == "0" and throttled.screen_message == ("wrong PIN",)
        assert loans_of(sessions, barcode)[0] == 0
    finally:
        guesser.close()
    with sessions() as s:
        failed = s.scalars(select(ReaderAccount.failed_logins)).all()
    assert 5 in failed  # each wrong guess counted on the reader's account


def test_patron_pin_setting_is_checked() -> None:
    good = parse_accounts({"k": {"password_hash": _HASH, "service_point": "LEND",
                                 "patron_pin": "required"}})
    assert good["k"].requires_patron_pin
    assert not parse_accounts({"k": {"password_hash": _HASH,
                                     "service_point": "LEND"}})["k"].requires_patron_pin
    with pytest.raises(Sip2ConfigError) as refused:
        parse_accounts({"k": {"password_hash": _HASH, "service_point": "LEND",
                              "patron_pin": "always"}})
    assert "if-given" in str(refused.value) and "required" in str(refused.value)
