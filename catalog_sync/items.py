"""Items by hand and in bulk: look up, list, edit, process, move and write off (R8, R14, R3–R4).

The one domain API behind ``qor items …`` and the staff console's catalogue pages. Every
function takes a session and never commits (the caller owns the transaction); every change goes
through :mod:`catalog_sync.register`, which writes it to the hash-chained audit log with who,
when, the old and the new values.

- *Processing* (кітапханалық өңдеу · библиотечная обработка, R8): a barcode and/or RFID tag, a
  shelf location and shelf mark (шифр хранения); :func:`process_for_use` then puts the item on
  the shelf (``available``), so the desk may lend it.
- *Editing*: location, shelf mark, condition, codes, price, status, and the bibliographic
  record's fields. The inventory number (инвентарлық нөмір · инвентарный номер) never (R14).
- *Bulk*: a CSV file of rows to process or move, all or nothing: the first bad row refuses the
  whole file with its line number, and nothing is changed.
- *Write-off* (есептен шығару · списание): by one act, whose document (HTML, CSV) lists the items
  (R3–R4: nothing is deleted).
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, joinedload

from catalog_sync import audit, register, vocabulary
from catalog_sync.errors import BulkRefused, InventoryNumberImmutable, RegisterError
from catalog_sync.models import (
    AcquisitionSource,
    AuditEntry,
    BibRecord,
    Item,
    ItemStatus,
    MaterialType,
    ReceiptBatch,
    WriteOffReason,
)

#: R2.4: the parts of the fund a list can be narrowed to.
FUNDS: Final = ("printed", "audiovisual", "electronic", "legal_deposit")
ITEM_FIELDS: Final = ("location", "shelf_mark", "condition", "barcode", "rfid", "price", "status")
EDITABLE: Final = (*ITEM_FIELDS, *register.RECORD_FIELDS)


@dataclass(frozen=True)
class ItemView:
    """An item as a librarian reads it: the copy, its record, its receipt and write-off acts."""

    inventory_number: str
    title: str
    authors: tuple[str, ...]
    year: int | None
    language: str | None
    publisher: str | None
    isbn: str | None
    material_type: str
    legal_deposit: bool
    source: str | None
    status: str
    barcode: str | None
    rfid: str | None
    location: str | None
    shelf_mark: str | None
    condition: str | None
    price: str | None
    receipt_act: str
    received_on: date
    write_off_act: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        d = asdict(self)
        d["authors"] = list(self.authors)
        d["received_on"] = self.received_on.isoformat()
        return d


COLUMNS: Final = tuple(ItemView.__dataclass_fields__)


@dataclass(frozen=True)
class FieldChange:
    """One field's old and new value in a logged change."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class HistoryEntry:
    """One logged change of an item or its record: who, when, what, old → new."""

    seq: int
    at: str
    actor: str
    action: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class ItemCard:
    """:func:`show_item`: the item and its history, oldest first."""

    item: ItemView
    history: tuple[HistoryEntry, ...]


def view(item: Item) -> ItemView:
    """The :class:`ItemView` of a loaded item."""
    r = item.record
    return ItemView(
        inventory_number=item.inventory_number,
        title=r.title,
        authors=tuple(r.authors),
        year=r.year,
        language=r.language,
        publisher=r.publisher,
        isbn=r.isbn,
        material_type=r.material_type,
        legal_deposit=r.legal_deposit,
        source=item.source,
        status=item.status,
        barcode=item.barcode,
        rfid=item.rfid,
        location=item.location,
        shelf_mark=item.shelf_mark,
        condition=item.condition,
        price=None if item.price is None else str(item.price),
        receipt_act=item.receipt_batch.act_number,
        received_on=item.receipt_batch.received_on,
        write_off_act=item.write_off_act.act_number if item.write_off_act else None,
    )


