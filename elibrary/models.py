"""The e-library's tables, kept apart from the fund register's (all named ``elibrary_*``).

They live in the register's database and are created by migration ``0003_elibrary``
(``catalog_sync/migrations/versions``); these classes must match it
(``tests/elibrary/test_schema.py``). They have their own declarative base: the register's
"never delete" guard is for the fund (R3–R4), while sessions here expire and are removed.

Personal data kept (and nothing more): a reader account knows only its reader (by id; the
ticket number and name stay in the circulation tables) and a password hash; the read log knows
account, copy, day, bytes and whether the read was remote or in a reading room — no address, no
browser, no time of day — and forgets the account after ``read_log_days``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from catalog_sync.models import NAMING, DigitalCopy, Reader, UTCDateTime, utcnow

# Foreign keys to the register's tables name their columns directly (another MetaData).
_COPY_ID = DigitalCopy.__table__.c.id
_READER_ID = Reader.__table__.c.id


class Base(DeclarativeBase):
    """Declarative base of the e-library's tables (deterministic constraint names)."""

    metadata = MetaData(naming_convention=NAMING)


class Rights(enum.StrEnum):
    """Who may read a copy (R6). Kazakh/Russian: ашық · открытый; оқырмандар · читатели;
    оқу залы · читальный зал; жабық · закрытый."""

    OPEN = "open"
    """Anyone, remotely, without signing in."""
    READERS = "readers"
    """Signed-in readers, remotely."""
    READING_ROOM = "reading-room"
    """Signed-in readers, only from the library's configured networks."""
    DARK = "dark"
    """Never served and never listed (not in search, not in OAI-PMH)."""


class StaffRole(enum.StrEnum):
    """Staff roles, each reaching only what it needs (R10, R11); the staff console
    (``/staff/...``, docs/operations.md) checks the role on every route.

    * ``operator`` (цифрлау операторы · оператор оцифровки): the digitisation jobs;
    * ``preservation`` (сақтау маманы · хранитель): fixity reports;
    * ``librarian`` (кітапханашы · библиотекарь): circulation desk, stocktake, catalogue,
      readers, rights of copies;
    * ``statistician`` (статистик): read-only reports (read statistics aggregated per copy,
      never per reader; compliance, debts);
    * ``admin`` (әкімші · администратор): staff accounts and their roles.
    """

    OPERATOR = "operator"
    PRESERVATION = "preservation"
    LIBRARIAN = "librarian"
    STATISTICIAN = "statistician"
    ADMIN = "admin"


class ReaderAccount(Base):
    """A reader's (оқырман · читатель) e-library account, tied to a reader ticket."""

    __tablename__ = "elibrary_reader_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey(_READER_ID), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffAccount(Base):
    """A staff account, separate from readers' (its own table, cookie and sign-in page)."""

    __tablename__ = "elibrary_staff_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "elibrary_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LibraryCopy(Base):
    """A digital copy that has entered the e-library: its rights and its index state."""

    __tablename__ = "elibrary_copies"

    copy_id: Mapped[int] = mapped_column(ForeignKey(_COPY_ID), primary_key=True)
    rights: Mapped[str] = mapped_column(String(16), index=True)
    rights_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rights_changed_by: Mapped[str] = mapped_column(String(128))
    pages_indexed: Mapped[int] = mapped_column(Integer, default=0)
    indexed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    datestamp: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    """Last change visible to harvesters (OAI-PMH datestamp)."""


class PageText(Base):
    """OCR text of one page (``page`` ≥ 1), or the catalogue fields of the copy (``page`` 0).

    ``folded`` is the case-folded text the full-text index covers (SQLite FTS5 table
    ``elibrary_page_fts`` / PostgreSQL GIN index on ``to_tsvector('simple', folded)``).
    """

    __tablename__ = "elibrary_page_texts"
    __table_args__ = (UniqueConstraint("copy_id", "page", name="uq_elibrary_page_texts_copy_page"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    copy_id: Mapped[int] = mapped_column(ForeignKey(_COPY_ID))
    page: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    folded: Mapped[str] = mapped_column(Text)


class ReadRecord(Base):
    """One served read (оқу · чтение): account, copy, day, bytes, remote or reading room."""

    __tablename__ = "elibrary_reads"
    __table_args__ = (Index("ix_elibrary_reads_copy_day", "copy_id", "day"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    copy_id: Mapped[int] = mapped_column(ForeignKey(_COPY_ID))
    reader_account_id: Mapped[int | None] = mapped_column(
        ForeignKey(ReaderAccount.__table__.c.id), index=True
    )
    day: Mapped[date] = mapped_column(Date)
    bytes_served: Mapped[int] = mapped_column(BigInteger)
    place: Mapped[str] = mapped_column(String(16))
