"""The register's audit log: every change (who, when, what, before, after), hash-chained.

The log is :data:`CHAINS` hash chains side by side (migration 0005). Each entry has a global
sequence number (``seq``: the order of the whole log), the chain it belongs to and its position
in that chain; its hash is SHA-256 over all of those, its own fields and the previous entry's
hash in the same chain. So altering an entry breaks its hash, removing one leaves a gap in its
chain's positions and breaks the next entry's link, inserting or reordering entries breaks the
links, and removing a chain's tail is caught against that chain's head row (and, stronger,
against an anchor the operator kept elsewhere: :func:`log_head`). The database refuses UPDATE
and DELETE on the log (triggers), and the application has no function that edits it.

Why several chains: a transaction appending to a chain holds that chain's head row lock until
it commits. With one chain every desk queued behind every other desk's commit (issue 17 cut
circulation throughput to a third); now a transaction takes whichever chain is free (PostgreSQL
``FOR UPDATE SKIP LOCKED``), keeps it for all its entries, and transactions never wait for each
other's audit entries unless more than :data:`CHAINS` of them append at the same instant. An
entry is written in the caller's transaction: it commits with the change it describes or rolls
back with it, never sealed later. Its ``seq`` is drawn (sequence ``audit_seq`` on PostgreSQL;
on SQLite, whose writers are serial, the next number) after the change was written, i.e. with
the changed row's lock held, so for one row the log's order is the order of commits.

Chain 0 holds the entries written before migration 0005, untouched; it is closed.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Insert,
    Integer,
    RowMapping,
    String,
    Subquery,
    Table,
    TextClause,
    Update,
    bindparam,
    column,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.orm import Session

from catalog_sync.models import AuditEntry, AuditHead, Loan, utcnow

GENESIS_HASH = "0" * 64
CHAINS: Final = 32  # chains 1..CHAINS take new entries (migration 0005 made their head rows)
LEGACY_CHAIN: Final = 0  # the single chain of registers older than migration 0005; closed


@dataclass(frozen=True)
class ChainHead:
    """One chain's last entry: its chain, its position in the chain, its ``seq`` and hash."""

    chain: int
    position: int
    seq: int
    hash: str


@dataclass(frozen=True)
class LogAnchor:
    """The end of the log, to be kept outside the database to detect a rewritten tail.

    ``seq`` and ``hash`` are the latest entry's (all an anchor saved before migration 0005
    holds); ``chains`` is every chain's last entry; ``entries`` how many entries the log had.
    """

    seq: int
    hash: str
    entries: int = 0
    chains: tuple[ChainHead, ...] = ()


