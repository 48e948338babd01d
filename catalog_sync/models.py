"""The register's tables (SQLAlchemy 2 typed ORM).

The schema itself is created only by the Alembic migrations in ``catalog_sync/migrations``; these
classes must match them (``tests/register/test_schema.py`` compares the two). Triggers that make the
database refuse what R3–R4 and R14 forbid live in the migrations, not here.

Money is stored as whole tiyn (1/100 tenge) in integer columns so that sums are exact on SQLite
and PostgreSQL alike; the ``price`` properties give :class:`decimal.Decimal` tenge.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates
from sqlalchemy.types import TypeDecorator

from catalog_sync.errors import InventoryNumberImmutable

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the register stores aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with deterministic constraint names (Alembic needs them)."""

    metadata = MetaData(naming_convention=NAMING)


class MaterialType(enum.StrEnum):
    """R2: kind of document. Printed products (баспа өнімі · печатная продукция) have subtypes.

    ``audiovisual`` — аудиовизуалды материал · аудиовизуальный материал;
    ``electronic`` — a document on an electronic carrier.
    """

    PERIODICAL = "periodical"
    BOOK = "book"
    BROCHURE = "brochure"
    ALBUM = "album"
    POSTER = "poster"
    BOOKLET = "booklet"
    PRINTED_OTHER = "printed_other"
    AUDIOVISUAL = "audiovisual"
    ELECTRONIC = "electronic"

    @property
    def is_printed(self) -> bool:
        """Whether this is a printed product (R2.2)."""
        return self not in (MaterialType.AUDIOVISUAL, MaterialType.ELECTRONIC)


class AcquisitionSource(enum.StrEnum):
    """R5: how an item came into the fund.

    purchase (сатып алу · покупка), exchange (кітап алмасу · книгообмен), donation (сыйға тарту ·
    дарение), state order (мемлекеттік тапсырыс · госзаказ), legal deposit (міндетті тегін дана ·
    обязательный экземпляр — only for a library configured as national).
    """

    PURCHASE = "purchase"
    EXCHANGE = "exchange"
    DONATION = "donation"
    STATE_ORDER = "state_order"
    LEGAL_DEPOSIT = "legal_deposit"


class ItemStatus(enum.StrEnum):
    """R8 lifecycle.

    received → processed → available → (on loan | in repair | missing) → written off.
    """

    RECEIVED = "received"
    PROCESSED = "processed"
    AVAILABLE = "available"
    ON_LOAN = "on_loan"
    IN_REPAIR = "in_repair"
    MISSING = "missing"
    WRITTEN_OFF = "written_off"


class ValueFlag(enum.StrEnum):
    """R13: the item is scientifically, historically or artistically valuable."""

    SCIENTIFIC = "scientific"
    HISTORICAL = "historical"
    ARTISTIC = "artistic"


class Condition(enum.StrEnum):
    """Physical condition of an item (R12–R13 decide repair and rebinding from it)."""

    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"
    DAMAGED = "damaged"


class ActionKind(enum.StrEnum):
    """R12–R13: what was done to an item: жөндеу · ремонт, қайта түптеу · переплёт, жаңғырту ·
    реставрация, copying (копирование), digitisation (цифрландыру · оцифровка)."""

    REPAIR = "repair"
    REBINDING = "rebinding"
    RESTORATION = "restoration"
    COPYING = "copying"
    DIGITISATION = "digitisation"


class WriteOffReason(enum.StrEnum):
    """Why items leave the fund (есептен шығару · списание): worn out (ветхость), lost (утеря),
    obsolete in content (устарелость), duplicate (дублетность), outside the fund's profile
    (непрофильность), damaged beyond repair, or another reason stated in the act's note."""

    WORN = "worn"
    LOST = "lost"
    OBSOLETE = "obsolete"
    DUPLICATE = "duplicate"
    OUT_OF_PROFILE = "out_of_profile"
    DAMAGED = "damaged"
    OTHER = "other"


class StocktakeReason(enum.StrEnum):
    """R14: why a reconciliation check (салыстырмалы тексеру · сверка фонда) is made."""

    CHANGE_OF_RESPONSIBLE_PERSON = "change-of-responsible-person"
    LOSS = "loss"
    REORGANISATION = "reorganisation"
    LIQUIDATION = "liquidation"


