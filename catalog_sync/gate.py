"""The security gate (R10: тексеру-өткізу тәртібі · пропускной режим).

Check-out disarms an item's security tag and check-in arms it (:mod:`catalog_sync.circulation`).
A gate reader calls :func:`gate_check` with the tag it read (RFID tag id or barcode) whenever an
item passes: the item is cleared only if its tag is disarmed *and* it is on an open loan to a
reader; anything else raises the alarm. Every read is logged (``gate_events``, append-only), so
alarms can be reviewed later with :func:`gate_events`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync.models import GateEvent, Item, ItemCirculation, Loan, utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateVerdict:
    """Whether an item may leave, and why (``reason`` is what the guard reads)."""

    tag: str
    cleared: bool
    reason: str
    inventory_number: str | None
    title: str | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            "tag": self.tag,
            "cleared": self.cleared,
            "reason": self.reason,
            "inventory_number": self.inventory_number,
            "title": self.title,
        }


def gate_check(
    session: Session, tag: str, *, gate: str = "main", at: datetime | None = None
) -> GateVerdict:
    """R10: decide whether the item with this tag may leave through ``gate``; log the read.

    Cleared: the tag is disarmed and the item is on an open loan. Alarm: the tag is armed (the
    item was not checked out), or it is disarmed but the item is not on loan (a tag disarmed by
    hand), or the tag belongs to no item of the fund.
    """
    now = at or utcnow()
    item = session.scalar(select(Item).where(Item.rfid == tag))
    if item is None:
        item = session.scalar(select(Item).where(Item.barcode == tag))
    if item is None:
        verdict = GateVerdict(tag, False, f"tag {tag!r} belongs to no item of the fund", None, None)
    else:
        circ = session.get(ItemCirculation, item.id)
        armed = True if circ is None else circ.armed
        on_loan = session.scalar(
            select(Loan.id).where(Loan.item_id == item.id, Loan.returned_at.is_(None))
        )
        if armed:
            reason = f"item {item.inventory_number} was not checked out (tag armed)"
            verdict = GateVerdict(tag, False, reason, item.inventory_number, item.record.title)
        elif on_loan is None:
            reason = f"item {item.inventory_number} has a disarmed tag but is not on loan"
            verdict = GateVerdict(tag, False, reason, item.inventory_number, item.record.title)
        else:
            verdict = GateVerdict(
                tag,
                True,
                f"item {item.inventory_number} is on loan",
                item.inventory_number,
                item.record.title,
            )
    session.add(
        GateEvent(
            tag=tag[:64],
            item_id=None if item is None else item.id,
            gate=gate[:64],
            at=now,
            cleared=verdict.cleared,
            reason=verdict.reason,
        )
    )
    session.flush()
    if not verdict.cleared:
        logger.warning("gate %s ALARM: %s", gate, verdict.reason)
    return verdict


def gate_events(
    session: Session, *, alarms_only: bool = False, since: datetime | None = None
) -> list[GateEvent]:
    """Gate reads, newest first (only the alarms if asked)."""
    stmt = select(GateEvent).order_by(GateEvent.id.desc())
    if alarms_only:
        stmt = stmt.where(GateEvent.cleared.is_(False))
    if since is not None:
        stmt = stmt.where(GateEvent.at >= since)
    return list(session.scalars(stmt))