@dataclass(frozen=True)
class LogProblem:
    """One thing wrong with the audit log.

    ``seq`` is the entry concerned (0: none). ``kind`` is ``altered`` (an entry's content no
    longer matches its hash), ``broken-link`` (an entry does not chain to the one before it in
    its chain, or is out of place), ``missing`` (positions in a chain skipped: entries removed;
    or an anchored entry gone), or ``head-mismatch`` (a chain's end differs from its head row or
    the anchor); :func:`verify_loans` adds ``loan-altered`` (a loan row differs from its last
    logged state), ``loan-unlogged`` (a loan row the log never saw) and ``loan-removed`` (a
    logged loan whose row is gone).
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
    chain: int = LEGACY_CHAIN,
    chain_seq: int | None = None,
) -> str:
    """The SHA-256 (hex) that chains an entry to ``prev_hash``.

    Entries of chain 0 (before migration 0005) keep the original formula; the others also hash
    their chain and position."""
    fields: list[object] = [seq, at, actor, action, entity, entity_key, before, after, prev_hash]
    if chain != LEGACY_CHAIN:
        fields = ["qor-audit-2", chain, chain_seq, *fields]
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
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


# PostgreSQL: take a free chain (SKIP LOCKED: never wait for another transaction's chain) and
# draw the entries' sequence numbers, in one round trip. The numbers are drawn in the outer
# query so that only the chosen row draws them.
_PG_CLAIM: Final = text(
    "SELECT h.id, h.last_seq, h.last_hash, "
    "ARRAY(SELECT nextval('audit_seq') FROM generate_series(1, :n)) AS seqs "
    "FROM (SELECT id, last_seq, last_hash FROM audit_head WHERE id > 0 "
    "ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED) AS h"
)
# The chain this transaction holds already (or, every chain being busy, one to wait for).
_PG_HOLD: Final = text(
    "SELECT h.id, h.last_seq, h.last_hash, "
    "ARRAY(SELECT nextval('audit_seq') FROM generate_series(1, :n)) AS seqs "
    "FROM (SELECT id, last_seq, last_hash FROM audit_head WHERE id = :chain FOR UPDATE) AS h"
)
# One entry and its chain's new head in one round trip.
_PG_WRITE_ONE: Final = text(
    "WITH entry AS (INSERT INTO audit_log (seq, chain, chain_seq, at, actor, action, entity, "
    "entity_key, before, after, prev_hash, hash) VALUES (:seq, :chain, :chain_seq, :at, :actor, "
    ":action, :entity, :entity_key, :before, :after, :prev_hash, :hash)) "
    "UPDATE audit_head SET last_seq = :chain_seq, last_hash = :hash WHERE id = :chain"
)
# SQLite serialises writers (BEGIN IMMEDIATE): the next seq is max + 1; chains in turn.
_SQLITE_CLAIM: Final = text(
    "SELECT h.id, h.last_seq, h.last_hash, m.s FROM "
    "(SELECT coalesce(max(seq), 0) AS s FROM audit_log) AS m "
    "JOIN audit_head AS h ON h.id = 1 + m.s % :chains"
)
_SQLITE_HOLD: Final = text(
    "SELECT h.id, h.last_seq, h.last_hash, m.s FROM "
    "(SELECT coalesce(max(seq), 0) AS s FROM audit_log) AS m "
    "JOIN audit_head AS h ON h.id = :chain"
)
_HELD: Final = "qor.audit.chain"


def _claim(session: Session, n: int) -> tuple[int, int, str, list[int]]:
    """Lock a chain for this transaction (the one it holds, if any); its head and ``n`` seqs."""
    held = session.info.get(_HELD)
    tx = session.get_transaction()
    chain = held[1] if held is not None and tx is not None and held[0] is tx else None
    pg = session.get_bind().dialect.name == "postgresql"
    stmt: TextClause
    if pg:
        row = None
        if chain is None:
            row = session.execute(_PG_CLAIM, {"n": n}).first()
        if row is None:
            # Held already (no wait), or every chain busy: queue for one, as one chain did.
            chain = chain if chain is not None else random.randint(1, CHAINS)
            row = session.execute(_PG_HOLD, {"n": n, "chain": chain}).one()
        seqs = sorted(int(v) for v in row[3])
    else:
        stmt = _SQLITE_CLAIM if chain is None else _SQLITE_HOLD
        row = session.execute(stmt, {"chains": CHAINS, "chain": chain}).one()
        seqs = [int(row[3]) + i for i in range(1, n + 1)]
    # A savepoint rolled back releases the lock; the next append then locks the same chain anew.
    session.info[_HELD] = (session.get_transaction(), int(row[0]))
    return int(row[0]), int(row[1]), str(row[2]), seqs


# --- one entry folded into the caller's own statements (the desk's hot path, PostgreSQL) ------
#
# A check-out or check-in claims its chain in the SELECT that locks the item (a LEFT JOIN on
# :func:`free_chain`, NULL when every chain is busy) and writes the entry and the chain's head
# in the CTE that writes the loan: two statements instead of four, the same chain rules.


def free_chain() -> Subquery:
    """A free chain's head (columns ``chain``, ``chain_pos``, ``chain_hash``), locked with
    ``FOR UPDATE SKIP LOCKED``; LEFT JOIN it ON true (no row: every chain is busy)."""
    return _FREE_CHAIN


_FREE_CHAIN: Final = (
    text(
        "SELECT id AS chain, last_seq AS chain_pos, last_hash AS chain_hash FROM audit_head "
        "WHERE id > 0 ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED"
    )
    .columns(
        column("chain", Integer), column("chain_pos", BigInteger), column("chain_hash", String)
    )
    .subquery("free_chain")
)


@dataclass(frozen=True)
class Claim:
    """A chain this transaction locked (from :func:`free_chain`) and a seq drawn for its entry
    (``nextval('audit_seq')``)."""

    chain: int
    position: int
    prev_hash: str
    seq: int


def adopt(session: Session, claim: Claim) -> None:
    """Record that this transaction holds ``claim.chain``: later appends use the same chain."""
    session.info[_HELD] = (session.get_transaction(), claim.chain)


def entry_params(claim: Claim, change: Change) -> dict[str, object]:
    """The bound values (``a_*``) of :func:`entry_insert` and :func:`head_update` for one entry
    appended at ``claim``."""
    at = (change.at or utcnow()).isoformat(timespec="microseconds")
    before, after = _dump(change.before), _dump(change.after)
    position = claim.position + 1
    digest = entry_hash(seq=claim.seq, at=at, actor=change.actor, action=change.action,
                        entity=change.entity, entity_key=change.key, before=before, after=after,
                        prev_hash=claim.prev_hash, chain=claim.chain, chain_seq=position)
    return {"a_seq": claim.seq, "a_chain": claim.chain, "a_pos": position, "a_at": at,
            "a_actor": change.actor, "a_action": change.action, "a_entity": change.entity,
            "a_key": change.key, "a_before": before, "a_after": after,
            "a_prev": claim.prev_hash, "a_hash": digest}


_ENTRY_BINDS: Final = {
    "seq": "a_seq", "chain": "a_chain", "chain_seq": "a_pos", "at": "a_at", "actor": "a_actor",
    "action": "a_action", "entity": "a_entity", "entity_key": "a_key", "before": "a_before",
    "after": "a_after", "prev_hash": "a_prev", "hash": "a_hash",
}


def entry_insert(when: ColumnElement[bool] | None = None) -> Insert:
    """``INSERT INTO audit_log`` of the entry :func:`entry_params` describes (only ``when``
    holds, if given), for the caller's CTE."""
    table = cast(Table, AuditEntry.__table__)
    if when is None:
        return table.insert().values(
            {name: bindparam(b, type_=table.c[name].type) for name, b in _ENTRY_BINDS.items()}
        )
    cols = list(_ENTRY_BINDS)
    return table.insert().from_select(
        cols,
        # typed casts: a bare parameter in a SELECT list has no type PostgreSQL could infer
        select(*[sa_cast(bindparam(_ENTRY_BINDS[n]), table.c[n].type) for n in cols]).where(when),
    )


