"""Stocktakes (R14): салыстырмалы тексеру · сверка фонда.

A stocktake is started for a reason R14 names, by a materially responsible person
(материалдық жауапты қызметкер · материально ответственное лицо), over a scope: one location
and everything below it (``Hall-1`` covers ``Hall-1`` and ``Hall-1/S03``). Barcodes and RFID tag
ids then arrive as a stream and are stored as read; closing produces the act:

* missing — in scope, expected on the shelf, not scanned (items on loan or in repair are listed
  apart, not as missing; items outside the scope are never touched — Koha marks them missing);
* unexpected — scanned but unknown, outside the scope, or written off;
* misplaced — in scope and scanned, but at a location other than the register's.
"""

from __future__ import annotations

import csv
import html
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import audit, vocabulary
from catalog_sync.errors import ActNotFound, BatchInFlight, RegisterError, StocktakeClosed
from catalog_sync.models import (
    AuditEntry,
    BibRecord,
    Item,
    ItemStatus,
    Stocktake,
    StocktakeReason,
    StocktakeScan,
    utcnow,
)
from catalog_sync.register import set_status

logger = logging.getLogger(__name__)

NOT_ON_SHELF = (ItemStatus.ON_LOAN.value, ItemStatus.IN_REPAIR.value)
MAX_CODE = 64


@dataclass(frozen=True)
class ActLine:
    """One line of a stocktake act."""

    code: str
    inventory_number: str | None
    title: str | None
    register_location: str | None
    scanned_location: str | None
    status: str | None
    why: str


@dataclass(frozen=True)
class StocktakeAct:
    """The result of a closed stocktake (акт сверки)."""

    stocktake_id: int
    reason: str
    responsible: str
    scope: str
    started_at: datetime
    closed_at: datetime
    in_scope: int
    found: int
    scans: int
    distinct_codes: int
    missing: tuple[ActLine, ...]
    unexpected: tuple[ActLine, ...]
    misplaced: tuple[ActLine, ...]
    not_on_shelf: tuple[ActLine, ...]


@dataclass(frozen=True)
class ScanIngest:
    """What a scan stream delivered: lines read, scans stored, lines refused (with why)."""

    read: int
    stored: int
    refused: tuple[tuple[int, str], ...]


def in_scope(location: str | None, scope: str) -> bool:
    """Whether ``location`` is the scope itself or below it."""
    return location is not None and (location == scope or location.startswith(scope + "/"))


def _scope_clause(scope: str) -> Any:
    escaped = scope.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(Item.location == scope, Item.location.like(escaped + "/%", escape="\\"))


def start_stocktake(
    session: Session,
    *,
    reason: StocktakeReason | str,
    responsible: str,
    scope: str,
    actor: str,
) -> Stocktake:
    """Open a stocktake (R14) over ``scope``; scans are then recorded against its id."""
    why = StocktakeReason(reason)
    if not responsible.strip():
        raise RegisterError("a stocktake needs the materially responsible person (R14)")
    scope = scope.strip().rstrip("/")
    if not scope:
        raise RegisterError("a stocktake needs a scope (a location)")
    st = Stocktake(
        reason=why.value,
        responsible=responsible.strip(),
        scope=scope,
        started_at=utcnow(),
        started_by=actor,
    )
    session.add(st)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="stocktake.start",
        entity="stocktake",
        key=str(st.id),
        before=None,
        after={"reason": why.value, "responsible": st.responsible, "scope": scope},
    )
    return st


def get_stocktake(session: Session, stocktake_id: int) -> Stocktake:
    """The stocktake with this id, or :class:`ActNotFound`."""
    st = session.get(Stocktake, stocktake_id)
    if st is None:
        raise ActNotFound(f"no stocktake with id {stocktake_id}")
    return st


def parse_scan_lines(
    lines: Iterable[str],
) -> Iterator[tuple[int, str, str | None] | tuple[int, str]]:
    """Parse a scanner's output: ``CODE`` or ``CODE<TAB>LOCATION`` per line.

    Yields ``(line_no, code, location)``, or ``(line_no, reason)`` for a line that cannot be a
    scan (too long, control characters). Blank lines and ``#`` comments are skipped.
    """
    for n, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        code, _, location = line.partition("\t")
        code = code.strip()
        loc = location.strip() or None
        if not code or len(code) > MAX_CODE or any(ord(c) < 32 for c in code):
            yield (n, f"line {n}: {line[:80]!r} is not a barcode or RFID tag id")
            continue
        if loc is not None and len(loc) > 128:
            yield (n, f"line {n}: location longer than 128 characters")
            continue
        yield (n, code, loc)


