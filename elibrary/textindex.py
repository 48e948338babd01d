"""Full-text search over catalogue fields and OCR text, in Kazakh and Russian.

The OCR text of a copy exists only encrypted in its bag (``data/text/*.txt``).
:func:`index_copy` decrypts those objects in memory (through the store and the keyring; no
plaintext ever reaches disk) into ``elibrary_page_texts``: one row per page, plus row 0 for the
catalogue fields (title, authors, publisher, year, inventory number).

Matching is on *case-folded* text, folded in Python (``str.casefold``) so that "Қазақ" finds
"қазақ" whatever the database's locale: SQLite FTS5 (``unicode61`` tokenizer, diacritics kept so
that й ≠ и) by default, PostgreSQL ``to_tsvector('simple', folded)`` with a GIN index in
production. Every search word matches as a prefix, which suits agglutinative Kazakh
("қазақ" finds "қазақтың"). Snippets are cut and highlighted in Python on the original text,
identically on both databases.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from markupsafe import Markup, escape
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from catalog_sync.models import BibRecord, DigitalCopy, Item, utcnow
from elibrary.errors import IndexingFailed, InvalidParameter
from elibrary.library import enter_library
from elibrary.models import LibraryCopy, PageText, Rights
from integrity import layout
from storage import DecryptionFailed, Keyring, ObjectStore, StorageError, WrappedKey, decrypt_chunks

if TYPE_CHECKING:
    from qor.settings import QorSettings

logger = logging.getLogger(__name__)


MAX_QUERY_CHARS = 200
MAX_TERMS = 8
MAX_PAGE_TEXT_BYTES = 4 * 1024 * 1024
AGENT = "qor-elibrary"


def fold(value: str) -> str:
    """Case-fold for matching: NFC, then ``casefold`` ("Қазақ" → "қазақ", "ЁЛКА" → "ёлка")."""
    return unicodedata.normalize("NFC", value).casefold()


def query_terms(query: str) -> list[str]:
    """The words of a search query, folded (punctuation and query syntax are not passed on)."""
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidParameter("q", f"longer than {MAX_QUERY_CHARS} characters")
    terms: list[str] = []
    for word in re.findall(r"\w+", fold(query)):
        word = word.strip("_")[:64]
        if word and word not in terms:
            terms.append(word)
    return terms[:MAX_TERMS]


# --- page order -----------------------------------------------------------------------------


def _natural(value: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", value)]


def page_order(text_paths: Sequence[str], master_paths: Sequence[str]) -> list[tuple[int, str]]:
    """``(page number, text path)`` in the PDF's page order.

    The digitise flow names masters ``data/masters/NNNN_<file name>`` (NNNN = scan order) and
    the OCR text ``data/text/<label>.txt`` where the label is the scan's file stem, or
    ``<stem>-NNNN`` for a frame of a multi-page scan; the masters' order therefore gives the
    pages' order. Text files no master explains come last, in natural order.
    """
    by_stem = {PurePosixPath(p).name.removesuffix(".txt"): p for p in text_paths}
    ordered: list[str] = []
    used: set[str] = set()
    for master in sorted(master_paths, key=lambda p: _natural(PurePosixPath(p).name)):
        name = PurePosixPath(master).name
        head, sep, rest = name.partition("_")
        if not (sep and head.isdigit()):
            continue
        stem = PurePosixPath(rest).stem if "." in rest else rest
        if stem in by_stem and stem not in used:
            ordered.append(stem)
            used.add(stem)
            continue
        frames = sorted(
            (s for s in by_stem if s not in used and re.fullmatch(re.escape(stem) + r"-\d{4}", s)),
            key=_natural,
        )
        ordered.extend(frames)
        used.update(frames)
    ordered.extend(sorted((s for s in by_stem if s not in used), key=_natural))
    return [(n, by_stem[s]) for n, s in enumerate(ordered, start=1)]


# --- indexing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexResult:
    """What :func:`index_copy` did."""

    bag_id: str
    inventory_number: str
    pages: int
    characters: int
    rights: Rights


def _decrypt_text(store: ObjectStore, key: str, *, keyring: Keyring, file_id: str,
                  wrapped: WrappedKey) -> str:
    parts: list[bytes] = []
    size = 0
    for chunk in decrypt_chunks(store.iter_chunks(key), keyring=keyring, file_id=file_id,
                                wrapped=wrapped):
        size += len(chunk)
        if size > MAX_PAGE_TEXT_BYTES:
            raise IndexingFailed(file_id, f"{file_id} is larger than {MAX_PAGE_TEXT_BYTES} bytes")
        parts.append(chunk)
    return b"".join(parts).decode("utf-8", errors="replace")


def catalogue_text(copy: DigitalCopy) -> str:
    """The catalogue fields searched together with the OCR text (page 0)."""
    item: Item = copy.item
    rec: BibRecord = item.record
    fields = [rec.title, *(rec.authors or []), rec.publisher or "",
              str(rec.year) if rec.year else "", item.inventory_number, rec.isbn or ""]
    return "\n".join(f for f in fields if f)


def index_copy_text(
    session: Session,
    *,
    store: ObjectStore,
    keyring: Keyring,
    bag_id: str,
    default_rights: Rights,
    actor: str = AGENT,
) -> IndexResult:
    """Index the catalogue fields and the OCR text of copy ``bag_id`` (replacing any earlier
    index of it) and give it ``default_rights`` if it has no rights yet. ``store`` holds the
    bag. Part of the caller's transaction (nothing is committed here)."""
    from catalog_sync.register import get_digital_copy

    copy = get_digital_copy(session, bag_id)
    wrapped = WrappedKey(kek_id=copy.kek_id, wrapped=bytes(copy.wrapped_key))
    prefix = layout.bag_prefix(bag_id)
    try:
        keys = [info.key for info in store.list(prefix + "data/")]
    except StorageError as e:
        raise IndexingFailed(bag_id, f"cannot list the bag in {store.uri}: {e}") from e
    texts = [k.removeprefix(prefix) for k in keys if k.startswith(prefix + layout.TEXT_DIR)
             and k.endswith(".txt")]
    masters = [k.removeprefix(prefix) for k in keys if k.startswith(prefix + layout.MASTERS_DIR)]
    pages: list[tuple[int, str]] = []
    for number, bag_path in page_order(texts, masters):
        try:
            body = _decrypt_text(store, prefix + bag_path, keyring=keyring, file_id=bag_path,
                                 wrapped=wrapped)
        except (DecryptionFailed, StorageError) as e:
            raise IndexingFailed(bag_id, f"{bag_path}: {e}") from e
        pages.append((number, body))
    lib = enter_library(session, copy, default_rights=default_rights, actor=actor)
    session.execute(delete(PageText).where(PageText.copy_id == copy.id))
    rows = [(0, catalogue_text(copy)), *pages]
    session.add_all(PageText(copy_id=copy.id, page=n, body=body, folded=fold(body))
                    for n, body in rows)
    now = utcnow()
    lib.pages_indexed = len(pages)
    lib.indexed_at = now
    lib.datestamp = now
    session.flush()
    chars = sum(len(b) for _, b in pages)
    logger.info("indexed copy %s: %d pages, %d characters", bag_id, len(pages), chars)
    return IndexResult(bag_id=bag_id, inventory_number=copy.item.inventory_number,
                       pages=len(pages), characters=chars, rights=Rights(lib.rights))


