"""The books area: the accounting books (R9) and legal deposit (R7) for the librarian, and the
selection for digitisation (R13) for the operator.

* Summary book (жиынтық есеп кітабы · книга суммарного учёта) of a year and the inventory book
  (инвентарлық кітап · инвентарная книга), viewed page by page and downloaded as the HTML and
  CSV files ``qor books summary|inventory`` writes (:mod:`catalog_sync.books`).
* Legal deposit (міндетті тегін дана · обязательный экземпляр): the overdue obligations by
  publisher and each publisher's record, as ``qor deposit report``; "issue a claim" writes the
  claim letters (талап хат · претензия) of one obligation in Kazakh and Russian, as ``qor deposit
  claims`` does for all (:func:`catalog_sync.legal_deposit.issue_claim`), which records the
  claim in the audit log; the letters are downloaded from the page.
* Selection for digitisation (цифрландыруға іріктеу · отбор для оцифровки): the ranked work
  list of ``qor select --top N`` (:func:`catalog_sync.selection.rank_for_digitisation`), on the
  page and as its CSV or JSON file.

Only the claim changes the register; everything else here only reads it.
"""

from __future__ import annotations

import json
from itertools import islice
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy.orm import Session

from catalog_sync import books, legal_deposit, selection
from catalog_sync.models import utcnow
from elibrary import console
from elibrary.accounts import Principal
from elibrary.console import LIBRARIAN, OPERATOR, form_text
from elibrary.context import Elibrary, Lib, Visitor
from elibrary.errors import InvalidParameter
from qor.errors import QorError

router = APIRouter()
# R10: the fund's books and the publishers' deposit are the librarian's; choosing what to scan
# next is the digitisation operator's. No other role reaches either.
BOOKS_ROLES = (LIBRARIAN,)
SELECTION_ROLES = (OPERATOR,)
#: Inventory-book lines on one page of the console (the downloads hold the whole range).
INVENTORY_PAGE = 100
#: The longest work list the selection page shows.
MAX_TOP = 1000


def _(message: str) -> str:  # marks a message for extraction; translated when rendered
    return message


#: Names of material types (R2), sources (R5), write-off reasons, value flags (R13) and
#: conditions (R12) as the pages show them, translated there.
LABELS = {
    "periodical": _("Periodicals"), "book": _("Books"), "brochure": _("Brochures"),
    "album": _("Albums"), "poster": _("Posters"), "booklet": _("Booklets"),
    "printed_other": _("Other print"), "audiovisual": _("Audiovisual"),
    "electronic": _("Electronic"),
    "purchase": _("Purchase"), "exchange": _("Exchange"), "donation": _("Donation"),
    "state_order": _("State order"), "legal_deposit": _("Legal deposit"),
    books.NOT_RECORDED: _("Not recorded"),
    "worn": _("Worn out"), "lost": _("Lost"), "obsolete": _("Obsolete"),
    "duplicate": _("Duplicate"), "out_of_profile": _("Outside the fund's profile"),
    "damaged": _("Damaged"), "other": _("Other"),
    "scientific": _("scientific"), "historical": _("historical"), "artistic": _("artistic"),
    "good": _("good"), "fair": _("fair"), "poor": _("poor"),
}


def _year(raw: str | None) -> int:
    if raw is None or raw == "":
        return utcnow().year
    if not raw.isdigit() or not 1800 <= int(raw) <= 2200:
        raise InvalidParameter("year", f"{raw[:12]!r} is not a year")
    return int(raw)