def _choice(name: str, value: str, allowed: Iterable[str]) -> str:
    options = tuple(allowed)
    if value not in options:
        raise RegisterError(f"{name} {value!r} is not one of {', '.join(options)}")
    return value


def list_items(
    session: Session,
    *,
    fund: str | None = None,
    status: str | None = None,
    location: str | None = None,
    receipt_act: str | None = None,
    source: str | None = None,
    limit: int | None = None,
) -> list[ItemView]:
    """Items in inventory-number order, narrowed by part of the fund (R2.4: ``printed``,
    ``audiovisual``, ``electronic``, ``legal_deposit``), status, location (that place and
    everything under it: ``Hall-A`` takes ``Hall-A/S1``), receipt act and acquisition source."""
    stmt: Select[Item] = (
        select(Item)
        .join(BibRecord, Item.record_id == BibRecord.id)
        .join(ReceiptBatch, Item.receipt_batch_id == ReceiptBatch.id)
        .options(joinedload(Item.record), joinedload(Item.receipt_batch),
                 joinedload(Item.write_off_act))
        .order_by(Item.sort_key)
    )
    if fund is not None:
        _choice("fund", fund, FUNDS)
        if fund == "legal_deposit":
            stmt = stmt.where(BibRecord.legal_deposit.is_(True))
        elif fund == "printed":
            stmt = stmt.where(BibRecord.material_type.in_(
                [m.value for m in MaterialType if m.is_printed]))
        else:
            stmt = stmt.where(BibRecord.material_type == fund)
    if status is not None:
        stmt = stmt.where(Item.status == _choice("status", status, (s.value for s in ItemStatus)))
    if source is not None:
        stmt = stmt.where(Item.source == _choice("source", source,
                                                 (s.value for s in AcquisitionSource)))
    if location is not None:
        place = location.rstrip("/")
        stmt = stmt.where((Item.location == place) | Item.location.startswith(place + "/"))
    if receipt_act is not None:
        register.get_receipt_batch(session, receipt_act)  # refuses an unknown act
        stmt = stmt.where(ReceiptBatch.act_number == receipt_act)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [view(i) for i in session.scalars(stmt).unique()]


def _changes(entry: AuditEntry) -> tuple[FieldChange, ...]:
    import json

    before = json.loads(entry.before) if entry.before else {}
    after = json.loads(entry.after) if entry.after else {}
    return tuple(
        FieldChange(k, before.get(k), after.get(k))
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    )


def show_item(session: Session, inventory_number: str) -> ItemCard:
    """The item and every logged change of it and of its bibliographic record, oldest first."""
    item = register.get_item(session, inventory_number)
    entries = [*audit.history(session, "item", inventory_number),
               *audit.history(session, "record", str(item.record_id))]
    entries.sort(key=lambda e: e.seq)
    return ItemCard(
        item=view(item),
        history=tuple(HistoryEntry(e.seq, e.at, e.actor, e.action, _changes(e)) for e in entries),
    )


def edit_item(
    session: Session, inventory_number: str, *, actor: str, changes: Mapping[str, Any]
) -> ItemView:
    """Change an item's fields and its record's (see :data:`EDITABLE`), each change logged.

    ``inventory_number`` is refused: once given it is never changed or corrected (R14).
    """
    if "inventory_number" in changes:
        # R14: inventory numbers are immutable, whatever the caller asks.
        raise InventoryNumberImmutable(
            inventory_number, f"refused change to {changes['inventory_number']!r}"
        )
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise RegisterError(
            f"fields {', '.join(unknown)} cannot be edited; editable: {', '.join(EDITABLE)}"
        )
    item = register.get_item(session, inventory_number)
    record_changes = {k: v for k, v in changes.items() if k in register.RECORD_FIELDS}
    if record_changes:
        register.update_record(session, item.record_id, actor=actor, changes=record_changes)
    item_changes = {k: v for k, v in changes.items() if k in ITEM_FIELDS and k != "status"}
    if item_changes:
        register.update_item(session, inventory_number, actor=actor, **item_changes)
    if "status" in changes and changes["status"] != item.status:
        register.set_status(session, inventory_number, str(changes["status"]), actor=actor)
    session.refresh(item)
    return view(item)


