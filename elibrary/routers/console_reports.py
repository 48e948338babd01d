"""Read-only pages: reports for the statistician (compliance R1–R16, reader debts R16). The
preservation officer's fixity pages are in :mod:`.console_fixity`, the operator's jobs in
:mod:`.console_jobs`.

Nothing here changes the register. The compliance report is the one ``qor compliance report``
writes (:mod:`catalog_sync.compliance`, with the e-library's own checks); the debt report is
``qor debts report``'s (:mod:`catalog_sync.debts`).
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
from elibrary.console import STATISTICIAN
from elibrary.context import Lib, Visitor
from elibrary.errors import InvalidParameter

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
                              status_label=compliance.status_label,
                              violation_text=compliance.violation_text,
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
