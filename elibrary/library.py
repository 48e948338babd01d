"""Which copies are in the e-library, with what rights, and who may read them (R6).

A digital copy enters the e-library when it is indexed (:func:`elibrary.textindex.index_copy`)
or given rights (:func:`set_rights`); it then gets the configured default rights. ``dark``
copies are never served nor listed: to a visitor they do not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync import audit
from catalog_sync.models import BibRecord, DigitalCopy, Item, utcnow
from elibrary.accounts import Principal
from elibrary.errors import CopyNotAvailable, InvalidParameter
from elibrary.models import LibraryCopy, Rights

# Bag ids as the digitise flow makes them; anything else in a URL is refused before any lookup.
_BAG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_bag_id(bag_id: str) -> str:
    """``bag_id`` if shaped like a bag id (no path tricks), else :class:`InvalidParameter`."""
    if not isinstance(bag_id, str) or not _BAG_ID.fullmatch(bag_id) or ".." in bag_id:
        raise InvalidParameter("bag_id", "not a bag id")
    return bag_id


def parse_rights(value: str) -> Rights:
    """``open``, ``readers``, ``reading-room`` or ``dark``; :class:`InvalidParameter` otherwise."""
    try:
        return Rights(value)
    except ValueError:
        raise InvalidParameter(
            "rights", f"{value!r} is not one of {', '.join(r.value for r in Rights)}"
        ) from None


def may_read(rights: Rights | str, principal: Principal | None, *, in_reading_room: bool) -> bool:
    """Whether this visitor may read (be served the bytes of) a copy with these rights.

    Staff sessions are not reader sessions: staff read as readers, with a reader account (R10).
    """
    r = Rights(rights)
    if r is Rights.OPEN:
        return True
    is_reader = principal is not None and principal.is_reader
    if r is Rights.READERS:
        return is_reader
    if r is Rights.READING_ROOM:
        return is_reader and in_reading_room
    return False


def readable_rights(principal: Principal | None, *, in_reading_room: bool) -> frozenset[Rights]:
    """The rights of the copies this visitor may read (never ``dark``): what search may show
    them (issue 15: a copy they may not read is not listed, counted or quoted)."""
    return frozenset(r for r in Rights
                     if may_read(r, principal, in_reading_room=in_reading_room))


@dataclass(frozen=True)
class CopyView:
    """What the e-library shows and serves of one copy (plain values)."""

    copy_id: int
    bag_id: str
    inventory_number: str
    title: str
    authors: tuple[str, ...]
    year: int | None
    publisher: str | None
    language: str | None
    rights: Rights
    page_count: int
    fund: str | None
    store_uri: str
    kek_id: str
    wrapped_key: bytes
    created_at: datetime
    datestamp: datetime


def _view(copy: DigitalCopy, lib: LibraryCopy, item: Item, rec: BibRecord) -> CopyView:
    return CopyView(
        copy_id=copy.id,
        bag_id=copy.bag_id,
        inventory_number=item.inventory_number,
        title=rec.title,
        authors=tuple(rec.authors or ()),
        year=rec.year,
        publisher=rec.publisher,
        language=rec.language,
        rights=Rights(lib.rights),
        page_count=max(copy.page_count, lib.pages_indexed),
        fund=item.location,
        store_uri=copy.store_uri,
        kek_id=copy.kek_id,
        wrapped_key=bytes(copy.wrapped_key),
        created_at=copy.created_at,
        datestamp=lib.datestamp,
    )


def _joined() -> object:
    return (
        select(DigitalCopy, LibraryCopy, Item, BibRecord)
        .join(LibraryCopy, LibraryCopy.copy_id == DigitalCopy.id)
        .join(Item, Item.id == DigitalCopy.item_id)
        .join(BibRecord, BibRecord.id == Item.record_id)
    )


def visible_copy(session: Session, bag_id: str) -> CopyView:
    """The copy ``bag_id`` if it is in the e-library and not ``dark``; else
    :class:`CopyNotAvailable` (the same answer for unknown and dark copies)."""
    check_bag_id(bag_id)
    stmt = _joined().where(DigitalCopy.bag_id == bag_id)  # type: ignore[attr-defined]
    row = session.execute(stmt).first()
    if row is None or row[1].rights == Rights.DARK.value:
        raise CopyNotAvailable(bag_id)
    return _view(*row)


def visible_copies_by_id(session: Session, copy_ids: list[int]) -> dict[int, CopyView]:
    """Views of the given copies that are visible (not dark), by copy id."""
    if not copy_ids:
        return {}
    stmt = _joined().where(  # type: ignore[attr-defined]
        DigitalCopy.id.in_(copy_ids), LibraryCopy.rights != Rights.DARK.value
    )
    return {row[0].id: _view(*row) for row in session.execute(stmt)}


def harvestable_copies(
    session: Session,
    *,
    since: datetime | None,
    until: datetime | None,
    after_copy_id: int,
    limit: int,
) -> list[CopyView]:
    """Copies whose metadata OAI-PMH may give out (every right but ``dark``), by copy id."""
    stmt = _joined().where(  # type: ignore[attr-defined]
        LibraryCopy.rights != Rights.DARK.value, DigitalCopy.id > after_copy_id
    )
    if since is not None:
        stmt = stmt.where(LibraryCopy.datestamp >= since)
    if until is not None:
        stmt = stmt.where(LibraryCopy.datestamp <= until)
    stmt = stmt.order_by(DigitalCopy.id).limit(limit)
    return [_view(*row) for row in session.execute(stmt)]


def enter_library(
    session: Session, copy: DigitalCopy, *, default_rights: Rights, actor: str
) -> LibraryCopy:
    """The copy's e-library entry, made with ``default_rights`` if it has none yet."""
    lib = session.get(LibraryCopy, copy.id)
    if lib is None:
        now = utcnow()
        lib = LibraryCopy(copy_id=copy.id, rights=Rights(default_rights).value,
                          rights_changed_at=now, rights_changed_by=actor, pages_indexed=0,
                          indexed_at=None, datestamp=now)
        session.add(lib)
        session.flush()
        audit.append(session, actor=actor, action="elibrary.rights", entity="digital_copy",
                     key=copy.bag_id, before=None, after={"rights": lib.rights}, at=now)
    return lib


def set_rights(
    session: Session,
    *,
    bag_id: str,
    rights: Rights | str,
    actor: str,
    default_rights: Rights = Rights.READERS,
) -> Rights:
    """Give the copy ``bag_id`` new rights (audited in the register's log); returns the old ones.

    Raises :class:`catalog_sync.errors.DigitalCopyNotFound` for an unknown bag id.
    """
    from catalog_sync.register import get_digital_copy

    new = parse_rights(rights) if isinstance(rights, str) else rights
    copy = get_digital_copy(session, check_bag_id(bag_id))
    lib = enter_library(session, copy, default_rights=default_rights, actor=actor)
    old = Rights(lib.rights)
    if old is not new:
        now = utcnow()
        lib.rights = new.value
        lib.rights_changed_at = now
        lib.rights_changed_by = actor
        lib.datestamp = now
        session.flush()
        audit.append(session, actor=actor, action="elibrary.rights", entity="digital_copy",
                     key=bag_id, before={"rights": old.value}, after={"rights": new.value},
                     at=now)
    return old


def rights_of(session: Session, bag_id: str) -> Rights | None:
    """The copy's rights, or None if it has not entered the e-library."""
    from catalog_sync.register import get_digital_copy

    copy = get_digital_copy(session, check_bag_id(bag_id))
    lib = session.get(LibraryCopy, copy.id)
    return None if lib is None else Rights(lib.rights)
