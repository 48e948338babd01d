"""The accounting books of R9: the summary book and the inventory book, as data, HTML and CSV.

* Summary book (жиынтық есеп кітабы · книга суммарного учёта, КСУ): one line per receipt act and
  per write-off act of the year, with counts and value by material type and by source, and the
  fund's running balance by year (opening, received, written off, closing).
* Inventory book (инвентарлық кітап · инвентарная книга): one line per item in inventory-number
  order, written-off items included and marked with their act.

Values are whole tiyn internally (exact sums); the writers print tenge with two decimals. The
HTML is a self-contained page laid out for printing on A4 with the library's name on it.
"""

from __future__ import annotations

import csv
import html
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Final

from sqlalchemy import extract, func, select
from sqlalchemy.orm import Session

from catalog_sync import vocabulary
from catalog_sync.models import (
    BibRecord,
    Item,
    MaterialType,
    ReceiptBatch,
    WriteOffAct,
    tiyn_to_tenge,
)
from catalog_sync.register import sort_key

NOT_RECORDED = "not_recorded"


@dataclass(frozen=True)
class Totals:
    """A count of items and their value in tiyn."""

    count: int = 0
    value_minor: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.count + other.count, self.value_minor + other.value_minor)

    def __sub__(self, other: Totals) -> Totals:
        return Totals(self.count - other.count, self.value_minor - other.value_minor)

    @property
    def value(self) -> Decimal:
        """Value in tenge."""
        return tiyn_to_tenge(self.value_minor) or Decimal("0.00")


@dataclass(frozen=True)
class Breakdown:
    """Totals, and the same split by material type (R2) and by source of acquisition (R5)."""

    total: Totals = Totals()
    by_material: Mapping[str, Totals] = field(default_factory=dict)
    by_source: Mapping[str, Totals] = field(default_factory=dict)

    def __add__(self, other: Breakdown) -> Breakdown:
        return Breakdown(
            self.total + other.total,
            _merge(self.by_material, other.by_material, 1),
            _merge(self.by_source, other.by_source, 1),
        )

    def __sub__(self, other: Breakdown) -> Breakdown:
        return Breakdown(
            self.total - other.total,
            _merge(self.by_material, other.by_material, -1),
            _merge(self.by_source, other.by_source, -1),
        )


def _merge(a: Mapping[str, Totals], b: Mapping[str, Totals], sign: int) -> dict[str, Totals]:
    out = dict(a)
    for key, t in b.items():
        cur = out.get(key, Totals())
        out[key] = cur + t if sign > 0 else cur - t
    return {k: v for k, v in sorted(out.items()) if v != Totals()}


class _Accumulator:
    def __init__(self) -> None:
        self.total = Totals()
        self.material: dict[str, Totals] = defaultdict(Totals)
        self.source: dict[str, Totals] = defaultdict(Totals)

    def add(self, material: str, source: str | None, count: int, value: int | None) -> None:
        t = Totals(int(count), int(value or 0))
        self.total += t
        self.material[material] += t
        self.source[source or NOT_RECORDED] += t

    def freeze(self) -> Breakdown:
        return Breakdown(
            self.total, dict(sorted(self.material.items())), dict(sorted(self.source.items()))
        )


@dataclass(frozen=True)
class ReceiptLine:
    """One receipt act of the year (Part 1 of the summary book)."""

    act_number: str
    received_on: date
    supplier: str | None
    totals: Breakdown


@dataclass(frozen=True)
class WriteOffLine:
    """One write-off act of the year (Part 2 of the summary book)."""

    act_number: str
    act_date: date
    reason: str
    totals: Breakdown


@dataclass(frozen=True)
class YearBalance:
    """The fund's movement in one year (Part 3): opening + received − written off = closing."""

    year: int
    opening: Breakdown
    received: Breakdown
    written_off: Breakdown
    closing: Breakdown


@dataclass(frozen=True)
class SummaryBook:
    """The summary accounting book for one year, with the running balance of earlier years."""

    year: int
    receipts: tuple[ReceiptLine, ...]
    write_offs: tuple[WriteOffLine, ...]
    balance: tuple[YearBalance, ...]

    @property
    def this_year(self) -> YearBalance:
        """The balance line of :attr:`year`."""
        return self.balance[-1]