def index_copy(session: Session, settings: QorSettings, bag_id: str) -> IndexResult:
    """Index copy ``bag_id`` for search, using the store and keyring Qor's settings name and the
    default rights of the e-library's settings (``elibrary_default_rights``).

    For the digitise flow's register step: call it in the same transaction that registers the
    copy, after :func:`catalog_sync.register.add_digital_copy`.
    """
    from elibrary.config import load_elibrary_settings
    from qor import wiring

    copy_uri = session.scalar(select(DigitalCopy.store_uri).where(DigitalCopy.bag_id == bag_id))
    store = wiring.store_for_uri(settings, copy_uri) if copy_uri else wiring.primary_store(settings)
    return index_copy_text(
        session, store=store, keyring=wiring.keyring(settings), bag_id=bag_id,
        default_rights=load_elibrary_settings().elibrary_default_rights,
    )


# --- searching ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One matching page (``page`` 0: the catalogue fields matched)."""

    copy_id: int
    page: int
    text_id: int


@dataclass(frozen=True)
class HitPage:
    """One page of results: the hits and the total number of hits."""

    hits: tuple[Hit, ...]
    total: int
    terms: tuple[str, ...]


def _fts5_query(terms: Sequence[str]) -> str:
    # Each term is \w characters only; quoting keeps FTS5 operators out, * makes it a prefix.
    return " ".join(f'"{t}"*' for t in terms)


def _ts_query(terms: Sequence[str]) -> str:
    return " & ".join(f"'{t}':*" for t in terms)


