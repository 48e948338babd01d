"""Circulation (R15): loans at the five kinds of service point, returns, renewals, holds,
interlibrary loans, and the refusals the rules demand (R8, R16).

A loan (кітап беру · выдача) is given at a named service point: the lending desk (абонемент),
a reading room (оқу залы · читальный зал — due back the same day; items flagged for the reading
room only go nowhere else), a special service department, an outreach point, or through
interlibrary loan (кітапханааралық абонемент · МБА, with the partner library and direction).

Refused, each with a message the librarian reads at the desk (:class:`LoanRefused`, with a
stable ``reason`` code): an item not yet processed (R8), written off, already on loan, in
repair, missing or not yet placed in the fund; an item kept for another reader's hold; a
reading-room-only item outside the reading room; a blocked reader, or one whose overdue items
exceed the policy's limit (R16).

The database holds the two invariants on its own too: an item is never on two open loans (a
partial unique index) and a returned loan never changes (a trigger). Check-out disarms the
item's security tag and check-in arms it (R10, see :mod:`catalog_sync.gate`).

Loans are recorded in ``loans`` — the record of circulation — and every check-out, check-in,
renewal, settlement and interlibrary loan also appends the loan's full row to the register's
hash-chained audit log (entity ``loan``, key the loan id), so
:func:`catalog_sync.audit.verify_loans`
finds a loan row edited, inserted or deleted behind the register's back. Reader, debt, calendar
and deposit changes are audited too.

None of these functions commits; the caller owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from functools import cache
from typing import Any, Final, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Date,
    Executable,
    Insert,
    Integer,
    String,
    Table,
    Update,
    bindparam,
    case,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import (
    cast as cast_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from catalog_sync import audit
from catalog_sync.calendar_kz import KazakhCalendar
from catalog_sync.errors import (
    ItemNotFound,
    LoanClosed,
    LoanNotFound,
    LoanRefused,
    RegisterError,
    ServicePointNotFound,
)
from catalog_sync.models import (
    Base,
    BibRecord,
    Hold,
    HoldStatus,
    IllDirection,
    Item,
    ItemCirculation,
    ItemStatus,
    Loan,
    Reader,
    ReaderCategory,
    ReaderStatus,
    ServicePoint,
    ServicePointKind,
    Settlement,
    utcnow,
)
from catalog_sync.readers import get_reader
from catalog_sync.register import ItemFacts, facts_by, item_by, translate_db_error

logger = logging.getLogger(__name__)

# A block set by the debt flow starts with this, so a settled debt lifts only its own blocks.
DEBT_BLOCK_PREFIX: Final = "R16 debt:"
MSG_LOAN_CLOSED: Final = "QOR-LOAN-CLOSED"


@dataclass(frozen=True)
class CirculationPolicy:
    """The library's loan rules.

    ``loan_days`` maps ``(reader category, material type)`` to a loan period in days; ``"*"``
    matches any category or material (the most specific rule wins). ``debt_limit`` is how many
    overdue items a reader may have and still borrow (0: none). Renewals add a loan period
    from the later of the due date and today, at most ``max_renewals`` times, and never while
    another reader waits for the title.
    """

    loan_days: Mapping[tuple[str, str], int] = field(
        default_factory=lambda: {
            ("*", "*"): 30,
            (ReaderCategory.SCHOOLCHILD.value, "*"): 15,
            (ReaderCategory.RESEARCHER.value, "*"): 45,
            ("*", "periodical"): 10,
            ("*", "audiovisual"): 14,
        }
    )
    max_renewals: int = 2
    debt_limit: int = 0
    ill_days: int = 30
    hold_pickup_days: int = 7

    def period(self, category: str, material: str) -> int:
        """The loan period in days for a reader category and a material type."""
        for key in ((category, material), ("*", material), (category, "*"), ("*", "*")):
            if key in self.loan_days:
                return self.loan_days[key]
        return 30


DEFAULT_POLICY: Final = CirculationPolicy()


@dataclass(frozen=True)
class LoanFacts:
    """A loan as plain values (usable after the session closes; ``as_dict`` for ``--json``)."""

    loan_id: int
    inventory_number: str | None
    external_item: str | None
    title: str
    ticket_number: str | None
    reader_name: str | None
    service_point: str
    service_point_kind: str
    partner_library: str | None
    ill_direction: str | None
    loaned_at: datetime
    due_on: date
    renewals: int
    returned_on: date | None
    settlement: str | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            "loan_id": self.loan_id,
            "inventory_number": self.inventory_number,
            "external_item": self.external_item,
            "title": self.title,
            "ticket_number": self.ticket_number,
            "reader_name": self.reader_name,
            "service_point": self.service_point,
            "service_point_kind": self.service_point_kind,
            "partner_library": self.partner_library,
            "ill_direction": self.ill_direction,
            "loaned_at": self.loaned_at.isoformat(),
            "due_on": self.due_on.isoformat(),
            "renewals": self.renewals,
            "returned_on": None if self.returned_on is None else self.returned_on.isoformat(),
            "settlement": self.settlement,
        }


def loan_facts(loan: Loan) -> LoanFacts:
    """Plain values of a loan."""
    item, reader, point = loan.item, loan.reader, loan.service_point
    return LoanFacts(
        loan_id=loan.id,
        inventory_number=None if item is None else item.inventory_number,
        external_item=loan.external_item,
        title=item.record.title if item is not None else (loan.external_item or ""),
        ticket_number=None if reader is None else reader.ticket_number,
        reader_name=None if reader is None else reader.name,
        service_point=point.name,
        service_point_kind=point.kind,
        partner_library=loan.partner_library,
        ill_direction=loan.ill_direction,
        loaned_at=loan.loaned_at,
        due_on=loan.due_on,
        renewals=loan.renewals,
        returned_on=loan.returned_on,
        settlement=loan.settlement,
    )


@contextmanager
def _db(what: str) -> Iterator[None]:
    try:
        yield
    except IntegrityError as e:
        if "uq_loans_open_item" in str(e.orig) or "loans.item_id" in str(e.orig):
            # R15: the database's own guard against a second open loan (a concurrent desk won).
            raise LoanRefused(
                "on_loan", f"{what} is already on loan (another desk lent it a moment ago)"
            ) from e
        raise translate_db_error(e) from e
    except DBAPIError as e:
        if MSG_LOAN_CLOSED in str(e.orig):
            raise LoanClosed(f"{what}: a returned loan never changes") from e
        raise translate_db_error(e) from e


# --- service points -------------------------------------------------------------------------


def add_service_point(
    session: Session, *, code: str, name: str, kind: ServicePointKind | str, actor: str
) -> ServicePoint:
    """Create a named service point of one of the five kinds (R15)."""
    what = ServicePointKind(kind)
    if not code.strip() or not name.strip():
        raise RegisterError("a service point needs a code and a name")
    if session.scalar(select(ServicePoint.id).where(ServicePoint.code == code)) is not None:
        raise RegisterError(f"service point {code!r} already exists")
    point = ServicePoint(code=code.strip(), name=name.strip(), kind=what.value)
    session.add(point)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="service_point.add",
        entity="service_point",
        key=point.code,
        before=None,
        after={"name": point.name, "kind": point.kind},
    )
    return point


_POINT_BY_CODE: Final = select(ServicePoint).where(
    ServicePoint.code == bindparam("code", type_=String)
)


def get_service_point(session: Session, code: str) -> ServicePoint:
    """The service point with this code, or :class:`ServicePointNotFound`."""
    point = session.scalar(_POINT_BY_CODE, {"code": code})
    if point is None:
        raise ServicePointNotFound(f"no service point with code {code!r}")
    return point


def list_service_points(session: Session) -> list[ServicePoint]:
    """All service points by code."""
    return list(session.scalars(select(ServicePoint).order_by(ServicePoint.code)))


# --- items ------------------------------------------------------------------------------------


def find_item(session: Session, code: str, *, for_update: bool = False) -> Item:
    """The item with this inventory number, barcode or RFID tag id (in that order)."""
    for column in ("inventory_number", "barcode", "rfid"):
        item = session.scalar(item_by(column, for_update), {"code": code})
        if item is not None:
            return item
    raise ItemNotFound(code, what="inventory number, barcode or RFID tag id")


def find_item_facts(session: Session, code: str) -> ItemFacts:
    """:func:`find_item` for a caller that only reads the item (the desk's and the kiosks'
    lookups): the same item and the same :class:`ItemNotFound`, as
    :class:`~catalog_sync.register.ItemFacts` without an ORM object, in one statement."""
    facts = facts_by(session, "any", code)
    if facts is None:
        raise ItemNotFound(code, what="inventory number, barcode or RFID tag id")
    return facts


def _circulation_row(session: Session, item_id: int) -> ItemCirculation | None:
    return session.get(ItemCirculation, item_id)


def set_reading_room_only(
    session: Session, code: str, reading_room_only: bool, *, actor: str
) -> None:
    """Flag an item for reading-room use only (R15), or lift the flag."""
    item = find_item(session, code, for_update=True)
    row = _circulation_row(session, item.id)
    before = None if row is None else {"reading_room_only": row.reading_room_only}
    if row is None:
        session.add(
            ItemCirculation(
                item_id=item.id,
                armed=True,
                reading_room_only=reading_room_only,
                changed_at=utcnow(),
            )
        )
    else:
        row.reading_room_only = reading_room_only
        row.changed_at = utcnow()
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="item.reading_room_only",
        entity="item",
        key=item.inventory_number,
        before=before,
        after={"reading_room_only": reading_room_only},
    )


@cache
def _armed_upsert(dialect: str) -> Executable:
    # R10: check-out disarms the tag, check-in arms it: one INSERT … ON CONFLICT (both dialects).
    table = _CIRCULATION
    upsert = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    return upsert.values(
        item_id=bindparam("item_id"),
        armed=bindparam("armed"),
        reading_room_only=False,
        changed_at=bindparam("at"),
    ).on_conflict_do_update(
        index_elements=["item_id"],
        set_={"armed": upsert.excluded.armed, "changed_at": upsert.excluded.changed_at},
    )


_ITEMS = cast(Table, Item.__table__)
_LOANS = cast(Table, Loan.__table__)
_CIRCULATION = cast(Table, ItemCirculation.__table__)
_ITEM_STATUS: Final = (
    _ITEMS.update()
    .where(_ITEMS.c.id == bindparam("item_id"))
    .values(status=bindparam("status"), updated_at=bindparam("at"))
)


def _expire_loaded(session: Session, entity: type[Base], key: int) -> None:
    # Statements built once bypass the session's objects: make a loaded one read anew.
    loaded = session.identity_map.get(session.identity_key(entity, key))
    if loaded is not None:
        session.expire(loaded)


def _set_item_status(session: Session, item_id: int, status: ItemStatus, at: datetime) -> None:
    session.execute(_ITEM_STATUS, {"item_id": item_id, "status": status.value, "at": at})
    _expire_loaded(session, Item, item_id)


def _start_loan(session: Session, item: Item, loan: Loan, now: datetime) -> None:
    """Record ``loan``, put its item on loan and disarm its security tag (R10)."""
    session.add(loan)
    item.status = ItemStatus.ON_LOAN.value
    item.updated_at = now
    with _db(f"item {item.inventory_number}"):
        session.flush()
    _set_armed(session, item.id, False, now)


def _log_loan(session: Session, loan: Loan, *, action: str, actor: str, at: datetime,
              before: dict[str, object] | None = None) -> None:
    """Append the loan's row as it now stands to the hash-chained audit log."""
    audit.append(session, actor=actor, action=action, entity="loan", key=str(loan.id),
                 before=before, after=audit.loan_snapshot(loan), at=at)


