"""Receiving, numbering, processing, the R8 lifecycle, repair actions and write-off acts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import audit, register
from catalog_sync.errors import (
    CodeTaken,
    DigitalCopyExists,
    DigitalCopyNotFound,
    DuplicateAct,
    InvalidInventoryNumber,
    InvalidTransition,
    ItemNotFound,
    ItemWrittenOff,
    NotProcessed,
    RegisterError,
    SourceNotAllowed,
)
from catalog_sync.models import (
    AcquisitionSource,
    ActionKind,
    Item,
    ItemStatus,
    MaterialType,
    ValueFlag,
)

from .conftest import new_batch, uid


def _item(s: Session, **kw: object) -> Item:
    rec = register.add_record(s, title="Қазақ тілі сөздігі", material_type="book", actor="acq")
    args: dict[str, object] = {
        "record": rec,
        "inventory_number": uid("INV"),
        "source": AcquisitionSource.DONATION,
        "receipt_batch": new_batch(s),
        "actor": "acq",
    }
    args.update(kw)
    return register.receive_item(s, **args)  # type: ignore[arg-type]


def test_receive_records_everything_and_audits(session: Session) -> None:
    rec = register.add_record(
        session,
        title="Абай жолы",
        authors=["Мұхтар Әуезов"],
        publisher="Жазушы",
        year=1997,
        language="kaz",
        isbn="9965-666-00-1",
        material_type=MaterialType.BOOK,
        actor="acq",
    )
    batch = new_batch(session, on=date(2024, 5, 2))
    item = register.receive_item(
        session,
        record=rec,
        inventory_number=uid("INV"),
        source="purchase",
        receipt_batch=batch.act_number,
        price="1250.50",
        value_flags={ValueFlag.HISTORICAL},
        condition="good",
        actor="aigerim",
    )
    session.commit()
    got = register.get_item(session, item.inventory_number)
    assert got.status == ItemStatus.RECEIVED
    assert got.price == Decimal("1250.50")
    assert got.value_flags == {ValueFlag.HISTORICAL}
    assert got.record.authors == ["Мұхтар Әуезов"]
    assert got.receipt_batch.received_on == date(2024, 5, 2)
    (entry,) = audit.history(session, "item", item.inventory_number)
    assert entry.actor == "aigerim" and entry.action == "item.receive"


def test_numbers_come_from_the_configured_pattern_without_gaps(session: Session) -> None:
    prefix = uid("KZ")
    register.configure_numbering(session, pattern=prefix + "-{number:06d}", actor="admin")
    numbers = [_item(session, inventory_number=None).inventory_number for _ in range(3)]
    assert numbers[0].startswith(prefix)
    seq = [int(n.rsplit("-", 1)[1]) for n in numbers]
    assert seq == list(range(seq[0], seq[0] + 3))
    # A number already entered by hand (from the paper book) is skipped, not given twice.
    taken = f"{prefix}-{seq[-1] + 1:06d}"
    register.add_item(session, inventory_number=taken, title="Paper-book item", actor="cat")
    after = _item(session, inventory_number=None).inventory_number
    assert after == f"{prefix}-{seq[-1] + 2:06d}"


def test_rolled_back_receipt_gives_its_number_back(sessions: sessionmaker[Session]) -> None:
    prefix = uid("RB")
    with sessions() as s:
        register.configure_numbering(s, pattern=prefix + "/{number}", actor="admin")
        s.commit()
    with sessions() as s:
        lost = _item(s, inventory_number=None).inventory_number
        s.rollback()
    with sessions() as s:
        again = _item(s, inventory_number=None).inventory_number
        s.commit()
    assert again == lost  # no gap in the inventory book


@pytest.mark.parametrize("bad", ["", " 12", "12 ", "a\nb", "x" * 65])
def test_malformed_inventory_numbers_are_refused(session: Session, bad: str) -> None:
    with pytest.raises(InvalidInventoryNumber):
        register.add_item(session, inventory_number=bad, title="T", actor="cat")


@pytest.mark.parametrize("pattern", ["KZ-{n}", "KZ", "{number}{number}", "{number:zz}"])
def test_malformed_patterns_are_refused(session: Session, pattern: str) -> None:
    with pytest.raises(InvalidInventoryNumber):
        register.configure_numbering(session, pattern=pattern, actor="admin")


def test_legal_deposit_only_for_a_national_library(session: Session) -> None:
    # R5: legal deposit copies form only the funds of national libraries.
    with pytest.raises(SourceNotAllowed, match="R5"):
        _item(session, source=AcquisitionSource.LEGAL_DEPOSIT)
    register.set_national_library(session, True, actor="admin")
    assert _item(session, source="legal_deposit").source == "legal_deposit"
    session.rollback()


def test_lifecycle_follows_r8(session: Session) -> None:
    inv = _item(session).inventory_number
    # R8: unprocessed items are not given out.
    with pytest.raises(NotProcessed, match="R8"):
        register.set_status(session, inv, ItemStatus.ON_LOAN, actor="desk")
    with pytest.raises(InvalidTransition, match="barcode"):
        register.process_item(session, inv, location="Hall-1/S01", actor="proc")
    register.process_item(session, inv, barcode=uid("BC"), location="Hall-1/S01", actor="proc")
    register.set_status(session, inv, "available", actor="proc")
    register.set_status(session, inv, "on_loan", actor="desk")
    with pytest.raises(InvalidTransition):
        register.set_status(session, inv, "in_repair", actor="desk")
    register.set_status(session, inv, "available", actor="desk")
    with pytest.raises(InvalidTransition, match="write-off act"):
        register.set_status(session, inv, "written_off", actor="desk")
    actions = [e.action for e in audit.history(session, "item", inv)]
    assert actions[:3] == ["item.receive", "item.process", "item.status"]


def test_barcode_and_rfid_are_unique_across_items(session: Session) -> None:
    code = uid("BC")
    _item(session, barcode=code)
    with pytest.raises(CodeTaken, match=code):
        _item(session, rfid=code)


def test_repair_takes_item_out_of_use_until_finished(session: Session) -> None:
    inv = _item(session).inventory_number
    register.process_item(session, inv, rfid=uid("RF"), location="Store-2", actor="proc")
    register.set_status(session, inv, "available", actor="proc")
    action = register.start_action(session, inv, kind=ActionKind.REBINDING, actor="binder")
    assert register.get_item(session, inv).status == ItemStatus.IN_REPAIR
    copying = register.start_action(session, inv, kind="copying", actor="copier")
    register.finish_action(session, copying.id, actor="copier")
    assert register.get_item(session, inv).status == ItemStatus.IN_REPAIR
    register.finish_action(session, action.id, actor="binder", note="new boards")
    item = register.get_item(session, inv)
    assert item.status == ItemStatus.AVAILABLE
    assert [a.kind for a in item.actions] == ["rebinding", "copying"]


def test_write_off_keeps_items_and_forbids_further_change(sessions: sessionmaker[Session]) -> None:
    # R3–R4: items leave the fund only by an act, and remain in the register.
    with sessions() as s:
        a, b = _item(s).inventory_number, _item(s).inventory_number
        act_no = uid("WO")
        register.write_off(
            s,
            act_number=act_no,
            act_date=date.today(),
            reason="worn",
            inventory_numbers=[a, b],
            actor="head",
        )
        s.commit()
    with sessions() as s:
        act = register.get_write_off_act(s, act_no)
        assert sorted(i.inventory_number for i in act.items) == sorted([a, b])
        assert register.get_item(s, a).status == ItemStatus.WRITTEN_OFF
        with pytest.raises(ItemWrittenOff):
            register.set_status(s, a, "available", actor="x")
        with pytest.raises(ItemWrittenOff):
            register.write_off(
                s,
                act_number=uid("WO"),
                act_date=date.today(),
                reason="lost",
                inventory_numbers=[a],
                actor="head",
            )
        with pytest.raises(DuplicateAct):
            register.write_off(
                s,
                act_number=act_no,
                act_date=date.today(),
                reason="lost",
                inventory_numbers=[_item(s).inventory_number],
                actor="head",
            )
        with pytest.raises(RegisterError, match="note"):
            register.write_off(
                s,
                act_number=uid("WO"),
                act_date=date.today(),
                reason="other",
                inventory_numbers=[_item(s).inventory_number],
                actor="head",
            )


def test_write_off_is_all_or_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        good = _item(s).inventory_number
        s.commit()
        with pytest.raises(ItemNotFound):
            register.write_off(
                s,
                act_number=uid("WO"),
                act_date=date.today(),
                reason="lost",
                inventory_numbers=[good, "NO-SUCH-NUMBER"],
                actor="head",
            )
        s.rollback()
        assert register.get_item(s, good).status == ItemStatus.RECEIVED


def test_digital_copies_link_back_to_items(session: Session) -> None:
    inv = _item(session).inventory_number
    for version in (1, 2):
        assert register.next_copy_version(session, inv) == version
        register.add_digital_copy(
            session,
            inventory_number=inv,
            bag_id=uid("bag"),
            store_uri="file:///store/x",
            version=version,
            kek_id="kek-1",
            wrapped_key=b"\x01" * 40,
            pdfa_verdict="PDF/A-2b",
            ocr_confidence=91.5,
            payload_bytes=1234,
            file_count=3,
            page_count=4,
            batch_fingerprint=f"fp-{version}",
            actor="flow",
        )
    copies = register.digital_copies(session, inv)
    assert [c.version for c in copies] == [1, 2]
    assert copies[0].inventory_number == inv
    register.record_copy_event(
        session,
        copy=copies[0].bag_id,
        event_type="fixity check",
        outcome="success",
        detail="sha256 ok",
        agent="auditor",
    )
    register.update_wrapped_key(
        session, bag_id=copies[0].bag_id, wrapped=b"\x02" * 40, kek_id="kek-2", actor="keys"
    )
    assert register.get_digital_copy(session, copies[0].bag_id).kek_id == "kek-2"
    assert [e.event_type for e in register.copy_events(session, copies[0].bag_id)] == [
        "fixity check"
    ]
    rewrap = audit.history(session, "digital_copy", copies[0].bag_id)[-1]
    assert rewrap.action == "copy.rewrap" and "kek-1" in (rewrap.before or "")
    with pytest.raises(ItemNotFound):
        register.digital_copies(session, "NO-SUCH")
    latest = register.copy_facts(register.find_copy(session, inv))
    assert (latest.version, latest.page_count, latest.batch_fingerprint) == (2, 4, "fp-2")
    assert "wrapped_key" not in latest.as_dict() and latest.as_dict()["kek_id"] == "kek-1"
    assert register.find_copy(session, inv, version=1).kek_id == "kek-2"
    with pytest.raises(DigitalCopyNotFound, match="version 3"):
        register.find_copy(session, inv, version=3)
    with pytest.raises(DigitalCopyExists):
        register.add_digital_copy(
            session,
            inventory_number=inv,
            bag_id=uid("bag"),
            store_uri="file:///store/x",
            version=2,
            kek_id="k",
            wrapped_key=b"k",
            pdfa_verdict="PDF/A-2b",
            ocr_confidence=None,
            payload_bytes=1,
            file_count=1,
            actor="flow",
        )


def test_unknown_items_are_reported_by_number_and_code(session: Session) -> None:
    with pytest.raises(ItemNotFound, match="NOPE-1"):
        register.get_item(session, "NOPE-1")
    with pytest.raises(ItemNotFound, match="barcode or RFID"):
        register.find_item_by_code(session, "NOPE-2")
    assert session.scalar(select(Item.id).where(Item.inventory_number == "NOPE-1")) is None


def test_receipt_acts_list_newest_first_with_what_is_left_to_process(session: Session) -> None:
    """R9: the receipt acts' list, newest first and a page at a time, counts each act's items
    and those still waiting for library processing (R8: ``received``)."""
    from catalog_sync import items

    acts = [new_batch(session, on=date(2999, 1, n)) for n in (1, 2, 3)]
    received = items.receive_copies(session, act_number=acts[1].act_number, title="Жыр",
                                    actor="acq", count=3, source="purchase", price="10.00")
    assert len(set(received)) == 3
    items.process_for_use(session, received[0], actor="acq", barcode=uid("B"),
                          location="Hall-R/S1", shelf_mark="84")
    newest, total = items.receipt_summaries(session, limit=2)
    assert total >= 3
    assert [(a.act_number, a.items, a.unprocessed) for a in newest] == [
        (acts[2].act_number, 0, 0), (acts[1].act_number, 3, 2)]
    after, _total = items.receipt_summaries(session, limit=1, offset=2)
    assert after[0].act_number == acts[0].act_number
    # R5: copies need their source; an unknown act or no copies at all is refused.
    with pytest.raises(RegisterError, match="source"):
        items.receive_copies(session, act_number=acts[0].act_number, title="Жыр", actor="acq")
    with pytest.raises(RegisterError, match="no receipt act"):
        items.receive_copies(session, act_number="NO-SUCH-ACT", title="Жыр", actor="acq",
                             source="purchase")
    with pytest.raises(RegisterError, match="must be 1 to"):
        items.receive_copies(session, act_number=acts[0].act_number, title="Жыр", actor="acq",
                             source="purchase", count=0)
