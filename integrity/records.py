"""Fixity in the fund register: which bags to audit, their history, and the PREMIS events.

Every bag audited gets a PREMIS *fixity check* event on its digital copy (outcome ``success``
or ``failure``), and every repair attempt a *repair* event (outcome ``success`` when the file
was restored from the replica, ``failure`` when no good copy was found). The event detail is a
JSON object whose ``summary`` is the sentence a preservation officer reads; the rest (run,
mode, counts, failures with bag, file and algorithm) is what :mod:`integrity.report` draws on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync import register
from catalog_sync.models import CopyEvent, DigitalCopy, Item
from integrity.audit import AuditTarget, BagAudit

__all__ = [
    "FIXITY_EVENT",
    "REPAIR_EVENT",
    "FixityEvent",
    "audit_targets",
    "fixity_events",
    "last_deep_checks",
    "record_bag_audit",
]

FIXITY_EVENT = "fixity check"
"""PREMIS event type (LoC vocabulary) of an audit's result for one bag."""
REPAIR_EVENT = "repair"
"""Qor's event type for restoring a damaged file from a replica (one event per file)."""


def audit_targets(session: Session, *, bag_ids: Sequence[str] | None = None) -> list[AuditTarget]:
    """Every registered digital copy (or those of ``bag_ids``), oldest first."""
    stmt = (select(DigitalCopy.bag_id, DigitalCopy.store_uri, Item.inventory_number)
            .join(Item, DigitalCopy.item_id == Item.id).order_by(DigitalCopy.id))
    if bag_ids is not None:
        stmt = stmt.where(DigitalCopy.bag_id.in_(list(bag_ids)))
    return [AuditTarget(b, u, i) for b, u, i in session.execute(stmt)]


def _summary(result: BagAudit) -> str:
    what = f"{result.mode} fixity check of {result.files_checked} object(s), " \
           f"{result.bytes_checked} bytes, in {result.store_uri}"
    if not result.failures:
        return f"{what}: intact"
    first = result.failures[0]
    head = f"{what}: {len(result.failures)} failure(s), e.g. {first.message}"
    if result.remaining:
        return f"{head}; {len(result.remaining)} remain after repair"
    return f"{head}; all repaired from the replica"


def record_bag_audit(session: Session, result: BagAudit, *, run_id: str, actor: str) -> None:
    """Append the PREMIS events of one bag's audit to its digital copy."""
    detail: dict[str, Any] = {
        "summary": _summary(result), "run_id": run_id, "mode": result.mode,
        "store_uri": result.store_uri, "files_checked": result.files_checked,
        "bytes_checked": result.bytes_checked,
        "failures": [f.as_dict() for f in result.failures],
        "remaining": [f.as_dict() for f in result.remaining],
        "repaired": [r.path for r in result.repairs if r.restored],
    }
    register.record_copy_event(
        session, copy=result.bag_id, event_type=FIXITY_EVENT,
        outcome="success" if not result.failures else "failure",
        detail=json.dumps(detail, ensure_ascii=False, sort_keys=True), agent=actor,
        at=result.finished_at,
    )
    for r in result.repairs:
        register.record_copy_event(
            session, copy=result.bag_id, event_type=REPAIR_EVENT,
            outcome="success" if r.restored else "failure",
            detail=json.dumps({"summary": f"{r.path}: {r.detail}", "run_id": run_id,
                               **r.as_dict()}, ensure_ascii=False, sort_keys=True),
            agent=actor, at=result.finished_at,
        )


@dataclass(frozen=True)
class FixityEvent:
    """A fixity or repair event as read back from the register, its detail decoded."""

    bag_id: str
    inventory_number: str
    event_type: str
    outcome: str
    at: datetime
    agent: str
    detail: dict[str, Any]

    @property
    def summary(self) -> str:
        return str(self.detail.get("summary", ""))

    def as_dict(self) -> dict[str, Any]:
        return {"bag_id": self.bag_id, "inventory_number": self.inventory_number,
                "event_type": self.event_type, "outcome": self.outcome,
                "at": self.at.isoformat(), "agent": self.agent, "detail": self.detail}


def _decode(detail: str) -> dict[str, Any]:
    try:
        value = json.loads(detail)
    except json.JSONDecodeError:
        return {"summary": detail}  # an event written by hand or another tool
    return value if isinstance(value, dict) else {"summary": detail}


def fixity_events(session: Session, *, since: datetime | None = None) -> list[FixityEvent]:
    """Every fixity check and repair event (since ``since``), oldest first."""
    stmt = (select(CopyEvent, DigitalCopy.bag_id, Item.inventory_number)
            .join(DigitalCopy, CopyEvent.copy_id == DigitalCopy.id)
            .join(Item, DigitalCopy.item_id == Item.id)
            .where(CopyEvent.event_type.in_([FIXITY_EVENT, REPAIR_EVENT]))
            .order_by(CopyEvent.at, CopyEvent.id))
    if since is not None:
        stmt = stmt.where(CopyEvent.at >= since)
    return [FixityEvent(bag, inv, ev.event_type, ev.outcome, ev.at, ev.agent, _decode(ev.detail))
            for ev, bag, inv in session.execute(stmt)]


def last_deep_checks(session: Session) -> dict[str, datetime]:
    """Each registered bag → its last deep fixity check, or when it was stored if never."""
    last = {bag: created for bag, created in
            session.execute(select(DigitalCopy.bag_id, DigitalCopy.created_at))}
    for ev in fixity_events(session):
        if ev.event_type == FIXITY_EVENT and ev.detail.get("mode") == "deep":
            last[ev.bag_id] = max(last.get(ev.bag_id, ev.at), ev.at)
    return last