def process_for_use(
    session: Session,
    inventory_number: str,
    *,
    actor: str,
    barcode: str | None = None,
    rfid: str | None = None,
    location: str | None = None,
    shelf_mark: str | None = None,
) -> ItemView:
    """R8: library processing of a received item — barcode and/or RFID tag, shelf location and
    shelf mark — then put on the shelf (``available``): from now on the desk may lend it."""
    register.process_item(session, inventory_number, actor=actor, barcode=barcode, rfid=rfid,
                          location=location)
    if shelf_mark is not None:
        register.update_item(session, inventory_number, actor=actor, shelf_mark=shelf_mark)
    item = register.set_status(session, inventory_number, ItemStatus.AVAILABLE, actor=actor)
    return view(item)


def move(
    session: Session,
    inventory_number: str,
    *,
    actor: str,
    location: str,
    shelf_mark: str | None = None,
) -> ItemView:
    """Place an item elsewhere (R8: the order of storage is kept in the register)."""
    if not location.strip():
        raise RegisterError(f"item {inventory_number}: the new location is empty")
    values: dict[str, Any] = {"location": location.strip()}
    if shelf_mark is not None:
        values["shelf_mark"] = shelf_mark.strip() or None
    return view(register.update_item(session, inventory_number, actor=actor, **values))


# --- bulk ---------------------------------------------------------------------------------------

#: The columns a bulk file may have, per operation (``inventory_number`` always required).
BULK_COLUMNS: Final[Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "process": (("inventory_number",), ("barcode", "rfid", "location", "shelf_mark")),
    "move": (("inventory_number", "location"), ("shelf_mark",)),
}


def read_bulk_csv(text: str, *, operation: str) -> list[dict[str, str]]:
    """Rows of a bulk CSV file (header line first, UTF-8, comma-separated), checked against
    :data:`BULK_COLUMNS`; an unknown or missing column refuses the file."""
    required, optional = BULK_COLUMNS[_choice("operation", operation, BULK_COLUMNS)]
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or ()]
    missing = [c for c in required if c not in header]
    if missing:
        raise BulkRefused(1, f"missing column(s) {', '.join(missing)}; the file needs "
                             f"{', '.join(required)} and may have {', '.join(optional)}")
    extra = [c for c in header if c not in (*required, *optional)]
    if extra:
        raise BulkRefused(1, f"unknown column(s) {', '.join(extra)}; allowed: "
                             f"{', '.join((*required, *optional))}")
    rows = []
    for row in reader:
        cleaned = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            raise BulkRefused(reader.line_num, "more values than columns")
        rows.append(cleaned)
    return rows


def bulk_apply(
    session: Session, rows: Sequence[Mapping[str, str]], *, operation: str, actor: str
) -> list[ItemView]:
    """Process or move every row's item, in order; the first refusal raises
    :class:`BulkRefused` naming its line (the caller rolls back: all or nothing)."""
    ops: dict[str, Callable[[Mapping[str, str]], ItemView]] = {
        "process": lambda r: process_for_use(
            session, r["inventory_number"], actor=actor, barcode=r.get("barcode") or None,
            rfid=r.get("rfid") or None, location=r.get("location") or None,
            shelf_mark=r.get("shelf_mark") or None),
        "move": lambda r: move(session, r["inventory_number"], actor=actor,
                               location=r["location"], shelf_mark=r.get("shelf_mark") or None),
    }
    apply = ops[_choice("operation", operation, ops)]
    done = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        inv = row.get("inventory_number", "")
        if not inv:
            raise BulkRefused(line, "no inventory number")
        if inv in seen:
            raise BulkRefused(line, f"item {inv} is listed twice")
        seen.add(inv)
        try:
            done.append(apply(row))
        except RegisterError as e:
            raise BulkRefused(line, str(e)) from e
    return done