def _number(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()[:64]
    return value or None


# --- the accounting books (R9) ------------------------------------------------------------------


@router.get("/staff/books", response_class=HTMLResponse)
def summary_page(request: Request, lib: Lib) -> Response:
    """The summary book of a year (``?year=``, this year by default) on the page."""
    year = _year(request.query_params.get("year"))

    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        # R9: summary accounting — totals per receipt act and write-off act, and the balance.
        book = books.summary_book(session, year=year)
        materials, sources = books.summary_columns(book)
        return console.render(request, lib, visitor, session, "console_books.html",
                              book=book, year=year, materials=materials, sources=sources,
                              labels=LABELS)

    return console.page(request, lib, BOOKS_ROLES, show)


@router.get("/staff/books/summary-{year}.{fmt}")
def summary_download(request: Request, lib: Lib, year: str, fmt: str) -> Response:
    """The summary book as the ``summary-<year>.html`` (in the page's language) or ``.csv``
    (English machine keys) ``qor books summary --lang`` writes."""
    wanted = _year(year)
    if fmt not in ("html", "csv"):
        raise InvalidParameter("format", "html or csv")

    def download(session: Session, visitor: Visitor, _who: Principal) -> Response:
        book = books.summary_book(session, year=wanted)
        name = f"summary-{wanted}.{fmt}"
        if fmt == "html":
            return _attachment(books.render_summary_html(
                book, library_name=lib.config.library_name, language=visitor.lang,
            ).encode("utf-8"), name, "text/html")
        return _attachment(b"".join(books.csv_chunks(books.summary_csv_rows(book))), name,
                           "text/csv")

    return console.page(request, lib, BOOKS_ROLES, download)


def _attachment(body: bytes, name: str, media: str) -> Response:
    # An inventory number may be Cyrillic: an ASCII name for old clients, the real one in
    # RFC 6266's filename* (a header is Latin-1 on the wire).
    plain = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    return Response(body, media_type=f"{media}; charset=utf-8", headers={
        "Content-Disposition": f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name)}"})


@router.get("/staff/books/inventory", response_class=HTMLResponse)
def inventory_page(request: Request, lib: Lib) -> Response:
    """The inventory book, :data:`INVENTORY_PAGE` lines a page from ``?from=`` (up to ``?to=``)."""
    start, end = _number(request, "from"), _number(request, "to")
    first = _number(request, "first")  # where the range asked for begins, for the downloads

    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        # R9: individual accounting — one line per item, in inventory-number order.
        shown = list(islice(books.iter_inventory_book(session, from_number=start, to_number=end),
                            INVENTORY_PAGE + 1))
        following = shown[INVENTORY_PAGE].inventory_number if len(shown) > INVENTORY_PAGE else None
        return console.render(request, lib, visitor, session, "console_inventory.html",
                              lines=shown[:INVENTORY_PAGE], start=start, end=end,
                              first=first if first is not None else start,
                              following=following, labels=LABELS)

    return console.page(request, lib, BOOKS_ROLES, show)


@router.get("/staff/books/inventory.{fmt}")
def inventory_download(request: Request, lib: Lib, fmt: str) -> Response:
    """The inventory book (or the ``?from=``/``?to=`` range) as the HTML (in the page's
    language) or CSV (English machine keys) file ``qor books inventory --lang`` writes."""
    if fmt not in ("html", "csv"):
        raise InvalidParameter("format", "html or csv")
    start, end = _number(request, "from"), _number(request, "to")
    name = f"{books.inventory_stem(start, end)}.{fmt}"

    def download(session: Session, visitor: Visitor, _who: Principal) -> Response:
        if fmt == "html":
            page = books.render_inventory_html(
                books.iter_inventory_book(session, from_number=start, to_number=end),
                library_name=lib.config.library_name, language=visitor.lang,
                title=books.inventory_title(start, end, language=visitor.lang))
            return _attachment(page.encode("utf-8"), name, "text/html")
        return _attachment(b"".join(books.csv_chunks(books.inventory_csv_rows(
            books.iter_inventory_book(session, from_number=start, to_number=end)))),
            name, "text/csv")

    return console.page(request, lib, BOOKS_ROLES, download)


# --- legal deposit (R7) -------------------------------------------------------------------------


def _deposit_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session, *,
                  message: str | None = None, error: str | None = None,
                  status: int = 200) -> Response:
    today = utcnow().date()
    # R7: overdue detection — obligations past their due date with no copy received.
    overdue = legal_deposit.overdue_obligations(session, today=today)
    claims = legal_deposit.claims_of(session, [ob.id for ob in overdue])
    publishers: dict[str, list[Any]] = {}
    for ob in overdue:
        publishers.setdefault(ob.publication.publisher, []).append(ob)
    return console.render(request, lib, visitor, session, "console_deposit.html",
                          status=status, today=today, publishers=publishers, claims=claims,
                          record=legal_deposit.compliance_report(session, today=today),
                          can_claim=lib.config.claims_dir is not None, labels=LABELS,
                          message=message, error=error)