def _set_armed(session: Session, item_id: int, armed: bool, at: datetime) -> None:
    dialect = session.get_bind().dialect.name
    session.execute(_armed_upsert(dialect), {"item_id": item_id, "armed": armed, "at": at})
    _expire_loaded(session, ItemCirculation, item_id)


# --- refusals ---------------------------------------------------------------------------------

_STATUS_REFUSALS: Final[Mapping[str, tuple[str, str]]] = {
    ItemStatus.RECEIVED: (
        "not_processed",
        "item {inv} has not been processed yet (no barcode/RFID, not placed in the fund): "
        "unprocessed items are not given out (R8)",
    ),
    ItemStatus.PROCESSED: (
        "not_available",
        "item {inv} is processed but not yet placed on the shelves: make it available first",
    ),
    ItemStatus.WRITTEN_OFF: (
        "written_off",
        "item {inv} was written off and has left the fund: it cannot be lent (R3–R4)",
    ),
    ItemStatus.ON_LOAN: ("on_loan", "item {inv} is already on loan{holder}"),
    ItemStatus.IN_REPAIR: (
        "in_repair",
        "item {inv} is in repair (R12) and cannot be lent until the repair is finished",
    ),
    ItemStatus.MISSING: (
        "not_available",
        "item {inv} is recorded as missing: check it in or correct its status first",
    ),
}


def _refuse_item(session: Session, item: Item) -> None:
    if item.status == ItemStatus.AVAILABLE:
        return
    reason, template = _STATUS_REFUSALS[item.status]
    holder = ""
    if item.status == ItemStatus.ON_LOAN:
        loan = _open_loan(session, item.id)
        if loan is not None:
            who = (
                f"reader {loan.reader.ticket_number}"
                if loan.reader is not None
                else f"partner library {loan.partner_library}"
            )
            holder = f" (to {who}, due {loan.due_on.isoformat()})"
    raise LoanRefused(reason, template.format(inv=item.inventory_number, holder=holder))


