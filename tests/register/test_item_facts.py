"""The lean read path for the desk's lookups (issue 20): :func:`register.item_facts`,
:func:`register.item_facts_by_code` and :func:`circulation.find_item_facts` give field by field
what the ORM lookups give, raise the same errors, and read inside the caller's transaction
without committing it — on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import circulation, register
from catalog_sync.errors import ItemNotFound
from catalog_sync.models import AcquisitionSource, Item

from .conftest import new_batch, uid


def _item(s: Session, *, inventory_number: str | None = None, processed: bool = True) -> Item:
    rec = register.add_record(s, title="Абай жолы", material_type="book", actor="acq")
    item = register.receive_item(
        s,
        record=rec,
        inventory_number=inventory_number or uid("INV"),
        source=AcquisitionSource.DONATION,
        receipt_batch=new_batch(s),
        actor="acq",
        condition="good",
    )
    if processed:
        register.process_item(
            s,
            item.inventory_number,
            actor="proc",
            barcode=uid("BC"),
            rfid=uid("RF"),
            location="Абонемент, зал 2",
        )
        register.update_item(s, item.inventory_number, actor="proc", shelf_mark="84(5Каз)")
    return item


def _same(facts: register.ItemFacts, item: Item) -> None:
    """Every field of the facts equals the ORM item's attribute of that name."""
    assert register.FACT_COLUMNS == (
        "id",
        "inventory_number",
        "record_id",
        "barcode",
        "rfid",
        "location",
        "shelf_mark",
        "status",
        "condition",
    )
    for name in register.FACT_COLUMNS:
        assert getattr(facts, name) == getattr(item, name), name
        assert type(getattr(facts, name)) is type(getattr(item, name)), name
    assert facts.item_status is item.item_status
    assert facts.is_processed == item.is_processed


def test_facts_equal_the_orm_item_field_by_field(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        processed = _item(s)
        received = _item(s, processed=False)  # no barcode, RFID or location: NULLs come back
        s.commit()
        numbers = (processed.inventory_number, received.inventory_number)
        codes = (processed.barcode, processed.rfid)
    with sessions() as s:
        for number in numbers:
            orm = register.get_item(s, number)
            _same(register.item_facts(s, number), orm)
            _same(circulation.find_item_facts(s, number), circulation.find_item(s, number))
        for code in codes:
            assert code is not None
            _same(register.item_facts_by_code(s, code), register.find_item_by_code(s, code))
            _same(circulation.find_item_facts(s, code), circulation.find_item(s, code))


def test_facts_are_frozen(session: Session) -> None:
    facts = register.item_facts(session, _item(session).inventory_number)
    with pytest.raises(AttributeError):
        facts.status = "on_loan"  # type: ignore[misc]


def test_inventory_number_wins_over_another_items_barcode(session: Session) -> None:
    # find_item tries inventory number, barcode, RFID tag id in that order; the lean path's one
    # statement must pick the same item when a code is one item's number and another's barcode.
    first = _item(session)
    second = _item(session, processed=False)
    register.process_item(
        session,
        second.inventory_number,
        actor="proc",
        barcode=first.inventory_number,
        location="Абонемент",
    )
    code = first.inventory_number
    assert circulation.find_item(session, code).id == first.id
    assert circulation.find_item_facts(session, code).id == first.id
    assert register.item_facts_by_code(session, code).id == second.id
    assert register.find_item_by_code(session, code).id == second.id


Lookup = Callable[[Session, str], object]
PAIRS: list[tuple[str, Lookup, Lookup]] = [
    ("inventory number", register.get_item, register.item_facts),
    ("barcode or RFID", register.find_item_by_code, register.item_facts_by_code),
    ("any code", circulation.find_item, circulation.find_item_facts),
]


@pytest.mark.parametrize(("label", "orm", "lean"), PAIRS, ids=[p[0] for p in PAIRS])
def test_unknown_code_raises_the_same_error(
    session: Session, label: str, orm: Lookup, lean: Lookup
) -> None:
    code = uid("NOPE")
    with pytest.raises(ItemNotFound) as from_orm:
        orm(session, code)
    with pytest.raises(ItemNotFound) as from_lean:
        lean(session, code)
    a, b = from_orm.value, from_lean.value
    assert type(a) is type(b)
    assert (b.inventory_number, b.http_status, b.exit_code, b.retryable) == (
        a.inventory_number,
        a.http_status,
        a.exit_code,
        a.retryable,
    )
    assert b.inventory_number == code
    assert str(b) == str(a)


def test_reads_inside_the_callers_transaction_and_never_commits(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        item = _item(s)  # flushed, not committed
        number, barcode = item.inventory_number, item.barcode
        assert barcode is not None
        assert register.item_facts(s, number).id == item.id
        assert circulation.find_item_facts(s, barcode).id == item.id
        assert s.in_transaction()
        s.rollback()
    with sessions() as s:
        with pytest.raises(ItemNotFound):
            register.item_facts(s, number)
        with pytest.raises(ItemNotFound):
            circulation.find_item_facts(s, barcode)


def test_a_database_error_surfaces_as_from_the_orm_path(session: Session) -> None:
    # The lean path bypasses SQLAlchemy's execution, not its error classes: a failing statement
    # raises the same DBAPIError subclass around the same driver error as get_item's.
    session.execute(text("ALTER TABLE items RENAME TO items_gone"))  # rolled back below
    caught: list[DBAPIError] = []
    for lookup in (register.get_item, register.item_facts):
        nested = session.begin_nested()
        with pytest.raises(DBAPIError) as e:
            lookup(session, uid("INV"))
        caught.append(e.value)
        nested.rollback()
    orm, lean = caught
    assert type(lean) is type(orm)
    assert type(lean.orig) is type(orm.orig)
    assert "items" in str(lean.statement)
    session.rollback()
