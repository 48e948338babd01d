"""Fixity audit schedules per storage location (тексеру кестесі / расписание проверок).

Each storage location (a store URI: ``s3://bucket/prefix``, ``file:///…``) may have its own
deep-check interval: a cheap local disk every 7 days, a costly cold S3 tier every 180 (where
Archivematica sets one frequency for everything). A location without its own interval follows
the ``fixity_deep_every_days`` setting. The daily scheduled audit (``qor fixity audit --due``)
then checks, per location, that location's share (:func:`due_bags`, with
:func:`integrity.audit.plan_deep_checks`).

Register functions: they take a session and never commit (the caller owns the transaction);
changes go to the hash-chained audit log.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog_sync import audit
from catalog_sync.models import AuditSchedule, DigitalCopy, utcnow
from integrity.audit import plan_deep_checks
from integrity.errors import IntegrityError
from integrity.records import last_deep_checks

__all__ = [
    "MAX_DAYS",
    "LocationSchedule",
    "ScheduleRefused",
    "due_bags",
    "location_schedules",
    "set_schedule",
]

#: The longest interval a location may be given (ten years, as ``fixity_deep_every_days``).
MAX_DAYS = 3650


class ScheduleRefused(IntegrityError):  # noqa: N818 - a domain name, like the others
    """An audit schedule that cannot be set: unknown location, interval out of range."""

    exit_code = 2
    http_status = 400


@dataclass(frozen=True)
class LocationSchedule:
    """One storage location's deep-check schedule and where its bags stand."""

    store_uri: str
    every_days: int
    own: bool
    """True when the location has its own interval; False: it follows the setting."""
    bags: int
    oldest_check: datetime | None
    """The least recent last deep check (or storing) of its bags."""
    next_due: datetime | None
    """When the least recently checked bag falls due (``oldest_check`` + interval)."""
    set_by: str | None
    set_at: datetime | None


def _locations(session: Session) -> dict[str, str]:
    """Each registered bag → its storage location."""
    return {bag: uri for bag, uri in
            session.execute(select(DigitalCopy.bag_id, DigitalCopy.store_uri))}


def _intervals(session: Session) -> dict[str, AuditSchedule]:
    """The locations with their own interval now."""
    return {s.store_uri: s for s in session.scalars(
        select(AuditSchedule).where(AuditSchedule.deep_every_days.is_not(None)))}


def location_schedules(session: Session, *, default_every_days: int) -> list[LocationSchedule]:
    """Every storage location holding bags (and any with a schedule but no bag yet), sorted."""
    own = _intervals(session)
    counts: dict[str, int] = {uri: int(n) for uri, n in session.execute(
        select(DigitalCopy.store_uri, func.count(DigitalCopy.id))
        .group_by(DigitalCopy.store_uri))}
    last = last_deep_checks(session)
    where = _locations(session)
    oldest: dict[str, datetime] = {}
    for bag, at in last.items():
        uri = where.get(bag)
        if uri is not None and (uri not in oldest or at < oldest[uri]):
            oldest[uri] = at
    out: list[LocationSchedule] = []
    for uri in sorted(set(counts) | set(own)):
        row = own.get(uri)
        days = (row.deep_every_days if row is not None else None) or default_every_days
        first = oldest.get(uri)
        out.append(LocationSchedule(
            store_uri=uri, every_days=days, own=row is not None, bags=int(counts.get(uri, 0)),
            oldest_check=first, next_due=first + timedelta(days=days) if first else None,
            set_by=row.set_by if row is not None else None,
            set_at=row.set_at if row is not None else None))
    return out


def set_schedule(session: Session, store_uri: str, every_days: int | None, *,
                 actor: str) -> LocationSchedule | None:
    """Give ``store_uri`` its own deep-check interval, or (``every_days`` None) make it follow
    the setting again. Only a location that holds bags may be scheduled. Recorded in the audit
    log (``audit_schedule.set`` / ``audit_schedule.clear``); the caller commits.

    Returns the location's own schedule, or None once it follows the setting again.
    """
    known = session.scalar(select(func.count(DigitalCopy.id))
                           .where(DigitalCopy.store_uri == store_uri))
    row = session.get(AuditSchedule, store_uri)
    if not known and row is None:
        raise ScheduleRefused(f"no bag is stored at {store_uri!r}: only a storage location "
                              "that holds bags can be given an audit schedule")
    before = None if row is None or row.deep_every_days is None else {
        "store_uri": store_uri, "deep_every_days": row.deep_every_days}
    now = utcnow()
    if every_days is None:
        if before is not None and row is not None:
            # Back to the setting: the row stays (register rows are never deleted, R3–R4).
            row.deep_every_days, row.set_by, row.set_at = None, actor, now
            audit.append(session, actor=actor, action="audit_schedule.clear",
                         entity="audit_schedule", key=store_uri, before=before, after=None)
        session.flush()
        return None
    if not 1 <= every_days <= MAX_DAYS:
        raise ScheduleRefused(f"an audit interval is 1 to {MAX_DAYS} days, not {every_days}")
    if row is None:
        row = AuditSchedule(store_uri=store_uri, deep_every_days=every_days, set_by=actor,
                            set_at=now)
        session.add(row)
    else:
        row.deep_every_days, row.set_by, row.set_at = every_days, actor, now
    audit.append(session, actor=actor, action="audit_schedule.set", entity="audit_schedule",
                 key=store_uri, before=before,
                 after={"store_uri": store_uri, "deep_every_days": every_days})
    session.flush()
    return LocationSchedule(store_uri=store_uri, every_days=every_days, own=True,
                            bags=int(known or 0), oldest_check=None, next_due=None,
                            set_by=actor, set_at=now)


def due_bags(session: Session, *, default_every_days: int,
             now: datetime | None = None) -> list[str]:
    """Today's share of the deep checks: per storage location, the bags
    :func:`~integrity.audit.plan_deep_checks` picks with that location's interval."""
    own = {uri: s.deep_every_days for uri, s in _intervals(session).items()
           if s.deep_every_days is not None}
    where = _locations(session)
    by_location: dict[str, dict[str, datetime]] = defaultdict(dict)
    for bag, at in last_deep_checks(session).items():
        if bag in where:
            by_location[where[bag]][bag] = at
    due: list[str] = []
    for uri in sorted(by_location):
        due.extend(plan_deep_checks(by_location[uri], every_days=own.get(uri, default_every_days),
                                    now=now))
    return due