def tiyn_to_tenge(value: int | None) -> Decimal | None:
    """Whole tiyn → tenge with two decimals."""
    return None if value is None else (Decimal(value) / 100).quantize(Decimal("0.01"))


class RegisterSetting(Base):
    """Register-wide settings kept in the database (e.g. whether the library is national, R5)."""

    __tablename__ = "register_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class InventorySequence(Base):
    """The pattern and next value that inventory numbers are assigned from (R14: no gaps)."""

    __tablename__ = "inventory_sequences"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    pattern: Mapped[str] = mapped_column(String(128))
    next_value: Mapped[int] = mapped_column(BigInteger)


class IssuedInventoryNumber(Base):
    """Every inventory number ever given, filled by a trigger on ``items``; rows are never deleted,
    so a number can never be given twice (R14), even if an item row vanished."""

    __tablename__ = "issued_inventory_numbers"

    inventory_number: Mapped[str] = mapped_column(String(64), primary_key=True)


class BibRecord(Base):
    """A bibliographic record (what the document is), shared by all its copies (items)."""

    __tablename__ = "bib_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    control_number: Mapped[str | None] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text)
    authors: Mapped[list[str]] = mapped_column(JSON)
    publisher: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str | None] = mapped_column(String(8))
    isbn: Mapped[str | None] = mapped_column(String(32), index=True)
    issn: Mapped[str | None] = mapped_column(String(16), index=True)
    material_type: Mapped[str] = mapped_column(String(32))
    legal_deposit: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list[Item]] = relationship(back_populates="record")

    @property
    def material(self) -> MaterialType:
        """The material type as an enum."""
        return MaterialType(self.material_type)


class ReceiptBatch(Base):
    """A receipt act (түгендеу акті · акт поступления): items that arrived together (R5, R9)."""

    __tablename__ = "receipt_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    act_number: Mapped[str] = mapped_column(String(64), unique=True)
    received_on: Mapped[date] = mapped_column(Date, index=True)
    supplier: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))

    items: Mapped[list[Item]] = relationship(back_populates="receipt_batch")


class WriteOffAct(Base):
    """A write-off act (есептен шығару акті · акт списания). Items leave the fund only by one of
    these; nothing is deleted (R3–R4)."""

    __tablename__ = "write_off_acts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    act_number: Mapped[str] = mapped_column(String(64), unique=True)
    act_date: Mapped[date] = mapped_column(Date, index=True)
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))

    items: Mapped[list[Item]] = relationship(back_populates="write_off_act")


