"""MARC21 lossless (issue 17): 1,000 generated records with Kazakh and Russian text and their
items exported, imported into a fresh register, exported again — every field and subfield the
same (and the files byte-identical); MARC language codes, 008, 856 to the e-library copy;
records from other catalogues lose their ISBD punctuation but not an initial's full stop."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pymarc
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from catalog_sync import marc, register
from catalog_sync.db import session_factory
from catalog_sync.models import ItemStatus, MaterialType, ValueFlag

from .conftest import fresh_engine

KK = ["Абай", "жолы", "Қара", "сөздер", "Көшпенділер", "Ұлы", "дала", "әні", "өлеңдер", "шежіре",
      "Қазақ", "тарихы", "ғылым", "Әдебиет", "Үміт", "Жұлдыз", "Құрмет", "Ақиқат", "Шоқан"]
RU = ["Война", "и", "мир", "История", "казахской", "степи", "Сборник", "стихов", "Очерки",
      "Ёлка", "Избранное", "Путь", "Абая", "Летопись", "Щит", "Эхо", "Юность", "Объявление"]
AUTHORS = ["Әуезов М.", "Құнанбайұлы А.", "Сейфуллин С.", "Толстой Л. Н.", "Жансүгіров І.",
           "Иванов И. И.", "Мұқанов С.", "Есенберлин І.", "Ahmetov A."]
PUBLISHERS = ["Жазушы", "Атамұра", "Мектеп", "Өнер", "Наука", "Просвещение", None]
LANGUAGES = ["kk", "ru", "en", "kk,ru", None]


def _title(rng: random.Random) -> str:
    words = rng.choice([KK, RU])
    title = " ".join(rng.choice(words) for _ in range(rng.randint(1, 6)))
    return title + rng.choice(["", "", ": роман", " / құраст.", ".", "…", " (1-том)"])


def _fill(s: Session, n_records: int) -> None:
    rng = random.Random(17)
    batches = [register.open_receipt_batch(s, act_number=f"ACT-{y}-{k:02d}",
                                           received_on=date(y, k, 10), actor="acq")
               for y in (2019, 2024) for k in (1, 6)]
    materials = list(MaterialType)
    n_item = 0
    shelved: list[str] = []
    pending: dict[int, list[register.BulkItem]] = {b.id: [] for b in batches}
    for r in range(n_records):
        record = register.add_record(
            s, title=_title(rng),
            authors=rng.sample(AUTHORS, rng.randint(0, 3)),
            publisher=rng.choice(PUBLISHERS),
            year=rng.choice([None, rng.randint(1890, 2025)]),
            language=rng.choice(LANGUAGES),
            isbn=f"978-601-{r:05d}-{r % 10}" if r % 3 == 0 else None,
            issn=f"{1000 + r % 9000:04d}-{r % 10000:04d}" if r % 11 == 0 else None,
            material_type=materials[r % len(materials)],
            legal_deposit=r % 7 == 0,
            actor="cat")
        for _ in range(rng.randint(0, 3)):
            n_item += 1
            inv = f"KZ-{n_item:06d}"
            on_shelf = rng.random() < 0.7
            flags = frozenset(rng.sample(list(ValueFlag), rng.randint(0, 2)))
            pending[rng.choice(batches).id].append(register.BulkItem(
                record_id=record.id, inventory_number=inv,
                source=rng.choice(["purchase", "exchange", "donation", "state_order", None]),
                price=rng.choice([None, "1500.00", "300.50", "12.05"]),
                barcode=f"BC{n_item:08d}" if on_shelf else None,
                rfid=f"E200{n_item:08X}" if on_shelf and rng.random() < 0.5 else None,
                location=f"Зал-{rng.randint(1, 3)}/С{rng.randint(1, 40)}" if on_shelf else None,
                shelf_mark=rng.choice([None, "84(5Каз)", "63.3(2)", "Ш 12"]) if on_shelf
                else None,
                status=ItemStatus.AVAILABLE if on_shelf else ItemStatus.RECEIVED,
                value_flags=flags, condition=rng.choice([None, "good", "fair", "poor"])))
            if on_shelf:
                shelved.append(inv)
    for batch in batches:
        register.bulk_receive(s, batch=batch, items=pending[batch.id], actor="acq")
    rng.shuffle(shelved)
    for inv in shelved[:20]:
        register.set_status(s, inv, ItemStatus.ON_LOAN, actor="desk")
    for inv in shelved[20:35]:
        register.set_status(s, inv, ItemStatus.IN_REPAIR, actor="conservator")
    for inv in shelved[35:45]:
        register.set_status(s, inv, ItemStatus.MISSING, actor="stocktake")
    register.write_off(s, act_number="WO-2025-01", act_date=date(2025, 2, 3), reason="worn",
                       inventory_numbers=sorted(shelved[45:75]), actor="head")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A SQLite register with 1,000 generated records and their items."""
    engine, _ = fresh_engine("sqlite", tmp_path_factory.mktemp("marc-src"), "unused")
    with session_factory(engine)() as s:
        _fill(s, 1000)
        s.commit()
    yield engine
    engine.dispose()


