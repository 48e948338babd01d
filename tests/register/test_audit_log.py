"""The audit log is hash-chained; verify_log catches entries altered or removed in the database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import audit, register
from catalog_sync.models import AcquisitionSource

from .conftest import (
    BACKENDS,
    bypass_audit_triggers,
    drop_postgres_database,
    fresh_engine,
    new_batch,
    uid,
)


@pytest.fixture(params=BACKENDS)
def register_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A register of its own for each test here: these tests damage the log on purpose."""
    engine, url = fresh_engine(request.param, tmp_path_factory.mktemp("audit"), "qor_audit")
    try:
        yield engine
    finally:
        engine.dispose()
        if url is not None:
            drop_postgres_database(url)


@pytest.fixture
def logged_changes(sessions: sessionmaker[Session]) -> Iterator[str]:
    """A few register changes, committed; yields the inventory number touched."""
    with sessions() as s:
        rec = register.add_record(s, title="Көшпенділер", actor="acq")
        inv = register.receive_item(
            s,
            record=rec,
            inventory_number=uid("INV"),
            source=AcquisitionSource.EXCHANGE,
            receipt_batch=new_batch(s),
            actor="acq",
        ).inventory_number
        register.move_item(s, inv, location="Hall-2", actor="shelver")
        s.commit()
    yield inv


def _restore_triggers(conn: object, engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        conn.execute(text("SET session_replication_role = origin"))  # type: ignore[attr-defined]
    else:
        conn.execute(  # type: ignore[attr-defined]
            text(
                "CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'QOR-APPEND-ONLY: this table is append-only'); END"
            )
        )
        conn.execute(  # type: ignore[attr-defined]
            text(
                "CREATE TRIGGER audit_log_never_deleted BEFORE DELETE ON audit_log "
                "BEGIN SELECT RAISE(ABORT, "
                "'QOR-R3: rows of the fund register are never deleted'); END"
            )
        )


def test_intact_log_verifies(sessions: sessionmaker[Session], logged_changes: str) -> None:
    with sessions() as s:
        assert audit.verify_log(s) == []
        moves = audit.history(s, "item", logged_changes)
        assert [m.action for m in moves] == ["item.receive", "item.update"]
        assert '"location":"Hall-2"' in (moves[1].after or "")


def test_altered_entry_is_detected(
    register_engine: Engine, sessions: sessionmaker[Session], logged_changes: str
) -> None:
    with sessions() as s:
        seq = audit.history(s, "item", logged_changes)[-1].seq
    with register_engine.begin() as conn:
        bypass_audit_triggers(conn, register_engine)
        conn.execute(text("UPDATE audit_log SET actor = 'nobody' WHERE seq = :s"), {"s": seq})
        _restore_triggers(conn, register_engine)
    with sessions() as s:
        problems = audit.verify_log(s)
    assert [(p.seq, p.kind) for p in problems] == [(seq, "altered")]


def test_removed_entries_are_detected(
    register_engine: Engine, sessions: sessionmaker[Session], logged_changes: str
) -> None:
    with sessions() as s:
        entries = audit.history(s, "item", logged_changes)
        anchor = audit.log_head(s)
    middle, last = entries[0].seq - 1, anchor.seq  # the receipt act, and the move
    with register_engine.begin() as conn:
        bypass_audit_triggers(conn, register_engine)
        conn.execute(text("DELETE FROM audit_log WHERE seq IN (:a, :b)"), {"a": middle, "b": last})
        _restore_triggers(conn, register_engine)
    with sessions() as s:
        kinds = {(p.seq, p.kind) for p in audit.verify_log(s, anchor=anchor)}
    assert (middle + 1, "missing") in kinds
    assert (middle + 1, "broken-link") in kinds
    assert any(kind == "head-mismatch" for _, kind in kinds)
    assert (last, "missing") in kinds


def test_rechained_forgery_is_caught_by_an_anchor(
    register_engine: Engine, sessions: sessionmaker[Session], logged_changes: str
) -> None:
    # Someone rewrites an entry AND recomputes every hash after it (and the head): the chain is
    # self-consistent again, but the anchor kept outside the database no longer matches.
    with sessions() as s:
        anchor = audit.log_head(s)
        rows = s.execute(text("SELECT * FROM audit_log ORDER BY chain, seq")).mappings().all()
    forged = []
    heads: dict[int, str] = {}
    for i, row in enumerate(rows):
        r = dict(row)
        if i == 0:
            r["actor"] = "forger"
        prev = heads.get(r["chain"], audit.GENESIS_HASH)
        r["prev_hash"] = prev
        r["hash"] = audit.entry_hash(
            seq=r["seq"],
            at=r["at"],
            actor=r["actor"],
            action=r["action"],
            entity=r["entity"],
            entity_key=r["entity_key"],
            before=r["before"],
            after=r["after"],
            prev_hash=prev,
            chain=r["chain"],
            chain_seq=r["chain_seq"],
        )
        heads[r["chain"]] = r["hash"]
        forged.append(r)
    with register_engine.begin() as conn:
        bypass_audit_triggers(conn, register_engine)
        for r in forged:
            conn.execute(
                text(
                    "UPDATE audit_log SET actor = :actor, prev_hash = :prev_hash, "
                    "hash = :hash WHERE seq = :seq"
                ),
                r,
            )
        for chain, last in heads.items():
            conn.execute(text("UPDATE audit_head SET last_hash = :h WHERE id = :c"),
                         {"h": last, "c": chain})
        _restore_triggers(conn, register_engine)
    with sessions() as s:
        assert audit.verify_log(s) == []  # the forgery is self-consistent…
        problems = audit.verify_log(s, anchor=anchor)
    assert [(p.seq, p.kind) for p in problems] == [(anchor.seq, "head-mismatch")]