def record_scans(
    session: Session,
    stocktake_id: int,
    scans: Iterable[tuple[str, str | None]],
    *,
    location: str | None = None,
    at: datetime | None = None,
) -> int:
    """Store scans ``(code, location or None)`` as read; ``location`` fills the ones without.

    Returns the number stored. Part of the caller's transaction.
    """
    st = get_stocktake(session, stocktake_id)
    if st.closed_at is not None:
        raise StocktakeClosed(f"stocktake {stocktake_id} was closed at {st.closed_at}")
    when = at or utcnow()
    rows = [
        {
            "stocktake_id": stocktake_id,
            "code": code,
            "location": loc or location,
            "scanned_at": when,
        }
        for code, loc in scans
    ]
    if rows:
        session.execute(insert(StocktakeScan), rows)
    return len(rows)


def ingest_scan_stream(
    sessions: sessionmaker[Session],
    stocktake_id: int,
    lines: Iterable[str],
    *,
    actor: str,
    location: str | None = None,
    commit_every: int = 5000,
) -> ScanIngest:
    """Read a scan stream (a file or standard input) to its end, committing every
    ``commit_every`` scans so a long stream never holds one huge transaction; every readable
    line is stored, unreadable ones are reported back, none is silently dropped."""
    read = stored = 0
    refused: list[tuple[int, str]] = []
    chunk: list[tuple[str, str | None]] = []

    def flush() -> None:
        nonlocal stored
        if not chunk:
            return
        with sessions() as s:
            n = record_scans(s, stocktake_id, chunk, location=location)
            audit.append(
                s,
                actor=actor,
                action="stocktake.scans",
                entity="stocktake",
                key=str(stocktake_id),
                before=None,
                after={"scans": n, "first": chunk[0][0], "last": chunk[-1][0]},
            )
            s.commit()
        stored += n
        chunk.clear()

    for parsed in parse_scan_lines(lines):
        read += 1
        if len(parsed) == 2:
            refused.append((parsed[0], parsed[1]))
            continue
        chunk.append((parsed[1], parsed[2]))
        if len(chunk) >= commit_every:
            flush()
    flush()
    logger.info("stocktake %s: %d scans stored, %d refused", stocktake_id, stored, len(refused))
    return ScanIngest(read, stored, tuple(refused))


_BATCH = re.compile(r"^[A-Za-z0-9_-]{8,40}:[0-9]{1,9}$")


@dataclass(frozen=True)
class BatchAck:
    """What :func:`record_scan_batch` did with one batch from a scanning client."""

    stored: int
    """Scans stored by this call (0 when the batch had been stored before)."""
    duplicate: bool
    """The batch had been stored before (the client retried after losing the answer)."""
    refused: tuple[str, ...]
    """Codes that cannot be scans (too long, control characters), reported back, not stored."""


def record_scan_batch(
    session: Session,
    stocktake_id: int,
    codes: Sequence[str],
    *,
    batch: str,
    actor: str,
    location: str | None = None,
) -> BatchAck:
    """Store one batch of scans from a scanning client (the staff console's stocktake page),
    exactly once, and audit it (R14).

    ``batch`` is ``CLIENT:SEQ`` (a random client id per page and the batch's number): a batch
    already stored is acknowledged without being stored again, so a client that lost an answer
    may send the same batch again. Two copies of one batch racing each other are told apart
    under the audit log's lock: the later one raises :class:`BatchInFlight` (retryable) and its
    caller rolls back. Part of the caller's transaction.
    """
    if not _BATCH.fullmatch(batch):
        raise RegisterError(f"scan batch {batch[:60]!r} is not CLIENT:SEQ")
    key = f"{stocktake_id}:{batch}"
    stored_before = select(func.count(AuditEntry.seq)).where(
        AuditEntry.entity == "stocktake_scans", AuditEntry.entity_key == key)
    if session.scalar(stored_before):
        get_stocktake(session, stocktake_id)
        return BatchAck(stored=0, duplicate=True, refused=())
    good: list[tuple[str, str | None]] = []
    refused: list[str] = []
    for parsed in parse_scan_lines(codes):
        if len(parsed) == 2:
            refused.append(parsed[1])
        else:
            good.append((parsed[1], parsed[2] or location))
    n = record_scans(session, stocktake_id, good, location=location)
    audit.append(
        session,
        actor=actor,
        action="stocktake.scans",
        entity="stocktake_scans",
        key=key,
        before=None,
        after={"stocktake": stocktake_id, "scans": n,
               "first": good[0][0] if good else None, "last": good[-1][0] if good else None},
    )
    if (session.scalar(stored_before) or 0) > 1:  # under the audit head's lock
        raise BatchInFlight(f"scan batch {batch} is being stored by another request")
    return BatchAck(stored=n, duplicate=False, refused=tuple(refused))