def _fields(path: Path, fmt: str) -> list[list[Any]]:
    if fmt == "marcxml":
        records = pymarc.parse_xml_to_array(str(path))
    else:
        with path.open("rb") as fh:
            records = list(pymarc.MARCReader(fh, to_unicode=True, force_utf8=True))
    out = []
    for rec in records:
        assert rec is not None
        fields: list[Any] = [str(rec.leader)]
        for f in rec.fields:
            if f.is_control_field():
                fields.append((f.tag, f.data))
            else:
                fields.append((f.tag, str(f.indicator1), str(f.indicator2),
                               [(sf.code, sf.value) for sf in f.subfields]))
        out.append(fields)
    return out


@pytest.mark.parametrize("fmt", ["marcxml", "iso2709"])
def test_thousand_records_export_import_export_is_lossless(
    source: Engine, tmp_path: Path, fmt: marc.MarcFormat
) -> None:
    ext = ".xml" if fmt == "marcxml" else ".mrc"
    first, second = tmp_path / f"first{ext}", tmp_path / f"second{ext}"
    with session_factory(source)() as s:
        assert marc.export_marc(s, first, fmt=fmt) == 1000
    fresh, _ = fresh_engine("sqlite", tmp_path, "unused")
    try:
        with session_factory(fresh)() as s:
            report = marc.import_marc(s, first, actor="import", fmt=fmt)
            s.commit()
            assert report.problems == ()
            assert report.records_added == 1000
            marc.export_marc(s, second, fmt=fmt)
    finally:
        fresh.dispose()
    a, b = _fields(first, fmt), _fields(second, fmt)
    assert len(a) == len(b) == 1000
    for ra, rb in zip(a, b, strict=True):
        assert ra == rb  # every field, indicator and subfield, in order
    assert first.read_bytes() == second.read_bytes()
    # What the issue named: the author keeps its full stop, MARC language codes, 008.
    flat = [f for rec in a for f in rec[1:]]
    authors = {sf[1] for f in flat if f[0] in ("100", "700") for sf in f[3]}
    assert "Әуезов М." in authors and "Толстой Л. Н." in authors
    codes = {sf[1] for f in flat if f[0] == "041" for sf in f[3]}
    assert codes == {"kaz", "rus", "eng"}
    fixed = [f[1] for f in flat if f[0] == "008"]
    assert len(fixed) == 1000 and all(len(x) == 40 for x in fixed)
    assert {x[35:38] for x in fixed} == {"kaz", "rus", "eng", "und"}
    shelf_marks = {sf[1] for f in flat if f[0] == "952" for sf in f[3] if sf[0] == "o"}
    assert "84(5Каз)" in shelf_marks


