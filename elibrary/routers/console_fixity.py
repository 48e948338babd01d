"""The preservation officer's dashboard: last audit per bag and location (failures first), the
whole report with its trend chart, a repair action for a damaged bag, and the deep-check
schedule of each storage location.

The report is ``qor fixity report``'s (:mod:`integrity.report`, from the register's PREMIS
fixity events). A repair runs ``qor fixity audit --bag <id>`` (:func:`elibrary.launches.
launch_repair`: the bag is checked again and whatever a good replica copy can cure is
restored, recorded in the register like any audit). Schedules are :mod:`integrity.schedules`'
(``qor fixity schedule``). Both are written to the hash-chained audit log under
``staff:<name>``.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from catalog_sync import audit
from elibrary import console
from elibrary.accounts import Principal
from elibrary.console import PRESERVATION, form_text
from elibrary.context import Elibrary, Lib, Visitor
from elibrary.errors import InvalidParameter
from elibrary.launches import launch_repair, new_launch_id, recent_launches
from integrity.records import fixity_events
from integrity.report import FixityReport, build_report
from integrity.schedules import MAX_DAYS, ScheduleRefused, location_schedules, set_schedule

router = APIRouter()
ROLES = (PRESERVATION,)


def _damaged(report: FixityReport) -> list[Any]:
    """Bags whose last audit left damage (the repair action's candidates)."""
    return [b for b in report.bags if b.last_outcome == "failure"]


def _fixity_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session, *,
                 status: int = 200, message: str | None = None,
                 error: str | None = None) -> Response:
    report = build_report(fixity_events(session))
    launcher = lib.config.launcher
    return console.render(
        request, lib, visitor, session, "console_fixity.html", status=status, report=report,
        totals=report.totals(), damaged={b.bag_id for b in _damaged(report)},
        can_repair=launcher is not None,
        repairs=recent_launches(launcher, kind="repair") if launcher else [],
        schedules=location_schedules(session,
                                     default_every_days=lib.config.fixity_deep_every_days),
        default_days=lib.config.fixity_deep_every_days, max_days=MAX_DAYS,
        message=message, error=error)


@router.get("/staff/fixity", response_class=HTMLResponse)
def fixity(request: Request, lib: Lib) -> Response:
    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        return _fixity_page(request, lib, visitor, session)

    return console.page(request, lib, ROLES, show)


@router.get("/staff/fixity/report.html")
def fixity_download(request: Request, lib: Lib) -> Response:
    """The whole fixity report (failures first, chart) as ``qor fixity report --lang`` writes
    it, in the page's language."""
    def download(session: Session, visitor: Visitor, _who: Principal) -> Response:
        return HTMLResponse(build_report(fixity_events(session)).html(visitor.lang))

    return console.page(request, lib, ROLES, download)


def _repair(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        t = lib.gettext(visitor.lang)
        launcher = lib.config.launcher
        if launcher is None:
            raise InvalidParameter("bag", "this server launches no command")
        bag_id = form_text(form, "bag", limit=200)
        report = build_report(fixity_events(session))
        bag = next((b for b in _damaged(report) if b.bag_id == bag_id), None)
        if bag is None:
            return _fixity_page(request, lib, visitor, session, status=409, error=t(
                "Bag {bag} is not damaged by its last audit: nothing to repair.").format(
                    bag=bag_id))
        launch_id = new_launch_id()
        audit.append(session, actor=console.actor(who), action="fixity.repair",
                     entity="digital_copy", key=bag_id, before=None,
                     after={"inventory_number": bag.inventory_number, "bag": bag_id,
                            "run": launch_id})
        try:
            launch_repair(launcher, bag_id=bag_id, inventory_number=bag.inventory_number,
                          actor=console.actor(who), launch_id=launch_id)
        except OSError as e:
            session.rollback()
            return _fixity_page(request, lib, visitor, session, status=500, error=t(
                "The repair could not be started: {reason}").format(reason=e))
        session.commit()
        return RedirectResponse("/staff/fixity#repairs-h", status_code=303)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/fixity/repair")
async def repair(request: Request, lib: Lib) -> Response:
    """Check a damaged bag again and repair it from the replica (``qor fixity audit --bag``)."""
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _repair(request, lib, form))


def _schedule(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        t = lib.gettext(visitor.lang)
        location = form_text(form, "location", limit=1024)
        raw = form_text(form, "every_days", limit=8)
        if form_text(form, "default", limit=8):
            days: int | None = None
        else:
            try:
                days = int(raw)
            except ValueError:
                days = -1
        try:
            set_schedule(session, location, days, actor=console.actor(who))
        except ScheduleRefused:
            session.rollback()
            return _fixity_page(request, lib, visitor, session, status=400, error=t(
                "Refused: a schedule is 1 to {max} days, for a storage location holding bags "
                "({location}).").format(max=MAX_DAYS, location=location))
        session.commit()
        shown = t("follows the setting") if days is None else t("every {days} days").format(
            days=days)
        return _fixity_page(request, lib, visitor, session, message=t(
            "Deep checks of {location}: {shown}.").format(location=location, shown=shown))

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/fixity/schedule")
async def schedule(request: Request, lib: Lib) -> Response:
    """Set (or return to the setting) one storage location's deep-check interval."""
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _schedule(request, lib, form))