@dataclass(frozen=True)
class Progress:
    """Live counts of an open stocktake (the scanning page shows them)."""

    scans: int
    distinct_codes: int
    expected: int
    """Items in scope expected on the shelf (not on loan, in repair or written off)."""
    found: int
    missing: int
    """Expected and not scanned (yet)."""
    unexpected: int
    """Scanned codes of no item in scope (unknown, elsewhere, written off)."""
    misplaced: int
    """In scope and scanned at another location than the register's."""


def stocktake_progress(session: Session, stocktake_id: int) -> Progress:
    """How far the stocktake is: scans, found, missing so far, unexpected, misplaced."""
    st = get_stocktake(session, stocktake_id)
    scanned: dict[str, str | None] = {}
    scans = 0
    for code, loc in session.execute(
        select(StocktakeScan.code, StocktakeScan.location)
        .where(StocktakeScan.stocktake_id == stocktake_id)
        .order_by(StocktakeScan.id)
    ):
        scans += 1
        scanned[code] = loc
    expected = found = misplaced = missing = 0
    matched: set[str] = set()
    for barcode, rfid, status, location in session.execute(
        select(Item.barcode, Item.rfid, Item.status, Item.location)
        .where(_scope_clause(st.scope), Item.status != ItemStatus.WRITTEN_OFF.value)
    ):
        hits = [c for c in (barcode, rfid) if c is not None and c in scanned]
        if status not in NOT_ON_SHELF:
            expected += 1
            missing += not hits
        if hits:
            found += 1
            matched.update(hits)
            where = scanned[hits[0]]
            if where is not None and where != location:
                misplaced += 1
    return Progress(scans=scans, distinct_codes=len(scanned), expected=expected, found=found,
                    missing=missing, unexpected=len(set(scanned) - matched),
                    misplaced=misplaced)


def _line(
    item: Item | None, title: str | None, code: str, scanned: str | None, why: str
) -> ActLine:
    return ActLine(
        code=code,
        inventory_number=None if item is None else item.inventory_number,
        title=title,
        register_location=None if item is None else item.location,
        scanned_location=scanned,
        status=None if item is None else item.status,
        why=why,
    )


