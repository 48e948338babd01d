"""The register's audit log: every change (who, when, what, before, after), hash-chained.

Each entry's hash is SHA-256 over its own fields and the previous entry's hash, so altering an
entry breaks its hash, removing one breaks the sequence and the next entry's link, and removing
the tail is caught against the head row (and, stronger, against an anchor the operator kept
elsewhere: :func:`log_head`). The database refuses UPDATE and DELETE on the log (triggers), and
the application has no function that edits it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.orm import Session

from catalog_sync.models import AuditEntry, AuditHead, Loan, utcnow

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class LogAnchor:
    """The last entry's sequence number and hash: keep it outside the database to detect a
    rewritten tail."""

    seq: int
    hash: str


@dataclass(frozen=True)
class LogProblem:
    """One thing wrong with the audit log.

    ``kind`` is ``altered`` (an entry's content no longer matches its hash), ``broken-link``
    (an entry does not chain to the one before), ``missing`` (sequence numbers skipped: entries
    removed), or ``head-mismatch`` (the log's end differs from the head row or the anchor);
    :func:`verify_loans` adds ``loan-altered`` (a loan row differs from its last logged state),
    ``loan-unlogged`` (a loan row the log never saw) and ``loan-removed`` (a logged loan whose
    row is gone).
    """

    seq: int
    kind: str
    detail: str


@dataclass(frozen=True)
class Change:
    """One change to be logged."""

    actor: str
    action: str
    entity: str
    key: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    at: datetime | None = None


def _dump(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))


def entry_hash(
    *,
    seq: int,
    at: str,
    actor: str,
    action: str,
    entity: str,
    entity_key: str,
    before: str | None,
    after: str | None,
    prev_hash: str,
) -> str:
    """The SHA-256 (hex) that chains an entry to ``prev_hash``."""
    canonical = json.dumps(
        [seq, at, actor, action, entity, entity_key, before, after, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    key: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    at: datetime | None = None,
) -> int:
    """Append one entry; returns its sequence number. Part of the caller's transaction."""
    return append_many(session, [Change(actor, action, entity, key, before, after, at)])


def append_many(session: Session, changes: Iterable[Change]) -> int:
    """Append entries in order under one lock of the head row; returns the last sequence number."""
    rows = list(changes)
    # The head row lock serialises appenders on PostgreSQL (SQLite: BEGIN IMMEDIATE does it).
    seq, prev = session.execute(
        select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
    ).one()
    if not rows:
        return int(seq)
    values = []
    for change in rows:
        if not change.actor.strip():
            raise ValueError(f"audit entry {change.action} on {change.key}: actor is empty")
        seq += 1
        at = (change.at or utcnow()).isoformat(timespec="microseconds")
        before, after = _dump(change.before), _dump(change.after)
        digest = entry_hash(
            seq=seq,
            at=at,
            actor=change.actor,
            action=change.action,
            entity=change.entity,
            entity_key=change.key,
            before=before,
            after=after,
            prev_hash=prev,
        )
        values.append(
            {
                "seq": seq,
                "at": at,
                "actor": change.actor,
                "action": change.action,
                "entity": change.entity,
                "entity_key": change.key,
                "before": before,
                "after": after,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    session.execute(insert(AuditEntry), values)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_seq=seq, last_hash=prev))
    return int(seq)


def log_head(session: Session) -> LogAnchor:
    """The current end of the log, to be kept outside the database as an anchor."""
    seq, digest = session.execute(
        select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1)
    ).one()
    return LogAnchor(int(seq), str(digest))


def history(session: Session, entity: str, key: str) -> list[AuditEntry]:
    """Every logged change of one thing (e.g. ``("item", "KZ-000123")``), oldest first."""
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_key == key)
            .order_by(AuditEntry.seq)
        )
    )


