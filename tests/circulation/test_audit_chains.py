"""The audit log as several hash chains (issue 20): every chain is verified on its own, each kind
of tampering is found in whichever chain it was done, registers older than the chains migrate and
still verify, desks at different service points no longer wait for each other's audit entries,
and an entry commits or rolls back with the change it records. SQLite and PostgreSQL.

R3: the log is the register's legal memory; a change made behind the register's back is found.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import audit, circulation, register
from catalog_sync.db import make_engine, session_factory, upgrade
from catalog_sync.models import AuditEntry, AuditHead, Loan, ServicePointKind
from tests.circulation.helpers import make_item, make_point, make_reader
from tests.register.conftest import (
    BACKENDS,
    bypass_audit_triggers,
    create_postgres_database,
    drop_postgres_database,
    fresh_engine,
)

AT = datetime(2025, 5, 5, 10, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def damaged_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A register of its own for each test here: these tests damage the log on purpose."""
    engine, url = fresh_engine(request.param, tmp_path, "qor_chains")
    try:
        yield engine
    finally:
        engine.dispose()
        if url is not None:
            drop_postgres_database(url)


def _loans(sessions: sessionmaker[Session], n: int) -> list[int]:
    """``n`` loans, each checked out and checked in in transactions of their own (the last one
    stays out)."""
    with sessions() as s:
        point = make_point(s, ServicePointKind.LENDING_DESK)
        reader = make_reader(s)
        items = [make_item(s) for _ in range(n)]
        s.commit()
        codes = [i.barcode or "" for i in items]
        point_code, ticket = point.code, reader.ticket_number
    ids = []
    for code in codes:
        with sessions() as s:
            loan = circulation.check_out(s, item_code=code, ticket_number=ticket,
                                         service_point=point_code, actor="desk", at=AT)
            s.commit()
            ids.append(loan.id)
        if code == codes[-1]:
            break
        with sessions() as s:
            circulation.check_in(s, item_code=code, actor="desk", at=AT + timedelta(hours=1))
            s.commit()
    return ids


def _chains(sessions: sessionmaker[Session]) -> dict[int, list[int]]:
    """Each chain's entries (seq), in chain order."""
    out: dict[int, list[int]] = {}
    with sessions() as s:
        for chain, seq in s.execute(
            select(AuditEntry.chain, AuditEntry.seq)
            .order_by(AuditEntry.chain, AuditEntry.chain_seq)
        ):
            out.setdefault(int(chain), []).append(int(seq))
    return out


def _problems(sessions: sessionmaker[Session],
              anchor: audit.LogAnchor | None = None) -> set[tuple[int, str]]:
    with sessions() as s:
        return {(p.seq, p.kind) for p in
                [*audit.verify_log(s, anchor=anchor), *audit.verify_loans(s)]}


def test_entries_spread_over_chains_and_every_chain_is_checked(
    damaged_engine: Engine,
) -> None:
    sessions = session_factory(damaged_engine)
    _loans(sessions, 12)
    chains = _chains(sessions)
    assert 0 not in chains  # chain 0 is the closed pre-migration log
    assert len(chains) >= 4
    assert _problems(sessions) == set()
    with sessions() as s:  # each chain's head row is its last entry
        heads = {int(c): int(p) for c, p in s.execute(select(AuditHead.id, AuditHead.last_seq))}
    assert all(heads[c] == len(seqs) for c, seqs in chains.items())
    # One entry altered in every chain: each is found, at its own entry.
    first = {seqs[0] for seqs in chains.values()}
    with damaged_engine.begin() as conn:
        bypass_audit_triggers(conn, damaged_engine)
        for seq in first:
            conn.execute(text("UPDATE audit_log SET actor = 'nobody' WHERE seq = :s"), {"s": seq})
    assert _problems(sessions) == {(seq, "altered") for seq in first}