def head_update(when: ColumnElement[bool] | None = None) -> Update:
    """``UPDATE audit_head`` to the entry :func:`entry_params` describes, for the caller's CTE."""
    table = cast(Table, AuditHead.__table__)
    stmt = (
        table.update()
        .where(table.c.id == bindparam("a_chain", type_=Integer))
        .values(last_seq=bindparam("a_pos", type_=BigInteger),
                last_hash=bindparam("a_hash", type_=String))
    )
    return stmt if when is None else stmt.where(when)


def append_many(session: Session, changes: Iterable[Change]) -> int:
    """Append entries in order to one chain, under that chain's head row lock (held until the
    caller's transaction ends); returns the last sequence number (0 when ``changes`` is empty).
    """
    rows = list(changes)
    if not rows:
        return 0
    for change in rows:
        if not change.actor.strip():
            raise ValueError(f"audit entry {change.action} on {change.key}: actor is empty")
    chain, position, prev, seqs = _claim(session, len(rows))
    values = []
    for change, seq in zip(rows, seqs, strict=True):
        position += 1
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
            chain=chain,
            chain_seq=position,
        )
        values.append(
            {
                "seq": seq,
                "chain": chain,
                "chain_seq": position,
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
    if len(values) == 1 and session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_WRITE_ONE, values[0])
    else:
        session.execute(insert(AuditEntry), values)
        session.execute(
            update(AuditHead).where(AuditHead.id == chain).values(last_seq=position, last_hash=prev)
        )
    return seqs[-1]


def log_head(session: Session) -> LogAnchor:
    """The current end of the log (every chain's last entry), to be kept outside the database
    as an anchor."""
    heads = session.execute(
        select(AuditHead.id, AuditHead.last_seq, AuditHead.last_hash).order_by(AuditHead.id)
    ).all()
    positions = [(int(c), int(p)) for c, p, _h in heads if c != LEGACY_CHAIN and p > 0]
    seq_at: dict[tuple[int, int], int] = {}
    for i in range(0, len(positions), 500):
        part = positions[i : i + 500]
        for c, p, seq in session.execute(
            select(AuditEntry.chain, AuditEntry.chain_seq, AuditEntry.seq).where(
                AuditEntry.chain.in_({c for c, _ in part}),
                AuditEntry.chain_seq.in_({p for _, p in part}),
            )
        ):
            seq_at[(int(c), int(p or 0))] = int(seq)
    chains = []
    for c, p, h in heads:
        if int(p) == 0:
            continue
        seq = int(p) if c == LEGACY_CHAIN else seq_at.get((int(c), int(p)), 0)
        chains.append(ChainHead(int(c), int(p), seq, str(h)))
    latest = max(chains, key=lambda ch: ch.seq, default=ChainHead(0, 0, 0, GENESIS_HASH))
    return LogAnchor(
        seq=latest.seq,
        hash=latest.hash,
        entries=sum(int(p) for _c, p, _h in heads),
        chains=tuple(chains),
    )


def history(session: Session, entity: str, key: str) -> list[AuditEntry]:
    """Every logged change of one thing (e.g. ``("item", "KZ-000123")``), oldest first."""
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_key == key)
            .order_by(AuditEntry.seq)
        )
    )