def verify_log(session: Session, *, anchor: LogAnchor | None = None) -> list[LogProblem]:
    """Check the whole chain; an empty list means the log is intact.

    ``anchor``, if given, is an earlier :func:`log_head`: the log must still contain that entry
    with that hash (a rewritten or truncated log fails this even if it was re-chained).
    """
    problems: list[LogProblem] = []
    expected_seq = 1
    prev = GENESIS_HASH
    anchor_seen = anchor is None or anchor.seq == 0
    result = session.execute(
        select(
            AuditEntry.seq,
            AuditEntry.at,
            AuditEntry.actor,
            AuditEntry.action,
            AuditEntry.entity,
            AuditEntry.entity_key,
            AuditEntry.before,
            AuditEntry.after,
            AuditEntry.prev_hash,
            AuditEntry.hash,
        )
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=5000)
    )
    for row in result:
        seq = int(row.seq)
        if seq != expected_seq:
            problems.append(
                LogProblem(
                    seq,
                    "missing",
                    f"entries {expected_seq}..{seq - 1} are missing before entry {seq}",
                )
            )
        if row.prev_hash != prev:
            problems.append(
                LogProblem(seq, "broken-link", f"entry {seq} does not chain to the entry before it")
            )
        recomputed = entry_hash(
            seq=seq,
            at=row.at,
            actor=row.actor,
            action=row.action,
            entity=row.entity,
            entity_key=row.entity_key,
            before=row.before,
            after=row.after,
            prev_hash=row.prev_hash,
        )
        if recomputed != row.hash:
            problems.append(
                LogProblem(
                    seq,
                    "altered",
                    f"entry {seq} ({row.action} {row.entity} {row.entity_key}) was altered: "
                    "its content does not match its hash",
                )
            )
        if anchor is not None and seq == anchor.seq:
            anchor_seen = True
            if row.hash != anchor.hash:
                problems.append(
                    LogProblem(seq, "head-mismatch", f"entry {seq} differs from the kept anchor")
                )
        prev = row.hash
        expected_seq = seq + 1
    head = log_head(session)
    if head.seq != expected_seq - 1 or head.hash != prev:
        problems.append(
            LogProblem(
                head.seq,
                "head-mismatch",
                f"the log ends at entry {expected_seq - 1} but its head says {head.seq}: "
                "entries were removed or added outside the register",
            )
        )
    if not anchor_seen and anchor is not None:
        problems.append(
            LogProblem(
                anchor.seq, "missing", f"anchored entry {anchor.seq} is no longer in the log"
            )
        )
    return problems


_LOAN_COLUMNS = tuple(Loan.__table__.columns)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def loan_snapshot(loan: Loan | RowMapping) -> dict[str, Any]:
    """Every column of a loan row (кітап беру · выдача), as logged on each check-out, check-in,
    renewal and settlement; :func:`verify_loans` compares the table with the last of these."""
    if isinstance(loan, Loan):
        return {c.name: _plain(getattr(loan, c.key)) for c in _LOAN_COLUMNS}
    return {c.name: _plain(loan[c.name]) for c in _LOAN_COLUMNS}


def verify_loans(session: Session) -> list[LogProblem]:
    """Compare every row of ``loans`` with the last state the hash-chained log recorded for it.

    The chain itself is checked by :func:`verify_log`; this finds the other tampering: a loan
    row edited (a due date moved, a return date faked), inserted or deleted directly in the
    database, none of which leaves a log entry.
    """
    logged: dict[str, tuple[int, str | None]] = {}
    for seq, key, after in session.execute(
        select(AuditEntry.seq, AuditEntry.entity_key, AuditEntry.after)
        .where(AuditEntry.entity == "loan", AuditEntry.action.like("loan.%"))
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=5000)
    ):
        logged[str(key)] = (int(seq), after)
    problems: list[LogProblem] = []
    for row in session.execute(
        select(*_LOAN_COLUMNS).order_by(Loan.id).execution_options(yield_per=5000)
    ).mappings():
        key = str(row["id"])
        last = logged.pop(key, None)
        if last is None:
            problems.append(LogProblem(0, "loan-unlogged",
                                       f"loan {key} is in the loans table but never in the log"))
            continue
        if _dump(loan_snapshot(row)) != last[1]:
            problems.append(LogProblem(last[0], "loan-altered",
                                       f"loan {key} differs from its last logged state "
                                       f"(entry {last[0]}): the row was changed outside the "
                                       "register"))
    for key, (seq, _after) in logged.items():
        problems.append(LogProblem(seq, "loan-removed",
                                   f"loan {key} is in the log (entry {seq}) but its row is gone"))
    return problems
