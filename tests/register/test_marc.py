"""MARC21: export → import into an empty register gives the same records and items; imports are
idempotent; a malformed record is reported and the rest imported."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pymarc
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog_sync import marc, register
from catalog_sync.db import session_factory
from catalog_sync.models import BibRecord, ItemStatus, ValueFlag

from .conftest import drop_postgres_database, fresh_engine


@pytest.fixture
def empty_register(register_engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """A second, empty register to import into (same backend as the module's)."""
    engine, url = fresh_engine(register_engine.dialect.name, tmp_path, "qor_marc")
    try:
        yield engine
    finally:
        engine.dispose()
        if url is not None:
            drop_postgres_database(url)


def _add(rec: pymarc.Record, field: pymarc.Field) -> None:
    rec.add_field(field)  # type: ignore[no-untyped-call]  # pymarc leaves it unannotated


def _fill(s: Session) -> None:
    batch = register.open_receipt_batch(
        s, act_number="R-2023-07", received_on=date(2023, 7, 4), supplier="Атамұра", actor="acq"
    )
    abai = register.add_record(
        s,
        title="Қара сөздер",
        authors=["Абай Құнанбайұлы", "М. Әуезов"],
        publisher="Жазушы",
        year=1993,
        language="kaz",  # MARC code: the register holds it as kk
        isbn="5-605-01234-5",
        material_type="book",
        actor="cat",
    )
    journal = register.add_record(
        s,
        title="Ақиқат",
        issn="0134-3610",
        material_type="periodical",
        legal_deposit=True,
        actor="cat",
    )
    poster = register.add_record(s, title="Наурыз мейрамы", material_type="poster", actor="cat")
    register.add_record(s, title="Record without items", material_type="electronic", actor="cat")
    for n, (rec, price) in enumerate(
        [
            (abai, "1500.00"),
            (abai, "1500.00"),
            (journal, "300.50"),
            (poster, None),
            (journal, "300.50"),
        ],
        1,
    ):
        register.receive_item(
            s,
            record=rec,
            inventory_number=f"M-{n:03d}",
            source="purchase",
            receipt_batch=batch,
            price=price,
            actor="acq",
            value_flags={ValueFlag.HISTORICAL} if n == 1 else set(),
            condition="fair" if n == 2 else None,
        )
    register.process_item(
        s, "M-001", barcode="BC-001", rfid="RF-001", location="Hall-1/S1", actor="p"
    )
    register.set_status(s, "M-001", "available", actor="p")
    register.process_item(s, "M-002", barcode="BC-002", location="Hall-1/S1", actor="p")
    register.set_status(s, "M-002", "available", actor="p")
    register.set_status(s, "M-002", "on_loan", actor="desk")
    register.process_item(s, "M-003", barcode="BC-003", location="Store", actor="p")
    register.write_off(
        s,
        act_number="W-2024-1",
        act_date=date(2024, 2, 2),
        reason="worn",
        inventory_numbers=["M-003"],
        actor="head",
    )


def _snapshot(s: Session) -> list[dict[str, Any]]:
    out = []
    for r in s.scalars(select(BibRecord).order_by(BibRecord.id)):
        out.append(
            {
                "control": marc.control_number_of(r),
                "title": r.title,
                "authors": r.authors,
                "publisher": r.publisher,
                "year": r.year,
                "language": r.language,
                "isbn": r.isbn,
                "issn": r.issn,
                "material": r.material_type,
                "legal_deposit": r.legal_deposit,
                "items": sorted(
                    (
                        i.inventory_number,
                        i.barcode,
                        i.rfid,
                        i.location,
                        i.price_minor,
                        i.source,
                        i.status,
                        sorted(i.value_flags),
                        i.condition,
                        i.receipt_batch.act_number,
                        i.receipt_batch.received_on,
                        i.write_off_act.act_number if i.write_off_act else None,
                        i.write_off_act.act_date if i.write_off_act else None,
                        i.write_off_act.reason if i.write_off_act else None,
                    )
                    for i in r.items
                ),
            }
        )
    return out


@pytest.mark.parametrize("fmt", ["iso2709", "marcxml"])
def test_round_trip_into_an_empty_register_is_exact_and_idempotent(
    session: Session, empty_register: Engine, tmp_path: Path, fmt: marc.MarcFormat
) -> None:
    _fill(session)
    before = _snapshot(session)
    path = tmp_path / f"export.{'mrc' if fmt == 'iso2709' else 'xml'}"
    assert marc.export_marc(session, path, fmt=fmt) == 4
    session.rollback()
    with session_factory(empty_register)() as target:
        report = marc.import_marc(target, path, actor="import")
        target.commit()
        assert report.problems == ()
        assert (report.records_added, report.items_added) == (4, 5)
        assert _snapshot(target) == before
        assert register.get_item(target, "M-002").status == ItemStatus.ON_LOAN
        again = marc.import_marc(target, path, actor="import")
        target.commit()
        assert (
            again.records_added,
            again.records_present,
            again.items_added,
            again.items_present,
        ) == (0, 4, 0, 5)
        assert _snapshot(target) == before


def test_malformed_records_are_reported_and_the_rest_imported(
    session: Session, empty_register: Engine, tmp_path: Path
) -> None:
    _fill(session)
    good = tmp_path / "good.mrc"
    marc.export_marc(session, good)
    session.rollback()
    records = good.read_bytes().split(b"\x1d")[:-1]
    broken = bytearray(records[1])
    broken[24:36] = b"XXXXXXXXXXXX"  # garbage in the directory, length and terminator intact
    no_title = pymarc.Record(force_utf8=True)
    _add(no_title, pymarc.Field(tag="001", data="NO-TITLE"))
    taken = pymarc.Record(force_utf8=True)  # claims an inventory number another record has
    _add(taken, pymarc.Field(tag="001", data="THIEF"))
    _add(
        taken,
        pymarc.Field(
            tag="245",
            indicators=pymarc.Indicators("0", "0"),
            subfields=[pymarc.Subfield("a", "Thief")],
        ),
    )
    _add(
        taken,
        pymarc.Field(
            tag="952",
            indicators=pymarc.Indicators(" ", " "),
            subfields=[pymarc.Subfield("i", "M-001")],
        ),
    )
    path = tmp_path / "mixed.mrc"
    path.write_bytes(
        records[0]
        + b"\x1d"
        + bytes(broken)
        + b"\x1d"
        + no_title.as_marc()
        + taken.as_marc()
        + b"\x1d".join(records[2:])
        + b"\x1d"
    )
    with session_factory(empty_register)() as target:
        report = marc.import_marc(target, path, actor="import")
        target.commit()
        reasons = {p.position: p.reason for p in report.problems}
        assert set(reasons) == {2, 3, 4}
        assert "not a readable MARC record" in reasons[2]
        assert "245" in reasons[3]
        assert "M-001" in reasons[4] and "R14" in reasons[4]
        assert report.records_added == 3  # records 1, 5, 6
        assert target.scalar(select(BibRecord).where(BibRecord.control_number == "THIEF")) is None
