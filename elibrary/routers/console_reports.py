"""Read-only pages: reports for the statistician (compliance R1–R16, reader debts R16), fixity
reports for the preservation officer (the operator's jobs are in :mod:`.console_jobs`).

Nothing here changes the register. The compliance report is the one ``qor compliance report``
writes (:mod:`catalog_sync.compliance`, with the e-library's own checks); the debt report is
``qor debts report``'s (:mod:`catalog_sync.debts`); the fixity report is ``qor fixity
report``'s (:mod:`integrity.report`, from the register's PREMIS fixity events); the jobs are
``qor jobs``' (:func:`qor.orchestration.recent_runs`).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from catalog_sync import compliance, debts
from catalog_sync.calendar_kz import load_calendar
from catalog_sync.models import utcnow
from elibrary import compliance as elibrary_compliance
from elibrary import console
from elibrary.accounts import Principal
from elibrary.console import PRESERVATION, STATISTICIAN
from elibrary.context import Lib, Visitor
from elibrary.errors import InvalidParameter
from integrity.records import fixity_events
from integrity.report import build_report

router = APIRouter()


def _compliance(session: Session) -> compliance.ComplianceReport:
    return compliance.compliance_report(session, today=utcnow().date(),
                                        extra=elibrary_compliance.CHECKS)


@router.get("/staff/reports", response_class=HTMLResponse)
def reports(request: Request, lib: Lib) -> Response:
    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        report = _compliance(session)
        open_debts = debts.open_debts(session, today=utcnow().date(),
                                      calendar=load_calendar(session))
        return console.render(request, lib, visitor, session, "console_reports.html",
                              report=report, debts=open_debts,
                              summary=debts.summarise(open_debts))

    return console.page(request, lib, (STATISTICIAN,), show)


@router.get("/staff/reports/compliance.{fmt}")
def compliance_download(request: Request, lib: Lib, fmt: str) -> Response:
    """The compliance report as HTML, CSV or JSON, in the page's language."""
    if fmt not in ("html", "csv", "json"):
        raise InvalidParameter("format", "html, csv or json")

    def download(session: Session, visitor: Visitor, _who: Principal) -> Response:
        report = _compliance(session)
        if fmt == "json":
            body = json.dumps(report.as_dict(), ensure_ascii=False, indent=2, default=str)
            media = "application/json"
        elif fmt == "csv":
            body, media = compliance.report_csv(report, language=visitor.lang), "text/csv"
        else:
            body, media = compliance.report_html(report, language=visitor.lang), "text/html"
        return Response(body, media_type=f"{media}; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="compliance.{fmt}"'})

    return console.page(request, lib, (STATISTICIAN,), download)


@router.get("/staff/fixity", response_class=HTMLResponse)
def fixity(request: Request, lib: Lib) -> Response:
    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        report = build_report(fixity_events(session))
        return console.render(request, lib, visitor, session, "console_fixity.html",
                              report=report, totals=report.totals())

    return console.page(request, lib, (PRESERVATION,), show)


@router.get("/staff/fixity/report.html")
def fixity_download(request: Request, lib: Lib) -> Response:
    """The whole fixity report (failures first, chart) as ``qor fixity report`` writes it."""
    def download(session: Session, _visitor: Visitor, _who: Principal) -> Response:
        return HTMLResponse(build_report(fixity_events(session)).html())

    return console.page(request, lib, (PRESERVATION,), download)