def test_each_kind_of_tampering_is_found_in_its_own_chain(damaged_engine: Engine) -> None:
    sessions = session_factory(damaged_engine)
    loan_ids = _loans(sessions, 40)
    chains = sorted((c for c, seqs in _chains(sessions).items() if len(seqs) >= 3))
    assert len(chains) >= 5, _chains(sessions)
    altered, deleted, truncated, inserted, reordered = (_chains(sessions)[c] for c in chains[:5])
    with sessions() as s:
        anchor = audit.log_head(s)
        tail = s.execute(select(AuditEntry).where(AuditEntry.seq == inserted[-1])).scalar_one()
        forged_seq = int(s.scalar(select(func.max(AuditEntry.seq))) or 0) + 1000
        forged = {
            "seq": forged_seq, "chain": tail.chain, "chain_seq": (tail.chain_seq or 0) + 1,
            "at": tail.at, "actor": "forger", "action": "loan.check_in", "entity": "loan",
            "entity_key": tail.entity_key, "before": None, "after": tail.after,
            "prev_hash": tail.hash,
        }
        forged["hash"] = audit.entry_hash(
            seq=forged_seq, at=tail.at, actor="forger", action="loan.check_in", entity="loan",
            entity_key=tail.entity_key, before=None, after=tail.after, prev_hash=tail.hash,
            chain=tail.chain, chain_seq=(tail.chain_seq or 0) + 1,
        )
        a, b = (s.execute(select(AuditEntry).where(AuditEntry.seq == q)).scalar_one()
                for q in reordered[:2])
        swap = [
            {"seq": a.seq, "at": b.at, "actor": b.actor, "action": b.action,
             "entity_key": b.entity_key, "before": b.before, "after": b.after,
             "prev_hash": b.prev_hash, "hash": b.hash},
            {"seq": b.seq, "at": a.at, "actor": a.actor, "action": a.action,
             "entity_key": a.entity_key, "before": a.before, "after": a.after,
             "prev_hash": a.prev_hash, "hash": a.hash},
        ]
        last_logged = max(e.seq for e in audit.history(s, "loan", str(loan_ids[-1])))
    # R15: a loan row changed in the database (a due date moved): found against its last entry.
    with damaged_engine.begin() as conn:
        conn.execute(text("UPDATE loans SET due_on = :d WHERE id = :i"),
                     {"d": date(2030, 1, 1), "i": loan_ids[-1]})
    with sessions() as s:
        assert [(p.seq, p.kind) for p in audit.verify_loans(s)] == [(last_logged, "loan-altered")]
        assert audit.verify_log(s) == []  # the chain itself is intact: only the row lies
    with damaged_engine.begin() as conn:
        bypass_audit_triggers(conn, damaged_engine)
        conn.execute(text("UPDATE audit_log SET actor = 'nobody' WHERE seq = :s"),
                     {"s": altered[1]})
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": deleted[1]})
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": truncated[-1]})
        conn.execute(text(
            "INSERT INTO audit_log (seq, chain, chain_seq, at, actor, action, entity, "
            "entity_key, before, after, prev_hash, hash) VALUES (:seq, :chain, :chain_seq, :at, "
            ":actor, :action, :entity, :entity_key, :before, :after, :prev_hash, :hash)"), forged)
        for row in swap:  # two neighbours trade places, each keeping its own hash
            conn.execute(text(
                "UPDATE audit_log SET at = :at, actor = :actor, action = :action, "
                "entity_key = :entity_key, before = :before, after = :after, "
                "prev_hash = :prev_hash, hash = :hash WHERE seq = :seq"), row)
    with sessions() as s:
        found = {(p.seq, p.kind) for p in audit.verify_log(s)}
        with_anchor = {(p.seq, p.kind) for p in audit.verify_log(s, anchor=anchor)}
    assert found == {
        (altered[1], "altered"),
        (deleted[2], "missing"),
        (deleted[2], "broken-link"),
        (truncated[-2], "head-mismatch"),
        (forged_seq, "head-mismatch"),
        (reordered[0], "broken-link"),
        (reordered[0], "altered"),
        (reordered[1], "broken-link"),
        (reordered[1], "altered"),
        (reordered[2], "broken-link"),  # it chained to the entry now in the wrong place
    }
    # The anchor kept outside the database names the removed tail entry too.
    assert with_anchor == found | {(truncated[-1], "missing")}


