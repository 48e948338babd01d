"""R14 stocktakes: the scope respected; missing / unexpected / misplaced exactly; big streams."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import register, stocktake
from catalog_sync.errors import StocktakeClosed
from catalog_sync.models import AcquisitionSource, ItemStatus

from .conftest import uid


def _shelve(s: Session, hall: str, shelf: str, n: int, tag: str) -> list[tuple[str, str]]:
    """n available items on ``hall/shelf``; returns (inventory number, barcode) pairs."""
    rec = register.add_record(s, title=f"Book on {shelf}", actor="acq")
    batch = register.open_receipt_batch(
        s, act_number=uid("ACT"), received_on=date(2024, 1, 9), actor="acq"
    )
    items = [
        register.BulkItem(
            record_id=rec.id,
            source=AcquisitionSource.PURCHASE,
            inventory_number=uid(tag),
            barcode=uid("BC"),
            location=f"{hall}/{shelf}" if shelf else hall,
            status=ItemStatus.AVAILABLE,
        )
        for _ in range(n)
    ]
    numbers = register.bulk_receive(s, batch=batch, items=items, actor="acq")
    return [(inv, b.barcode or "") for inv, b in zip(numbers, items, strict=True)]


def test_partial_stocktake_reports_exactly_what_is_wrong(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    hall, other = uid("Hall"), uid("Hall")
    with sessions() as s:
        s1 = _shelve(s, hall, "S1", 6, "A")
        s2 = _shelve(s, hall, "S2", 4, "A")
        elsewhere = _shelve(s, other, "S1", 5, "B")
        on_loan = _shelve(s, hall, "S2", 1, "L")[0]
        register.set_status(s, on_loan[0], "on_loan", actor="desk")
        gone = _shelve(s, hall, "S1", 1, "W")[0]
        register.write_off(
            s,
            act_number=uid("WO"),
            act_date=date(2024, 2, 1),
            reason="lost",
            inventory_numbers=[gone[0]],
            actor="head",
        )
        st = stocktake.start_stocktake(
            s,
            reason="change-of-responsible-person",
            responsible="Айгүл Сәрсенова",
            scope=hall,
            actor="head",
        )
        s.commit()
    missing = [s1[0], s1[1], s2[0]]
    misplaced = s1[2]
    scans = [f"{bc}\t{hall}/S1" for _, bc in s1[2:]]  # s1[2] is actually shelved on S1…
    scans[0] = f"{misplaced[1]}\t{hall}/S2"  # …but it is found on S2
    scans += [f"{bc}\t{hall}/S2" for _, bc in s2[1:]]
    scans += [f"{elsewhere[0][1]}\t{hall}/S2", f"{gone[1]}\t{hall}/S1"]  # 2 unexpected
    scans += scans[:3]  # read twice: no effect
    result = stocktake.ingest_scan_stream(
        sessions, st.id, io.StringIO("\n".join(scans) + "\n"), actor="scanner"
    )
    assert result.stored == len(scans) and result.refused == ()
    with sessions() as s:
        act = stocktake.close_stocktake(s, st.id, actor="head", mark_missing=True)
        s.commit()
    assert sorted(x.inventory_number or "" for x in act.missing) == sorted(i for i, _ in missing)
    assert {x.inventory_number for x in act.unexpected} == {elsewhere[0][0], gone[0]}
    assert [x.inventory_number for x in act.misplaced] == [misplaced[0]]
    assert [x.inventory_number for x in act.not_on_shelf] == [on_loan[0]]
    assert act.in_scope == 11 and act.found == 7
    with sessions() as s:
        # The other hall's unscanned items are untouched (Koha marks them missing).
        assert {register.get_item(s, i).status for i, _ in elsewhere} == {"available"}
        assert {register.get_item(s, i).status for i, _ in missing} == {"missing"}
        assert stocktake.stocktake_act(s, st.id) == act
        with pytest.raises(StocktakeClosed):
            stocktake.record_scans(s, st.id, [("X", None)])
    html_path, csv_path = stocktake.write_stocktake_act(act, tmp_path, library_name="Library")
    assert "Айгүл Сәрсенова" in html_path.read_text(encoding="utf-8")
    assert csv_path.read_text(encoding="utf-8-sig").count("\nmissing,") == 3


def test_hundred_thousand_scans_are_stored_without_loss(sessions: sessionmaker[Session]) -> None:
    hall = uid("Big")
    with sessions() as s:
        shelved = _shelve(s, hall, "", 2000, "S")
        st = stocktake.start_stocktake(s, reason="loss", responsible="R", scope=hall, actor="head")
        s.commit()
    codes = [shelved[i % 1990][1] for i in range(99_990)] + [f"UNKNOWN-{i}" for i in range(10)]
    stream = io.StringIO("".join(c + "\n" for c in codes) + "\x07bad\n")
    result = stocktake.ingest_scan_stream(
        sessions, st.id, stream, actor="gate", commit_every=20_000
    )
    assert (result.read, result.stored, len(result.refused)) == (100_001, 100_000, 1)
    with sessions() as s:
        assert stocktake.count_scans(s, st.id) == 100_000
        act = stocktake.close_stocktake(s, st.id, actor="head")
    assert act.scans == 100_000
    assert act.found == 1990 and len(act.missing) == 10
    assert sorted(x.code for x in act.unexpected) == sorted(f"UNKNOWN-{i}" for i in range(10))


def test_a_scan_batch_is_stored_once_however_often_it_is_sent(
    sessions: sessionmaker[Session],
) -> None:
    """The console's scanning page re-sends a batch whose answer it lost (R14: no scan lost,
    none counted twice): the second delivery is acknowledged and stores nothing."""
    from catalog_sync import audit
    from catalog_sync.errors import RegisterError

    hall = uid("Hall")
    with sessions() as s:
        shelf = _shelve(s, hall, "S1", 5, "Q")
        st = stocktake.start_stocktake(s, reason="loss", responsible="Сейітова Ә.", scope=hall,
                                       actor="t")
        s.commit()
        sid = st.id
    codes = [b for _, b in shelf[:3]] + ["UNKNOWN-1"]
    with sessions() as s:
        first = stocktake.record_scan_batch(s, sid, codes, batch="client0001:1", actor="staff:a",
                                            location=f"{hall}/S2")
        s.commit()
    with sessions() as s:
        again = stocktake.record_scan_batch(s, sid, codes, batch="client0001:1", actor="staff:a")
        s.commit()
    assert (first.stored, first.duplicate) == (4, False)
    assert (again.stored, again.duplicate) == (0, True)
    with sessions() as s:
        bad = stocktake.record_scan_batch(s, sid, ["ok-code", "x" * 65, "a\x07b"],
                                          batch="client0001:2", actor="staff:a")
        s.commit()
        assert bad.stored == 1 and len(bad.refused) == 2
        with pytest.raises(RegisterError):
            stocktake.record_scan_batch(s, sid, ["c"], batch="no seq", actor="staff:a")
        s.rollback()
        p = stocktake.stocktake_progress(s, sid)
        assert (p.scans, p.distinct_codes, p.expected, p.found) == (5, 5, 5, 3)
        assert (p.missing, p.unexpected, p.misplaced) == (2, 2, 3)
        assert audit.verify_log(s) == []
        stocktake.close_stocktake(s, sid, actor="t")
        s.commit()
    with sessions() as s, pytest.raises(StocktakeClosed):
        stocktake.record_scan_batch(s, sid, ["late"], batch="client0001:3", actor="staff:a")