def search(session: Session, query: str, *, readable: Collection[Rights], offset: int = 0,
           limit: int = 10) -> HitPage:
    """Pages (and catalogue entries) matching every word of ``query``, best first, of the
    copies whose rights are in ``readable`` — the rights the visitor may read
    (:func:`elibrary.library.readable_rights`); ``dark`` copies are never found.

    R6/R10 (issue 15): the filter is in the query itself, so a copy the visitor may not read is
    neither listed nor counted — the total, page numbers and paging reveal nothing of its text,
    and a prefix probe on its words answers exactly as a word found nowhere.
    """
    terms = query_terms(query)
    allowed = sorted(r.value for r in readable if Rights(r) is not Rights.DARK)
    if not terms or limit <= 0 or not allowed:
        return HitPage((), 0, tuple(terms))
    dialect = session.get_bind().dialect.name
    marks = ", ".join(f":right{i}" for i in range(len(allowed)))
    visible = f"c.rights IN ({marks})"
    rights_params = {f"right{i}": v for i, v in enumerate(allowed)}
    if dialect == "sqlite":
        match = ("FROM elibrary_page_fts f JOIN elibrary_page_texts t ON t.id = f.rowid "
                 "JOIN elibrary_copies c ON c.copy_id = t.copy_id "
                 f"WHERE elibrary_page_fts MATCH :q AND {visible}")
        params: dict[str, object] = {"q": _fts5_query(terms), **rights_params}
        order = "bm25(elibrary_page_fts), t.copy_id, t.page"
    elif dialect == "postgresql":
        match = ("FROM elibrary_page_texts t JOIN elibrary_copies c ON c.copy_id = t.copy_id "
                 "WHERE to_tsvector('simple', t.folded) @@ to_tsquery('simple', :q) "
                 f"AND {visible}")
        params = {"q": _ts_query(terms), **rights_params}
        order = ("ts_rank(to_tsvector('simple', t.folded), to_tsquery('simple', :q)) DESC, "
                 "t.copy_id, t.page")
    else:  # pragma: no cover - make_engine allows only these two
        raise InvalidParameter("database", f"no full-text search on {dialect}")
    total = int(session.execute(text(f"SELECT count(*) {match}"), params).scalar_one())
    rows = session.execute(
        text(f"SELECT t.id, t.copy_id, t.page {match} ORDER BY {order} "
             "LIMIT :limit OFFSET :offset"),
        {**params, "limit": limit, "offset": max(0, offset)},
    ).all()
    hits = tuple(Hit(copy_id=r[1], page=r[2], text_id=r[0]) for r in rows)
    return HitPage(hits, total, tuple(terms))


def page_bodies(session: Session, text_ids: Sequence[int]) -> dict[int, str]:
    """Original text of the given index rows, by row id."""
    if not text_ids:
        return {}
    rows = session.execute(select(PageText.id, PageText.body).where(PageText.id.in_(text_ids)))
    return {r[0]: r[1] for r in rows}


def page_text(session: Session, copy_id: int, page: int) -> str | None:
    """The OCR text of one page of a copy (None if not indexed)."""
    return session.scalar(
        select(PageText.body).where(PageText.copy_id == copy_id, PageText.page == page)
    )


def indexed_pages(session: Session, copy_id: int) -> list[int]:
    """Page numbers of a copy that have OCR text in the index."""
    return list(session.scalars(
        select(PageText.page).where(PageText.copy_id == copy_id, PageText.page > 0)
        .order_by(PageText.page)
    ))


def count_indexed(session: Session) -> int:
    """Number of copies in the e-library."""
    return int(session.scalar(select(func.count()).select_from(LibraryCopy)) or 0)


def snippet(body: str, terms: Sequence[str], *, width: int = 90,
            mark: Callable[[str], Markup] | None = None) -> Markup:
    """An escaped excerpt of ``body`` around the first match, matches wrapped in ``<mark>``."""
    folded_chars = [fold(c) for c in body]
    folded = "".join(folded_chars)
    # Map each folded position back to the original character (casefold may lengthen: ß → ss).
    origin: list[int] = []
    for i, f in enumerate(folded_chars):
        origin.extend([i] * len(f))
    spans: list[tuple[int, int]] = []
    for term in terms:
        for m in re.finditer(r"(?<!\w)" + re.escape(term) + r"\w*", folded):
            spans.append((origin[m.start()], origin[m.end() - 1] + 1))
    spans.sort()
    if not spans:
        start, end = 0, min(len(body), 2 * width)
    else:
        start = max(0, spans[0][0] - width)
        end = min(len(body), spans[0][1] + width)
        ws = body.rfind(" ", 0, start + 1)
        start = ws + 1 if start and ws >= 0 and spans[0][0] - ws < 2 * width else start
    wrap = mark or (lambda s: Markup("<mark>{}</mark>").format(s))
    out: list[Markup | str] = ["…" if start > 0 else ""]
    pos = start
    for s, e in spans:
        if s < pos or s >= end:
            continue
        out.append(escape(body[pos:s]))
        out.append(wrap(body[s:e]))
        pos = e
    out.append(escape(body[pos:end]))
    out.append("…" if end < len(body) else "")
    return Markup("").join(out)
