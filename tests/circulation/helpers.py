"""Builders for circulation tests: items in a chosen R8 state, readers, service points."""

from __future__ import annotations

import email
from datetime import date
from email.message import Message
from typing import Any

from sqlalchemy.orm import Session

from catalog_sync import circulation, readers, register
from catalog_sync.models import Item, ItemStatus, Reader, ServicePoint, ServicePointKind
from tests.register.conftest import new_batch, uid


def make_item(
    session: Session,
    *,
    status: ItemStatus = ItemStatus.AVAILABLE,
    title: str = "Абай жолы",
    material: str = "book",
    record_id: int | None = None,
    condition: str | None = None,
    value_flags: tuple[str, ...] = (),
) -> Item:
    """A fresh item brought to ``status`` through the register's own R8 transitions."""
    record = (
        register.get_record(session, record_id)
        if record_id is not None
        else register.add_record(session, title=title, material_type=material, actor="acq")
    )
    item = register.receive_item(
        session,
        record=record,
        source="purchase",
        receipt_batch=new_batch(session),
        actor="acq",
        condition=condition,
        value_flags=value_flags,
    )
    inv = item.inventory_number
    if status is ItemStatus.RECEIVED:
        return item
    register.process_item(
        session, inv, barcode=uid("BC"), rfid=uid("RF"), location="Hall-1", actor="proc"
    )
    if status is ItemStatus.PROCESSED:
        return item
    register.set_status(session, inv, ItemStatus.AVAILABLE, actor="proc")
    if status is ItemStatus.AVAILABLE:
        return item
    if status is ItemStatus.IN_REPAIR:
        register.start_action(session, inv, kind="repair", actor="conservator")
        return item
    if status is ItemStatus.WRITTEN_OFF:
        register.write_off(
            session,
            act_number=uid("WO"),
            act_date=date(2025, 1, 10),
            reason="worn",
            inventory_numbers=[inv],
            actor="acq",
        )
        return item
    raise ValueError(status)


def make_reader(
    session: Session,
    *,
    category: str = "adult",
    email: str | None = None,
    name: str = "Айгерім Сәрсенова",
) -> Reader:
    """A fresh active reader."""
    return readers.add_reader(
        session, ticket_number=uid("R"), name=name, category=category, email=email, actor="desk"
    )


def make_point(session: Session, kind: ServicePointKind) -> ServicePoint:
    """A fresh service point of ``kind``."""
    return circulation.add_service_point(
        session,
        code=uid(kind.value[:6]),
        name=f"{kind.value.replace('_', ' ').title()} {uid()}",
        kind=kind,
        actor="admin",
    )


class Inbox:
    """Messages the test SMTP server accepted."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        """The messages sent to ``address``."""
        return [m for m in self.messages if m["To"] == address]


def body(msg: Message) -> str:
    """The decoded text of a single-part message."""
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(msg.get_content_charset() or "utf-8")