def _legacy_hash(seq: int, at: str, actor: str, action: str, entity: str, key: str,
                 after: str, prev: str) -> str:
    # The formula of the single chain before migration 0005, written out independently.
    canonical = json.dumps([seq, at, actor, action, entity, key, None, after, prev],
                           ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_register_from_before_the_chains_migrates_and_still_verifies(
    backend: str, tmp_path: Path
) -> None:
    if backend == "sqlite":
        url: str | None = None
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    else:
        url = create_postgres_database("qor_chains_old")
        engine = make_engine(url)
    try:
        upgrade(engine, "0004_item_shelf_mark")
        prev = audit.GENESIS_HASH
        with engine.begin() as conn:  # the log as the single-chain register wrote it
            for seq in range(1, 6):
                at = f"2025-01-0{seq}T10:00:00.000000+00:00"
                after = json.dumps({"location": f"Hall-{seq}"}, separators=(",", ":"))
                digest = _legacy_hash(seq, at, "acq", "item.update", "item", "INV-1", after, prev)
                conn.execute(text(
                    "INSERT INTO audit_log (seq, at, actor, action, entity, entity_key, before, "
                    "after, prev_hash, hash) VALUES (:s, :at, 'acq', 'item.update', 'item', "
                    "'INV-1', NULL, :after, :prev, :h)"),
                    {"s": seq, "at": at, "after": after, "prev": prev, "h": digest})
                prev = digest
            conn.execute(text("UPDATE audit_head SET last_seq = 5, last_hash = :h WHERE id = 1"),
                         {"h": prev})
        old_anchor = audit.LogAnchor(seq=5, hash=prev)  # as --save-anchor wrote it then
        upgrade(engine)
        sessions = session_factory(engine)
        assert _problems(sessions, old_anchor) == set()
        with sessions() as s:
            assert audit.log_head(s).entries == 5
            register.add_record(s, title="Абай жолы", actor="acq")
            s.commit()
        chains = _chains(sessions)
        assert chains[0] == [1, 2, 3, 4, 5] and len(chains) == 2  # new entries: a new chain…
        new = next(seqs for c, seqs in chains.items() if c != 0)
        assert min(new) == 6  # …continuing the numbering
        with sessions() as s:
            assert [e.seq for e in audit.history(s, "item", "INV-1")] == [1, 2, 3, 4, 5]
            assert audit.log_head(s).entries == 5 + len(new)
        assert _problems(sessions, old_anchor) == set()
        with engine.begin() as conn:  # the old entries are still guarded
            bypass_audit_triggers(conn, engine)
            conn.execute(text("UPDATE audit_log SET actor = 'x' WHERE seq = 2"))
            conn.execute(text("DELETE FROM audit_log WHERE seq = 5"))
        assert _problems(sessions, old_anchor) == {
            (2, "altered"), (4, "head-mismatch"), (5, "missing")}
    finally:
        engine.dispose()
        if url is not None:
            drop_postgres_database(url)


@pytest.fixture
def postgres_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Concurrency is PostgreSQL's: SQLite lets one writer at a time by design (BEGIN
    IMMEDIATE), whatever the log does."""
    engine, url = fresh_engine("postgresql", tmp_path, "qor_chains_conc")
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()
        assert url is not None
        drop_postgres_database(url)


def test_desks_at_different_service_points_do_not_wait_for_each_other(
    postgres_sessions: sessionmaker[Session],
) -> None:
    sessions = postgres_sessions
    desks = 8
    with sessions() as s:
        points = [make_point(s, ServicePointKind.LENDING_DESK).code for _ in range(desks)]
        readers_ = [make_reader(s).ticket_number for _ in range(desks)]
        codes = [make_item(s).barcode or "" for _ in range(desks)]
        s.commit()
    # Every desk checks out and keeps its transaction open until all have: with one head row
    # for the whole log the second desk would wait for the first's commit, and none would
    # reach the barrier (lock_timeout turns such a wait into an error instead of a hang).
    barrier = threading.Barrier(desks, timeout=60)
    errors: list[BaseException] = []
    chains: list[int] = []
    lock = threading.Lock()

    def desk(i: int) -> None:
        try:
            with sessions() as s:
                s.execute(text("SET LOCAL lock_timeout = '20s'"))
                loan = circulation.check_out(s, item_code=codes[i], ticket_number=readers_[i],
                                             service_point=points[i], actor=f"desk-{i}")
                chain = s.scalar(select(AuditEntry.chain).where(
                    AuditEntry.entity == "loan", AuditEntry.entity_key == str(loan.id)))
                barrier.wait()  # all eight are inside their transactions, entries appended
                s.commit()
            with lock:
                chains.append(int(chain or 0))
        except BaseException as e:
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=desk, args=(i,)) for i in range(desks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(set(chains)) == desks  # each open transaction held a chain of its own
    assert _problems(sessions) == set()


def test_an_entry_commits_and_rolls_back_with_its_change(
    damaged_engine: Engine,
) -> None:
    sessions = session_factory(damaged_engine)
    with sessions() as s:
        point = make_point(s, ServicePointKind.LENDING_DESK)
        reader = make_reader(s)
        first, second = make_item(s), make_item(s)
        s.commit()
        before = audit.log_head(s).entries
    with sessions() as s:  # a check-out the desk abandons: no loan, no entry
        circulation.check_out(s, item_code=first.barcode or "", ticket_number=reader.ticket_number,
                              service_point=point.code, actor="desk", at=AT)
        s.rollback()
        # the same session's next transaction: a loan, its entry, both committed
        loan = circulation.check_out(s, item_code=second.barcode or "",
                                     ticket_number=reader.ticket_number,
                                     service_point=point.code, actor="desk", at=AT)
        s.commit()
        loan_id = loan.id
    with sessions() as s:
        assert s.scalar(select(func.count(Loan.id)).where(Loan.item_id == first.id)) == 0
        assert audit.log_head(s).entries == before + 1
        entries = audit.history(s, "loan", str(loan_id))
        assert [e.action for e in entries] == ["loan.check_out"]
        assert json.loads(entries[0].after or "{}")["item_id"] == second.id
    assert _problems(sessions) == set()


def test_when_every_chain_is_busy_a_desk_waits_for_one_and_then_logs(
    postgres_sessions: sessionmaker[Session],
) -> None:
    sessions = postgres_sessions
    with sessions() as s:
        point = make_point(s, ServicePointKind.LENDING_DESK).code
        ticket = make_reader(s).ticket_number
        code = make_item(s).barcode or ""
        s.commit()
    outcome: dict[str, object] = {}

    def desk() -> None:
        try:
            with sessions() as s:
                loan = circulation.check_out(s, item_code=code, ticket_number=ticket,
                                             service_point=point, actor="desk")
                s.commit()
                outcome["loan"] = loan.id
        except BaseException as e:
            outcome["error"] = e

    with sessions() as holder:  # every chain's head locked, as 32 desks in mid-commit would
        held = holder.execute(text("SELECT id FROM audit_head WHERE id > 0 FOR UPDATE")).all()
        assert len(held) == audit.CHAINS
        thread = threading.Thread(target=desk)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive()  # queued for a chain, as every desk did with one head row
        holder.commit()
    thread.join(60)
    assert not thread.is_alive() and "error" not in outcome
    with sessions() as s:
        entries = audit.history(s, "loan", str(outcome["loan"]))
        assert [e.action for e in entries] == ["loan.check_out"] and entries[0].chain > 0
    assert _problems(sessions) == set()
