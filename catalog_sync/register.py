"""The fund register's operations: plain functions that take a :class:`Session`.

None of them commits: the caller owns the transaction (so a digitise run links its copy in the
same transaction as its other bookkeeping, and a failure leaves nothing behind). Every change is
appended to the audit log (:mod:`catalog_sync.audit`) in that same transaction.

Librarians' words: item = дана · экземпляр; inventory number = инвентарлық нөмір · инвентарный
номер; receipt batch = түгендеу акті · акт поступления; write-off act = есептен шығару акті ·
акт списания.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import Select, String, bindparam, event, func, insert, or_, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from catalog_sync import audit, languages
from catalog_sync.errors import (
    ActNotFound,
    CodeTaken,
    DigitalCopyExists,
    DigitalCopyNotFound,
    DuplicateAct,
    InvalidInventoryNumber,
    InvalidTransition,
    InventoryNumberImmutable,
    InventoryNumberTaken,
    ItemNotFound,
    ItemWrittenOff,
    NotProcessed,
    RecordNotFound,
    RegisterBusy,
    RegisterError,
    RegisterTampered,
    SourceNotAllowed,
)
from catalog_sync.models import (
    AcquisitionSource,
    ActionKind,
    Base,
    BibRecord,
    Condition,
    CopyEvent,
    DigitalCopy,
    InventorySequence,
    IssuedInventoryNumber,
    Item,
    ItemAction,
    ItemStatus,
    MaterialType,
    ReceiptBatch,
    RegisterSetting,
    ValueFlag,
    WriteOffAct,
    WriteOffReason,
    utcnow,
)

logger = logging.getLogger(__name__)

DEFAULT_SEQUENCE: Final = "default"
_INVENTORY_RE = re.compile(r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,62}[^\s\x00-\x1f\x7f])?$")


class _Unset:
    """Marker for "leave this field as it is"."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unset()

# R8 lifecycle. Written off is reached only through write_off() (R3–R4: by an act).
TRANSITIONS: Final[Mapping[ItemStatus, frozenset[ItemStatus]]] = {
    ItemStatus.RECEIVED: frozenset({ItemStatus.PROCESSED}),
    ItemStatus.PROCESSED: frozenset({ItemStatus.AVAILABLE, ItemStatus.IN_REPAIR}),
    ItemStatus.AVAILABLE: frozenset({ItemStatus.ON_LOAN, ItemStatus.IN_REPAIR, ItemStatus.MISSING}),
    ItemStatus.ON_LOAN: frozenset({ItemStatus.AVAILABLE, ItemStatus.MISSING}),
    ItemStatus.IN_REPAIR: frozenset({ItemStatus.AVAILABLE}),
    ItemStatus.MISSING: frozenset({ItemStatus.AVAILABLE}),
    ItemStatus.WRITTEN_OFF: frozenset(),
}
REPAIR_KINDS: Final = frozenset({ActionKind.REPAIR, ActionKind.REBINDING, ActionKind.RESTORATION})


# --- code-level guards (the database has its own triggers too) -----------------------------


@event.listens_for(Session, "before_flush")
def _never_delete(session: Session, _context: Any, _instances: Any) -> None:
    # R3–R4: the fund is state property; rows of the register are never deleted. Checked before
    # the flush writes anything (the ORM would otherwise first null out children's keys).
    for target in session.deleted:
        if isinstance(target, Item):
            raise InventoryNumberImmutable(target.inventory_number, "items are never deleted")
        if isinstance(target, Base):
            raise RegisterTampered(
                f"{type(target).__name__} rows are never deleted from the fund register (R3–R4)"
            )


def translate_db_error(exc: DBAPIError, *, inventory_number: str = "?") -> RegisterError:
    """Turn a database refusal into the register's domain error (triggers, constraints, locks)."""
    message = str(exc.orig) if exc.orig is not None else str(exc)
    lowered = message.lower()
    if "QOR-R14" in message:
        return InventoryNumberImmutable(inventory_number)
    if "QOR-R3: a written-off" in message:
        return ItemWrittenOff(inventory_number, "written_off", "another state", "written off (R3)")
    if "QOR-R3" in message and "items" in message:
        return InventoryNumberImmutable(inventory_number, "items are never deleted")
    if "QOR-" in message:
        return RegisterTampered(f"the database refused the change: {message.splitlines()[0]}")
    if (
        "issued_inventory_numbers" in lowered
        or "items.inventory_number" in lowered
        or ("uq_items_inventory_number" in lowered)
    ):
        return InventoryNumberTaken(inventory_number)
    if "barcode" in lowered or "rfid" in lowered:
        return CodeTaken(f"barcode or RFID tag id of item {inventory_number} is already in use")
    if isinstance(exc, OperationalError) or "database is locked" in lowered:
        busy = RegisterBusy(f"the register database is busy or unreachable: {message}")
        return busy
    return RegisterError(f"the register database refused the change: {message}")


@contextmanager
def _db(inventory_number: str = "?") -> Iterator[None]:
    try:
        yield
    except DBAPIError as e:
        raise translate_db_error(e, inventory_number=inventory_number) from e


# --- settings -------------------------------------------------------------------------------


def _setting(session: Session, key: str) -> str | None:
    row = session.get(RegisterSetting, key)
    return None if row is None else row.value


def _set_setting(session: Session, key: str, value: str, actor: str) -> None:
    row = session.get(RegisterSetting, key)
    before = None if row is None else {"value": row.value}
    if row is None:
        session.add(RegisterSetting(key=key, value=value))
    else:
        row.value = value
    audit.append(
        session,
        actor=actor,
        action="setting.set",
        entity="setting",
        key=key,
        before=before,
        after={"value": value},
    )


def is_national_library(session: Session) -> bool:
    """R5: whether this library is national (and so receives legal deposit copies)."""
    return _setting(session, "national_library") == "true"


def set_national_library(session: Session, national: bool, *, actor: str) -> None:
    """Configure whether this library is national (R5)."""
    _set_setting(session, "national_library", "true" if national else "false", actor)


def library_name(session: Session) -> str:
    """The library's name as printed on the books and acts ('' if not set)."""
    return _setting(session, "library_name") or ""


def set_library_name(session: Session, name: str, *, actor: str) -> None:
    """Set the library's name printed on the books and acts."""
    _set_setting(session, "library_name", name.strip(), actor)


# --- inventory numbers ----------------------------------------------------------------------


def validate_inventory_number(inventory_number: str) -> str:
    """Check an inventory number's form: 1–64 printable characters, no surrounding spaces."""
    if not isinstance(inventory_number, str) or not _INVENTORY_RE.match(inventory_number):
        raise InvalidInventoryNumber(
            f"inventory number {inventory_number!r}: must be 1–64 printable characters without "
            "leading or trailing spaces"
        )
    return inventory_number