def effective_due(loan_due: date, calendar: KazakhCalendar | None) -> date:
    """The last day a loan can be returned without debt: the due date, or the next working day
    when the due date is a day off. Computed with the *current* calendar, so adding a holiday
    later only ever moves it later — a calendar change never makes a loan overdue."""
    return loan_due if calendar is None else calendar.next_working_day(loan_due)


def overdue_days(loan: Loan, *, today: date, calendar: KazakhCalendar | None = None) -> int:
    """Days a loan is (or was, for a returned one: up to its effective return date) overdue."""
    end = loan.returned_on if loan.returned_on is not None else today
    return max(0, (end - effective_due(loan.due_on, calendar)).days)


def overdue_count(
    session: Session, reader_id: int, *, today: date, calendar: KazakhCalendar | None = None
) -> int:
    """How many items a reader holds past their due date (R16)."""
    dues = session.scalars(
        select(Loan.due_on).where(
            Loan.reader_id == reader_id, Loan.returned_at.is_(None), Loan.due_on < today
        )
    ).all()
    return sum(1 for d in dues if effective_due(d, calendar) < today)


def _refuse_reader(
    session: Session,
    reader: Reader,
    *,
    today: date,
    policy: CirculationPolicy,
    calendar: KazakhCalendar | None,
) -> None:
    if reader.status == ReaderStatus.BLOCKED:
        raise LoanRefused(
            "reader_blocked",
            f"reader {reader.ticket_number} ({reader.name}) is blocked: "
            f"{reader.blocked_reason or 'no reason recorded'}; nothing can be lent until the "
            "block is lifted (R16)",
        )
    overdue = overdue_count(session, reader.id, today=today, calendar=calendar)
    if overdue > policy.debt_limit:
        raise LoanRefused(
            "debt_limit",
            f"reader {reader.ticket_number} ({reader.name}) has {overdue} overdue item(s), more "
            f"than the {policy.debt_limit} allowed: the debt must be settled first (R16)",
        )


def _refuse_held(session: Session, item: Item, reader: Reader | None) -> None:
    hold = session.scalar(
        select(Hold).where(Hold.item_id == item.id, Hold.status == HoldStatus.READY)
    )
    if hold is not None and (reader is None or hold.reader_id != reader.id):
        holder = session.get(Reader, hold.reader_id)
        raise LoanRefused(
            "held_for_another",
            f"item {item.inventory_number} is kept for reader "
            f"{holder.ticket_number if holder else hold.reader_id} (hold placed "
            f"{hold.placed_at.date().isoformat()}): give it to that reader or cancel the hold",
        )


def _open_loan(session: Session, item_id: int, *, for_update: bool = False) -> Loan | None:
    stmt = select(Loan).where(Loan.item_id == item_id, Loan.returned_at.is_(None))
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


# --- check-out ----------------------------------------------------------------------------------


def check_out(
    session: Session,
    *,
    item_code: str,
    ticket_number: str,
    service_point: str,
    actor: str,
    at: datetime | None = None,
    policy: CirculationPolicy = DEFAULT_POLICY,
    calendar: KazakhCalendar | None = None,
) -> Loan:
    """Lend an item to a reader at a service point (R15), or refuse with the rule's reason.

    Due date: the reading room's is the same day; elsewhere the policy's period for the reader's
    category and the material, moved to the next working day when it falls on a day off (if a
    ``calendar`` is given). Interlibrary service points use :func:`lend_interlibrary` and
    :func:`borrow_interlibrary`.
    """
    now = at or utcnow()
    fast = _check_out_fast(
        session,
        item_code=item_code,
        ticket_number=ticket_number,
        service_point=service_point,
        actor=actor,
        now=now,
        policy=policy,
        calendar=calendar,
    )
    if fast is not None:
        return fast
    return _check_out_checked(
        session,
        item_code=item_code,
        ticket_number=ticket_number,
        service_point=service_point,
        actor=actor,
        now=now,
        policy=policy,
        calendar=calendar,
    )


def _by_code() -> tuple[ColumnElement[bool], ColumnElement[int]]:
    # The item by inventory number, barcode or RFID tag id, in that order (as find_item).
    code = bindparam("code", type_=String)
    match = or_(Item.inventory_number == code, Item.barcode == code, Item.rfid == code)
    rank = case((Item.inventory_number == code, 0), (Item.barcode == code, 1), else_=2)
    return match, rank


# PostgreSQL's desk statements also claim a free audit chain and draw the entry's seq (and the
# new loan's id), so that the entry is written in the same statement as the loan.
_AUDIT_SEQ: Final[ColumnElement[int]] = literal_column("nextval('audit_seq')", Integer)
_LOAN_ID: Final[ColumnElement[int]] = literal_column(
    "nextval(pg_get_serial_sequence('loans', 'id'))", Integer
)


def _claim_of(values: tuple[object, ...]) -> audit.Claim | None:
    chain, position, prev, seq = values
    if chain is None:  # every chain busy: the entry is appended on its own, waiting for one
        return None
    return audit.Claim(int(cast(int, chain)), int(cast(int, position)), str(prev),
                       int(cast(int, seq)))


@cache
def _check_out_query(pg: bool = False) -> Executable:
    # Built once: the desk's hot path should not pay for composing SQL on every scan.
    match, rank = _by_code()
    # Overdue by the stored due date: never fewer than by the effective one, so a count within
    # the limit here is within it by the calendar too; above it, the full check decides.
    overdue = (
        select(func.count(Loan.id))
        .where(
            Loan.reader_id == Reader.id,
            Loan.returned_at.is_(None),
            Loan.due_on < bindparam("today", type_=Date),
        )
        .scalar_subquery()
    )
    kept_for = (
        select(Hold.reader_id)
        .where(Hold.item_id == Item.id, Hold.status == HoldStatus.READY.value)
        .limit(1)
        .scalar_subquery()
    )
    own_hold = (
        select(Hold.id)
        .where(
            Hold.reader_id == Reader.id,
            Hold.record_id == Item.record_id,
            Hold.status.in_([HoldStatus.WAITING.value, HoldStatus.READY.value]),
        )
        .exists()
    )
    stmt = (
        select(
            Item.id,
            Item.inventory_number,
            Item.status,
            Item.record_id,
            BibRecord.material_type,
            ItemCirculation.reading_room_only,
            ServicePoint.id,
            ServicePoint.kind,
            Reader.id,
            Reader.status,
            Reader.category,
            overdue,
            kept_for,
            own_hold,
        )
        .join(BibRecord, BibRecord.id == Item.record_id)
        .join(Reader, Reader.ticket_number == bindparam("ticket", type_=String))
        .join(ServicePoint, ServicePoint.code == bindparam("point", type_=String))
        .outerjoin(ItemCirculation, ItemCirculation.item_id == Item.id)
    )
    if pg:
        chain = audit.free_chain()
        stmt = stmt.add_columns(
            chain.c.chain, chain.c.chain_pos, chain.c.chain_hash, _AUDIT_SEQ, _LOAN_ID
        ).outerjoin(chain, true())
    return stmt.where(match).order_by(rank).limit(1).with_for_update(of=Item)


