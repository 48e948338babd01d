"""Selection for digitisation (R13): which items to scan next.

Items not yet digitised (no digital copy of any version, not written off) are ranked by demand —
loans in the last N months, the holds queue of their title, reading-room use — and by value
flags (scientific, historical, artistic: the digital fund of R13). Items in poor or damaged
condition are down-weighted until a repair, rebinding or restoration has finished after the
condition was last recorded (read from the audit log) — a crumbling book is repaired first,
then scanned. The work list gives each item's ``qor digitise`` command line for the operator.
"""

from __future__ import annotations

import csv
import json
import shlex
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog_sync.errors import RegisterError
from catalog_sync.models import (
    ActionKind,
    AuditEntry,
    BibRecord,
    DigitalCopy,
    Hold,
    HoldStatus,
    Item,
    ItemStatus,
    Loan,
    ServicePoint,
    ServicePointKind,
)

POOR_CONDITIONS: Final = frozenset({"poor", "damaged"})
# R12: the actions that make a worn item fit to handle (and to scan) again.
_REPAIR_FINISHED: Final = frozenset(
    f"action.finish.{k.value}"
    for k in (ActionKind.REPAIR, ActionKind.REBINDING, ActionKind.RESTORATION)
)


@dataclass(frozen=True)
class SelectionWeights:
    """How much each signal counts. ``poor_condition_factor`` multiplies the score of an item in
    poor or damaged condition whose repair has not finished."""

    loan: float = 1.0
    hold: float = 2.0
    reading_room: float = 1.5
    value_flag: float = 5.0
    poor_condition_factor: float = 0.2
    months: int = 12


@dataclass(frozen=True)
class Candidate:
    """One item of the work list, with the reasons for its place."""

    inventory_number: str
    title: str
    score: float
    loans: int
    holds: int
    reading_room_uses: int
    value_flags: tuple[str, ...]
    condition: str | None
    awaiting_repair: bool

    @property
    def command(self) -> str:
        """The command an operator runs once the pages are scanned."""
        return f"qor digitise PAGES_DIR --inventory {shlex.quote(self.inventory_number)}"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            "inventory_number": self.inventory_number,
            "title": self.title,
            "score": round(self.score, 3),
            "loans": self.loans,
            "holds": self.holds,
            "reading_room_uses": self.reading_room_uses,
            "value_flags": list(self.value_flags),
            "condition": self.condition,
            "awaiting_repair": self.awaiting_repair,
            "command": self.command,
        }


def rank_for_digitisation(
    session: Session,
    *,
    today: date,
    top: int = 50,
    weights: SelectionWeights = SelectionWeights(),
) -> list[Candidate]:
    """The ``top`` items most worth digitising now, best first (R13).

    Score = ``loan`` × loans (outside the reading room) in the last ``months`` months
    + ``hold`` × readers waiting for (or with a copy kept of) the title
    + ``reading_room`` × reading-room uses in those months + ``value_flag`` × value flags;
    multiplied by ``poor_condition_factor`` while the item awaits repair (see
    :func:`awaiting_repair`). Digitised and written-off items are never candidates; ties go
    to the lower inventory number.
    """
    if top < 1:
        raise RegisterError(f"the work list needs at least one item (top={top})")
    since = datetime.combine(today - timedelta(days=30 * weights.months), time(), UTC)
    loans: dict[int, int] = defaultdict(int)
    room: dict[int, int] = defaultdict(int)
    for item_id, kind, n in session.execute(
        select(Loan.item_id, ServicePoint.kind, func.count(Loan.id))
        .join(ServicePoint, ServicePoint.id == Loan.service_point_id)
        .where(Loan.item_id.is_not(None), Loan.loaned_at >= since)
        .group_by(Loan.item_id, ServicePoint.kind)
    ):
        if item_id is None:
            continue
        if kind == ServicePointKind.READING_ROOM:
            room[item_id] += n
        else:
            loans[item_id] += n
    holds_by_record: dict[int, int] = {
        record_id: n
        for record_id, n in session.execute(
            select(Hold.record_id, func.count(Hold.id))
            .where(Hold.status.in_([HoldStatus.WAITING.value, HoldStatus.READY.value]))
            .group_by(Hold.record_id)
        )
    }
    digitised = select(DigitalCopy.item_id)
    valuable = Item.value_scientific | Item.value_historical | Item.value_artistic
    demanded = set(loans) | set(room)
    rows = session.execute(
        select(Item, BibRecord.title)
        .join(BibRecord, BibRecord.id == Item.record_id)
        .where(
            Item.status != ItemStatus.WRITTEN_OFF,
            ~Item.id.in_(digitised),
            valuable | Item.id.in_(demanded) | Item.record_id.in_(list(holds_by_record)),
        )
    ).all()
    poor = [item for item, _ in rows if item.condition in POOR_CONDITIONS]
    waiting_repair = awaiting_repair(session, poor)
    out = []
    for item, title in rows:
        flags = tuple(sorted(f.value for f in item.value_flags))
        n_loans, n_room = loans.get(item.id, 0), room.get(item.id, 0)
        n_holds = holds_by_record.get(item.record_id, 0)
        score = (
            weights.loan * n_loans
            + weights.hold * n_holds
            + weights.reading_room * n_room
            + weights.value_flag * len(flags)
        )
        awaiting = item.inventory_number in waiting_repair
        if awaiting:
            score *= weights.poor_condition_factor
        out.append(
            Candidate(
                item.inventory_number,
                title,
                score,
                n_loans,
                n_holds,
                n_room,
                flags,
                item.condition,
                awaiting,
            )
        )
    out.sort(key=lambda c: (-c.score, c.inventory_number))
    return out[:top]