def test_856_links_each_digitised_item_to_its_e_library_page(tmp_path: Path) -> None:
    engine, _ = fresh_engine("sqlite", tmp_path, "unused")
    try:
        with session_factory(engine)() as s:
            rec = register.add_record(s, title="Абай жолы", authors=["Әуезов М."],
                                      language="kk", actor="cat")
            batch = register.open_receipt_batch(s, act_number="A-1",
                                                received_on=date(2024, 1, 9), actor="acq")
            register.bulk_receive(s, batch=batch, actor="acq", items=[
                register.BulkItem(record_id=rec.id, source="purchase", inventory_number=inv)
                for inv in ("KZ-1", "KZ-2")])
            register.add_digital_copy(
                s, inventory_number="KZ-1", bag_id="qor-KZ-1-v1", store_uri="file:///bags/x",
                version=1, kek_id="kek-1", wrapped_key=b"\x00" * 40, pdfa_verdict="PDF/A-2u",
                ocr_confidence=0.93, payload_bytes=1024, file_count=3, actor="op")
            out = tmp_path / "fund.xml"
            marc.export_marc(s, out, fmt="marcxml", elibrary_url="https://e.library.kz/")
    finally:
        engine.dispose()
    [record] = pymarc.parse_xml_to_array(str(out))
    links = [(f.indicators, f.get_subfields("3"), f.get_subfields("u"))
             for f in record.get_fields("856")]
    assert [(list(i), m, u) for i, m, u in links] == [
        (["4", "0"], ["KZ-1"], ["https://e.library.kz/copies/qor-KZ-1-v1"])]


def _foreign(path: Path) -> None:
    bad = pymarc.Record(force_utf8=True)  # an item whose source R5 does not know
    for field in (
        pymarc.Field(tag="001", data="EXT-2"),
        pymarc.Field(tag="245", indicators=pymarc.Indicators("0", "0"),
                     subfields=[pymarc.Subfield("a", "Қара сөздер")]),
        pymarc.Field(tag="952", indicators=pymarc.Indicators(" ", " "),
                     subfields=[pymarc.Subfield("i", "EXT-INV-1"), pymarc.Subfield("e", "gift")]),
    ):
        bad.add_field(field)  # type: ignore[no-untyped-call]  # pymarc leaves it unannotated
    rec = pymarc.Record(force_utf8=True)
    for field in (
        pymarc.Field(tag="001", data="EXT-1"),
        pymarc.Field(tag="008", data="990101s1942    xx |||||||||||||||||kaz d"),
        pymarc.Field(tag="100", indicators=pymarc.Indicators("1", " "),
                     subfields=[pymarc.Subfield("a", "Әуезов М.")]),
        pymarc.Field(tag="245", indicators=pymarc.Indicators("1", "0"),
                     subfields=[pymarc.Subfield("a", "Абай жолы /")]),
        pymarc.Field(tag="700", indicators=pymarc.Indicators("1", " "),
                     subfields=[pymarc.Subfield("a", "Smith, John.")]),
        pymarc.Field(tag="700", indicators=pymarc.Indicators("1", " "),
                     subfields=[pymarc.Subfield("a", "Құнанбайұлы А.,")]),
    ):
        rec.add_field(field)  # type: ignore[no-untyped-call]  # pymarc leaves it unannotated
    path.write_bytes(rec.as_marc() + bad.as_marc())


def test_a_foreign_record_loses_isbd_punctuation_but_not_an_initials_full_stop(
    tmp_path: Path,
) -> None:
    engine, _ = fresh_engine("sqlite", tmp_path, "unused")
    path = tmp_path / "ext.mrc"
    _foreign(path)
    try:
        with session_factory(engine)() as s:
            report = marc.import_marc(s, path, actor="import")
            [problem] = report.problems
            assert (problem.position, problem.control_number) == (2, "EXT-2")
            assert all(v in problem.reason for v in
                       ("purchase", "exchange", "donation", "state_order", "legal_deposit"))
            rec = register.get_record(s, 1)
            assert rec.title == "Абай жолы"
            assert rec.authors == ["Әуезов М.", "Smith, John", "Құнанбайұлы А."]
            assert rec.language == "kk"  # 008/35-37 kaz
            assert rec.created_at.date() == date(1999, 1, 1)  # 008/00-05, date entered
    finally:
        engine.dispose()


def test_the_format_follows_the_extension_and_a_mismatch_is_refused() -> None:
    assert marc.format_for(Path("fund.xml")) == "marcxml"
    assert marc.format_for(Path("fund.MRC")) == "iso2709"
    assert marc.format_for(Path("fund.dat"), "iso2709") == "iso2709"
    with pytest.raises(marc.MarcError) as mismatch:
        marc.format_for(Path("fund.xml"), "iso2709")
    assert mismatch.value.exit_code == 1
    with pytest.raises(marc.MarcError) as unknown:
        marc.format_for(Path("fund.txt"))
    assert all(v in str(unknown.value) for v in marc.FORMATS)