# --- write-off acts (R3–R4) -----------------------------------------------------------------


@dataclass(frozen=True)
class WriteOffDocument:
    """A write-off act (есептен шығару акті · акт списания) with its items, ready to print."""

    act_number: str
    act_date: date
    reason: str
    note: str | None
    created_by: str
    items: tuple[ItemView, ...]

    @property
    def total_price(self) -> str:
        """Sum of the items' prices in tenge (items without a price count 0)."""
        from decimal import Decimal

        return str(sum((Decimal(i.price) for i in self.items if i.price), Decimal("0.00")))


def write_off_items(
    session: Session,
    *,
    act_number: str,
    act_date: date,
    reason: str,
    inventory_numbers: Sequence[str],
    actor: str,
    note: str | None = None,
) -> WriteOffDocument:
    """Write items off by one act (R3–R4: they stay in the register, ``written_off``, linked to
    the act) and return the act's document."""
    _choice("reason", reason, (r.value for r in WriteOffReason))
    register.write_off(session, act_number=act_number, act_date=act_date, reason=reason,
                       inventory_numbers=inventory_numbers, actor=actor, note=note)
    return write_off_document(session, act_number)


def write_off_document(session: Session, act_number: str) -> WriteOffDocument:
    """The document of an existing write-off act."""
    act = register.get_write_off_act(session, act_number)
    items = session.scalars(
        select(Item).where(Item.write_off_act_id == act.id).order_by(Item.sort_key)
        .options(joinedload(Item.record), joinedload(Item.receipt_batch))
    ).unique()
    return WriteOffDocument(act.act_number, act.act_date, act.reason, act.note, act.created_by,
                            tuple(view(i) for i in items))


_WO_LABELS: Final[Mapping[str, Mapping[str, str]]] = {
    "kk": {"title": "Есептен шығару акті", "date": "Күні", "reason": "Себебі",
           "inv": "Инвентарлық нөмір", "book": "Атауы", "author": "Авторы", "price": "Бағасы",
           "total": "Барлығы", "by": "Құрастырған", "note": "Ескерту"},
    "ru": {"title": "Акт списания", "date": "Дата", "reason": "Причина",
           "inv": "Инвентарный номер", "book": "Заглавие", "author": "Автор", "price": "Цена",
           "total": "Итого", "by": "Составил", "note": "Примечание"},
    "en": {"title": "Write-off act", "date": "Date", "reason": "Reason",
           "inv": "Inventory number", "book": "Title", "author": "Author", "price": "Price",
           "total": "Total", "by": "Drawn up by", "note": "Note"},
}


def write_off_html(doc: WriteOffDocument, *, language: str = "kk") -> str:
    """The act as a printable HTML page in Kazakh, Russian or English."""
    t = _WO_LABELS[_choice("language", language, _WO_LABELS)]
    e = html.escape
    rows = "".join(
        f"<tr><td>{n}</td><td>{e(i.inventory_number)}</td><td>{e('; '.join(i.authors))}</td>"
        f"<td>{e(i.title)}</td><td>{e(i.price or '')}</td></tr>"
        for n, i in enumerate(doc.items, start=1)
    )
    note = f"<p>{t['note']}: {e(doc.note)}</p>" if doc.note else ""
    reason = vocabulary.label(vocabulary.WRITE_OFF_REASON, doc.reason, language)
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        f"<title>{t['title']} {e(doc.act_number)}</title></head><body>"
        f"<h1>{t['title']} № {e(doc.act_number)}</h1>"
        f"<p>{t['date']}: {doc.act_date.isoformat()} · {t['reason']}: {e(reason)}</p>{note}"
        f"<table><thead><tr><th>№</th><th>{t['inv']}</th><th>{t['author']}</th>"
        f"<th>{t['book']}</th><th>{t['price']}</th></tr></thead><tbody>{rows}</tbody>"
        f"<tfoot><tr><td colspan=\"4\">{t['total']}: {len(doc.items)}</td>"
        f"<td>{doc.total_price}</td></tr></tfoot></table>"
        f"<p>{t['by']}: {e(doc.created_by)}</p></body></html>"
    )


