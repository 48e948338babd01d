"""The e-library's tables: reader and staff accounts, sessions, copies' rights, page texts with
their full-text index, and the read log.

Revision ID: 0003_elibrary
Revises: 0002_circulation

Full-text search: on SQLite an FTS5 table ``elibrary_page_fts`` over the case-folded text
(external content, kept in step by triggers); on PostgreSQL a GIN index on
``to_tsvector('simple', folded)``. Text is case-folded by the application (Kazakh and Russian
letters fold the same on any database locale).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_elibrary"
down_revision = "0002_circulation"
branch_labels = None
depends_on = None

_FTS_TRIGGERS = (
    """CREATE TRIGGER elibrary_page_texts_ai AFTER INSERT ON elibrary_page_texts BEGIN
         INSERT INTO elibrary_page_fts(rowid, folded) VALUES (new.id, new.folded);
       END""",
    """CREATE TRIGGER elibrary_page_texts_ad AFTER DELETE ON elibrary_page_texts BEGIN
         INSERT INTO elibrary_page_fts(elibrary_page_fts, rowid, folded)
         VALUES ('delete', old.id, old.folded);
       END""",
    """CREATE TRIGGER elibrary_page_texts_au AFTER UPDATE ON elibrary_page_texts BEGIN
         INSERT INTO elibrary_page_fts(elibrary_page_fts, rowid, folded)
         VALUES ('delete', old.id, old.folded);
         INSERT INTO elibrary_page_fts(rowid, folded) VALUES (new.id, new.folded);
       END""",
)


def upgrade() -> None:
    op.create_table(
        "elibrary_reader_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["readers.id"],
            name=op.f("fk_elibrary_reader_accounts_reader_id_readers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_elibrary_reader_accounts")),
        sa.UniqueConstraint("reader_id", name=op.f("uq_elibrary_reader_accounts_reader_id")),
    )
    op.create_table(
        "elibrary_staff_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_elibrary_staff_accounts")),
        sa.UniqueConstraint("username", name=op.f("uq_elibrary_staff_accounts_username")),
    )
    op.create_table(
        "elibrary_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_elibrary_sessions")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_elibrary_sessions_token_sha256")),
    )
    op.create_index(
        op.f("ix_elibrary_sessions_account_id"), "elibrary_sessions", ["account_id"], unique=False
    )
    op.create_table(
        "elibrary_copies",
        sa.Column("copy_id", sa.Integer(), nullable=False),
        sa.Column("rights", sa.String(length=16), nullable=False),
        sa.Column("rights_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rights_changed_by", sa.String(length=128), nullable=False),
        sa.Column("pages_indexed", sa.Integer(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("datestamp", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["copy_id"],
            ["digital_copies.id"],
            name=op.f("fk_elibrary_copies_copy_id_digital_copies"),
        ),
        sa.PrimaryKeyConstraint("copy_id", name=op.f("pk_elibrary_copies")),
    )
    op.create_index(op.f("ix_elibrary_copies_rights"), "elibrary_copies", ["rights"], unique=False)
    op.create_index(
        op.f("ix_elibrary_copies_datestamp"), "elibrary_copies", ["datestamp"], unique=False
    )
    op.create_table(
        "elibrary_page_texts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("copy_id", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("folded", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["copy_id"],
            ["digital_copies.id"],
            name=op.f("fk_elibrary_page_texts_copy_id_digital_copies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_elibrary_page_texts")),
        sa.UniqueConstraint("copy_id", "page", name="uq_elibrary_page_texts_copy_page"),
    )
    op.create_table(
        "elibrary_reads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("copy_id", sa.Integer(), nullable=False),
        sa.Column("reader_account_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("bytes_served", sa.BigInteger(), nullable=False),
        sa.Column("place", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["copy_id"],
            ["digital_copies.id"],
            name=op.f("fk_elibrary_reads_copy_id_digital_copies"),
        ),
        sa.ForeignKeyConstraint(
            ["reader_account_id"],
            ["elibrary_reader_accounts.id"],
            name=op.f("fk_elibrary_reads_reader_account_id_elibrary_reader_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_elibrary_reads")),
    )
    op.create_index(
        "ix_elibrary_reads_copy_day", "elibrary_reads", ["copy_id", "day"], unique=False
    )
    op.create_index(
        op.f("ix_elibrary_reads_reader_account_id"),
        "elibrary_reads",
        ["reader_account_id"],
        unique=False,
    )

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE elibrary_page_fts USING fts5(folded, "
            "content='elibrary_page_texts', content_rowid='id', "
            "tokenize='unicode61 remove_diacritics 0')"
        )
        for trigger in _FTS_TRIGGERS:
            op.execute(trigger)
    elif dialect == "postgresql":
        op.execute(
            "CREATE INDEX ix_elibrary_page_texts_fts ON elibrary_page_texts "
            "USING gin (to_tsvector('simple', folded))"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("elibrary_page_texts_ai", "elibrary_page_texts_ad", "elibrary_page_texts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS elibrary_page_fts")
    for table in (
        "elibrary_reads",
        "elibrary_page_texts",
        "elibrary_copies",
        "elibrary_sessions",
        "elibrary_staff_accounts",
        "elibrary_reader_accounts",
    ):
        op.drop_table(table)