@cache
def _check_in_query(pg: bool = False) -> Executable:
    # One locking SELECT: the item (locked), its open loan, whether anyone waits for the title,
    # and whether the reader carries a block the debt flow set (which this return may lift).
    match, rank = _by_code()
    waiting = (
        select(Hold.id)
        .where(Hold.record_id == Item.record_id, Hold.status == HoldStatus.WAITING.value)
        .exists()
    )
    stmt = (
        select(Loan, Item.id, Item.inventory_number, waiting, Reader.blocked_reason)
        .select_from(Item)
        .outerjoin(Loan, (Loan.item_id == Item.id) & Loan.returned_at.is_(None))
        .outerjoin(Reader, Reader.id == Loan.reader_id)
    )
    if pg:
        chain = audit.free_chain()
        stmt = stmt.add_columns(
            chain.c.chain, chain.c.chain_pos, chain.c.chain_hash, _AUDIT_SEQ
        ).outerjoin(chain, true())
    return stmt.where(match).order_by(rank).limit(1).with_for_update(of=Item)


def _check_out_fast(
    session: Session,
    *,
    item_code: str,
    ticket_number: str,
    service_point: str,
    actor: str,
    now: datetime,
    policy: CirculationPolicy,
    calendar: KazakhCalendar | None,
) -> Loan | None:
    """The common case in one locking SELECT and three writes; ``None`` when any rule might
    refuse (or anything is not found), so :func:`_check_out_checked` decides and explains."""
    today = now.date()
    pg = session.get_bind().dialect.name == "postgresql"
    row = session.execute(
        _check_out_query(pg),
        {"code": item_code, "ticket": ticket_number, "point": service_point, "today": today},
    ).first()
    if row is None:
        return None
    (item_id, inv, status, record_id, material, room_only, point_id, kind) = row[:8]
    (reader_id, reader_status, category, n_overdue, held_by, has_own_hold) = row[8:14]
    claim = _claim_of(tuple(row[14:18])) if pg else None
    if claim is not None:
        audit.adopt(session, claim)  # the checked path, if it decides, logs to this chain
    in_room = kind == ServicePointKind.READING_ROOM
    if (
        kind == ServicePointKind.INTERLIBRARY
        or status != ItemStatus.AVAILABLE
        or (room_only and not in_room)
        or reader_status != ReaderStatus.ACTIVE
        or n_overdue > policy.debt_limit
        or (held_by is not None and held_by != reader_id)
    ):
        return None  # a rule may refuse: the full path decides and says why
    if in_room:
        due = today  # R15: reading-room use ends the same day
    else:
        due = today + timedelta(days=policy.period(category, material))
        if calendar is not None:
            due = calendar.next_working_day(due)
    values = {
        "item_id": item_id,
        "reader_id": reader_id,
        "service_point_id": point_id,
        "loaned_at": now,
        "due_on": due,
        "renewals": 0,
        "loaned_by": actor,
    }
    if claim is not None:
        # PostgreSQL: the loan, the item's status, the disarmed tag, the audit entry and its
        # chain's head in one round trip (the loan's id was drawn by the SELECT).
        loan = Loan(id=int(row[18]), **values, **_NEW_LOAN_NULLS)
        entry = audit.Change(actor, "loan.check_out", "loan", str(loan.id), None,
                             audit.loan_snapshot(loan), now)
        with _db(f"item {inv}"):
            session.execute(_pg_check_out(logged=True),
                            {**values, "new_loan_id": loan.id, **audit.entry_params(claim, entry)})
    else:
        with _db(f"item {inv}"):
            # PostgreSQL: the loan, the item's status and the disarmed tag in one round trip.
            loan_id = session.execute(_pg_check_out() if pg else _NEW_LOAN, values).scalar_one()
        loan = Loan(id=loan_id, **values, **_NEW_LOAN_NULLS)
    # The row is written; the object joins the session as persistent, without a second INSERT.
    make_transient_to_detached(loan)
    session.add(loan)
    if pg:
        _expire_loaded(session, Item, item_id)
        _expire_loaded(session, ItemCirculation, item_id)
    else:
        _set_item_status(session, item_id, ItemStatus.ON_LOAN, now)
        _set_armed(session, item_id, False, now)
    if has_own_hold:
        _fulfil_holds(session, reader_id=reader_id, record_id=record_id, item_id=item_id, at=now)
    if claim is None:
        _log_loan(session, loan, action="loan.check_out", actor=actor, at=now)
    logger.info("loan %s: %s to %s at %s", loan.id, inv, ticket_number, service_point)
    return loan


def _new_loan_insert(*, with_id: bool = False) -> Insert:
    ident: dict[str, BindParameter[Any]] = {"id": bindparam("new_loan_id")} if with_id else {}
    return (
        _LOANS.insert()
        .values(
            **ident,
            item_id=bindparam("item_id"),
            reader_id=bindparam("reader_id"),
            service_point_id=bindparam("service_point_id"),
            loaned_at=bindparam("loaned_at"),
            due_on=bindparam("due_on"),
            renewals=bindparam("renewals"),
            loaned_by=bindparam("loaned_by"),
        )
        .returning(_LOANS.c.id)
    )


_NEW_LOAN: Final = _new_loan_insert()


_NEW_LOAN_NULLS: Final = dict.fromkeys(
    (
        "external_item",
        "partner_library",
        "ill_direction",
        "returned_at",
        "returned_on",
        "returned_by",
        "settlement",
        "compensation_minor",
        "settlement_note",
    )
)


@cache
def _pg_check_out(*, logged: bool = False) -> Executable:
    # WITH new_loan AS (INSERT … RETURNING id), lent AS (UPDATE items …),
    #      disarmed AS (INSERT INTO item_circulation … ON CONFLICT … DO UPDATE) SELECT id;
    # ``logged``: with the loan's id given, and the audit entry and its chain's head written too.
    new_loan = _new_loan_insert(with_id=logged).cte("new_loan")
    lent = (
        _ITEMS.update()
        .where(_ITEMS.c.id == bindparam("item_id"))
        .values(
            status=literal_column(f"'{ItemStatus.ON_LOAN.value}'"),
            updated_at=bindparam("loaned_at"),
        )
        .cte("lent")
    )
    # Constants as SQL literals: anonymous bound values inside DML CTEs defeat the statement
    # cache (SQLAlchemy asks for their values again).
    tag = pg_insert(_CIRCULATION).values(
        item_id=bindparam("item_id"),
        armed=false(),
        reading_room_only=false(),
        changed_at=bindparam("loaned_at"),
    )
    disarmed = tag.on_conflict_do_update(
        index_elements=["item_id"],
        set_={"armed": tag.excluded.armed, "changed_at": tag.excluded.changed_at},
    ).cte("disarmed")
    if logged:
        entry = audit.entry_insert().cte("logged")
        head = audit.head_update().cte("chain_head")
        return select(new_loan.c.id).add_cte(lent, disarmed, entry, head)
    return select(new_loan.c.id).add_cte(lent, disarmed)