def close_stocktake(
    session: Session, stocktake_id: int, *, actor: str, mark_missing: bool = False
) -> StocktakeAct:
    """Close the stocktake and produce its act; with ``mark_missing``, available items found
    missing get status ``missing`` (R8 lifecycle), each change audited."""
    st = get_stocktake(session, stocktake_id)
    if st.closed_at is not None:
        raise StocktakeClosed(f"stocktake {stocktake_id} was already closed at {st.closed_at}")
    scanned: dict[str, str | None] = {}
    scan_count = 0
    for code, loc in session.execute(
        select(StocktakeScan.code, StocktakeScan.location)
        .where(StocktakeScan.stocktake_id == stocktake_id)
        .order_by(StocktakeScan.id)
        .execution_options(yield_per=10000)
    ):
        scan_count += 1
        scanned[code] = loc  # the last place it was seen
    rows = session.execute(
        select(Item, BibRecord.title)
        .join(BibRecord, Item.record_id == BibRecord.id)
        .where(_scope_clause(st.scope), Item.status != ItemStatus.WRITTEN_OFF.value)
        .order_by(Item.sort_key)
    ).all()
    missing: list[ActLine] = []
    misplaced: list[ActLine] = []
    not_on_shelf: list[ActLine] = []
    matched: set[str] = set()
    found = 0
    for item, title in rows:
        codes = [c for c in (item.barcode, item.rfid) if c is not None and c in scanned]
        if not codes:
            code = item.barcode or item.rfid or ""
            if item.status in NOT_ON_SHELF:
                not_on_shelf.append(_line(item, title, code, None, item.status.replace("_", " ")))
            else:
                missing.append(_line(item, title, code, None, "in scope, not scanned"))
            continue
        found += 1
        matched.update(codes)
        where = scanned[codes[0]]
        if where is not None and where != item.location:
            misplaced.append(
                _line(item, title, codes[0], where, f"shelved at {item.location}, found at {where}")
            )
    rest = [c for c in scanned if c not in matched]
    known: dict[str, tuple[Item, str]] = {}
    for i in range(0, len(rest), 1000):
        part = rest[i : i + 1000]
        for item, title in session.execute(
            select(Item, BibRecord.title)
            .join(BibRecord, Item.record_id == BibRecord.id)
            .where(or_(Item.barcode.in_(part), Item.rfid.in_(part)))
        ):
            for c in (item.barcode, item.rfid):
                if c is not None:
                    known[c] = (item, title)
    unexpected: list[ActLine] = []
    reported: set[str] = set()
    for code in rest:
        hit = known.get(code)
        if hit is None:
            unexpected.append(_line(None, None, code, scanned[code], "unknown code"))
            continue
        item, title = hit
        if item.inventory_number in reported:
            continue  # its barcode and its RFID tag were both read
        reported.add(item.inventory_number)
        why = (
            f"written off (act {item.write_off_act.act_number if item.write_off_act else '?'})"
            if item.status == ItemStatus.WRITTEN_OFF
            else f"outside the scope (shelved at {item.location})"
        )
        unexpected.append(_line(item, title, code, scanned[code], why))
    if mark_missing:
        for line in missing:
            if line.status == ItemStatus.AVAILABLE and line.inventory_number is not None:
                set_status(
                    session,
                    line.inventory_number,
                    ItemStatus.MISSING,
                    actor=actor,
                    note=f"stocktake {stocktake_id}",
                )
    st.closed_at = utcnow()
    act = StocktakeAct(
        stocktake_id=st.id,
        reason=st.reason,
        responsible=st.responsible,
        scope=st.scope,
        started_at=st.started_at,
        closed_at=st.closed_at,
        in_scope=len(rows),
        found=found,
        scans=scan_count,
        distinct_codes=len(scanned),
        missing=tuple(missing),
        unexpected=tuple(unexpected),
        misplaced=tuple(misplaced),
        not_on_shelf=tuple(not_on_shelf),
    )
    st.result = {
        "in_scope": act.in_scope,
        "found": act.found,
        "scans": act.scans,
        "distinct_codes": act.distinct_codes,
        "missing": [asdict(x) for x in act.missing],
        "unexpected": [asdict(x) for x in act.unexpected],
        "misplaced": [asdict(x) for x in act.misplaced],
        "not_on_shelf": [asdict(x) for x in act.not_on_shelf],
    }
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="stocktake.close",
        entity="stocktake",
        key=str(st.id),
        before=None,
        after={
            "missing": len(missing),
            "unexpected": len(unexpected),
            "misplaced": len(misplaced),
            "scans": scan_count,
        },
    )
    return act


def stocktake_act(session: Session, stocktake_id: int) -> StocktakeAct:
    """The act of a closed stocktake, as recorded when it was closed."""
    st = get_stocktake(session, stocktake_id)
    if st.closed_at is None or st.result is None:
        raise RegisterError(f"stocktake {stocktake_id} is still open: close it to get its act")
    r = st.result

    def lines(key: str) -> tuple[ActLine, ...]:
        return tuple(ActLine(**x) for x in r[key])

    return StocktakeAct(
        stocktake_id=st.id,
        reason=st.reason,
        responsible=st.responsible,
        scope=st.scope,
        started_at=st.started_at,
        closed_at=st.closed_at,
        in_scope=int(r["in_scope"]),
        found=int(r["found"]),
        scans=int(r["scans"]),
        distinct_codes=int(r["distinct_codes"]),
        missing=lines("missing"),
        unexpected=lines("unexpected"),
        misplaced=lines("misplaced"),
        not_on_shelf=lines("not_on_shelf"),
    )


def count_scans(session: Session, stocktake_id: int) -> int:
    """How many scans are stored for the stocktake."""
    return int(
        session.scalar(
            select(func.count(StocktakeScan.id)).where(StocktakeScan.stocktake_id == stocktake_id)
        )
        or 0
    )


