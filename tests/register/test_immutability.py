"""R14 and R3–R4 enforced by the database itself: raw SQL cannot renumber, delete or reuse."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import register
from catalog_sync.errors import InventoryNumberImmutable, InventoryNumberTaken, RegisterTampered
from catalog_sync.models import AcquisitionSource, utcnow

from .conftest import new_batch, uid


def _received(sessions: sessionmaker[Session]) -> str:
    with sessions() as s:
        rec = register.add_record(s, title="Абай жолы", authors=["Мұхтар Әуезов"], actor="acq")
        item = register.receive_item(
            s,
            record=rec,
            inventory_number=uid("INV"),
            source=AcquisitionSource.PURCHASE,
            receipt_batch=new_batch(s),
            actor="acq",
        )
        s.commit()
        return item.inventory_number


def _refused(engine: Engine, sql: str, params: dict[str, str], tag: str) -> None:
    with engine.connect() as conn, pytest.raises(DBAPIError) as err:
        conn.execute(text(sql), params)
    assert tag in str(err.value)


def test_raw_update_of_inventory_number_fails(
    register_engine: Engine, sessions: sessionmaker[Session]
) -> None:
    # R14: an inventory number may not be changed or corrected, even by hand-written SQL.
    inv = _received(sessions)
    _refused(
        register_engine,
        "UPDATE items SET inventory_number = :new WHERE inventory_number = :inv",
        {"new": inv + "-X", "inv": inv},
        "QOR-R14",
    )
    with sessions() as s:
        assert register.get_item(s, inv).inventory_number == inv


def test_raw_delete_of_item_fails(register_engine: Engine, sessions: sessionmaker[Session]) -> None:
    # R3–R4 / R14: an item (and so its number) is never deleted.
    inv = _received(sessions)
    _refused(
        register_engine, "DELETE FROM items WHERE inventory_number = :inv", {"inv": inv}, "QOR-R3"
    )
    with sessions() as s:
        register.get_item(s, inv)


def test_raw_delete_of_issued_number_fails(
    register_engine: Engine, sessions: sessionmaker[Session]
) -> None:
    inv = _received(sessions)
    _refused(
        register_engine,
        "DELETE FROM issued_inventory_numbers WHERE inventory_number = :inv",
        {"inv": inv},
        "QOR-R3",
    )


def test_raw_reuse_of_inventory_number_fails(
    register_engine: Engine, sessions: sessionmaker[Session]
) -> None:
    # R14: a number once given is never given again — a raw INSERT of a second item with it fails.
    inv = _received(sessions)
    with register_engine.connect() as conn, pytest.raises(DBAPIError):
        conn.execute(
            text(
                "INSERT INTO items (inventory_number, sort_key, record_id, receipt_batch_id, "
                "status, value_scientific, value_historical, value_artistic, created_at, "
                "updated_at) SELECT :inv, sort_key, record_id, receipt_batch_id, 'received', "
                "false, false, false, created_at, updated_at FROM items "
                "WHERE inventory_number = :inv"
            ),
            {"inv": inv},
        )


def test_raw_truncate_or_delete_all_fails(register_engine: Engine) -> None:
    sql = (
        "TRUNCATE items CASCADE"
        if register_engine.dialect.name == "postgresql"
        else "DELETE FROM items"
    )
    with register_engine.connect() as conn, pytest.raises(DBAPIError) as err:
        conn.execute(text(sql))
    assert "QOR-R3" in str(err.value)


def test_code_refuses_renumbering_and_reuse(sessions: sessionmaker[Session]) -> None:
    inv = _received(sessions)
    with sessions() as s:
        item = register.get_item(s, inv)
        with pytest.raises(InventoryNumberImmutable, match=inv):
            item.inventory_number = inv + "-corrected"
        with pytest.raises(InventoryNumberImmutable):
            register.update_item(s, inv, actor="cat", new_inventory_number=inv + "-2")
        with pytest.raises(InventoryNumberTaken, match=inv):
            register.add_item(s, inventory_number=inv, title="Another book", actor="cat")
        with pytest.raises(InventoryNumberImmutable):
            s.delete(register.get_item(s, inv))
            s.flush()
        s.rollback()
    with sessions() as s:
        rec = register.get_item(s, inv).record
        with pytest.raises(RegisterTampered):
            s.delete(rec)
            s.flush()


def test_written_off_item_cannot_be_revived_by_raw_sql(
    register_engine: Engine, sessions: sessionmaker[Session]
) -> None:
    inv = _received(sessions)
    with sessions() as s:
        register.write_off(
            s,
            act_number=uid("WO"),
            act_date=utcnow().date(),
            reason="lost",
            inventory_numbers=[inv],
            actor="head",
        )
        s.commit()
    _refused(
        register_engine,
        "UPDATE items SET status = 'available', write_off_act_id = NULL "
        "WHERE inventory_number = :inv",
        {"inv": inv},
        "QOR-R3",
    )


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
        "DELETE FROM write_off_acts",
        "DELETE FROM receipt_batches",
        "DELETE FROM bib_records",
    ],
)
def test_raw_edits_of_protected_tables_fail(
    register_engine: Engine, sessions: sessionmaker[Session], sql: str
) -> None:
    _received(sessions)  # makes sure each table has rows
    with sessions() as s:
        register.write_off(
            s,
            act_number=uid("WO"),
            act_date=utcnow().date(),
            reason="worn",
            inventory_numbers=[_received(sessions)],
            actor="head",
        )
        s.commit()
    with register_engine.connect() as conn, pytest.raises(DBAPIError) as err:
        conn.execute(text(sql))
    assert "QOR-" in str(err.value)