class Item(Base):
    """One copy in the fund, identified for ever by its inventory number

    инвентарный номер · инвентарлық нөмір (R14).
    """

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inventory_number: Mapped[str] = mapped_column(String(64), unique=True)
    sort_key: Mapped[str] = mapped_column(String(512), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("bib_records.id"), index=True)
    receipt_batch_id: Mapped[int] = mapped_column(ForeignKey("receipt_batches.id"), index=True)
    source: Mapped[str | None] = mapped_column(String(32))
    price_minor: Mapped[int | None] = mapped_column(BigInteger)
    barcode: Mapped[str | None] = mapped_column(String(64), unique=True)
    rfid: Mapped[str | None] = mapped_column(String(64), unique=True)
    location: Mapped[str | None] = mapped_column(String(128), index=True)
    shelf_mark: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    value_scientific: Mapped[bool] = mapped_column(Boolean, default=False)
    value_historical: Mapped[bool] = mapped_column(Boolean, default=False)
    value_artistic: Mapped[bool] = mapped_column(Boolean, default=False)
    condition: Mapped[str | None] = mapped_column(String(16))
    write_off_act_id: Mapped[int | None] = mapped_column(
        ForeignKey("write_off_acts.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    record: Mapped[BibRecord] = relationship(back_populates="items")
    receipt_batch: Mapped[ReceiptBatch] = relationship(back_populates="items")
    write_off_act: Mapped[WriteOffAct | None] = relationship(back_populates="items")
    digital_copies: Mapped[list[DigitalCopy]] = relationship(
        back_populates="item", order_by="DigitalCopy.version"
    )
    actions: Mapped[list[ItemAction]] = relationship(
        back_populates="item", order_by="ItemAction.id"
    )

    @validates("inventory_number")
    def _never_renumber(self, _key: str, value: str) -> str:
        # R14: once given, the inventory number is not changed or corrected, not even in memory.
        current = self.__dict__.get("inventory_number")
        if current is not None and current != value:
            raise InventoryNumberImmutable(current, f"refused change to {value!r}")
        return value

    @property
    def item_status(self) -> ItemStatus:
        """The status as an enum."""
        return ItemStatus(self.status)

    @property
    def price(self) -> Decimal | None:
        """Price in tenge."""
        return tiyn_to_tenge(self.price_minor)

    @property
    def value_flags(self) -> frozenset[ValueFlag]:
        """R13 value flags set on this item."""
        flags = set()
        if self.value_scientific:
            flags.add(ValueFlag.SCIENTIFIC)
        if self.value_historical:
            flags.add(ValueFlag.HISTORICAL)
        if self.value_artistic:
            flags.add(ValueFlag.ARTISTIC)
        return frozenset(flags)

    @property
    def is_processed(self) -> bool:
        """R8: the item has passed library processing (it may be given out)."""
        return self.status not in (ItemStatus.RECEIVED, ItemStatus.WRITTEN_OFF)


class ItemAction(Base):
    """R12–R13: a repair, rebinding, restoration, copying or digitisation action on an item."""

    __tablename__ = "item_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))

    item: Mapped[Item] = relationship(back_populates="actions")


class DigitalCopy(Base):
    """An electronic copy of an item kept in the depository store (R13), one row per version."""

    __tablename__ = "digital_copies"
    __table_args__ = (
        UniqueConstraint("item_id", "version", name="uq_digital_copies_item_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    bag_id: Mapped[str] = mapped_column(String(128), unique=True)
    store_uri: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    kek_id: Mapped[str] = mapped_column(String(128))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    pdfa_verdict: Mapped[str] = mapped_column(String(64))
    ocr_confidence: Mapped[float | None] = mapped_column(Float)
    payload_bytes: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    batch_fingerprint: Mapped[str | None] = mapped_column(String(128), index=True)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))

    item: Mapped[Item] = relationship(back_populates="digital_copies")
    events: Mapped[list[CopyEvent]] = relationship(back_populates="copy", order_by="CopyEvent.id")

    @property
    def inventory_number(self) -> str:
        """The inventory number of the item this copy reproduces."""
        return self.item.inventory_number


class CopyEvent(Base):
    """A PREMIS-style event on a digital copy (creation, fixity check, replication, key rewrap…).

    Append-only: the database refuses updates and deletes.
    """

    __tablename__ = "copy_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    copy_id: Mapped[int] = mapped_column(ForeignKey("digital_copies.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    agent: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    copy: Mapped[DigitalCopy] = relationship(back_populates="events")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (for ``--json`` output)."""
        return {
            "event_type": self.event_type,
            "outcome": self.outcome,
            "detail": self.detail,
            "agent": self.agent,
            "at": self.at.isoformat(),
        }


class AuditSchedule(Base):
    """How often the bags of one storage location are deep-checked (тексеру кестесі /
    расписание проверок): a store URI and its interval in days. A location without a row, or
    whose interval is NULL (returned to the setting: register rows are never deleted, R3–R4),
    follows the ``fixity_deep_every_days`` setting (:mod:`integrity.schedules`)."""

    __tablename__ = "audit_schedules"
    __table_args__ = (
        CheckConstraint("deep_every_days IS NULL OR deep_every_days BETWEEN 1 AND 3650",
                        name="days"),
    )

    store_uri: Mapped[str] = mapped_column(String(1024), primary_key=True)
    deep_every_days: Mapped[int | None] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(128))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Stocktake(Base):
    """A reconciliation check of the fund (R14), over the locations in its scope."""

    __tablename__ = "stocktakes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(40))
    responsible: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(128))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class StocktakeScan(Base):
    """One barcode or RFID read during a stocktake, kept as read (duplicates too)."""

    __tablename__ = "stocktake_scans"
    __table_args__ = (Index("ix_stocktake_scans_stocktake_code", "stocktake_id", "code"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    stocktake_id: Mapped[int] = mapped_column(ForeignKey("stocktakes.id"))
    code: Mapped[str] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(String(128))
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditHead(Base):
    """The last entry of one chain of the audit log (a row per chain; ``id`` is the chain).

    A transaction locks one chain's row while it appends, so each chain is serial while
    transactions appending to different chains never wait for each other (migration 0005)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    """One change to the register: who, when, what, before and after; hash-chained, append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_chain_seq", "chain", "seq", unique=True),
        Index("uq_audit_log_chain_position", "chain", "chain_seq", unique=True),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The chain and the position in it; chain 0 is the log before migration 0005 (its
    # position is ``seq``, ``chain_seq`` stays empty: those rows were never rewritten).
    chain: Mapped[int] = mapped_column(Integer, server_default="0")
    chain_seq: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_key: Mapped[str] = mapped_column(String(128), index=True)
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# --- circulation, reader debts, security gate, legal deposit (migration 0002) ----------------


class ReaderCategory(enum.StrEnum):
    """Reader category (оқырман санаты · категория читателя); loan periods depend on it (R15)."""

    ADULT = "adult"
    STUDENT = "student"
    SCHOOLCHILD = "schoolchild"
    RESEARCHER = "researcher"
    STAFF = "staff"


class ReaderStatus(enum.StrEnum):
    """Whether a reader may borrow: ``blocked`` (бұғатталған · заблокирован) carries a reason."""

    ACTIVE = "active"
    BLOCKED = "blocked"


class ServicePointKind(enum.StrEnum):
    """R15: where items are given to readers.

    lending desk (абонемент), reading room (оқу залы · читальный зал), special service
    department (арнаулы қызмет көрсету бөлімі · отдел специального обслуживания), outreach point
    (стационардан тыс пункт · внестационарный пункт), interlibrary loan (кітапханааралық
    абонемент · межбиблиотечный абонемент, МБА).
    """

    LENDING_DESK = "lending_desk"
    READING_ROOM = "reading_room"
    SPECIAL_SERVICE = "special_service"
    OUTREACH = "outreach"
    INTERLIBRARY = "interlibrary"


class IllDirection(enum.StrEnum):
    """Interlibrary loan direction: our item ``lent`` to a partner, or ``borrowed`` from one."""

    LENT = "lent"
    BORROWED = "borrowed"


class Settlement(enum.StrEnum):
    """R16: how a loan (and any debt on it) ended: the item came back, the reader brought a
    replacement copy (замена), or paid compensation (возмещение)."""

    RETURNED = "returned"
    REPLACED = "replaced"
    COMPENSATED = "compensated"


class HoldStatus(enum.StrEnum):
    """A hold (брондау · бронирование) waits in the queue, is ready (an item is kept for the
    reader), was fulfilled by a loan, or was cancelled."""

    WAITING = "waiting"
    READY = "ready"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class DepositForm(enum.StrEnum):
    """R7: the form of a legal deposit copy (міндетті тегін дана · обязательный экземпляр)."""

    PAPER = "paper"
    ELECTRONIC = "electronic"


class Reader(Base):
    """A reader (оқырман · читатель) identified by the number of the reader ticket (оқырман
    билеті · читательский билет). Personal data limited to what circulation needs: name,
    category, one e-mail and one phone for reminders."""

    __tablename__ = "readers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_number: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=ReaderStatus.ACTIVE.value)
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    registered_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_blocked(self) -> bool:
        """Whether the reader is blocked (R16)."""
        return self.status == ReaderStatus.BLOCKED


class ServicePoint(Base):
    """A named place where items are given out (R15), of one :class:`ServicePointKind`."""

    __tablename__ = "service_points"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))


class Loan(Base):
    """One loan (кітап беру · выдача) of an item at a service point.

    Open while ``returned_at`` is NULL. The database keeps an item on at most one open loan (a
    partial unique index) and refuses any change to a closed loan (a trigger). Interlibrary loans
    carry the partner library and direction; a loan of an item borrowed from a partner has no
    ``item_id`` but ``external_item`` (the partner's description); a loan lent to a partner has
    no reader.
    """

    __tablename__ = "loans"
    __table_args__ = (
        Index(
            "uq_loans_open_item",
            "item_id",
            unique=True,
            postgresql_where="returned_at IS NULL",
            sqlite_where="returned_at IS NULL",
        ),
        Index(
            "ix_loans_open_due",
            "due_on",
            postgresql_where="returned_at IS NULL",
            sqlite_where="returned_at IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    external_item: Mapped[str | None] = mapped_column(Text)
    reader_id: Mapped[int | None] = mapped_column(ForeignKey("readers.id"), index=True)
    service_point_id: Mapped[int] = mapped_column(ForeignKey("service_points.id"), index=True)
    partner_library: Mapped[str | None] = mapped_column(Text)
    ill_direction: Mapped[str | None] = mapped_column(String(8))
    loaned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_on: Mapped[date] = mapped_column(Date)
    renewals: Mapped[int] = mapped_column(Integer, default=0)
    loaned_by: Mapped[str] = mapped_column(String(128))
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_on: Mapped[date | None] = mapped_column(Date)
    returned_by: Mapped[str | None] = mapped_column(String(128))
    settlement: Mapped[str | None] = mapped_column(String(16))
    compensation_minor: Mapped[int | None] = mapped_column(BigInteger)
    settlement_note: Mapped[str | None] = mapped_column(Text)

    item: Mapped[Item | None] = relationship()
    reader: Mapped[Reader | None] = relationship()
    service_point: Mapped[ServicePoint] = relationship()

    @property
    def is_open(self) -> bool:
        """Whether the item is still out."""
        return self.returned_at is None


class DebtStep(Base):
    """R16: one step taken on an overdue loan (a reminder sent, or the reader blocked), recorded
    once per loan, kind and step so the daily run never repeats it."""

    __tablename__ = "debt_steps"
    __table_args__ = (
        UniqueConstraint("loan_id", "kind", "step_days", name="uq_debt_steps_loan_kind_step"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    step_days: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(254))
    detail: Mapped[str] = mapped_column(Text)


class Hold(Base):
    """A reader's place in the queue for a title (any copy of a bibliographic record)."""

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("bib_records.id"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ItemCirculation(Base):
    """Circulation facts of an item: its security tag (R10: armed on check-in, disarmed on
    check-out) and whether it may be used only in the reading room (R15). No row means armed
    and lendable (the safe default for the tag)."""

    __tablename__ = "item_circulation"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    armed: Mapped[bool] = mapped_column(Boolean)
    reading_room_only: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GateEvent(Base):
    """R10: one read at the security gate (тексеру-өткізу · пропускной режим), append-only."""

    __tablename__ = "gate_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    gate: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    cleared: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)


class CalendarDay(Base):
    """The library's amendments to Kazakhstan's official calendar: a ``day_off`` (holiday or a
    moved day off) or a ``working`` day (a weekend made working by a transfer). They override
    the ``holidays`` package for the deadline arithmetic of R7."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(128))


class DepositRecipient(Base):
    """R7: who must receive legal deposit copies of which forms (configurable)."""

    __tablename__ = "deposit_recipients"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_kk: Mapped[str] = mapped_column(Text)
    name_ru: Mapped[str] = mapped_column(Text)
    forms: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_this_library: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def form_set(self) -> frozenset[DepositForm]:
        """The forms this recipient receives."""
        return frozenset(DepositForm(f) for f in self.forms.split(",") if f)


class Publication(Base):
    """A publication subject to legal deposit (R7): publisher, first printing date, form."""

    __tablename__ = "publications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    publisher: Mapped[str] = mapped_column(Text, index=True)
    publisher_email: Mapped[str | None] = mapped_column(String(254))
    publisher_address: Mapped[str | None] = mapped_column(Text)
    form: Mapped[str] = mapped_column(String(16))
    first_printed_on: Mapped[date] = mapped_column(Date)
    isbn: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("bib_records.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    obligations: Mapped[list[DepositObligation]] = relationship(
        back_populates="publication", order_by="DepositObligation.recipient_code"
    )


class DepositObligation(Base):
    """R7: one publication owed to one recipient by a due date; closed by a receipt."""

    __tablename__ = "deposit_obligations"
    __table_args__ = (
        UniqueConstraint(
            "publication_id", "recipient_code", name="uq_deposit_obligations_pub_recipient"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publications.id"), index=True)
    recipient_code: Mapped[str] = mapped_column(ForeignKey("deposit_recipients.code"))
    due_on: Mapped[date] = mapped_column(Date, index=True)
    due_reason: Mapped[str] = mapped_column(Text)
    received_on: Mapped[date | None] = mapped_column(Date)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    publication: Mapped[Publication] = relationship(back_populates="obligations")
    recipient: Mapped[DepositRecipient] = relationship()


class DepositClaim(Base):
    """R7: a claim letter (талап хат · претензия) written to a late publisher."""

    __tablename__ = "deposit_claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("deposit_obligations.id"), index=True)
    written_on: Mapped[date] = mapped_column(Date)
    language: Mapped[str] = mapped_column(String(4))
    html_path: Mapped[str] = mapped_column(Text)
    pdf_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
