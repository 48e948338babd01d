"""Full-text search: Kazakh/Russian case folding, snippets, page numbers, paging — on SQLite
(FTS5) and PostgreSQL (tsvector + GIN); and the schema matches the models on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from catalog_sync import db
from elibrary import models
from elibrary.models import Rights
from elibrary.textindex import fold, page_order, search, snippet
from storage import FileStore, LocalKeyring
from tests.elibrary.library import Library

#: Every right but dark: what a reader inside a reading room may read.
LISTED = frozenset({Rights.OPEN, Rights.READERS, Rights.READING_ROOM})


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_library(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Library]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_database_url")
    engine = db.make_engine(url)
    db.upgrade(engine)
    yield Library(sessions=db.session_factory(engine), store=FileStore(tmp_path / "s", fsync=False),
                  keyring=LocalKeyring(tmp_path / "k"), work=tmp_path / "w")
    engine.dispose()


def _only_elibrary(name: str | None, type_: str, _parent: object) -> bool:
    """The e-library's tables, without the full-text structures the models cannot describe
    (SQLite's FTS5 table and its shadow tables, PostgreSQL's GIN expression index)."""
    name = name or ""
    if type_ == "index":
        return name != "ix_elibrary_page_texts_fts"
    if type_ == "table":
        return name.startswith("elibrary_") and not name.startswith("elibrary_page_fts")
    return True


def test_migration_matches_the_models(fresh_library: Library) -> None:
    engine: Engine = fresh_library.sessions.kw["bind"]
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_name": _only_elibrary})
        assert compare_metadata(ctx, models.Base.metadata) == []


def test_case_folding_snippets_pages_and_paging(fresh_library: Library) -> None:
    lib = fresh_library
    made = lib.add_copy(title="Тарих", rights=Rights.OPEN, pages=[
        "Алғы сөз.", "Қазақ хандығы туралы.", "ҚАЗАҚТЫҢ дала өркениеті.", "Басқа тақырып."])
    other = lib.add_copy(title="Степь", rights=Rights.READERS,
                         pages=[f"Страница {i}: казахская степь, Ёлка." for i in range(1, 13)])
    dark = lib.add_copy(title="Жабық", rights=Rights.DARK, pages=["қазақ жабық мәтін"])
    with lib.sessions() as s:
        # Folds "Қазақ", "ҚАЗАҚТЫҢ" (prefix: Kazakh suffixes).
        hits = search(s, "қазақ", readable=LISTED)
        pages = sorted((h.copy_id, h.page) for h in hits.hits)
        assert hits.total == 2 and [p for _, p in pages] == [2, 3]
        assert all(h.copy_id != 0 for h in hits.hits)
        assert search(s, "ҚАЗАҚ", readable=LISTED).total == 2
        assert search(s, "ёлка", readable=LISTED).total == 12
        assert search(s, "ЁЛКА", readable=LISTED).total == 12
        first = search(s, "степь", offset=0, limit=10, readable=LISTED)
        second = search(s, "степь", offset=10, limit=10, readable=LISTED)
        assert first.total == second.total == 13  # 12 pages + the catalogue record "Степь"
        assert len(first.hits) == 10 and len(second.hits) == 3
        assert not {(h.copy_id, h.page) for h in first.hits} & {
            (h.copy_id, h.page) for h in second.hits}
        # Query syntax is not passed on: OR and NEAR are plain words here (none matches).
        assert search(s, 'қазақ" OR * NEAR(', readable=LISTED).total == 0
        assert search(s, '"қазақ*" (', readable=LISTED).total == 2
        assert search(s, "жабық", readable=LISTED).total == 0  # dark copies are not found
    assert made.bag_id and other.bag_id and dark.bag_id


def test_snippet_marks_every_case_and_escapes_html() -> None:
    out = snippet("<b>Қазақ</b> және қазақтың тілі", ["қазақ"])
    assert str(out) == "&lt;b&gt;<mark>Қазақ</mark>&lt;/b&gt; және <mark>қазақтың</mark> тілі"
    assert fold("ҚАЗАҚ") == "қазақ"


def test_page_order_follows_the_masters() -> None:
    texts = ["data/text/b.txt", "data/text/a-0002.txt", "data/text/a-0001.txt",
             "data/text/c.txt"]
    masters = ["data/masters/0002_a.tif", "data/masters/0001_b.png", "data/masters/0003_c.jpg"]
    assert page_order(texts, masters) == [
        (1, "data/text/b.txt"), (2, "data/text/a-0001.txt"), (3, "data/text/a-0002.txt"),
        (4, "data/text/c.txt")]
