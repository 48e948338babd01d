"""What the staff console's routers share (``elibrary/routers/console_*.py``).

The console is the staff's half of the e-library app, under ``/staff``: one router per area
(desk, stocktake, catalogue, readers, books and legal deposit, selection for digitisation,
preservation, jobs, reports, staff accounts), pages
rendered on the server. Every route names the roles it admits (R10, R11: no role reaches what
it does not need) and checks them before anything is read or changed: anyone else gets 403 and
nothing happens. Every form carries the anti-forgery token (:meth:`Elibrary.check_csrf`).
Changes go through the same domain functions as the CLI (``catalog_sync.*``,
``elibrary.accounts``), so each one lands in the register's hash-chained audit log with the
actor ``staff:<user name>``; every console page shows the signed-in member's latest entries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_sync.models import AuditEntry
from elibrary.accounts import Principal
from elibrary.context import Elibrary, Visitor
from elibrary.errors import AccessDenied, NotSignedIn
from elibrary.models import StaffRole

OPERATOR = StaffRole.OPERATOR
PRESERVATION = StaffRole.PRESERVATION
LIBRARIAN = StaffRole.LIBRARIAN
STATISTICIAN = StaffRole.STATISTICIAN
ADMIN = StaffRole.ADMIN


@dataclass(frozen=True)
class Area:
    """One area of the console: its path, its name (translated on the page) and its roles."""

    path: str
    label: str
    roles: frozenset[StaffRole]


def _(message: str) -> str:  # marks a message for extraction; translated when rendered
    return message


AREAS: tuple[Area, ...] = (
    Area("/staff/desk", _("Circulation desk"), frozenset({LIBRARIAN})),
    Area("/staff/stocktake", _("Stocktake"), frozenset({LIBRARIAN})),
    Area("/staff/catalogue", _("Catalogue"), frozenset({LIBRARIAN})),
    Area("/staff/readers", _("Readers"), frozenset({LIBRARIAN})),
    Area("/staff/books", _("Accounting books"), frozenset({LIBRARIAN})),
    Area("/staff/deposit", _("Legal deposit"), frozenset({LIBRARIAN})),
    Area("/staff/selection", _("Selection for digitisation"), frozenset({OPERATOR})),
    Area("/staff/fixity", _("Fixity reports"), frozenset({PRESERVATION})),
    Area("/staff/jobs", _("Digitisation jobs"), frozenset({OPERATOR})),
    Area("/staff/reports", _("Reports"), frozenset({STATISTICIAN})),
    Area("/staff/admin/accounts", _("Staff accounts"), frozenset({ADMIN})),
)


def actor(who: Principal) -> str:
    """The actor a staff member's changes are recorded under in the audit log."""
    return f"staff:{who.name}"


def need_role(visitor: Visitor, *roles: StaffRole) -> Principal:
    """The signed-in staff member if their role is one of ``roles`` (R10); otherwise
    :class:`NotSignedIn` (401) or :class:`AccessDenied` (403), before anything is done."""
    if visitor.staff is None:
        raise NotSignedIn("staff sign-in needed")
    if visitor.staff.role not in {r.value for r in roles}:
        raise AccessDenied(f"this page is for the {' or '.join(r.value for r in roles)} role")
    return visitor.staff


@dataclass(frozen=True)
class LogLine:
    """One audit-log entry as the console shows it."""

    seq: int
    at: str
    action: str
    entity: str
    key: str
    summary: str


def _summary(after: str | None) -> str:
    if not after:
        return ""
    try:
        data = json.loads(after)
    except ValueError:
        return ""
    if not isinstance(data, Mapping):
        return ""
    keep = ("inventory_number", "item_id", "reader_id", "due_on", "service_point_id",
            "ticket_number", "username", "role", "scans", "field", "barcode", "location",
            "status", "title", "reason", "renewals", "partner_library", "settlement",
            "compensation_minor", "publisher", "recipient", "languages")
    parts = [f"{k}={data[k]}" for k in keep if k in data and data[k] is not None]
    return ", ".join(parts)[:160]


def recent_actions(session: Session, who: Principal, *, limit: int = 8) -> list[LogLine]:
    """The staff member's latest entries in the hash-chained audit log, newest first."""
    rows = session.execute(
        select(AuditEntry.seq, AuditEntry.at, AuditEntry.action, AuditEntry.entity,
               AuditEntry.entity_key, AuditEntry.after)
        .where(AuditEntry.actor == actor(who))
        .order_by(AuditEntry.seq.desc()).limit(limit)
    )
    return [LogLine(seq=seq, at=at[:19].replace("T", " "), action=action, entity=entity,
                    key=key, summary=_summary(after))
            for seq, at, action, entity, key, after in rows]


def render(request: Request, lib: Elibrary, visitor: Visitor, session: Session,
           template: str, *, status: int = 200, **context: Any) -> Response:
    """A console page: the template with the areas this role may open and its recent
    audit-log entries."""
    who = visitor.staff
    assert who is not None
    areas = [a for a in AREAS if who.role in {r.value for r in a.roles}]
    return lib.render(request, visitor, template, status=status, areas=areas,
                      here=request.url.path, recent=recent_actions(session, who), **context)


def form_text(form: Mapping[str, Any], name: str, *, limit: int = 256) -> str:
    """A form field as stripped text (at most ``limit`` characters)."""
    value = form.get(name, "")
    return (value if isinstance(value, str) else "").strip()[:limit]


Action = Callable[[Session, Visitor, Principal], Response]

#: Console forms changing the register at once in this process. Every change appends to the
#: audit log and holds its head row until it commits; with 25 desks' requests in 25 threads the
#: holder waits for the interpreter behind the 24 others blocked on that row (a lock convoy:
#: bench/desk_web.py measured p99 ~0.7 s at 50 operations/s). A few at a time queue here
#: instead, in arrival order, and each holds the row only as long as its own work.
_WRITERS = threading.BoundedSemaphore(2)


def post(request: Request, lib: Elibrary, form: Mapping[str, Any],
         roles: tuple[StaffRole, ...], action: Action) -> Response:
    """Run a console form: anti-forgery token, then the role (403 and nothing done), then
    ``action`` in one register session (the action commits what it changed)."""
    with _WRITERS, lib.sessions() as session:
        visitor = lib.visitor(request, session)
        lib.check_csrf(request, visitor, form.get("csrf_token"))
        who = need_role(visitor, *roles)
        return action(session, visitor, who)


def page(request: Request, lib: Elibrary, roles: tuple[StaffRole, ...],
         action: Action) -> Response:
    """Open a console page for ``roles`` (403 for any other role, 401 when not signed in)."""
    with lib.sessions() as session:
        visitor = lib.visitor(request, session)
        if visitor.staff is None:
            return RedirectResponse("/staff/login", status_code=303)
        who = need_role(visitor, *roles)
        return action(session, visitor, who)