@cache
def _pg_check_in(*, logged: bool = False) -> Executable:
    # WITH closed AS (UPDATE loans … WHERE open RETURNING id), back AS (UPDATE items … WHERE
    # closed), armed AS (INSERT INTO item_circulation SELECT … WHERE closed ON CONFLICT …)
    # SELECT count(*) FROM closed. (The item's id is not called "item_id": a parameter named
    # like a column of ``loans`` would be added to the UPDATE's SET clause.)
    closed = _close_loan_update().returning(_LOANS.c.id).cte("closed")
    did_close = select(closed.c.id).exists()
    back = (
        _ITEMS.update()
        .where(_ITEMS.c.id == bindparam("back_item_id"), did_close)
        .values(
            status=literal_column(f"'{ItemStatus.AVAILABLE.value}'"),
            updated_at=bindparam("returned_at"),
        )
        .cte("back")
    )
    tag = pg_insert(_CIRCULATION).from_select(
        ["item_id", "armed", "reading_room_only", "changed_at"],
        select(
            cast_(bindparam("back_item_id"), Integer),
            true(),
            false(),
            bindparam("returned_at", type_=_CIRCULATION.c.changed_at.type),
        ).where(did_close),
    )
    armed = tag.on_conflict_do_update(
        index_elements=["item_id"],
        set_={"armed": tag.excluded.armed, "changed_at": tag.excluded.changed_at},
    ).cte("armed")
    if logged:  # the audit entry and its chain's head, only if the loan closed
        entry = audit.entry_insert(did_close).cte("logged")
        head = audit.head_update(did_close).cte("chain_head")
        return select(func.count()).select_from(closed).add_cte(back, armed, entry, head)
    return select(func.count()).select_from(closed).add_cte(back, armed)


def _fulfil_holds(
    session: Session, *, reader_id: int, record_id: int, item_id: int, at: datetime
) -> None:
    session.execute(
        update(Hold)
        .where(
            Hold.reader_id == reader_id,
            Hold.record_id == record_id,
            Hold.status.in_([HoldStatus.WAITING.value, HoldStatus.READY.value]),
        )
        .values(status=HoldStatus.FULFILLED.value, closed_at=at, item_id=item_id)
    )


def _check_out_checked(
    session: Session,
    *,
    item_code: str,
    ticket_number: str,
    service_point: str,
    actor: str,
    now: datetime,
    policy: CirculationPolicy,
    calendar: KazakhCalendar | None,
) -> Loan:
    # Every rule checked step by step, each refusal with its own message.
    today = now.date()
    point = get_service_point(session, service_point)
    kind = ServicePointKind(point.kind)
    if kind is ServicePointKind.INTERLIBRARY:
        raise LoanRefused(
            "wrong_service_point",
            f"{point.name} is an interlibrary loan point: lend to a partner library with "
            "'qor loans ill-lend' or register a borrowed item with 'qor loans ill-borrow'",
        )
    item = find_item(session, item_code, for_update=True)
    _refuse_item(session, item)
    circ = _circulation_row(session, item.id)
    if circ is not None and circ.reading_room_only and kind is not ServicePointKind.READING_ROOM:
        raise LoanRefused(
            "reading_room_only",
            f"item {item.inventory_number} may be used only in the reading room; it cannot be "
            f"lent at {point.name} (R15)",
        )
    reader = get_reader(session, ticket_number)
    _refuse_reader(session, reader, today=today, policy=policy, calendar=calendar)
    _refuse_held(session, item, reader)
    if kind is ServicePointKind.READING_ROOM:
        due = today  # R15: reading-room use ends the same day
    else:
        due = today + timedelta(days=policy.period(reader.category, item.record.material_type))
        if calendar is not None:
            due = calendar.next_working_day(due)
    loan = Loan(
        item_id=item.id,
        reader_id=reader.id,
        service_point_id=point.id,
        loaned_at=now,
        due_on=due,
        renewals=0,
        loaned_by=actor,
    )
    _start_loan(session, item, loan, now)
    _fulfil_holds(session, reader_id=reader.id, record_id=item.record_id, item_id=item.id, at=now)
    _log_loan(session, loan, action="loan.check_out", actor=actor, at=now)
    logger.info(
        "loan %s: %s to %s at %s", loan.id, item.inventory_number, ticket_number, point.code
    )
    return loan


def lend_interlibrary(
    session: Session,
    *,
    item_code: str,
    partner_library: str,
    service_point: str,
    actor: str,
    due_on: date | None = None,
    at: datetime | None = None,
    policy: CirculationPolicy = DEFAULT_POLICY,
) -> Loan:
    """Lend one of our items to a partner library (МБА, direction ``lent``)."""
    now = at or utcnow()
    point = _ill_point(session, service_point)
    if not partner_library.strip():
        raise RegisterError("an interlibrary loan needs the partner library's name")
    item = find_item(session, item_code, for_update=True)
    _refuse_item(session, item)
    circ = _circulation_row(session, item.id)
    if circ is not None and circ.reading_room_only:
        raise LoanRefused(
            "reading_room_only",
            f"item {item.inventory_number} may be used only in the reading room; it cannot go "
            f"to {partner_library} (R15)",
        )
    _refuse_held(session, item, None)
    due = due_on or now.date() + timedelta(days=policy.ill_days)
    if due < now.date():
        raise RegisterError(f"due date {due} is before today")
    loan = Loan(
        item_id=item.id,
        reader_id=None,
        service_point_id=point.id,
        partner_library=partner_library.strip(),
        ill_direction=IllDirection.LENT.value,
        loaned_at=now,
        due_on=due,
        renewals=0,
        loaned_by=actor,
    )
    _start_loan(session, item, loan, now)
    _log_loan(session, loan, action="loan.ill_lend", actor=actor, at=now)
    return loan


