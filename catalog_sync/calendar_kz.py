"""Kazakhstan's working-day calendar and the deadline arithmetic of R7.

Days off are weekends and public holidays of the Republic of Kazakhstan, including holidays moved
to a weekday and weekend days made working by a government transfer (перенос выходных дней), as
published in the ``holidays`` package (country ``KZ``). The library can amend that calendar (a
late transfer decree, a correction) with rows of ``calendar_days``; an amendment always wins.

Terms: a term of N calendar days ends N days after the event (the day of the event is not
counted); a term of N working days ends on the N-th working day after it. When the last day of a
term is a day off, the term ends on the next working day — the general rule on terms of
Kazakhstan's Civil Code; :func:`term_end` applies it unless ``move_off_days=False``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Final

import holidays
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync import audit
from catalog_sync.errors import RegisterError
from catalog_sync.models import CalendarDay, DepositForm

DAY_OFF: Final = "day_off"
WORKING: Final = "working"
# R7: paper copies within 30 calendar days; electronic within 3 working days of first printing.
PAPER_TERM_DAYS: Final = 30
ELECTRONIC_TERM_WORKING_DAYS: Final = 3


@dataclass(frozen=True)
class KazakhCalendar:
    """Working days in Kazakhstan: the official calendar plus the library's amendments.

    ``amendments`` maps a date to ``"day_off"`` or ``"working"`` (with its name in ``names``).
    """

    amendments: Mapping[date, str] = field(default_factory=dict)
    names: Mapping[date, str] = field(default_factory=dict)

    @cached_property
    def _official(self) -> holidays.HolidayBase:
        return holidays.country_holidays("KZ")

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        kind = self.amendments.get(day)
        if kind is not None:
            return kind == WORKING
        return bool(self._official.is_working_day(day))

    def why_off(self, day: date) -> str:
        """Why ``day`` is a day off ('' for a working day): a holiday's name, or the weekend."""
        if self.is_working_day(day):
            return ""
        if day in self.amendments:
            return self.names.get(day, "day off (library calendar)")
        name = self._official.get(day)
        if name:
            return str(name)
        return "Saturday" if day.weekday() == 5 else "Sunday"

    def next_working_day(self, day: date) -> date:
        """``day`` itself if it is a working day, else the first working day after it."""
        for _ in range(60):  # no Kazakh calendar has 60 days off in a row
            if self.is_working_day(day):
                return day
            day += timedelta(days=1)
        raise RegisterError(f"no working day within 60 days of {day}: check the calendar")

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself is not counted)."""
        if count < 1:
            raise ValueError(f"count must be positive, got {count}")
        day, seen = start, 0
        while seen < count:
            day += timedelta(days=1)
            if self.is_working_day(day):
                seen += 1
        return day


def load_calendar(session: Session) -> KazakhCalendar:
    """The official calendar with the library's amendments from ``calendar_days``."""
    rows = session.scalars(select(CalendarDay)).all()
    return KazakhCalendar(
        amendments={r.day: r.kind for r in rows}, names={r.day: r.name for r in rows}
    )


def amend_calendar(session: Session, day: date, *, kind: str, name: str, actor: str) -> CalendarDay:
    """Record that ``day`` is a ``day_off`` or ``working`` day (e.g. a late transfer decree).

    Due dates already computed are not changed (obligations keep the date they were told);
    loans' overdue checks always use the current calendar, and only ever move later.
    """
    if kind not in (DAY_OFF, WORKING):
        raise RegisterError(f"calendar day {day}: kind must be {DAY_OFF!r} or {WORKING!r}")
    row = session.get(CalendarDay, day)
    before = None if row is None else {"kind": row.kind, "name": row.name}
    if row is None:
        row = CalendarDay(day=day, kind=kind, name=name, changed_by=actor)
        session.add(row)
    else:
        row.kind, row.name, row.changed_by = kind, name, actor
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="calendar.amend",
        entity="calendar_day",
        key=day.isoformat(),
        before=before,
        after={"kind": kind, "name": name},
    )
    return row


@dataclass(frozen=True)
class TermEnd:
    """The last day of a term and how it was reached, in words for the claim letter."""

    due_on: date
    reason: str
    moved_from: date | None = None


def term_end(
    form: DepositForm | str,
    first_printed: date,
    calendar: KazakhCalendar,
    *,
    move_off_days: bool = True,
) -> TermEnd:
    """R7: when a legal deposit copy of ``form`` printed first on ``first_printed`` is due.

    Paper: 30 calendar days after the first printing; electronic: the 3rd working day after it.
    If the last day is a day off and ``move_off_days`` is set, the term ends on the next working
    day (the Civil Code's general rule on terms).
    """
    what = DepositForm(form)
    if what is DepositForm.PAPER:
        end = first_printed + timedelta(days=PAPER_TERM_DAYS)
        base = f"first printing {first_printed.isoformat()} + {PAPER_TERM_DAYS} calendar days (R7)"
    else:
        end = calendar.add_working_days(first_printed, ELECTRONIC_TERM_WORKING_DAYS)
        base = (
            f"first printing {first_printed.isoformat()} + {ELECTRONIC_TERM_WORKING_DAYS} "
            "working days of Kazakhstan's calendar (R7)"
        )
    if move_off_days and not calendar.is_working_day(end):
        moved = calendar.next_working_day(end)
        return TermEnd(
            due_on=moved,
            reason=(
                f"{base} = {end.isoformat()}, a day off ({calendar.why_off(end)}); moved to the "
                f"next working day {moved.isoformat()} (Civil Code rule on terms)"
            ),
            moved_from=end,
        )
    return TermEnd(due_on=end, reason=f"{base} = {end.isoformat()}")


def off_days(calendar: KazakhCalendar, days: Iterable[date]) -> list[date]:
    """The days off among ``days`` (for reports)."""
    return [d for d in days if not calendar.is_working_day(d)]