SECTIONS = (
    ("missing", "Missing (in scope, not found)"),
    ("unexpected", "Unexpected (scanned, not expected here)"),
    ("misplaced", "Misplaced (found at the wrong location)"),
    ("not_on_shelf", "On loan or in repair (not expected on the shelf)"),
)

#: The act's fixed words per language (салыстырмалы тексеру акті · акт сверки фонда, R14).
_ACT_WORDS: Final[Mapping[str, Mapping[str, str]]] = {
    "kk": {
        "title": "Қорды салыстырмалы тексеру акті № {id}",
        "reason": "Себебі", "responsible": "Материалдық жауапты қызметкер",
        "scope": "Тексерілген орын", "period": "{start} бастап {end} дейін (UTC)",
        "counts": "Тексерілетін даналар: {in_scope}; табылды: {found}; оқылған сканерлеулер: "
                  "{scans} ({distinct} әртүрлі код).",
        "missing": "Жоқ (тексеру аймағында, табылмады)",
        "unexpected": "Күтілмеген (сканерленді, бұл жерде күтілмеген)",
        "misplaced": "Орнында емес (басқа жерден табылды)",
        "not_on_shelf": "Берілген немесе жөндеуде (сөреде болмауы тиіс)",
        "inv": "Инв. №", "code": "Код", "book": "Атауы", "location": "Тізілімдегі орны",
        "scanned_at": "Сканерленген орны", "why": "Түсіндірме",
        "signatures": "Қолдар: ______________________ (материалдық жауапты қызметкер) "
                      "______________________ (комиссия)",
    },
    "ru": {
        "title": "Акт сверки фонда № {id}",
        "reason": "Причина", "responsible": "Материально ответственное лицо",
        "scope": "Проверяемое место хранения", "period": "С {start} по {end} (UTC)",
        "counts": "Экземпляров в проверке: {in_scope}; найдено: {found}; считано сканирований: "
                  "{scans} ({distinct} различных кодов).",
        "missing": "Отсутствуют (в зоне проверки, не найдены)",
        "unexpected": "Неожиданные (отсканированы, здесь не ожидались)",
        "misplaced": "Не на своём месте (найдены в другом месте)",
        "not_on_shelf": "Выданы или в ремонте (не должны быть на полке)",
        "inv": "Инв. №", "code": "Код", "book": "Заглавие", "location": "Место по реестру",
        "scanned_at": "Где отсканирован", "why": "Пояснение",
        "signatures": "Подписи: ______________________ (материально ответственное лицо) "
                      "______________________ (комиссия)",
    },
    "en": {
        "title": "Stocktake act No {id}",
        "reason": "Reason", "responsible": "Materially responsible person",
        "scope": "Scope", "period": "From {start} to {end} UTC",
        "counts": "Items in scope: {in_scope}; found: {found}; scans read: {scans} "
                  "({distinct} distinct codes).",
        **dict(SECTIONS),
        "inv": "Inv. No", "code": "Code", "book": "Title", "location": "Location",
        "scanned_at": "Scanned at", "why": "Why",
        "signatures": "Signatures: ______________________ (responsible) "
                      "______________________ (commission)",
    },
}


#: The recorded explanations of the act's lines (English, as :func:`close_stocktake` writes
#: them) worded in Kazakh and Russian.
_WHY: Final[Mapping[str, Mapping[str, str]]] = {
    "kk": {"missing": "тексеру аймағында, сканерленбеді", "unknown": "белгісіз код",
           "misplaced": "тізілім бойынша орны {0}, {1} жерінен табылды",
           "written_off": "есептен шығарылған ({0} акті)",
           "outside": "тексеру аймағынан тыс (тізілім бойынша орны {0})"},
    "ru": {"missing": "в зоне проверки, не отсканирован", "unknown": "неизвестный код",
           "misplaced": "место по реестру {0}, найден: {1}",
           "written_off": "списан (акт {0})",
           "outside": "вне зоны проверки (место по реестру {0})"},
}
_WHY_PATTERNS: Final = (
    ("missing", re.compile(r"in scope, not scanned")),
    ("unknown", re.compile(r"unknown code")),
    ("misplaced", re.compile(r"shelved at (.*), found at (.*)")),
    ("written_off", re.compile(r"written off \(act (.*)\)")),
    ("outside", re.compile(r"outside the scope \(shelved at (.*)\)")),
)