def borrow_interlibrary(
    session: Session,
    *,
    external_item: str,
    partner_library: str,
    ticket_number: str,
    service_point: str,
    due_on: date,
    actor: str,
    at: datetime | None = None,
    policy: CirculationPolicy = DEFAULT_POLICY,
    calendar: KazakhCalendar | None = None,
) -> Loan:
    """Give a reader an item borrowed from a partner library (direction ``borrowed``), due on
    the partner's date. The item is not in our fund, so it is described, not registered."""
    now = at or utcnow()
    point = _ill_point(session, service_point)
    if not external_item.strip() or not partner_library.strip():
        raise RegisterError("a borrowed item needs its description and the partner library")
    if due_on < now.date():
        raise RegisterError(f"due date {due_on} is before today")
    reader = get_reader(session, ticket_number)
    _refuse_reader(session, reader, today=now.date(), policy=policy, calendar=calendar)
    loan = Loan(
        item_id=None,
        external_item=external_item.strip(),
        reader_id=reader.id,
        service_point_id=point.id,
        partner_library=partner_library.strip(),
        ill_direction=IllDirection.BORROWED.value,
        loaned_at=now,
        due_on=due_on,
        renewals=0,
        loaned_by=actor,
    )
    session.add(loan)
    session.flush()
    _log_loan(session, loan, action="loan.ill_borrow", actor=actor, at=now)
    return loan


def _ill_point(session: Session, code: str) -> ServicePoint:
    point = get_service_point(session, code)
    if point.kind != ServicePointKind.INTERLIBRARY:
        raise LoanRefused(
            "wrong_service_point",
            f"{point.name} is not an interlibrary loan point (it is a "
            f"{point.kind.replace('_', ' ')})",
        )
    return point


# --- check-in, settlement -----------------------------------------------------------------------


@dataclass(frozen=True)
class CheckIn:
    """What a check-in did: the closed loan, and the reader the item is now kept for (if any).

    ``kept_for``/``hold_id``: the returned item was trapped for the first waiting hold in the
    check-in's own transaction; after the commit the caller tells that reader
    (:func:`hold_ready_message`)."""

    loan: Loan
    overdue_days: int
    kept_for: str | None
    hold_id: int | None = None


def _close(
    session: Session,
    loan: Loan,
    *,
    settlement: Settlement,
    actor: str,
    now: datetime,
    returned_on: date | None,
    compensation_minor: int | None = None,
    note: str | None = None,
    item_back: int | None = None,
    claim: audit.Claim | None = None,
) -> None:
    """Close ``loan``; with ``item_back`` (a check-in) the item is also made available and its
    tag armed (R10) — on PostgreSQL in the same statement, and with ``claim`` the audit entry
    too."""
    if loan.returned_at is not None:
        raise LoanClosed(f"loan {loan.id} was already closed on {loan.returned_on}")
    effective = returned_on or now.date()
    if effective > now.date():
        raise RegisterError(f"return date {effective} is in the future")
    if effective < loan.loaned_at.date():
        raise RegisterError(
            f"return date {effective} is before the loan was made ({loan.loaned_at.date()})"
        )
    # Only an open loan is closed: a desk that settled or returned it a moment ago wins, and
    # this one is told (the trigger refuses any change to a closed loan as well).
    values = {
        "returned_at": now,
        "returned_on": effective,
        "returned_by": actor,
        "settlement": settlement.value,
        "compensation_minor": compensation_minor,
        "settlement_note": note,
    }
    session.flush()  # anything pending on the loan goes first, while it is still open
    pg = session.get_bind().dialect.name == "postgresql"
    params = {"loan_id": loan.id, **values}
    action = f"loan.close.{settlement.value}"
    if item_back is not None and pg and claim is not None:
        before = audit.loan_snapshot(loan)
        for name, value in values.items():
            set_committed_value(loan, name, value)
        entry = audit.Change(actor, action, "loan", str(loan.id), before,
                             audit.loan_snapshot(loan), now)
        with _db(f"loan {loan.id}"):
            n = session.execute(
                _pg_check_in(logged=True),
                {"back_item_id": item_back, **params, **audit.entry_params(claim, entry)},
            ).scalar_one()
        if n != 1:
            session.expire(loan)
            raise LoanClosed(f"loan {loan.id} was closed a moment ago by another desk")
        _expire_loaded(session, Item, item_back)
        _expire_loaded(session, ItemCirculation, item_back)
        return
    with _db(f"loan {loan.id}"):
        if item_back is not None and pg:
            # One round trip: close the loan; only if it closed, item available and tag armed.
            n = session.execute(_pg_check_in(), {"back_item_id": item_back, **params}).scalar_one()
        else:
            n = session.execute(_CLOSE_LOAN, params).rowcount  # type: ignore[attr-defined]
    if n != 1:
        raise LoanClosed(f"loan {loan.id} was closed a moment ago by another desk")
    before = audit.loan_snapshot(loan)
    for name, value in values.items():  # the session's object says what the row now says
        set_committed_value(loan, name, value)
    _log_loan(session, loan, action=action, actor=actor, at=now, before=before)
    if item_back is not None:
        if pg:
            _expire_loaded(session, Item, item_back)
            _expire_loaded(session, ItemCirculation, item_back)
        else:
            _set_item_status(session, item_back, ItemStatus.AVAILABLE, now)
            _set_armed(session, item_back, True, now)


def _close_loan_update() -> Update:
    return (
        _LOANS.update()
        .where(_LOANS.c.id == bindparam("loan_id"), _LOANS.c.returned_at.is_(None))
        .values(
            returned_at=bindparam("returned_at"),
            returned_on=bindparam("returned_on"),
            returned_by=bindparam("returned_by"),
            settlement=bindparam("settlement"),
            compensation_minor=bindparam("compensation_minor"),
            settlement_note=bindparam("settlement_note"),
        )
    )


_CLOSE_LOAN: Final = _close_loan_update()


def _lift_debt_block(
    session: Session,
    reader_id: int | None,
    *,
    actor: str,
    today: date,
    policy: CirculationPolicy,
    calendar: KazakhCalendar | None,
) -> None:
    if reader_id is None:
        return
    reader = session.get(Reader, reader_id)
    if (
        reader is None
        or reader.status != ReaderStatus.BLOCKED
        or not (reader.blocked_reason or "").startswith(DEBT_BLOCK_PREFIX)
    ):
        return
    if overdue_count(session, reader.id, today=today, calendar=calendar) <= policy.debt_limit:
        from catalog_sync.readers import unblock_reader

        unblock_reader(session, reader.ticket_number, actor=actor, note="debt settled")