def summary_book(session: Session, *, year: int) -> SummaryBook:
    """Build the summary book of ``year`` from the register (R9)."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    count, value = func.count(Item.id), func.sum(Item.price_minor)

    receipts: dict[int, _Accumulator] = defaultdict(_Accumulator)
    for batch_id, material, source, n, v in session.execute(
        select(Item.receipt_batch_id, BibRecord.material_type, Item.source, count, value)
        .join(BibRecord, Item.record_id == BibRecord.id)
        .join(ReceiptBatch, Item.receipt_batch_id == ReceiptBatch.id)
        .where(ReceiptBatch.received_on.between(start, end))
        .group_by(Item.receipt_batch_id, BibRecord.material_type, Item.source)
    ):
        receipts[batch_id].add(material, source, n, v)
    batches = (
        {
            b.id: b
            for b in session.scalars(
                select(ReceiptBatch).where(ReceiptBatch.id.in_(list(receipts)))
            )
        }
        if receipts
        else {}
    )
    receipt_lines = tuple(
        sorted(
            (
                ReceiptLine(b.act_number, b.received_on, b.supplier, receipts[b.id].freeze())
                for b in batches.values()
            ),
            key=lambda r: (r.received_on, r.act_number),
        )
    )

    offs: dict[int, _Accumulator] = defaultdict(_Accumulator)
    for act_id, material, source, n, v in session.execute(
        select(Item.write_off_act_id, BibRecord.material_type, Item.source, count, value)
        .join(BibRecord, Item.record_id == BibRecord.id)
        .join(WriteOffAct, Item.write_off_act_id == WriteOffAct.id)
        .where(WriteOffAct.act_date.between(start, end))
        .group_by(Item.write_off_act_id, BibRecord.material_type, Item.source)
    ):
        offs[int(act_id or 0)].add(material, source, n, v)
    acts = (
        {
            a.id: a
            for a in session.scalars(select(WriteOffAct).where(WriteOffAct.id.in_(list(offs))))
        }
        if offs
        else {}
    )
    write_off_lines = tuple(
        sorted(
            (
                WriteOffLine(a.act_number, a.act_date, a.reason, offs[a.id].freeze())
                for a in acts.values()
            ),
            key=lambda r: (r.act_date, r.act_number),
        )
    )

    received_by_year: dict[int, _Accumulator] = defaultdict(_Accumulator)
    r_year = extract("year", ReceiptBatch.received_on)
    for y, material, source, n, v in session.execute(
        select(r_year, BibRecord.material_type, Item.source, count, value)
        .join(BibRecord, Item.record_id == BibRecord.id)
        .join(ReceiptBatch, Item.receipt_batch_id == ReceiptBatch.id)
        .where(ReceiptBatch.received_on <= end)
        .group_by(r_year, BibRecord.material_type, Item.source)
    ):
        received_by_year[int(y)].add(material, source, n, v)
    off_by_year: dict[int, _Accumulator] = defaultdict(_Accumulator)
    w_year = extract("year", WriteOffAct.act_date)
    for y, material, source, n, v in session.execute(
        select(w_year, BibRecord.material_type, Item.source, count, value)
        .join(BibRecord, Item.record_id == BibRecord.id)
        .join(WriteOffAct, Item.write_off_act_id == WriteOffAct.id)
        .where(WriteOffAct.act_date <= end)
        .group_by(w_year, BibRecord.material_type, Item.source)
    ):
        off_by_year[int(y)].add(material, source, n, v)

    first = min([*received_by_year, *off_by_year, year])
    balance: list[YearBalance] = []
    opening = Breakdown()
    for y in range(first, year + 1):
        got = received_by_year[y].freeze() if y in received_by_year else Breakdown()
        lost = off_by_year[y].freeze() if y in off_by_year else Breakdown()
        closing = opening + got - lost
        balance.append(YearBalance(y, opening, got, lost, closing))
        opening = closing
    return SummaryBook(year, receipt_lines, write_off_lines, tuple(balance))


@dataclass(frozen=True)
class InventoryLine:
    """One line of the inventory book: one item (R9 individual accounting)."""

    inventory_number: str
    received_on: date
    receipt_act: str
    title: str
    authors: tuple[str, ...]
    year: int | None
    material_type: str
    source: str | None
    price_minor: int | None
    status: str
    write_off_act: str | None
    write_off_date: date | None

    @property
    def price(self) -> Decimal | None:
        """Price in tenge."""
        return tiyn_to_tenge(self.price_minor)

    @property
    def written_off(self) -> bool:
        """Whether the item left the fund (it stays in the book, marked)."""
        return self.write_off_act is not None


def iter_inventory_book(
    session: Session, *, from_number: str | None = None, to_number: str | None = None
) -> Iterator[InventoryLine]:
    """Inventory-book lines in inventory-number order (natural order: 'A-9' before 'A-10'),
    from ``from_number`` to ``to_number`` inclusive; streamed, so a whole fund fits."""
    stmt = (
        select(
            Item.inventory_number,
            ReceiptBatch.received_on,
            ReceiptBatch.act_number,
            BibRecord.title,
            BibRecord.authors,
            BibRecord.year,
            BibRecord.material_type,
            Item.source,
            Item.price_minor,
            Item.status,
            WriteOffAct.act_number,
            WriteOffAct.act_date,
        )
        .join(BibRecord, Item.record_id == BibRecord.id)
        .join(ReceiptBatch, Item.receipt_batch_id == ReceiptBatch.id)
        .outerjoin(WriteOffAct, Item.write_off_act_id == WriteOffAct.id)
        .order_by(Item.sort_key, Item.inventory_number)
        .execution_options(yield_per=2000)
    )
    if from_number is not None:
        stmt = stmt.where(Item.sort_key >= sort_key(from_number))
    if to_number is not None:
        stmt = stmt.where(Item.sort_key <= sort_key(to_number))
    for row in session.execute(stmt):
        yield InventoryLine(
            inventory_number=row[0],
            received_on=row[1],
            receipt_act=row[2],
            title=row[3],
            authors=tuple(row[4] or ()),
            year=row[5],
            material_type=row[6],
            source=row[7],
            price_minor=row[8],
            status=row[9],
            write_off_act=row[10],
            write_off_date=row[11],
        )


def inventory_book(
    session: Session, *, from_number: str | None = None, to_number: str | None = None
) -> list[InventoryLine]:
    """The inventory book (or a range of it) as a list; see :func:`iter_inventory_book`."""
    return list(iter_inventory_book(session, from_number=from_number, to_number=to_number))


# --- writers ----------------------------------------------------------------------------------

MATERIAL_LABELS = {code: words["en"] for code, words in vocabulary.MATERIAL.items()}
"""English names of the material types (kept for callers; :mod:`.vocabulary` has all three)."""

#: The books' fixed words, per report language (R9; terms of ``shared/glossary.md``).
_WORDS: Final[Mapping[str, Mapping[str, str]]] = {
    "kk": {
        "summary_title": "{year} жылғы жиынтық есеп кітабы",
        "part1": "1-бөлім. Қорға түсу (түгендеу актілері)",
        "part2": "2-бөлім. Қордан шығу (есептен шығару актілері)",
        "part3": "3-бөлім. Қордың жылдар бойынша қозғалысы",
        "act": "Акт", "date": "Күні", "supplier": "Жеткізуші", "reason": "Себебі",
        "year": "Жыл", "line": "Жол", "items": "Даналар", "value": "Құны, ₸",
        "received_in": "{year} жылы түсті", "written_off_in": "{year} жылы есептен шығарылды",
        "opening": "жыл басындағы қалдық", "received": "түсті",
        "written_off": "есептен шығарылды", "closing": "жыл соңындағы қалдық",
        "inventory_title": "Инвентарлық кітап",
        "range": ", {start} бастап {end} дейінгі нөмірлер",
        "inv": "Инв. №", "received_on": "Түскен күні", "receipt_act": "Түгендеу акті",
        "author_title": "Авторы, атауы", "material": "Құжат түрі", "source": "Түсу көзі",
        "price": "Бағасы, ₸", "off": "Есептен шығарылды",
        "off_mark": "{act} акті, {date}", "count": "Барлығы {count} дана",
    },
    "ru": {
        "summary_title": "Книга суммарного учёта за {year} год",
        "part1": "Часть 1. Поступление в фонд (акты поступления)",
        "part2": "Часть 2. Выбытие из фонда (акты списания)",
        "part3": "Часть 3. Движение фонда по годам",
        "act": "Акт", "date": "Дата", "supplier": "Поставщик", "reason": "Причина",
        "year": "Год", "line": "Строка", "items": "Экземпляров", "value": "Стоимость, ₸",
        "received_in": "Поступило за {year} год", "written_off_in": "Выбыло за {year} год",
        "opening": "состоит на начало года", "received": "поступило",
        "written_off": "выбыло", "closing": "состоит на конец года",
        "inventory_title": "Инвентарная книга",
        "range": ", номера с {start} по {end}",
        "inv": "Инв. №", "received_on": "Дата поступления", "receipt_act": "Акт поступления",
        "author_title": "Автор, заглавие", "material": "Вид документа",
        "source": "Источник", "price": "Цена, ₸", "off": "Списано",
        "off_mark": "акт {act}, {date}", "count": "Всего {count} экз.",
    },
    "en": {
        "summary_title": "Summary accounting book {year}",
        "part1": "Part 1. Receipts (акт поступления · түгендеу акті)",
        "part2": "Part 2. Write-offs (акт списания · есептен шығару акті)",
        "part3": "Part 3. Movement of the fund by year",
        "act": "Act", "date": "Date", "supplier": "Supplier", "reason": "Reason",
        "year": "Year", "line": "Line", "items": "Items", "value": "Value, ₸",
        "received_in": "Received in {year}", "written_off_in": "Written off in {year}",
        "opening": "opening balance", "received": "received",
        "written_off": "written off", "closing": "closing balance",
        "inventory_title": "Inventory book",
        "range": ", numbers {start} to {end}",
        "inv": "Inv. No", "received_on": "Received", "receipt_act": "Act",
        "author_title": "Author, title", "material": "Material", "source": "Source",
        "price": "Price, ₸", "off": "Written off",
        "off_mark": "act {act}, {date}", "count": "{count} items",
    },
}


def _words(language: str) -> Mapping[str, str]:
    return _WORDS[vocabulary.check_language(language)]


_CSS = """
@page { size: A4 landscape; margin: 12mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 9pt; color: #000; }
h1 { font-size: 13pt; margin: 0; } h2 { font-size: 11pt; margin: 10pt 0 4pt; }
.library { font-size: 11pt; font-weight: bold; }
table { border-collapse: collapse; width: 100%; page-break-inside: auto; }
thead { display: table-header-group; } tr { page-break-inside: avoid; }
th, td { border: 0.5pt solid #000; padding: 2pt 3pt; vertical-align: top; }
th { background: #eee; } td.n { text-align: right; white-space: nowrap; }
tr.off td { color: #555; text-decoration: line-through; } tr.off td.mark { text-decoration: none; }
tfoot td { font-weight: bold; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, library: str, body: str, language: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{language}"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<div class="library">{_e(library)}</div><h1>{_e(title)}</h1>{body}</body></html>\n'
    )


def summary_columns(book: SummaryBook) -> tuple[list[str], list[str]]:
    """The material types and sources the book's lines use, in the order of its columns."""
    materials: set[str] = set()
    sources: set[str] = set()
    parts: list[Breakdown] = [r.totals for r in book.receipts] + [w.totals for w in book.write_offs]
    for b in book.balance:
        parts += [b.opening, b.received, b.written_off, b.closing]
    for p in parts:
        materials |= set(p.by_material)
        sources |= set(p.by_source)
    order = [m.value for m in MaterialType]
    return sorted(materials, key=order.index), sorted(sources)


def _cells(b: Breakdown, materials: list[str], sources: list[str]) -> str:
    cells = [f"<td class=n>{b.total.count}</td><td class=n>{b.total.value}</td>"]
    cells += [f"<td class=n>{b.by_material.get(m, Totals()).count}</td>" for m in materials]
    cells += [f"<td class=n>{b.by_source.get(s, Totals()).count}</td>" for s in sources]
    return "".join(cells)


def render_summary_html(book: SummaryBook, *, library_name: str, language: str = "en") -> str:
    """The summary book as a printable A4 HTML page, its headings and labels in ``language``
    (kk, ru or en); the figures are the same in every language."""
    w = _words(language)
    materials, sources = summary_columns(book)
    head_tail = (
        f"<th>{w['items']}</th><th>{w['value']}</th>"
        + "".join(f"<th>{_e(vocabulary.label(vocabulary.MATERIAL, m, language))}</th>"
                  for m in materials)
        + "".join(f"<th>{_e(vocabulary.label(vocabulary.SOURCE, s, language))}</th>"
                  for s in sources)
    )
    body = [
        f"<h2>{w['part1']}</h2><table><thead><tr>"
        f"<th>{w['act']}</th><th>{w['date']}</th><th>{w['supplier']}</th>{head_tail}"
        "</tr></thead><tbody>"
    ]
    for r in book.receipts:
        body.append(
            f"<tr><td>{_e(r.act_number)}</td><td>{r.received_on}</td><td>{_e(r.supplier)}</td>"
            f"{_cells(r.totals, materials, sources)}</tr>"
        )
    body.append(
        f"</tbody><tfoot><tr><td colspan=3>{w['received_in'].format(year=book.year)}</td>"
        f"{_cells(book.this_year.received, materials, sources)}</tr></tfoot></table>"
    )
    body.append(
        f"<h2>{w['part2']}</h2><table><thead><tr>"
        f"<th>{w['act']}</th><th>{w['date']}</th><th>{w['reason']}</th>{head_tail}"
        "</tr></thead><tbody>"
    )
    for off in book.write_offs:
        reason = vocabulary.label(vocabulary.WRITE_OFF_REASON, off.reason, language)
        body.append(
            f"<tr><td>{_e(off.act_number)}</td><td>{off.act_date}</td><td>{_e(reason)}</td>"
            f"{_cells(off.totals, materials, sources)}</tr>"
        )
    body.append(
        f"</tbody><tfoot><tr><td colspan=3>{w['written_off_in'].format(year=book.year)}</td>"
        f"{_cells(book.this_year.written_off, materials, sources)}</tr></tfoot></table>"
    )
    body.append(
        f"<h2>{w['part3']}</h2><table><thead><tr>"
        f"<th>{w['year']}</th><th colspan=2>{w['line']}</th>{head_tail}</tr></thead><tbody>"
    )
    for b in book.balance:
        for key, part in (
            ("opening", b.opening),
            ("received", b.received),
            ("written_off", b.written_off),
            ("closing", b.closing),
        ):
            body.append(
                f"<tr><td>{b.year}</td><td colspan=2>{w[key]}</td>"
                f"{_cells(part, materials, sources)}</tr>"
            )
    body.append("</tbody></table>")
    return _page(w["summary_title"].format(year=book.year), library_name, "".join(body),
                 language)


def summary_csv_rows(book: SummaryBook) -> Iterator[list[str]]:
    """The summary book as CSV rows (header first), one row per line and breakdown."""
    yield ["section", "reference", "date", "detail", "breakdown", "items", "value_tenge"]

    def rows(section: str, ref: str, day: str, detail: str, b: Breakdown) -> Iterator[list[str]]:
        yield [section, ref, day, detail, "total", str(b.total.count), str(b.total.value)]
        for m, t in b.by_material.items():
            yield [section, ref, day, detail, f"material:{m}", str(t.count), str(t.value)]
        for s, t in b.by_source.items():
            yield [section, ref, day, detail, f"source:{s}", str(t.count), str(t.value)]

    for r in book.receipts:
        yield from rows(
            "receipt", r.act_number, r.received_on.isoformat(), r.supplier or "", r.totals
        )
    for w in book.write_offs:
        yield from rows("write_off", w.act_number, w.act_date.isoformat(), w.reason, w.totals)
    for y in book.balance:
        for label, part in (
            ("opening", y.opening),
            ("received", y.received),
            ("written_off", y.written_off),
            ("closing", y.closing),
        ):
            yield from rows("balance", str(y.year), "", label, part)


def csv_chunks(rows: Iterable[Sequence[object]], *, batch: int = 500) -> Iterator[bytes]:
    """``rows`` as the bytes of the books' CSV files (UTF-8 with a byte-order mark, so the
    spreadsheet programs librarians use read Kazakh letters correctly), a few hundred rows a
    chunk: what the CLI writes to disk and the console sends as a download, streamed."""
    yield "\ufeff".encode()
    buf = io.StringIO()
    writer = csv.writer(buf)
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % batch == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def _write_csv(path: Path, rows: Iterable[Sequence[object]]) -> None:
    with path.open("wb") as fh:
        for chunk in csv_chunks(rows):
            fh.write(chunk)


def write_summary_book(
    book: SummaryBook, directory: Path, *, library_name: str, language: str = "en"
) -> tuple[Path, Path]:
    """Write ``summary-<year>.html`` (in ``language``) and ``summary-<year>.csv`` (machine keys,
    the same in every language) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    html_path = directory / f"summary-{book.year}.html"
    csv_path = directory / f"summary-{book.year}.csv"
    html_path.write_text(render_summary_html(book, library_name=library_name, language=language),
                         encoding="utf-8")
    _write_csv(csv_path, summary_csv_rows(book))
    return html_path, csv_path


INVENTORY_HEADER = [
    "inventory_number",
    "received_on",
    "receipt_act",
    "authors",
    "title",
    "year",
    "material_type",
    "source",
    "price_tenge",
    "status",
    "write_off_act",
    "write_off_date",
]


def inventory_csv_rows(lines: Iterable[InventoryLine]) -> Iterator[list[str]]:
    """The inventory book as CSV rows (header first)."""
    yield INVENTORY_HEADER
    for line in lines:
        yield _inventory_row(line)


def inventory_title(
    from_number: str | None = None, to_number: str | None = None, *, language: str = "en"
) -> str:
    """The inventory book's title in ``language``, naming the range when it is one."""
    w = _words(language)
    return w["inventory_title"] + (
        w["range"].format(start=from_number or "…", end=to_number or "…")
        if from_number or to_number else ""
    )


def inventory_stem(from_number: str | None = None, to_number: str | None = None) -> str:
    """The inventory book's file name without extension (``inventory-<from>-<to>``)."""
    return f"inventory-{_safe(from_number or 'first')}-{_safe(to_number or 'last')}"


def _inventory_row(line: InventoryLine) -> list[str]:
    return [
        line.inventory_number,
        line.received_on.isoformat(),
        line.receipt_act,
        "; ".join(line.authors),
        line.title,
        "" if line.year is None else str(line.year),
        line.material_type,
        line.source or NOT_RECORDED,
        "" if line.price is None else str(line.price),
        line.status,
        line.write_off_act or "",
        "" if line.write_off_date is None else line.write_off_date.isoformat(),
    ]


def render_inventory_html(
    lines: Iterable[InventoryLine], *, library_name: str, title: str, language: str = "en"
) -> str:
    """The inventory book (or a range) as a printable A4 HTML page; written-off lines marked.
    Column labels, material types, sources and marks are in ``language``."""
    w = _words(language)
    body = [
        f"<table><thead><tr><th>{w['inv']}</th><th>{w['received_on']}</th>"
        f"<th>{w['receipt_act']}</th><th>{w['author_title']}</th><th>{w['year']}</th>"
        f"<th>{w['material']}</th><th>{w['source']}</th><th>{w['price']}</th>"
        f"<th>{w['off']}</th></tr></thead><tbody>"
    ]
    count = 0
    total = 0
    for line in lines:
        count += 1
        total += line.price_minor or 0
        css = " class=off" if line.written_off else ""
        mark = (_e(w["off_mark"].format(act=line.write_off_act, date=line.write_off_date))
                if line.written_off else "")
        material = vocabulary.label(vocabulary.MATERIAL, line.material_type, language)
        source = vocabulary.label(vocabulary.SOURCE, line.source or NOT_RECORDED, language)
        body.append(
            f"<tr{css}><td>{_e(line.inventory_number)}</td><td>{line.received_on}</td>"
            f"<td>{_e(line.receipt_act)}</td><td>{_e('; '.join(line.authors))}"
            f"{'. ' if line.authors else ''}{_e(line.title)}</td><td>{_e(line.year)}</td>"
            f"<td>{_e(material)}</td><td>{_e(source)}</td>"
            f"<td class=n>{_e(line.price)}</td><td class=mark>{mark}</td></tr>"
        )
    body.append(
        f"</tbody><tfoot><tr><td colspan=7>{w['count'].format(count=count)}</td>"
        f"<td class=n>{tiyn_to_tenge(total)}</td><td></td></tr></tfoot></table>"
    )
    return _page(title, library_name, "".join(body), language)


def write_inventory_book(
    session: Session,
    directory: Path,
    *,
    library_name: str,
    from_number: str | None = None,
    to_number: str | None = None,
    language: str = "en",
) -> tuple[Path, Path]:
    """Write ``inventory-<from>-<to>.html`` (in ``language``) and ``.csv`` (machine keys)
    into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = inventory_book(session, from_number=from_number, to_number=to_number)
    stem = inventory_stem(from_number, to_number)
    html_path, csv_path = directory / f"{stem}.html", directory / f"{stem}.csv"
    title = inventory_title(from_number, to_number, language=language)
    html_path.write_text(
        render_inventory_html(lines, library_name=library_name, title=title, language=language),
        encoding="utf-8",
    )
    _write_csv(csv_path, inventory_csv_rows(lines))
    return html_path, csv_path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