def line_why(line: ActLine, section: str, language: str) -> str:
    """A line's explanation in ``language``; text this catalogue does not know stays as
    recorded (English)."""
    if language == "en":
        return line.why
    if section == "not_on_shelf" and line.status:
        return vocabulary.label(vocabulary.STATUS, line.status, language)
    for key, pattern in _WHY_PATTERNS:
        found = pattern.fullmatch(line.why)
        if found:
            return _WHY[language][key].format(*found.groups())
    return line.why


CSV_HEADER: Final = ("section", "inventory_number", "code", "title", "register_location",
                     "scanned_location", "status", "why")
"""The act's CSV columns: English machine keys, the same whatever the HTML's language."""


def stocktake_act_rows(act: StocktakeAct) -> list[list[str]]:
    """The act as CSV rows (header :data:`CSV_HEADER` first), one row per line."""
    rows = [list(CSV_HEADER)]
    for key, _heading in SECTIONS:
        for ln in getattr(act, key):
            rows.append([key, ln.inventory_number or "", ln.code, ln.title or "",
                         ln.register_location or "", ln.scanned_location or "",
                         ln.status or "", ln.why])
    return rows


def stocktake_act_html(act: StocktakeAct, *, library_name: str, language: str = "en") -> str:
    """The act as a printable A4 HTML page; headings, labels, the reason and the lines'
    explanations in ``language`` (kk, ru or en), the figures the same in every language."""
    w = _ACT_WORDS[vocabulary.check_language(language)]
    e = html.escape
    title = w["title"].format(id=act.stocktake_id)
    reason = vocabulary.label(vocabulary.STOCKTAKE_REASON, act.reason, language)
    period = w["period"].format(start=f"{act.started_at:%Y-%m-%d %H:%M}",
                                end=f"{act.closed_at:%Y-%m-%d %H:%M}")
    parts = [
        f'<!DOCTYPE html>\n<html lang="{language}"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>"
        "@page { size: A4; margin: 15mm; } body { font-family: 'DejaVu Sans', Arial, sans-serif;"
        " font-size: 9pt; } table { border-collapse: collapse; width: 100%; }"
        " th, td { border: 0.5pt solid #000; padding: 2pt 3pt; } th { background: #eee; }"
        "</style></head><body>",
        f"<div><b>{e(library_name)}</b></div><h1>{e(title)}</h1>",
        f"<p>{w['reason']}: {e(reason)}. {w['responsible']}: {e(act.responsible)}. "
        f"{w['scope']}: {e(act.scope)}. {period}.</p>",
        "<p>" + w["counts"].format(in_scope=act.in_scope, found=act.found, scans=act.scans,
                                   distinct=act.distinct_codes) + "</p>",
    ]
    for key, _heading in SECTIONS:
        lines: tuple[ActLine, ...] = getattr(act, key)
        parts.append(f"<h2 id=\"{key}\">{e(w[key])}: {len(lines)}</h2>")
        if not lines:
            continue
        parts.append(
            f"<table><tr><th>{w['inv']}</th><th>{w['code']}</th><th>{w['book']}</th>"
            f"<th>{w['location']}</th><th>{w['scanned_at']}</th><th>{w['why']}</th></tr>"
        )
        for ln in lines:
            parts.append(
                f"<tr><td>{e(ln.inventory_number or '')}</td><td>{e(ln.code)}</td>"
                f"<td>{e(ln.title or '')}</td><td>{e(ln.register_location or '')}</td>"
                f"<td>{e(ln.scanned_location or '')}</td><td>{e(line_why(ln, key, language))}</td>"
                "</tr>"
            )
        parts.append("</table>")
    parts.append(f"<p>{w['signatures']}</p></body></html>\n")
    return "".join(parts)


def write_stocktake_act(
    act: StocktakeAct, directory: Path, *, library_name: str, language: str = "en"
) -> tuple[Path, Path]:
    """Write ``stocktake-<id>.html`` (:func:`stocktake_act_html` in ``language``) and
    ``stocktake-<id>.csv`` (:func:`stocktake_act_rows`, English keys) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"stocktake-{act.stocktake_id}"
    html_path, csv_path = directory / f"{stem}.html", directory / f"{stem}.csv"
    html_path.write_text(stocktake_act_html(act, library_name=library_name, language=language),
                         encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh).writerows(stocktake_act_rows(act))
    return html_path, csv_path