def check_in(
    session: Session,
    *,
    item_code: str,
    actor: str,
    returned_on: date | None = None,
    at: datetime | None = None,
    policy: CirculationPolicy = DEFAULT_POLICY,
    calendar: KazakhCalendar | None = None,
) -> CheckIn:
    """Take an item back: close its open loan, arm its tag (R10), make it available, and keep
    it for the first reader waiting for the title (holds queue).

    ``returned_on`` backdates the return (a book-drop return found later): debt is counted to
    that date, never to the day the librarian got round to it, and a debt block the loan caused
    is lifted when nothing else is overdue.
    """
    now = at or utcnow()
    pg = session.get_bind().dialect.name == "postgresql"
    row = session.execute(_check_in_query(pg), {"code": item_code}).first()
    if row is None:
        raise ItemNotFound(item_code, what="inventory number, barcode or RFID tag id")
    loan, item_id, inv, anyone_waiting, block_reason = row[:5]
    claim = _claim_of(tuple(row[5:9])) if pg else None
    if claim is not None:
        audit.adopt(session, claim)
    if loan is None:
        raise LoanNotFound(f"item {inv} is not on loan")
    _close(
        session,
        loan,
        settlement=Settlement.RETURNED,
        actor=actor,
        now=now,
        returned_on=returned_on,
        item_back=item_id,
        claim=claim,
    )
    kept_for = hold_id = None
    if anyone_waiting:
        item = session.get(Item, item_id)
        if item is not None:
            kept_for = _trap_for_hold(session, item, now, actor=actor)
            if kept_for is not None:
                hold_id = session.scalar(
                    select(Hold.id).where(Hold.item_id == item_id, Hold.status == HoldStatus.READY)
                )
    if (block_reason or "").startswith(DEBT_BLOCK_PREFIX):
        _lift_debt_block(
            session, loan.reader_id, actor=actor, today=now.date(), policy=policy, calendar=calendar
        )
    return CheckIn(
        loan=loan,
        overdue_days=overdue_days(loan, today=now.date(), calendar=calendar),
        kept_for=kept_for,
        hold_id=hold_id,
    )


def return_borrowed(
    session: Session,
    loan_id: int,
    *,
    actor: str,
    returned_on: date | None = None,
    at: datetime | None = None,
) -> Loan:
    """Close the loan of an item borrowed from a partner library (the reader brought it back)."""
    now = at or utcnow()
    loan = session.get(Loan, loan_id, with_for_update=True)
    if loan is None:
        raise LoanNotFound(f"no loan {loan_id}")
    if loan.ill_direction != IllDirection.BORROWED:
        raise RegisterError(f"loan {loan_id} is not of a borrowed item: use check-in")
    _close(
        session, loan, settlement=Settlement.RETURNED, actor=actor, now=now, returned_on=returned_on
    )
    return loan


def settle_loan(
    session: Session,
    loan_id: int,
    *,
    how: Settlement | str,
    actor: str,
    compensation_minor: int | None = None,
    note: str | None = None,
    at: datetime | None = None,
    policy: CirculationPolicy = DEFAULT_POLICY,
    calendar: KazakhCalendar | None = None,
) -> Loan:
    """R16: settle a debt for an item that will not come back: the reader brought a replacement
    copy, or paid compensation (amount in tiyn). The lost item is marked missing (it leaves the
    fund only by a write-off act, R3–R4). Returns go through :func:`check_in`."""
    how = Settlement(how)
    if how is Settlement.RETURNED:
        raise RegisterError("a return is recorded by check-in, not by settlement")
    if how is Settlement.COMPENSATED and (compensation_minor is None or compensation_minor <= 0):
        raise RegisterError("compensation needs a positive amount")
    now = at or utcnow()
    loan = session.get(Loan, loan_id, with_for_update=True)
    if loan is None:
        raise LoanNotFound(f"no loan {loan_id}")
    _close(
        session,
        loan,
        settlement=how,
        actor=actor,
        now=now,
        returned_on=now.date(),
        compensation_minor=compensation_minor,
        note=note,
    )
    if loan.item is not None:
        loan.item.status = ItemStatus.MISSING.value
        loan.item.updated_at = now
        session.flush()
    audit.append(
        session,
        actor=actor,
        action=f"debt.settle.{how.value}",
        entity="loan",
        key=str(loan.id),
        before={"due_on": loan.due_on},
        after={"settlement": how.value, "compensation_minor": compensation_minor, "note": note},
        at=now,
    )
    _lift_debt_block(
        session, loan.reader_id, actor=actor, today=now.date(), policy=policy, calendar=calendar
    )
    return loan


# --- renewals -------------------------------------------------------------------------------------


def renew(
    session: Session,
    *,
    item_code: str,
    actor: str,
    at: datetime | None = None,
    policy: CirculationPolicy = DEFAULT_POLICY,
    calendar: KazakhCalendar | None = None,
) -> Loan:
    """Extend a loan by one loan period, within the policy's limit; refused for reading-room
    loans, for a blocked reader, when the limit is reached, or when others wait for the title."""
    now = at or utcnow()
    item = find_item(session, item_code, for_update=True)
    loan = _open_loan(session, item.id, for_update=True)
    if loan is None:
        raise LoanNotFound(f"item {item.inventory_number} is not on loan")
    if loan.service_point.kind == ServicePointKind.READING_ROOM:
        raise LoanRefused(
            "renewal_limit",
            f"item {item.inventory_number} is used in the reading room and is due back today; "
            "reading-room use cannot be renewed (R15)",
        )
    if loan.renewals >= policy.max_renewals:
        raise LoanRefused(
            "renewal_limit",
            f"item {item.inventory_number} was already renewed {loan.renewals} time(s), the "
            f"most allowed ({policy.max_renewals})",
        )
    reader = loan.reader
    if reader is not None and reader.status == ReaderStatus.BLOCKED:
        raise LoanRefused(
            "reader_blocked",
            f"reader {reader.ticket_number} ({reader.name}) is blocked: "
            f"{reader.blocked_reason or 'no reason recorded'}; renewals are refused (R16)",
        )
    waiting = session.scalar(
        select(func.count(Hold.id)).where(
            Hold.record_id == item.record_id, Hold.status == HoldStatus.WAITING
        )
    )
    if waiting:
        raise LoanRefused(
            "holds_waiting",
            f"item {item.inventory_number} cannot be renewed: {waiting} reader(s) wait for it",
        )
    category = reader.category if reader is not None else "*"
    days = policy.ill_days if reader is None else policy.period(category, item.record.material_type)
    due = max(loan.due_on, now.date()) + timedelta(days=days)
    if calendar is not None:
        due = calendar.next_working_day(due)
    before = audit.loan_snapshot(loan)
    loan.due_on = due
    loan.renewals += 1
    with _db(f"loan {loan.id}"):
        session.flush()
    _log_loan(session, loan, action="loan.renew", actor=actor, at=now, before=before)
    return loan


# --- holds ------------------------------------------------------------------------------------