@router.get("/staff/deposit", response_class=HTMLResponse)
def deposit(request: Request, lib: Lib) -> Response:
    """Publishers with overdue legal-deposit copies, and every publisher's record."""
    return console.page(request, lib, BOOKS_ROLES,
                        lambda s, v, _w: _deposit_page(request, lib, v, s))


def _claim(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        _ = lib.gettext(visitor.lang)
        raw = form_text(form, "obligation", limit=12)
        if not raw.isdigit():
            raise InvalidParameter("obligation", f"{raw!r} is not an obligation number")
        out_dir = lib.config.claims_dir
        if out_dir is None:
            return _deposit_page(request, lib, visitor, session, status=503, error=_(
                "This server has no folder for claim letters (the data directory is not set)."))
        try:
            written = legal_deposit.issue_claim(
                session, int(raw), today=utcnow().date(), out_dir=out_dir,
                library=lib.config.library_name, actor=console.actor(who))
            session.commit()
        except QorError as e:
            session.rollback()
            return _deposit_page(request, lib, visitor, session, error=e.message,
                                 status=e.http_status)
        return _deposit_page(request, lib, visitor, session, message=_(
            "Claim for obligation %(id)s written (%(languages)s).")
            % {"id": raw, "languages": ", ".join(c.language for c in written)})

    return console.post(request, lib, form, BOOKS_ROLES, act)


@router.post("/staff/deposit/claims")
async def claim(request: Request, lib: Lib) -> Response:
    """Issue a claim to the publisher of one overdue obligation (R7)."""
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _claim(request, lib, form))


@router.get("/staff/deposit/claims/{claim_id}.{fmt}")
def claim_letter(request: Request, lib: Lib, claim_id: str, fmt: str) -> Response:
    """A claim letter as it was written (HTML or PDF)."""
    if not claim_id.isdigit() or len(claim_id) > 12:
        raise InvalidParameter("claim", f"{claim_id[:12]!r} is not a claim number")

    def download(session: Session, _visitor: Visitor, _who: Principal) -> Response:
        path = legal_deposit.claim_letter(session, int(claim_id), fmt)
        media = "text/html; charset=utf-8" if fmt == "html" else "application/pdf"
        return FileResponse(path, media_type=media, filename=path.name)

    return console.page(request, lib, BOOKS_ROLES, download)


# --- selection for digitisation (R13) -----------------------------------------------------------


def _top(request: Request) -> int:
    raw = request.query_params.get("top", "50").strip()
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise InvalidParameter("top", f"a number from 1 to {MAX_TOP}")
    return int(raw)


@router.get("/staff/selection", response_class=HTMLResponse)
def selection_page(request: Request, lib: Lib) -> Response:
    """The ``?top=`` items most worth digitising now, best first (``qor select --top N``)."""
    top = _top(request)

    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        # R13: selection by demand (circulation statistics) and by value flags.
        ranked = selection.rank_for_digitisation(session, today=utcnow().date(), top=top)
        return console.render(request, lib, visitor, session, "console_selection.html",
                              ranked=ranked, top=top, labels=LABELS)

    return console.page(request, lib, SELECTION_ROLES, show)


@router.get("/staff/selection/work-list.{fmt}")
def selection_download(request: Request, lib: Lib, fmt: str) -> Response:
    """The work list as the CSV or JSON file ``qor select --out`` writes."""
    if fmt not in ("csv", "json"):
        raise InvalidParameter("format", "csv or json")
    top = _top(request)

    def download(session: Session, _visitor: Visitor, _who: Principal) -> Response:
        ranked = selection.rank_for_digitisation(session, today=utcnow().date(), top=top)
        if fmt == "json":
            body = json.dumps([c.as_dict() for c in ranked], ensure_ascii=False,
                              indent=2).encode("utf-8")
            return _attachment(body, "work-list.json", "application/json")
        return _attachment(b"".join(books.csv_chunks(selection.work_list_rows(ranked))),
                           "work-list.csv", "text/csv")

    return console.page(request, lib, SELECTION_ROLES, download)