def write_off_csv(doc: WriteOffDocument) -> str:
    """The act's items as CSV (one line per item)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["act_number", "act_date", "reason", "inventory_number", "authors", "title",
                "price"])
    for i in doc.items:
        w.writerow([doc.act_number, doc.act_date.isoformat(), doc.reason, i.inventory_number,
                    "; ".join(i.authors), i.title, i.price or ""])
    return out.getvalue()


def items_csv(rows: Iterable[ItemView]) -> str:
    """Items as CSV with a header line (:data:`COLUMNS`)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(COLUMNS)
    for r in rows:
        d = r.as_dict()
        d["authors"] = "; ".join(r.authors)
        w.writerow([d[c] if d[c] is not None else "" for c in COLUMNS])
    return out.getvalue()



# --- receipt acts (R5, R8, R9) --------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptSummary:
    """A receipt act (қабылдау актісі · акт поступления) as its list shows it: how many items
    it brought and how many still wait for library processing (``received``, R8)."""

    act_number: str
    received_on: date
    supplier: str | None
    note: str | None
    items: int
    unprocessed: int


def receipt_summaries(session: Session, *, limit: int = 50,
                      offset: int = 0) -> tuple[list[ReceiptSummary], int]:
    """Receipt acts newest first (by date, then by when they were opened), a page of them, and
    how many there are in all."""
    total = int(session.scalar(select(func.count(ReceiptBatch.id))) or 0)
    rows = session.execute(
        select(ReceiptBatch.act_number, ReceiptBatch.received_on, ReceiptBatch.supplier,
               ReceiptBatch.note, func.count(Item.id),
               func.coalesce(func.sum(case((Item.status == ItemStatus.RECEIVED.value, 1),
                                           else_=0)), 0))
        .outerjoin(Item, Item.receipt_batch_id == ReceiptBatch.id)
        .group_by(ReceiptBatch.id)
        .order_by(ReceiptBatch.received_on.desc(), ReceiptBatch.created_at.desc(),
                  ReceiptBatch.id.desc())
        .limit(limit).offset(offset)
    ).all()
    return [ReceiptSummary(a, d, s, n, int(c), int(u)) for a, d, s, n, c, u in rows], total


def receive_copies(
    session: Session,
    *,
    act_number: str,
    title: str,
    actor: str,
    count: int = 1,
    authors: Sequence[str] = (),
    year: int | None = None,
    language: str | None = None,
    source: str | None = None,
    price: str | None = None,
) -> list[str]:
    """Receive ``count`` copies of one new bibliographic record into receipt act
    ``act_number`` (R5: with their acquisition source; R8: status ``received`` until library
    processing); each gets the next inventory number. Returns the inventory numbers."""
    if not title.strip():
        raise RegisterError("the copies need the title of their record")
    if not 1 <= count <= MAX_COPIES:
        raise RegisterError(f"number of copies {count}: must be 1 to {MAX_COPIES}")
    batch = register.get_receipt_batch(session, act_number)  # refuses an unknown act
    if not source:
        # R5: a receipt act records where its items came from.
        raise RegisterError("the copies need their source of acquisition (R5)")
    record = register.add_record(session, title=title.strip(), authors=tuple(authors),
                                 year=year, language=language, actor=actor)
    return [register.receive_item(session, record=record, source=source, receipt_batch=batch,
                                  price=price, actor=actor).inventory_number
            for _ in range(count)]


#: The most copies :func:`receive_copies` takes at once.
MAX_COPIES: Final = 200