def _anchored(anchor: LogAnchor | None) -> dict[int, str]:
    # Each entry the anchor vouches for (by seq) and the hash it had.
    if anchor is None:
        return {}
    points = {ch.seq: ch.hash for ch in anchor.chains if ch.seq > 0}
    if anchor.seq > 0:
        points[anchor.seq] = anchor.hash
    return points


def verify_log(session: Session, *, anchor: LogAnchor | None = None) -> list[LogProblem]:
    """Check every chain; an empty list means the log is intact.

    ``anchor``, if given, is an earlier :func:`log_head` (or the ``seq``/``hash`` of one entry):
    the log must still contain each anchored entry with that hash (a rewritten or truncated log
    fails this even if it was re-chained).
    """
    problems: list[LogProblem] = []
    heads = {
        int(c): (int(p), str(h))
        for c, p, h in session.execute(
            select(AuditHead.id, AuditHead.last_seq, AuditHead.last_hash)
        )
    }
    anchored = _anchored(anchor)
    # chain -> (next expected position, last hash, last entry's seq)
    state: dict[int, tuple[int, str, int]] = {}
    result = session.execute(
        select(
            AuditEntry.seq,
            AuditEntry.chain,
            AuditEntry.chain_seq,
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
        .order_by(AuditEntry.chain, AuditEntry.seq)
        .execution_options(yield_per=5000)
    )
    for row in result:
        seq, chain = int(row.seq), int(row.chain)
        legacy = chain == LEGACY_CHAIN
        position = seq if legacy else int(row.chain_seq or 0)
        expected, prev, _last = state.get(chain, (1, GENESIS_HASH, 0))
        where = "" if legacy else f" of chain {chain}"
        if position > expected:
            problems.append(
                LogProblem(
                    seq,
                    "missing",
                    f"entries {expected}..{position - 1}{where} are missing before entry {seq}",
                )
            )
        elif position < expected:
            problems.append(
                LogProblem(seq, "broken-link",
                           f"entry {seq} is out of place{where}: position {position} again")
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
            chain=chain,
            chain_seq=row.chain_seq,
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
        if seq in anchored and row.hash != anchored.pop(seq):
            problems.append(
                LogProblem(seq, "head-mismatch", f"entry {seq} differs from the kept anchor")
            )
        state[chain] = (max(expected, position) + 1, str(row.hash), seq)
    for chain in sorted(set(heads) | set(state)):
        expected, prev, last = state.get(chain, (1, GENESIS_HASH, 0))
        where = "the log" if chain == LEGACY_CHAIN else f"chain {chain}"
        if chain not in heads:
            problems.append(LogProblem(last, "head-mismatch",
                                       f"{where} has entries but no head row: entries were "
                                       "added outside the register"))
            continue
        head_pos, head_hash = heads[chain]
        if head_pos != expected - 1 or head_hash != prev:
            problems.append(
                LogProblem(
                    last,
                    "head-mismatch",
                    f"{where} ends at entry {expected - 1} but its head says {head_pos}: "
                    "entries were removed or added outside the register",
                )
            )
    for seq in sorted(anchored):
        problems.append(
            LogProblem(seq, "missing", f"anchored entry {seq} is no longer in the log")
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