def sort_key(inventory_number: str) -> str:
    """Natural-order key: digit runs compare as numbers, so 'A-9' < 'A-10'."""
    return re.sub(r"\d+", lambda m: m.group().lstrip("0").zfill(15), inventory_number.casefold())


def validate_pattern(pattern: str) -> str:
    """A numbering pattern is a Python format string with exactly one ``{number…}`` field,
    e.g. ``KZ-{number:06d}``."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
        sample = pattern.format(number=1)
    except (ValueError, KeyError, IndexError) as e:
        raise InvalidInventoryNumber(f"numbering pattern {pattern!r}: {e}") from e
    if fields != ["number"]:
        raise InvalidInventoryNumber(
            f"numbering pattern {pattern!r}: needs exactly one {{number}} field"
        )
    validate_inventory_number(sample)
    return pattern


def configure_numbering(
    session: Session,
    *,
    pattern: str,
    actor: str,
    next_value: int | None = None,
    sequence: str = DEFAULT_SEQUENCE,
) -> InventorySequence:
    """Set the pattern (and optionally move the next value forward) of a numbering sequence.

    The next value never moves back: numbers already given are never given again (R14).
    """
    validate_pattern(pattern)
    row = session.get(InventorySequence, sequence, with_for_update=True)
    before = None if row is None else {"pattern": row.pattern, "next_value": row.next_value}
    if row is None:
        row = InventorySequence(name=sequence, pattern=pattern, next_value=next_value or 1)
        session.add(row)
    else:
        if next_value is not None and next_value < row.next_value:
            raise InvalidInventoryNumber(
                f"sequence {sequence}: next value {next_value} is below {row.next_value}; "
                "numbers already passed are never given (R14)"
            )
        row.pattern = pattern
        if next_value is not None:
            row.next_value = next_value
    audit.append(
        session,
        actor=actor,
        action="numbering.configure",
        entity="sequence",
        key=sequence,
        before=before,
        after={"pattern": row.pattern, "next_value": row.next_value},
    )
    session.flush()
    return row


def _issued(session: Session, inventory_number: str) -> bool:
    return session.get(IssuedInventoryNumber, inventory_number) is not None


def next_inventory_number(session: Session, *, sequence: str = DEFAULT_SEQUENCE) -> str:
    """Take the next number of the sequence, in the caller's transaction.

    The UPDATE locks the sequence row until the caller commits, so concurrent receipts queue and
    get consecutive numbers; a rolled-back receipt gives its number back (no gaps). A number
    already taken by an explicitly entered item is skipped: it is in the book already.
    """
    while True:
        with _db():
            row = session.execute(
                text(
                    "UPDATE inventory_sequences SET next_value = next_value + 1 "
                    "WHERE name = :name RETURNING next_value - 1, pattern"
                ),
                {"name": sequence},
            ).one_or_none()
        if row is None:
            raise InvalidInventoryNumber(f"no numbering sequence named {sequence!r}")
        number = validate_inventory_number(str(row[1]).format(number=int(row[0])))
        if not _issued(session, number):
            return number
        logger.info("inventory number %s already entered by hand; taking the next", number)


# --- records, batches -----------------------------------------------------------------------


def _record_snapshot(r: BibRecord) -> dict[str, Any]:
    return {
        "title": r.title,
        "authors": list(r.authors),
        "publisher": r.publisher,
        "year": r.year,
        "language": r.language,
        "isbn": r.isbn,
        "issn": r.issn,
        "material_type": r.material_type,
        "legal_deposit": r.legal_deposit,
        "control_number": r.control_number,
    }


def add_record(
    session: Session,
    *,
    title: str,
    actor: str = "system",
    authors: Sequence[str] = (),
    publisher: str | None = None,
    year: int | None = None,
    language: str | None = None,
    isbn: str | None = None,
    issn: str | None = None,
    material_type: MaterialType | str = MaterialType.BOOK,
    legal_deposit: bool = False,
    control_number: str | None = None,
) -> BibRecord:
    """Create a bibliographic record (R2: material type; legal-deposit flag)."""
    if not title or not title.strip():
        raise RegisterError("a bibliographic record needs a title")
    try:
        material = MaterialType(material_type)
    except ValueError as e:
        allowed = ", ".join(m.value for m in MaterialType)
        raise RegisterError(f"material type {material_type!r}: not one of {allowed} (R2)") from e
    if year is not None and not 0 < year <= 9999:
        raise RegisterError(f"record {title!r}: year {year} is not a year")
    if control_number is not None and session.scalar(
        select(BibRecord.id).where(BibRecord.control_number == control_number)
    ):
        raise RegisterError(f"a record with control number {control_number!r} already exists")
    record = BibRecord(
        title=title.strip(),
        authors=[a.strip() for a in authors if a.strip()],
        publisher=publisher,
        year=year,
        language=languages.normalise(language),  # kk, ru, en (MARC's kaz, rus, eng mapped)
        isbn=isbn.strip() if isbn else None,
        issn=issn.strip() if issn else None,
        material_type=material.value,
        legal_deposit=legal_deposit,
        control_number=control_number,
        created_at=utcnow(),
    )
    session.add(record)
    with _db():
        session.flush()
    audit.append(
        session,
        actor=actor,
        action="record.add",
        entity="record",
        key=str(record.id),
        before=None,
        after=_record_snapshot(record),
    )
    return record


RECORD_FIELDS: Final = ("title", "authors", "publisher", "year", "language", "isbn", "issn")


def update_record(
    session: Session, record_id: int, *, actor: str, changes: Mapping[str, Any]
) -> BibRecord:
    """Correct a bibliographic record (title, authors, publisher, year, language, ISBN, ISSN).

    The record is shared by every copy; the change is written to the hash-chained audit log
    with who, when, the old and the new values (``record.update``). Inventory numbers belong to
    items and are never edited (R14).
    """
    unknown = sorted(set(changes) - set(RECORD_FIELDS))
    if unknown:
        raise RegisterError(
            f"record fields {', '.join(unknown)} cannot be edited; editable: "
            f"{', '.join(RECORD_FIELDS)}"
        )
    record = session.get(BibRecord, record_id, with_for_update=True)
    if record is None:
        raise RecordNotFound(f"no bibliographic record {record_id}")
    before = _record_snapshot(record)
    for name, value in changes.items():
        if name == "title":
            if not isinstance(value, str) or not value.strip():
                raise RegisterError(f"record {record_id}: the title cannot be empty")
            value = value.strip()
        elif name == "authors":
            value = [str(a).strip() for a in value if str(a).strip()]
        elif name == "year" and value is not None and not 0 < int(value) <= 9999:
            raise RegisterError(f"record {record_id}: year {value} is not a year")
        elif name == "language":
            value = languages.normalise(value)
        elif isinstance(value, str):
            value = value.strip() or None
        setattr(record, name, value)
    with _db():
        session.flush()
    after = _record_snapshot(record)
    if after != before:
        audit.append(session, actor=actor, action="record.update", entity="record",
                     key=str(record.id), before=before, after=after)
    return record


def get_record(session: Session, record_id: int) -> BibRecord:
    """The record with this id, or :class:`RecordNotFound`."""
    record = session.get(BibRecord, record_id)
    if record is None:
        raise RecordNotFound(f"no bibliographic record with id {record_id}")
    return record


def open_receipt_batch(
    session: Session,
    *,
    act_number: str,
    received_on: date,
    actor: str,
    supplier: str | None = None,
    note: str | None = None,
) -> ReceiptBatch:
    """Register a receipt act (акт поступления) that items are then received into (R5, R9)."""
    if not act_number.strip():
        raise RegisterError("a receipt act needs a number")
    if session.scalar(select(ReceiptBatch.id).where(ReceiptBatch.act_number == act_number)):
        raise DuplicateAct(f"receipt act {act_number!r} already exists")
    batch = ReceiptBatch(
        act_number=act_number,
        received_on=received_on,
        supplier=supplier,
        note=note,
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(batch)
    with _db():
        session.flush()
    audit.append(
        session,
        actor=actor,
        action="receipt.open",
        entity="receipt_batch",
        key=act_number,
        before=None,
        after={"received_on": received_on.isoformat(), "supplier": supplier, "note": note},
    )
    return batch


def get_receipt_batch(session: Session, act_number: str) -> ReceiptBatch:
    """The receipt act with this number, or :class:`ActNotFound`."""
    batch = session.scalar(select(ReceiptBatch).where(ReceiptBatch.act_number == act_number))
    if batch is None:
        raise ActNotFound(f"no receipt act {act_number!r}")
    return batch


# --- items ----------------------------------------------------------------------------------


def item_snapshot(item: Item) -> dict[str, Any]:
    """The audited fields of an item."""
    return {
        "inventory_number": item.inventory_number,
        "record_id": item.record_id,
        "receipt_batch_id": item.receipt_batch_id,
        "source": item.source,
        "price_minor": item.price_minor,
        "barcode": item.barcode,
        "rfid": item.rfid,
        "location": item.location,
        "shelf_mark": item.shelf_mark,
        "status": item.status,
        "value_flags": sorted(f.value for f in item.value_flags),
        "condition": item.condition,
        "write_off_act_id": item.write_off_act_id,
    }


def to_tiyn(price: Decimal | int | str | None) -> int | None:
    """Tenge (up to 2 decimals, not negative) → whole tiyn."""
    if price is None:
        return None
    try:
        amount = Decimal(str(price))
    except InvalidOperation as e:
        raise RegisterError(f"price {price!r} is not a number") from e
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise RegisterError(f"price {price!r}: must be a non-negative amount with 2 decimals")
    return int(amount * 100)


def _check_codes(
    session: Session, inventory_number: str, barcode: str | None, rfid: str | None, exclude: int
) -> None:
    for label, code in (("barcode", barcode), ("RFID tag id", rfid)):
        if code is None:
            continue
        if not code.strip() or code != code.strip():
            raise RegisterError(f"item {inventory_number}: {label} {code!r} is blank or padded")
        other = session.scalar(
            select(Item.inventory_number).where(
                or_(Item.barcode == code, Item.rfid == code), Item.id != exclude
            )
        )
        if other is not None:
            raise CodeTaken(f"{label} {code!r} is already on item {other}")


def _flags(value_flags: Iterable[ValueFlag | str]) -> frozenset[ValueFlag]:
    try:
        return frozenset(ValueFlag(f) for f in value_flags)
    except ValueError as e:
        raise RegisterError(f"value flags {sorted(value_flags)!r}: {e} (R13)") from e


def _condition(condition: Condition | str | None) -> str | None:
    if condition is None:
        return None
    try:
        return Condition(condition).value
    except ValueError as e:
        raise RegisterError(f"condition {condition!r}: not one of good, fair, poor, damaged") from e


def _source(session: Session, source: AcquisitionSource | str | None) -> str | None:
    if source is None:
        return None
    try:
        src = AcquisitionSource(source)
    except ValueError as e:
        allowed = ", ".join(s.value for s in AcquisitionSource)
        raise RegisterError(f"source {source!r}: not one of {allowed} (R5)") from e
    if src is AcquisitionSource.LEGAL_DEPOSIT and not is_national_library(session):
        # R5: only national libraries' funds are formed by receiving legal deposit copies.
        raise SourceNotAllowed(
            "source legal_deposit is only for a library configured as national (R5)"
        )
    return src.value


def receive_item(
    session: Session,
    *,
    record: BibRecord | int,
    source: AcquisitionSource | str | None,
    receipt_batch: ReceiptBatch | str,
    actor: str,
    inventory_number: str | None = None,
    price: Decimal | int | str | None = None,
    barcode: str | None = None,
    rfid: str | None = None,
    location: str | None = None,
    value_flags: Iterable[ValueFlag | str] = frozenset(),
    condition: Condition | str | None = None,
) -> Item:
    """Receive one copy into the fund (status ``received``, R8) in a receipt batch (R5, R9).

    ``inventory_number`` None: the next number of the configured pattern, gapless and race-free.
    An explicit number (from the library's paper inventory book) is checked never to have been
    given before (R14). ``source`` None means "not recorded" and is meant only for entering
    items from old paper books (:func:`add_item`).
    """
    rec = record if isinstance(record, BibRecord) else get_record(session, record)
    batch = (
        receipt_batch
        if isinstance(receipt_batch, ReceiptBatch)
        else get_receipt_batch(session, receipt_batch)
    )
    src = _source(session, source)
    flags = _flags(value_flags)
    price_minor = to_tiyn(price)
    cond = _condition(condition)
    if inventory_number is None:
        number = next_inventory_number(session)
    else:
        number = validate_inventory_number(inventory_number)
        if _issued(session, number):
            raise InventoryNumberTaken(number)
    _check_codes(session, number, barcode, rfid, exclude=-1)
    now = utcnow()
    item = Item(
        inventory_number=number,
        sort_key=sort_key(number),
        record=rec,
        receipt_batch=batch,
        source=src,
        price_minor=price_minor,
        barcode=barcode,
        rfid=rfid,
        location=location,
        status=ItemStatus.RECEIVED.value,
        value_scientific=ValueFlag.SCIENTIFIC in flags,
        value_historical=ValueFlag.HISTORICAL in flags,
        value_artistic=ValueFlag.ARTISTIC in flags,
        condition=cond,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    with _db(number):
        session.flush()
    audit.append(
        session,
        actor=actor,
        action="item.receive",
        entity="item",
        key=number,
        before=None,
        after=item_snapshot(item),
        at=now,
    )
    return item


def add_item(session: Session, *, inventory_number: str, title: str, actor: str, **kw: Any) -> Item:
    """Enter one item with an explicit inventory number (``qor items add INV --title T``).

    Record fields (authors, publisher, year, language, isbn, issn, material_type, legal_deposit)
    and item fields (source, receipt_batch, price, barcode, rfid, location, value_flags,
    condition) may be given as keywords. Without ``receipt_batch``, the item goes into the
    day's batch ``MANUAL-YYYY-MM-DD`` (created on first use, noted as entered by hand);
    without ``source``, the source is recorded as not known.
    """
    record_keys = {
        "authors",
        "publisher",
        "year",
        "language",
        "isbn",
        "issn",
        "material_type",
        "legal_deposit",
    }
    item_keys = {
        "source",
        "receipt_batch",
        "price",
        "barcode",
        "rfid",
        "location",
        "value_flags",
        "condition",
    }
    unknown = set(kw) - record_keys - item_keys
    if unknown:
        raise RegisterError(f"add_item: unknown fields {sorted(unknown)}")
    number = validate_inventory_number(inventory_number)
    if _issued(session, number):
        raise InventoryNumberTaken(number)
    record = add_record(
        session, title=title, actor=actor, **{k: v for k, v in kw.items() if k in record_keys}
    )
    item_kw = {k: v for k, v in kw.items() if k in item_keys}
    batch = item_kw.pop("receipt_batch", None)
    if batch is None:
        today = utcnow().date()
        act = f"MANUAL-{today.isoformat()}"
        found = session.scalar(select(ReceiptBatch).where(ReceiptBatch.act_number == act))
        batch = found or open_receipt_batch(
            session,
            act_number=act,
            received_on=today,
            actor=actor,
            note="items entered one by one without a receipt act (qor items add)",
        )
    return receive_item(
        session,
        record=record,
        inventory_number=number,
        receipt_batch=batch,
        actor=actor,
        source=item_kw.pop("source", None),
        **item_kw,
    )


@functools.cache
def item_by(column: str, for_update: bool) -> Select[Item]:
    """``SELECT`` of an item by one of its unique codes (parameter ``code``), built once: a
    statement composed per call costs more Python than the database takes to answer it."""
    stmt = select(Item).where(getattr(Item, column) == bindparam("code", type_=String))
    return stmt.with_for_update() if for_update else stmt




def get_item(session: Session, inventory_number: str, *, for_update: bool = False) -> Item:
    """The item with this inventory number, or :class:`ItemNotFound`."""
    item = session.scalar(item_by("inventory_number", for_update), {"code": inventory_number})
    if item is None:
        raise ItemNotFound(inventory_number)
    return item


def find_item_by_code(session: Session, code: str) -> Item:
    """The item whose barcode or RFID tag id is ``code``, or :class:`ItemNotFound`."""
    item = session.scalar(item_by("barcode", False), {"code": code})
    if item is None:
        item = session.scalar(item_by("rfid", False), {"code": code})
    if item is None:
        raise ItemNotFound(code, what="barcode or RFID tag id")
    return item


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """An item as the desk, a self-check kiosk or a security gate reads it: the copy's own
    columns, no relationships, detached from the session. Read by :func:`item_facts` and
    :func:`item_facts_by_code` without building an ORM object; a caller that changes the item
    takes the :class:`~catalog_sync.models.Item` from :func:`get_item` instead."""

    id: int
    inventory_number: str
    record_id: int
    barcode: str | None
    rfid: str | None
    location: str | None
    shelf_mark: str | None
    status: str
    condition: str | None

    @property
    def item_status(self) -> ItemStatus:
        """The status as an enum."""
        return ItemStatus(self.status)

    @property
    def is_processed(self) -> bool:
        """R8: the item has passed library processing (it may be given out)."""
        return self.status not in (ItemStatus.RECEIVED, ItemStatus.WRITTEN_OFF)


#: The columns of :class:`ItemFacts`, in its field order.
FACT_COLUMNS: Final = tuple(ItemFacts.__dataclass_fields__)
#: The lookup orders the desk's codes are tried in (the first match wins).
_FACT_LOOKUPS: Final = {
    "inventory_number": ("inventory_number",),
    "code": ("barcode", "rfid"),
    "any": ("inventory_number", "barcode", "rfid"),
}


@functools.cache
def facts_sql(dialect: str, lookup: str) -> str:
    """The SQL of one lean lookup, built once per dialect from the fixed column names above:
    the :class:`ItemFacts` columns of the item whose code (one positional parameter per column
    tried, then again per column for the order) is in the first of the lookup's columns that
    holds it. One round trip whatever the number of columns tried."""
    mark = "%s" if dialect == "postgresql" else "?"
    columns = _FACT_LOOKUPS[lookup]
    # Only the fixed column names above go into the text; the code is always a parameter.
    where = " OR ".join(f"{c} = {mark}" for c in columns)
    sql = f"SELECT {', '.join(FACT_COLUMNS)} FROM items WHERE {where}"  # noqa: S608
    if len(columns) > 1:
        # The first column that matches wins, as the ORM lookups try them one after the other.
        whens = " ".join(f"WHEN {c} = {mark} THEN {i}" for i, c in enumerate(columns))
        sql += f" ORDER BY CASE {whens} END LIMIT 1"
    return sql


def facts_by(session: Session, lookup: str, code: str) -> ItemFacts | None:
    """The :class:`ItemFacts` of the item ``code`` names under ``lookup`` (``inventory_number``;
    ``code``: barcode, else RFID tag id; ``any``: inventory number, barcode, RFID tag id in that
    order), or None. One statement, in the session's transaction; never commits."""
    # The desk's scans are most of the register's reads, and for them SQLAlchemy's per-query
    # Python (result metadata, the identity map, an ORM object) cost more than the database's
    # answer (issue 20): the statement goes to the session's own DBAPI connection, inside the
    # session's transaction, and its one row becomes a frozen dataclass.
    conn = session.connection()
    dialect = conn.dialect.name
    sql = facts_sql(dialect, lookup)
    n = len(_FACT_LOOKUPS[lookup])
    params = (code,) * (n if n == 1 else 2 * n)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    try:
        cursor = dbapi.cursor()
        try:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as e:
        raise DBAPIError.instance(sql, params, e, conn.dialect.loaded_dbapi.Error) from e
    return None if row is None else ItemFacts(*row)


def item_facts(session: Session, inventory_number: str) -> ItemFacts:
    """The item with this inventory number as :class:`ItemFacts` (no ORM object), or
    :class:`ItemNotFound` as :func:`get_item` raises it."""
    facts = facts_by(session, "inventory_number", inventory_number)
    if facts is None:
        raise ItemNotFound(inventory_number)
    return facts


def item_facts_by_code(session: Session, code: str) -> ItemFacts:
    """:func:`find_item_by_code` as :class:`ItemFacts` (no ORM object): the item whose barcode,
    or else RFID tag id, is ``code``; :class:`ItemNotFound` as that raises it."""
    facts = facts_by(session, "code", code)
    if facts is None:
        raise ItemNotFound(code, what="barcode or RFID tag id")
    return facts


def _change_item(session: Session, item: Item, *, actor: str, action: str, **values: Any) -> Item:
    before = item_snapshot(item)
    for name, value in values.items():
        setattr(item, name, value)
    item.updated_at = utcnow()
    with _db(item.inventory_number):
        session.flush()
    audit.append(
        session,
        actor=actor,
        action=action,
        entity="item",
        key=item.inventory_number,
        before=before,
        after=item_snapshot(item),
        at=item.updated_at,
    )
    return item


def _not_written_off(item: Item, wanted: str) -> None:
    if item.status == ItemStatus.WRITTEN_OFF:
        raise ItemWrittenOff(
            item.inventory_number, item.status, wanted, "it left the fund by a write-off act"
        )


def update_item(
    session: Session,
    inventory_number: str,
    *,
    actor: str,
    new_inventory_number: str | _Unset = UNCHANGED,
    location: str | _Unset | None = UNCHANGED,
    shelf_mark: str | _Unset | None = UNCHANGED,
    condition: Condition | str | _Unset | None = UNCHANGED,
    value_flags: Iterable[ValueFlag | str] | _Unset = UNCHANGED,
    barcode: str | _Unset | None = UNCHANGED,
    rfid: str | _Unset | None = UNCHANGED,
    price: Decimal | int | str | _Unset | None = UNCHANGED,
) -> Item:
    """Change an item's descriptive fields. Never its inventory number (R14)."""
    item = get_item(session, inventory_number, for_update=True)
    if not isinstance(new_inventory_number, _Unset) and new_inventory_number != inventory_number:
        raise InventoryNumberImmutable(
            inventory_number, f"refused change to {new_inventory_number!r}"
        )
    _not_written_off(item, "changed")
    values: dict[str, Any] = {}
    if not isinstance(location, _Unset):
        values["location"] = location
    if not isinstance(shelf_mark, _Unset):
        values["shelf_mark"] = shelf_mark
    if not isinstance(condition, _Unset):
        values["condition"] = _condition(condition)
    if not isinstance(value_flags, _Unset):
        flags = _flags(value_flags)
        values["value_scientific"] = ValueFlag.SCIENTIFIC in flags
        values["value_historical"] = ValueFlag.HISTORICAL in flags
        values["value_artistic"] = ValueFlag.ARTISTIC in flags
    new_barcode = item.barcode if isinstance(barcode, _Unset) else barcode
    new_rfid = item.rfid if isinstance(rfid, _Unset) else rfid
    _check_codes(session, inventory_number, new_barcode, new_rfid, exclude=item.id)
    if not isinstance(barcode, _Unset):
        values["barcode"] = barcode
    if not isinstance(rfid, _Unset):
        values["rfid"] = rfid
    if not isinstance(price, _Unset):
        values["price_minor"] = to_tiyn(price)
    return _change_item(session, item, actor=actor, action="item.update", **values)


def process_item(
    session: Session,
    inventory_number: str,
    *,
    actor: str,
    barcode: str | None = None,
    rfid: str | None = None,
    location: str | None = None,
) -> Item:
    """R8: library processing done: the item has a barcode and/or RFID tag and a shelf location."""
    item = get_item(session, inventory_number, for_update=True)
    _not_written_off(item, ItemStatus.PROCESSED)
    if item.status != ItemStatus.RECEIVED:
        raise InvalidTransition(inventory_number, item.status, ItemStatus.PROCESSED)
    new_barcode = barcode if barcode is not None else item.barcode
    new_rfid = rfid if rfid is not None else item.rfid
    new_location = location if location is not None else item.location
    if new_barcode is None and new_rfid is None:
        raise InvalidTransition(
            inventory_number,
            item.status,
            ItemStatus.PROCESSED,
            "it has no barcode or RFID tag (R8)",
        )
    if not new_location:
        raise InvalidTransition(
            inventory_number, item.status, ItemStatus.PROCESSED, "it has no shelf location (R8)"
        )
    _check_codes(session, inventory_number, new_barcode, new_rfid, exclude=item.id)
    return _change_item(
        session,
        item,
        actor=actor,
        action="item.process",
        barcode=new_barcode,
        rfid=new_rfid,
        location=new_location,
        status=ItemStatus.PROCESSED.value,
    )


def set_status(
    session: Session,
    inventory_number: str,
    status: ItemStatus | str,
    *,
    actor: str,
    note: str | None = None,
) -> Item:
    """Move an item along the R8 lifecycle (see :data:`TRANSITIONS`).

    Raises :class:`NotProcessed` when an unprocessed item is asked to go to use,
    :class:`ItemWrittenOff` for written-off items, :class:`InvalidTransition` otherwise.
    Writing off goes through :func:`write_off` (an act is required, R3–R4).
    """
    wanted = ItemStatus(status)
    item = get_item(session, inventory_number, for_update=True)
    _not_written_off(item, wanted)
    current = ItemStatus(item.status)
    if wanted is ItemStatus.WRITTEN_OFF:
        raise InvalidTransition(
            inventory_number, current, wanted, "items leave the fund only by a write-off act"
        )
    if wanted not in TRANSITIONS[current]:
        if current is ItemStatus.RECEIVED and wanted in (
            ItemStatus.AVAILABLE,
            ItemStatus.ON_LOAN,
        ):
            raise NotProcessed(inventory_number, current)
        raise InvalidTransition(inventory_number, current, wanted)
    action = "item.status" if note is None else f"item.status: {note}"[:64]
    return _change_item(session, item, actor=actor, action=action, status=wanted.value)


def move_item(session: Session, inventory_number: str, *, location: str, actor: str) -> Item:
    """Change an item's shelf location (R8: the order of storage is kept)."""
    return update_item(session, inventory_number, actor=actor, location=location)


# --- repair, rebinding, copying, digitisation (R12–R13) -----------------------------------


def start_action(
    session: Session,
    inventory_number: str,
    *,
    kind: ActionKind | str,
    actor: str,
    note: str | None = None,
    at: datetime | None = None,
) -> ItemAction:
    """Record the start of an action on an item. Repair, rebinding and restoration take the item
    out of use (status ``in_repair``) until :func:`finish_action`."""
    what = ActionKind(kind)
    item = get_item(session, inventory_number, for_update=True)
    _not_written_off(item, f"{what.value} action")
    if what in REPAIR_KINDS and item.status != ItemStatus.IN_REPAIR:
        set_status(session, inventory_number, ItemStatus.IN_REPAIR, actor=actor, note=what.value)
    action = ItemAction(
        item=item, kind=what.value, started_at=at or utcnow(), note=note, actor=actor
    )
    session.add(action)
    with _db(inventory_number):
        session.flush()
    audit.append(
        session,
        actor=actor,
        action=f"action.start.{what.value}",
        entity="item",
        key=inventory_number,
        before=None,
        after={"action_id": action.id, "kind": what.value, "note": note},
    )
    return action


def finish_action(
    session: Session,
    action_id: int,
    *,
    actor: str,
    note: str | None = None,
    at: datetime | None = None,
) -> ItemAction:
    """Record the end of an action; when the last open repair ends the item is available again."""
    action = session.get(ItemAction, action_id, with_for_update=True)
    if action is None:
        raise RegisterError(f"no item action with id {action_id}")
    if action.finished_at is not None:
        raise RegisterError(f"action {action_id} already finished at {action.finished_at}")
    before = {"finished_at": None, "note": action.note}
    action.finished_at = at or utcnow()
    if note:
        action.note = f"{action.note}\n{note}" if action.note else note
    session.flush()
    item = action.item
    audit.append(
        session,
        actor=actor,
        action=f"action.finish.{action.kind}",
        entity="item",
        key=item.inventory_number,
        before=before,
        after={"action_id": action.id, "finished_at": action.finished_at, "note": action.note},
    )
    open_repairs = session.scalar(
        select(func.count(ItemAction.id)).where(
            ItemAction.item_id == item.id,
            ItemAction.finished_at.is_(None),
            ItemAction.kind.in_([k.value for k in REPAIR_KINDS]),
        )
    )
    if item.status == ItemStatus.IN_REPAIR and not open_repairs:
        set_status(session, item.inventory_number, ItemStatus.AVAILABLE, actor=actor)
    return action


# --- write-off (R3–R4) ----------------------------------------------------------------------


def write_off(
    session: Session,
    *,
    act_number: str,
    act_date: date,
    reason: WriteOffReason | str,
    inventory_numbers: Sequence[str],
    actor: str,
    note: str | None = None,
) -> WriteOffAct:
    """Write items off the fund by one act (акт списания). Nothing is deleted (R3–R4): the items
    stay in the register with status ``written_off`` and a link to the act."""
    why = WriteOffReason(reason)
    if not inventory_numbers:
        raise RegisterError(f"write-off act {act_number!r} lists no items")
    if len(set(inventory_numbers)) != len(inventory_numbers):
        raise RegisterError(f"write-off act {act_number!r} lists an item twice")
    if why is WriteOffReason.OTHER and not note:
        raise RegisterError(f"write-off act {act_number!r}: reason 'other' needs a note")
    if session.scalar(select(WriteOffAct.id).where(WriteOffAct.act_number == act_number)):
        raise DuplicateAct(f"write-off act {act_number!r} already exists")
    items = [get_item(session, n, for_update=True) for n in inventory_numbers]
    for item in items:
        _not_written_off(item, ItemStatus.WRITTEN_OFF)
        if item.receipt_batch.received_on > act_date:
            raise InvalidTransition(
                item.inventory_number,
                item.status,
                ItemStatus.WRITTEN_OFF,
                f"act date {act_date} is before its receipt on {item.receipt_batch.received_on}",
            )
    act = open_write_off_act(
        session, act_number=act_number, act_date=act_date, reason=why, actor=actor, note=note
    )
    apply_write_off(session, act, items, actor=actor)
    return act


def open_write_off_act(
    session: Session,
    *,
    act_number: str,
    act_date: date,
    reason: WriteOffReason | str,
    actor: str,
    note: str | None = None,
) -> WriteOffAct:
    """Register a write-off act with no items yet (see :func:`apply_write_off`)."""
    why = WriteOffReason(reason)
    if session.scalar(select(WriteOffAct.id).where(WriteOffAct.act_number == act_number)):
        raise DuplicateAct(f"write-off act {act_number!r} already exists")
    act = WriteOffAct(
        act_number=act_number,
        act_date=act_date,
        reason=why.value,
        note=note,
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(act)
    with _db():
        session.flush()
    audit.append(
        session,
        actor=actor,
        action="writeoff.act",
        entity="write_off_act",
        key=act_number,
        before=None,
        after={"act_date": act_date.isoformat(), "reason": why.value, "note": note},
    )
    return act


def apply_write_off(
    session: Session, act: WriteOffAct, items: Sequence[Item], *, actor: str
) -> None:
    """Mark ``items`` written off by the existing ``act`` (used by :func:`write_off` and by MARC
    import of items an earlier system wrote off); each change audited."""
    for item in items:
        _not_written_off(item, ItemStatus.WRITTEN_OFF)
    now = utcnow()
    befores = [item_snapshot(item) for item in items]
    for item in items:
        item.status = ItemStatus.WRITTEN_OFF.value
        item.write_off_act_id = act.id
        item.updated_at = now
    with _db():
        session.flush()
    audit.append_many(
        session,
        (
            audit.Change(
                actor=actor,
                action="item.write_off",
                entity="item",
                key=item.inventory_number,
                before=before,
                after=item_snapshot(item),
                at=now,
            )
            for item, before in zip(items, befores, strict=True)
        ),
    )


def get_write_off_act(session: Session, act_number: str) -> WriteOffAct:
    """The write-off act with this number, or :class:`ActNotFound`."""
    act = session.scalar(select(WriteOffAct).where(WriteOffAct.act_number == act_number))
    if act is None:
        raise ActNotFound(f"no write-off act {act_number!r}")
    return act


# --- digital copies -------------------------------------------------------------------------


def _copy_snapshot(c: DigitalCopy) -> dict[str, Any]:
    return {
        "bag_id": c.bag_id,
        "store_uri": c.store_uri,
        "version": c.version,
        "kek_id": c.kek_id,
        "wrapped_key_sha256": hashlib.sha256(c.wrapped_key).hexdigest(),
        "pdfa_verdict": c.pdfa_verdict,
        "ocr_confidence": c.ocr_confidence,
        "payload_bytes": c.payload_bytes,
        "file_count": c.file_count,
        "needs_review": c.needs_review,
        "page_count": c.page_count,
        "batch_fingerprint": c.batch_fingerprint,
    }


def next_copy_version(session: Session, inventory_number: str) -> int:
    """The version number the item's next digital copy should get (1 for the first)."""
    item = get_item(session, inventory_number)
    latest = session.scalar(
        select(func.max(DigitalCopy.version)).where(DigitalCopy.item_id == item.id)
    )
    return 1 if latest is None else int(latest) + 1


def add_digital_copy(
    session: Session,
    *,
    inventory_number: str,
    bag_id: str,
    store_uri: str,
    version: int,
    kek_id: str,
    wrapped_key: bytes,
    pdfa_verdict: str,
    ocr_confidence: float | None,
    payload_bytes: int,
    file_count: int,
    actor: str,
    needs_review: bool = False,
    page_count: int = 0,
    batch_fingerprint: str | None = None,
    at: datetime | None = None,
) -> DigitalCopy:
    """Link a stored digital copy (a BagIt bag) to its item (R13: the digital fund).

    Refused for an unknown or written-off item, a bag id already registered, or a version the
    item already has. ``batch_fingerprint`` identifies the scan batch it was made from, so a
    rerun of the same batch can find the copy instead of making another.
    """
    item = get_item(session, inventory_number, for_update=True)
    _not_written_off(item, "digitised")
    if version < 1:
        raise RegisterError(f"digital copy {bag_id}: version must be ≥ 1, not {version}")
    if payload_bytes < 0 or file_count < 0 or page_count < 0:
        raise RegisterError(f"digital copy {bag_id}: negative size or file count")
    if ocr_confidence is not None and not 0.0 <= ocr_confidence <= 100.0:
        raise RegisterError(f"digital copy {bag_id}: OCR confidence {ocr_confidence} not in 0–100")
    existing = session.scalar(select(DigitalCopy).where(DigitalCopy.bag_id == bag_id))
    if existing is not None:
        raise DigitalCopyExists(
            f"bag {bag_id} is already registered as version {existing.version} of item "
            f"{existing.item.inventory_number}"
        )
    if session.scalar(
        select(DigitalCopy.id).where(DigitalCopy.item_id == item.id, DigitalCopy.version == version)
    ):
        raise DigitalCopyExists(
            f"item {inventory_number} already has digital copy version {version}"
        )
    copy = DigitalCopy(
        item=item,
        bag_id=bag_id,
        store_uri=store_uri,
        version=version,
        kek_id=kek_id,
        wrapped_key=bytes(wrapped_key),
        pdfa_verdict=pdfa_verdict,
        ocr_confidence=ocr_confidence,
        payload_bytes=payload_bytes,
        file_count=file_count,
        needs_review=needs_review,
        page_count=page_count,
        batch_fingerprint=batch_fingerprint,
        created_at=at or utcnow(),
        created_by=actor,
    )
    session.add(copy)
    with _db(inventory_number):
        session.flush()
    audit.append(
        session,
        actor=actor,
        action="copy.add",
        entity="item",
        key=inventory_number,
        before=None,
        after=_copy_snapshot(copy),
        at=copy.created_at,
    )
    return copy


def digital_copies(session: Session, inventory_number: str) -> list[DigitalCopy]:
    """The item's digital copies, oldest version first (:class:`ItemNotFound` if no such item)."""
    item = get_item(session, inventory_number)
    return list(
        session.scalars(
            select(DigitalCopy).where(DigitalCopy.item_id == item.id).order_by(DigitalCopy.version)
        )
    )


def find_copy(
    session: Session, inventory_number: str, *, version: int | None = None
) -> DigitalCopy:
    """The item's digital copy ``version`` (the latest if None); :class:`ItemNotFound` for an
    unknown item, :class:`DigitalCopyNotFound` if it has no such copy."""
    copies = digital_copies(session, inventory_number)
    if not copies:
        raise DigitalCopyNotFound(f"item {inventory_number} has no digital copy")
    if version is None:
        return copies[-1]
    for c in copies:
        if c.version == version:
            return c
    have = ", ".join(str(c.version) for c in copies)
    raise DigitalCopyNotFound(
        f"item {inventory_number} has no digital copy version {version} (it has {have})"
    )


@dataclass(frozen=True)
class CopyFacts:
    """A digital copy's facts as plain values, safe to use after the session has closed."""

    inventory_number: str
    bag_id: str
    store_uri: str
    version: int
    kek_id: str
    wrapped_key: bytes
    pdfa_verdict: str
    ocr_confidence: float | None
    payload_bytes: int
    file_count: int
    page_count: int
    batch_fingerprint: str | None
    needs_review: bool
    created_at: datetime
    created_by: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view; the wrapped data key is left out (only its KEK id is shown)."""
        out = {k: v for k, v in self.__dict__.items() if k != "wrapped_key"}
        out["created_at"] = self.created_at.isoformat()
        return out


def copy_facts(copy: DigitalCopy) -> CopyFacts:
    """The facts of a copy, detached from the session."""
    return CopyFacts(
        inventory_number=copy.item.inventory_number,
        bag_id=copy.bag_id,
        store_uri=copy.store_uri,
        version=copy.version,
        kek_id=copy.kek_id,
        wrapped_key=bytes(copy.wrapped_key),
        pdfa_verdict=copy.pdfa_verdict,
        ocr_confidence=copy.ocr_confidence,
        payload_bytes=copy.payload_bytes,
        file_count=copy.file_count,
        page_count=copy.page_count,
        batch_fingerprint=copy.batch_fingerprint,
        needs_review=copy.needs_review,
        created_at=copy.created_at,
        created_by=copy.created_by,
    )


def get_digital_copy(session: Session, bag_id: str) -> DigitalCopy:
    """The digital copy stored as bag ``bag_id``, or :class:`DigitalCopyNotFound`."""
    copy = session.scalar(select(DigitalCopy).where(DigitalCopy.bag_id == bag_id))
    if copy is None:
        raise DigitalCopyNotFound(f"no digital copy with bag id {bag_id!r}")
    return copy


def record_copy_event(
    session: Session,
    *,
    copy: DigitalCopy | str,
    event_type: str,
    outcome: str,
    detail: str,
    agent: str,
    at: datetime | None = None,
) -> CopyEvent:
    """Append a PREMIS-style event (creation, fixity check, replication, key rewrap…) to a copy.

    ``copy`` is the copy or its bag id. Events are append-only (the database refuses edits).
    """
    target = copy if isinstance(copy, DigitalCopy) else get_digital_copy(session, copy)
    if not event_type.strip() or not outcome.strip() or not agent.strip():
        raise RegisterError(f"event on bag {target.bag_id}: type, outcome and agent are required")
    ev = CopyEvent(
        copy=target,
        event_type=event_type,
        outcome=outcome,
        detail=detail,
        agent=agent,
        at=at or utcnow(),
    )
    session.add(ev)
    with _db():
        session.flush()
    audit.append(
        session,
        actor=agent,
        action=f"copy.event.{event_type}"[:64],
        entity="digital_copy",
        key=target.bag_id,
        before=None,
        after={"event_id": ev.id, "outcome": outcome, "detail": detail},
        at=ev.at,
    )
    return ev


def all_digital_copies(session: Session) -> list[DigitalCopy]:
    """Every digital copy in the register, by bag id."""
    return list(session.scalars(select(DigitalCopy).order_by(DigitalCopy.bag_id)))


def record_derivatives(
    session: Session, *, copy: DigitalCopy | str, added_bytes: int, added_files: int, actor: str
) -> None:
    """Files added to a stored copy's bag (``qor copies derive``): its stored size and file
    count grow by them; audited with the before and after values."""
    target = copy if isinstance(copy, DigitalCopy) else get_digital_copy(session, copy)
    if added_bytes < 0 or added_files < 0:
        raise RegisterError(f"bag {target.bag_id}: added bytes and files cannot be negative")
    before = _copy_snapshot(target)
    target.payload_bytes = target.payload_bytes + added_bytes
    target.file_count = target.file_count + added_files
    with _db():
        session.flush()
    after = _copy_snapshot(target)
    audit.append(
        session, actor=actor, action="copy.derivatives", entity="digital_copy",
        key=target.bag_id,
        before={k: before[k] for k in ("payload_bytes", "file_count")},
        after={k: after[k] for k in ("payload_bytes", "file_count")},
    )


def copy_events(session: Session, bag_id: str) -> list[CopyEvent]:
    """A copy's events in the order they were recorded."""
    target = get_digital_copy(session, bag_id)
    return list(
        session.scalars(
            select(CopyEvent).where(CopyEvent.copy_id == target.id).order_by(CopyEvent.id)
        )
    )


def update_wrapped_key(
    session: Session, *, bag_id: str, wrapped: bytes, kek_id: str, actor: str
) -> None:
    """Store a re-wrapped data key after key rotation (payloads untouched); audited with the
    old and new key-encryption key ids and a digest of each wrapped key."""
    target = get_digital_copy(session, bag_id)
    before = _copy_snapshot(target)
    target.wrapped_key = bytes(wrapped)
    target.kek_id = kek_id
    with _db():
        session.flush()
    audit.append(
        session,
        actor=actor,
        action="copy.rewrap",
        entity="digital_copy",
        key=bag_id,
        before={k: before[k] for k in ("kek_id", "wrapped_key_sha256")},
        after={
            k: v for k, v in _copy_snapshot(target).items() if k in ("kek_id", "wrapped_key_sha256")
        },
    )


# --- bulk entry (retroconversion, MARC import, generated data) ------------------------------


@dataclass(frozen=True)
class BulkItem:
    """One item for :func:`bulk_receive`."""

    record_id: int
    source: AcquisitionSource | str | None
    inventory_number: str | None = None
    price: Decimal | int | str | None = None
    barcode: str | None = None
    rfid: str | None = None
    location: str | None = None
    status: ItemStatus | str = ItemStatus.RECEIVED
    value_flags: frozenset[ValueFlag] = field(default_factory=frozenset)
    condition: Condition | str | None = None
    shelf_mark: str | None = None


def bulk_receive(
    session: Session, *, batch: ReceiptBatch, items: Sequence[BulkItem], actor: str
) -> list[str]:
    """Receive many items into one batch at once (retroconversion, MARC import, benchmarks).

    Same rules as :func:`receive_item` (numbers from the sequence or checked never given,
    sources per R5, audited), in far fewer round trips. Initial status may be ``received``,
    ``processed`` or ``available``; processed ones need a barcode or RFID and a location (R8).
    Returns the inventory numbers in input order.
    """
    national = is_national_library(session)
    rows: list[dict[str, Any]] = []
    numbers: list[str] = []
    now = utcnow()
    explicit = [b.inventory_number for b in items if b.inventory_number is not None]
    if len(set(explicit)) != len(explicit):
        raise RegisterError("bulk receipt lists an inventory number twice")
    for chunk_start in range(0, len(explicit), 1000):
        chunk = explicit[chunk_start : chunk_start + 1000]
        taken = session.scalars(
            select(IssuedInventoryNumber.inventory_number).where(
                IssuedInventoryNumber.inventory_number.in_(chunk)
            )
        ).first()
        if taken is not None:
            raise InventoryNumberTaken(taken)
    for b in items:
        src = b.source
        if src is not None:
            try:
                src = AcquisitionSource(src)
            except ValueError as e:
                allowed = ", ".join(a.value for a in AcquisitionSource)
                raise RegisterError(
                    f"item {b.inventory_number or '(new)'}: source {src!r} is not one of "
                    f"{allowed} (R5)"
                ) from e
            if src is AcquisitionSource.LEGAL_DEPOSIT and not national:
                raise SourceNotAllowed(
                    "source legal_deposit is only for a library configured as national (R5)"
                )
        try:
            status = ItemStatus(b.status)
        except ValueError as e:
            allowed = ", ".join(a.value for a in ItemStatus)
            raise RegisterError(
                f"item {b.inventory_number or '(new)'}: status {b.status!r} is not one of "
                f"{allowed}"
            ) from e
        if status not in (ItemStatus.RECEIVED, ItemStatus.PROCESSED, ItemStatus.AVAILABLE):
            raise RegisterError(f"bulk receipt: initial status {status.value} is not allowed")
        number = (
            validate_inventory_number(b.inventory_number)
            if b.inventory_number is not None
            else next_inventory_number(session)
        )
        if status is not ItemStatus.RECEIVED and (
            (b.barcode is None and b.rfid is None) or not b.location
        ):
            raise InvalidTransition(number, "received", status, "no barcode/RFID or location (R8)")
        flags = _flags(b.value_flags)
        numbers.append(number)
        rows.append(
            {
                "inventory_number": number,
                "sort_key": sort_key(number),
                "record_id": b.record_id,
                "receipt_batch_id": batch.id,
                "source": None if src is None else AcquisitionSource(src).value,
                "price_minor": to_tiyn(b.price),
                "barcode": b.barcode,
                "rfid": b.rfid,
                "location": b.location,
                "shelf_mark": b.shelf_mark,
                "status": status.value,
                "value_scientific": ValueFlag.SCIENTIFIC in flags,
                "value_historical": ValueFlag.HISTORICAL in flags,
                "value_artistic": ValueFlag.ARTISTIC in flags,
                "condition": _condition(b.condition),
                "write_off_act_id": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    if not rows:
        return []
    with _db(numbers[0] if len(numbers) == 1 else "?"):
        session.execute(insert(Item), rows)
    audit.append_many(
        session,
        (
            audit.Change(
                actor=actor,
                action="item.receive",
                entity="item",
                key=row["inventory_number"],
                before=None,
                after={
                    k: v
                    for k, v in row.items()
                    if k not in ("sort_key", "created_at", "updated_at")
                },
                at=now,
            )
            for row in rows
        ),
    )
    return numbers
