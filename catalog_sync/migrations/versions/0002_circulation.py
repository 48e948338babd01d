"""Circulation (R15), reader debts (R16), the security gate (R10) and legal deposit (R7).

Revision ID: 0002_circulation
Revises: 0001

Readers, service points, loans, holds, debt steps, security-tag states, gate events, the library's
calendar amendments, legal deposit recipients, publications, obligations and claims. The database
itself keeps an item on at most one open loan (a partial unique index, on SQLite and PostgreSQL)
and refuses any change to a closed loan; loans, debt steps, gate events and legal deposit rows
are never deleted (R3–R4 applies to the records of the fund's use too).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_circulation"
down_revision = "0001"
branch_labels = None
depends_on = None

# Messages start with a stable tag: catalog_sync.circulation translates them into domain errors.
MSG_LOAN_CLOSED = "QOR-LOAN-CLOSED: a returned loan never changes"
NEVER_DELETED = (
    "loans",
    "debt_steps",
    "gate_events",
    "publications",
    "deposit_obligations",
    "deposit_claims",
)
APPEND_ONLY = ("debt_steps", "gate_events", "deposit_claims")

OPEN = "returned_at IS NULL"


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "readers",
        _id(),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("blocked_reason", sa.Text(), nullable=True),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readers")),
        sa.UniqueConstraint("ticket_number", name=op.f("uq_readers_ticket_number")),
    )
    op.create_table(
        "service_points",
        _id(),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_points")),
        sa.UniqueConstraint("code", name=op.f("uq_service_points_code")),
    )
    op.create_table(
        "loans",
        _id(),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("external_item", sa.Text(), nullable=True),
        sa.Column("reader_id", sa.Integer(), nullable=True),
        sa.Column("service_point_id", sa.Integer(), nullable=False),
        sa.Column("partner_library", sa.Text(), nullable=True),
        sa.Column("ill_direction", sa.String(length=8), nullable=True),
        sa.Column("loaned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("renewals", sa.Integer(), nullable=False),
        sa.Column("loaned_by", sa.String(length=128), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_on", sa.Date(), nullable=True),
        sa.Column("returned_by", sa.String(length=128), nullable=True),
        sa.Column("settlement", sa.String(length=16), nullable=True),
        sa.Column("compensation_minor", sa.BigInteger(), nullable=True),
        sa.Column("settlement_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_loans_item_id_items")),
        sa.ForeignKeyConstraint(
            ["reader_id"], ["readers.id"], name=op.f("fk_loans_reader_id_readers")
        ),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["service_points.id"],
            name=op.f("fk_loans_service_point_id_service_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
    )
    op.create_index(op.f("ix_loans_item_id"), "loans", ["item_id"], unique=False)
    op.create_index(op.f("ix_loans_reader_id"), "loans", ["reader_id"], unique=False)
    op.create_index(op.f("ix_loans_service_point_id"), "loans", ["service_point_id"], unique=False)
    # An item is never on two open loans: enforced by the database, not only by the code.
    op.create_index(
        "uq_loans_open_item",
        "loans",
        ["item_id"],
        unique=True,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_loans_open_due",
        "loans",
        ["due_on"],
        unique=False,
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_table(
        "debt_steps",
        _id(),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("step_days", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_debt_steps_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debt_steps")),
        sa.UniqueConstraint("loan_id", "kind", "step_days", name="uq_debt_steps_loan_kind_step"),
    )
    op.create_index(op.f("ix_debt_steps_loan_id"), "debt_steps", ["loan_id"], unique=False)
    op.create_table(
        "holds",
        _id(),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"], ["bib_records.id"], name=op.f("fk_holds_record_id_bib_records")
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"], ["readers.id"], name=op.f("fk_holds_reader_id_readers")
        ),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_holds_item_id_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    op.create_index(op.f("ix_holds_record_id"), "holds", ["record_id"], unique=False)
    op.create_index(op.f("ix_holds_reader_id"), "holds", ["reader_id"], unique=False)
    op.create_index(op.f("ix_holds_status"), "holds", ["status"], unique=False)
    op.create_index(op.f("ix_holds_item_id"), "holds", ["item_id"], unique=False)
    op.create_table(
        "item_circulation",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("reading_room_only", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_circulation_item_id_items")
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_circulation")),
    )
    op.create_table(
        "gate_events",
        _id(),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("gate", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_gate_events_item_id_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_events")),
    )
    op.create_index(op.f("ix_gate_events_item_id"), "gate_events", ["item_id"], unique=False)
    op.create_index(op.f("ix_gate_events_at"), "gate_events", ["at"], unique=False)
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_days")),
    )
    op.create_table(
        "deposit_recipients",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_kk", sa.Text(), nullable=False),
        sa.Column("name_ru", sa.Text(), nullable=False),
        sa.Column("forms", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("is_this_library", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_deposit_recipients")),
    )
    op.create_table(
        "publications",
        _id(),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("publisher", sa.Text(), nullable=False),
        sa.Column("publisher_email", sa.String(length=254), nullable=True),
        sa.Column("publisher_address", sa.Text(), nullable=True),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("first_printed_on", sa.Date(), nullable=False),
        sa.Column("isbn", sa.String(length=32), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["bib_records.id"], name=op.f("fk_publications_record_id_bib_records")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publications")),
    )
    op.create_index(op.f("ix_publications_publisher"), "publications", ["publisher"], unique=False)
    op.create_table(
        "deposit_obligations",
        _id(),
        sa.Column("publication_id", sa.Integer(), nullable=False),
        sa.Column("recipient_code", sa.String(length=32), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("due_reason", sa.Text(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publications.id"],
            name=op.f("fk_deposit_obligations_publication_id_publications"),
        ),
        sa.ForeignKeyConstraint(
            ["recipient_code"],
            ["deposit_recipients.code"],
            name=op.f("fk_deposit_obligations_recipient_code_deposit_recipients"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_deposit_obligations_item_id_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deposit_obligations")),
        sa.UniqueConstraint(
            "publication_id", "recipient_code", name="uq_deposit_obligations_pub_recipient"
        ),
    )
    op.create_index(
        op.f("ix_deposit_obligations_publication_id"),
        "deposit_obligations",
        ["publication_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_deposit_obligations_due_on"), "deposit_obligations", ["due_on"], unique=False
    )
    op.create_table(
        "deposit_claims",
        _id(),
        sa.Column("obligation_id", sa.Integer(), nullable=False),
        sa.Column("written_on", sa.Date(), nullable=False),
        sa.Column("language", sa.String(length=4), nullable=False),
        sa.Column("html_path", sa.Text(), nullable=False),
        sa.Column("pdf_path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["obligation_id"],
            ["deposit_obligations.id"],
            name=op.f("fk_deposit_claims_obligation_id_deposit_obligations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deposit_claims")),
    )
    op.create_index(
        op.f("ix_deposit_claims_obligation_id"), "deposit_claims", ["obligation_id"], unique=False
    )

    # R7: the recipients named by the rule; the library can add, rename or deactivate them.
    op.bulk_insert(
        sa.table(
            "deposit_recipients",
            sa.column("code", sa.String),
            sa.column("name_kk", sa.String),
            sa.column("name_ru", sa.String),
            sa.column("forms", sa.String),
            sa.column("active", sa.Boolean),
            sa.column("is_this_library", sa.Boolean),
        ),
        [
            {
                "code": "book_chamber",
                "name_kk": "Ұлттық мемлекеттік кітап палатасы",
                "name_ru": "Национальная государственная книжная палата",
                "forms": "paper,electronic",
                "active": True,
                "is_this_library": False,
            },
            {
                "code": "nlrk",
                "name_kk": "Қазақстан Республикасының Ұлттық кітапханасы",
                "name_ru": "Национальная библиотека Республики Казахстан",
                "forms": "paper",
                "active": True,
                "is_this_library": False,
            },
            {
                "code": "nabrk",
                "name_kk": "Қазақстан Республикасының Ұлттық академиялық кітапханасы",
                "name_ru": "Национальная академическая библиотека Республики Казахстан",
                "forms": "paper",
                "active": True,
                "is_this_library": False,
            },
        ],
    )
    _triggers()


def _triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION qor_loan_closed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{MSG_LOAN_CLOSED} (loan %)', OLD.id; END $$;
            """
        )
        op.execute(
            "CREATE TRIGGER loans_closed_final BEFORE UPDATE ON loans FOR EACH ROW "
            "WHEN (OLD.returned_at IS NOT NULL) EXECUTE FUNCTION qor_loan_closed()"
        )
        for table in NEVER_DELETED:
            op.execute(
                f"CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION qor_refuse_delete()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_never_truncated BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION qor_refuse_delete()"
            )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION qor_refuse_update()"
            )
        return
    op.execute(
        "CREATE TRIGGER loans_closed_final BEFORE UPDATE ON loans "
        "WHEN OLD.returned_at IS NOT NULL "
        f"BEGIN SELECT RAISE(ABORT, '{MSG_LOAN_CLOSED}'); END"
    )
    for table in NEVER_DELETED:
        op.execute(
            f"CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'QOR-R3: rows of the fund register are never deleted'); END"
        )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'QOR-APPEND-ONLY: this table is append-only'); END"
        )


def downgrade() -> None:
    # R3–R4: loans, debts and deposit records are records of the fund's use; no way back.
    raise RuntimeError("the circulation schema is never downgraded (R3–R4: nothing is deleted)")
