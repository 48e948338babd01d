"""R9: the books as files a librarian prints (A4 HTML with the library's name) and opens (CSV)."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session

from catalog_sync import books, register
from catalog_sync.models import AcquisitionSource

from .conftest import uid


def test_books_written_as_html_and_csv(session: Session, tmp_path: Path) -> None:
    prefix = uid("B")
    rec = register.add_record(
        session,
        title="Қазақ халқының тарихы <т.1>",
        authors=["Ә. Марғұлан"],
        material_type="book",
        actor="acq",
    )
    poster = register.add_record(session, title="Наурыз", material_type="poster", actor="acq")
    batch = register.open_receipt_batch(
        session,
        act_number=prefix + "-R1",
        received_on=date(2031, 2, 3),
        supplier="Фолиант",
        actor="acq",
    )
    numbers = [f"{prefix}-{n}" for n in (9, 10, 11)]
    for inv, r, price in zip(
        numbers, (rec, rec, poster), ("100.50", "200.00", "5.25"), strict=True
    ):
        register.receive_item(
            session,
            record=r,
            inventory_number=inv,
            price=price,
            source=AcquisitionSource.PURCHASE,
            receipt_batch=batch,
            actor="acq",
        )
    register.write_off(
        session,
        act_number=prefix + "-W1",
        act_date=date(2031, 6, 1),
        reason="lost",
        inventory_numbers=[numbers[1]],
        actor="head",
    )
    session.flush()

    book = books.summary_book(session, year=2031)
    (receipt,) = [r for r in book.receipts if r.act_number == prefix + "-R1"]
    assert receipt.totals.total == books.Totals(3, 30575)
    assert receipt.totals.by_material == {
        "book": books.Totals(2, 30050),
        "poster": books.Totals(1, 525),
    }
    (off,) = [w for w in book.write_offs if w.act_number == prefix + "-W1"]
    assert off.totals.total.value == Decimal("200.00")

    html_path, csv_path = books.write_summary_book(
        book, tmp_path, library_name="Ұлттық академиялық кітапхана"
    )
    page = html_path.read_text(encoding="utf-8")
    assert "Ұлттық академиялық кітапхана" in page and "size: A4" in page
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8-sig")))
    total = next(r for r in rows if r["reference"] == prefix + "-R1" and r["breakdown"] == "total")
    assert (total["items"], total["value_tenge"]) == ("3", "305.75")

    # The inventory book: natural number order (9 before 10), the written-off line kept and marked.
    html_inv, csv_inv = books.write_inventory_book(
        session,
        tmp_path,
        library_name="Ұлттық академиялық кітапхана",
        from_number=numbers[0],
        to_number=numbers[-1],
    )
    lines = list(csv.DictReader(csv_inv.open(encoding="utf-8-sig")))
    assert [ln["inventory_number"] for ln in lines] == numbers
    assert lines[1]["status"] == "written_off" and lines[1]["write_off_act"] == prefix + "-W1"
    inv_page = html_inv.read_text(encoding="utf-8")
    assert "&lt;т.1&gt;" in inv_page  # titles are escaped, not injected
    assert f"act {prefix}-W1" in inv_page and "class=off" in inv_page