def place_hold(
    session: Session,
    *,
    ticket_number: str,
    item_code: str | None = None,
    record_id: int | None = None,
    actor: str,
    at: datetime | None = None,
) -> Hold:
    """Put a reader in the queue for a title (given by one of its items or by the record id)."""
    now = at or utcnow()
    if (item_code is None) == (record_id is None):
        raise RegisterError("a hold is placed on an item or on a record id, not both")
    if item_code is not None:
        record_id = find_item_facts(session, item_code).record_id
    record = session.get(BibRecord, record_id)
    if record is None:
        raise RegisterError(f"no bibliographic record {record_id}")
    reader = get_reader(session, ticket_number)
    if reader.status == ReaderStatus.BLOCKED:
        raise LoanRefused(
            "reader_blocked",
            f"reader {reader.ticket_number} ({reader.name}) is blocked: "
            f"{reader.blocked_reason or 'no reason recorded'}; holds are refused (R16)",
        )
    existing = session.scalar(
        select(Hold.id).where(
            Hold.reader_id == reader.id,
            Hold.record_id == record.id,
            Hold.status.in_([HoldStatus.WAITING.value, HoldStatus.READY.value]),
        )
    )
    if existing is not None:
        raise LoanRefused(
            "already_held", f"reader {reader.ticket_number} already waits for {record.title!r}"
        )
    hold = Hold(
        record_id=record.id, reader_id=reader.id, status=HoldStatus.WAITING.value, placed_at=now
    )
    session.add(hold)
    session.flush()
    # An available copy on the shelf is kept for the reader at once.
    available = session.scalar(
        select(Item)
        .where(Item.record_id == record.id, Item.status == ItemStatus.AVAILABLE)
        .where(
            ~Item.id.in_(
                select(Hold.item_id).where(
                    Hold.status == HoldStatus.READY, Hold.item_id.is_not(None)
                )
            )
        )
        .limit(1)
    )
    if available is not None:
        hold.status, hold.item_id, hold.ready_at = HoldStatus.READY.value, available.id, now
        session.flush()
    _log_hold(session, hold, action="hold.place", actor=actor, at=now,
              ticket_number=reader.ticket_number, before=None)
    return hold


def _hold_snapshot(hold: Hold) -> dict[str, object]:
    return {"record_id": hold.record_id, "reader_id": hold.reader_id, "status": hold.status,
            "item_id": hold.item_id}


def _log_hold(session: Session, hold: Hold, *, action: str, actor: str, at: datetime,
              ticket_number: str | None, before: Mapping[str, object] | None) -> None:
    # Holds decide who gets a copy next: placing, cancelling and keeping a copy are each in
    # the hash-chained audit log like the loans they lead to (R3: every change is audited).
    audit.append(session, actor=actor, action=action, entity="hold", key=str(hold.id),
                 before=before,
                 after=_hold_snapshot(hold) | {"ticket_number": ticket_number})


def cancel_hold(session: Session, hold_id: int, *, actor: str, at: datetime | None = None) -> Hold:
    """Cancel a hold; an item kept for it goes to the next reader in the queue."""
    now = at or utcnow()
    hold = session.get(Hold, hold_id, with_for_update=True)
    if hold is None:
        raise RegisterError(f"no hold {hold_id}")
    if hold.status not in (HoldStatus.WAITING, HoldStatus.READY):
        raise RegisterError(f"hold {hold_id} is already {hold.status}")
    item_id = hold.item_id if hold.status == HoldStatus.READY else None
    before = _hold_snapshot(hold)
    hold.status, hold.closed_at = HoldStatus.CANCELLED.value, now
    session.flush()
    reader = session.get(Reader, hold.reader_id)
    _log_hold(session, hold, action="hold.cancel", actor=actor, at=now, before=before,
              ticket_number=None if reader is None else reader.ticket_number)
    if item_id is not None:
        item = session.get(Item, item_id)
        if item is not None and item.status == ItemStatus.AVAILABLE:
            _trap_for_hold(session, item, now, actor=actor)
    return hold


def hold_queue(session: Session, record_id: int) -> list[Hold]:
    """Waiting and ready holds of a title, first come first served."""
    return list(
        session.scalars(
            select(Hold)
            .where(
                Hold.record_id == record_id,
                Hold.status.in_([HoldStatus.WAITING.value, HoldStatus.READY.value]),
            )
            .order_by(Hold.placed_at, Hold.id)
        )
    )


def _trap_for_hold(session: Session, item: Item, now: datetime, *, actor: str) -> str | None:
    hold = session.scalar(
        select(Hold)
        .where(Hold.record_id == item.record_id, Hold.status == HoldStatus.WAITING)
        .order_by(Hold.placed_at, Hold.id)
        .limit(1)
        .with_for_update()
    )
    if hold is None:
        return None
    before = _hold_snapshot(hold)
    hold.status, hold.item_id, hold.ready_at = HoldStatus.READY.value, item.id, now
    session.flush()
    reader = session.get(Reader, hold.reader_id)
    ticket = None if reader is None else reader.ticket_number
    _log_hold(session, hold, action="hold.ready", actor=actor, at=now, before=before,
              ticket_number=ticket)
    return ticket


def hold_ready_message(
    session: Session, hold_id: int, *, sender: str, library: str, pickup_days: int
) -> EmailMessage | None:
    """The "your hold is ready" e-mail (Kazakh and Russian, then English) for a hold an item was
    kept for, or ``None`` when the reader has no e-mail address or the hold is no longer ready.
    Sent by the caller after the check-in committed — never from inside the transaction."""
    row = session.execute(
        select(Reader.name, Reader.email, Reader.ticket_number, BibRecord.title,
               Item.inventory_number)
        .select_from(Hold)
        .join(Reader, Reader.id == Hold.reader_id)
        .join(BibRecord, BibRecord.id == Hold.record_id)
        .join(Item, Item.id == Hold.item_id)
        .where(Hold.id == hold_id, Hold.status == HoldStatus.READY)
    ).first()
    if row is None or not row.email:
        return None
    body = "\n".join(
        [
            f"Құрметті {row.name}! / Уважаемый(ая) {row.name}!",
            "",
            f"{library}: сіз күткен басылым сізге сақталды / отложенное для вас издание ждёт вас:",
            f"  {row.title} (инв. № {row.inventory_number})",
            f"{pickup_days} күн ішінде алып кетіңіз / заберите в течение {pickup_days} дн.",
            f"Оқырман билеті / Читательский билет: {row.ticket_number}",
            "",
            f"Dear {row.name}, {row.title!r} is waiting for you at {library} "
            f"for {pickup_days} days.",
        ]
    )
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = row.email
    msg["Subject"] = f"{library}: сізге сақталды / отложено для вас: {row.title}"[:200]
    msg.set_content(body)
    return msg


# --- queries ----------------------------------------------------------------------------------


def open_loans(
    session: Session, *, ticket_number: str | None = None, overdue_on: date | None = None
) -> list[Loan]:
    """Open loans, of one reader or all, optionally only those due before ``overdue_on``."""
    stmt = select(Loan).where(Loan.returned_at.is_(None)).order_by(Loan.due_on, Loan.id)
    if ticket_number is not None:
        stmt = stmt.where(Loan.reader_id == get_reader(session, ticket_number).id)
    if overdue_on is not None:
        stmt = stmt.where(Loan.due_on < overdue_on)
    return list(session.scalars(stmt))


def loan_history(session: Session, item_code: str) -> list[Loan]:
    """Every loan of an item, oldest first."""
    item = find_item_facts(session, item_code)
    return list(session.scalars(select(Loan).where(Loan.item_id == item.id).order_by(Loan.id)))