def awaiting_repair(session: Session, items: Sequence[Item]) -> set[str]:
    """Inventory numbers of the poor or damaged ``items`` that still await repair: in repair
    now, or with no repair, rebinding or restoration finished since their condition was last
    recorded (both read from the register's audit log, whose order is the order of events)."""
    candidates = {i.inventory_number: i for i in items if i.condition in POOR_CONDITIONS}
    if not candidates:
        return set()
    condition_seq: dict[str, int] = {}
    repair_seq: dict[str, int] = {}
    keys = list(candidates)
    for start in range(0, len(keys), 500):
        for seq, action, key, before, after in session.execute(
            select(
                AuditEntry.seq,
                AuditEntry.action,
                AuditEntry.entity_key,
                AuditEntry.before,
                AuditEntry.after,
            ).where(
                AuditEntry.entity == "item", AuditEntry.entity_key.in_(keys[start : start + 500])
            )
        ):
            if action in _REPAIR_FINISHED:
                repair_seq[key] = max(seq, repair_seq.get(key, 0))
                continue
            now = _condition_of(after)
            if now is not None and now != _condition_of(before):
                condition_seq[key] = max(seq, condition_seq.get(key, 0))
    return {
        inv
        for inv, item in candidates.items()
        if item.status == ItemStatus.IN_REPAIR
        or repair_seq.get(inv, -1) < condition_seq.get(inv, 0)
    }


def _condition_of(snapshot: str | None) -> str | None:
    if not snapshot:
        return None
    try:
        value = json.loads(snapshot)
    except ValueError:
        return None
    found = value.get("condition") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


WORK_LIST_HEADER = [
    "rank",
    "inventory_number",
    "title",
    "score",
    "loans",
    "holds",
    "reading_room_uses",
    "value_flags",
    "condition",
    "awaiting_repair",
    "command",
]


def work_list_rows(candidates: Sequence[Candidate]) -> Iterator[list[object]]:
    """The work list as CSV rows, header first, best first."""
    yield list(WORK_LIST_HEADER)
    for rank, c in enumerate(candidates, 1):
        yield [
            rank,
            c.inventory_number,
            c.title,
            f"{c.score:.3f}",
            c.loans,
            c.holds,
            c.reading_room_uses,
            " ".join(c.value_flags),
            c.condition or "",
            c.awaiting_repair,
            c.command,
        ]


def write_work_list(candidates: list[Candidate], path: Path) -> None:
    """Write the work list as CSV (``.csv``) or JSON (anything else)."""
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            csv.writer(fh).writerows(work_list_rows(candidates))
    else:
        path.write_text(
            json.dumps([c.as_dict() for c in candidates], ensure_ascii=False, indent=2),
            encoding="utf-8",
        )
