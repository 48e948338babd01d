"""The register schema from an empty database, with the triggers that enforce R3–R4 and R14.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 10:51:03.146523
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Tables whose rows are never deleted (R3–R4: the fund is state property; nothing is hard-deleted).
NEVER_DELETED = (
    "bib_records",
    "receipt_batches",
    "write_off_acts",
    "items",
    "item_actions",
    "digital_copies",
    "copy_events",
    "stocktakes",
    "stocktake_scans",
    "issued_inventory_numbers",
    "audit_log",
)
# Tables whose rows are never updated either.
APPEND_ONLY = ("copy_events", "issued_inventory_numbers", "audit_log", "stocktake_scans")

# Messages start with a stable tag: catalog_sync.register translates them into domain errors.
MSG_DELETE = "QOR-R3: rows of the fund register are never deleted"
MSG_APPEND_ONLY = "QOR-APPEND-ONLY: this table is append-only"
MSG_INVENTORY = "QOR-R14: an inventory number is immutable"
MSG_WRITTEN_OFF = "QOR-R3: a written-off item cannot change status or act"

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_key", sa.String(length=128), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_entity_key"), "audit_log", ["entity_key"], unique=False)
    op.create_table(
        "bib_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("control_number", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("publisher", sa.Text(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("isbn", sa.String(length=32), nullable=True),
        sa.Column("issn", sa.String(length=16), nullable=True),
        sa.Column("material_type", sa.String(length=32), nullable=False),
        sa.Column("legal_deposit", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bib_records")),
        sa.UniqueConstraint("control_number", name=op.f("uq_bib_records_control_number")),
    )
    op.create_index(op.f("ix_bib_records_isbn"), "bib_records", ["isbn"], unique=False)
    op.create_index(op.f("ix_bib_records_issn"), "bib_records", ["issn"], unique=False)
    op.create_table(
        "inventory_sequences",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("pattern", sa.String(length=128), nullable=False),
        sa.Column("next_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_inventory_sequences")),
    )
    op.create_table(
        "issued_inventory_numbers",
        sa.Column("inventory_number", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("inventory_number", name=op.f("pk_issued_inventory_numbers")),
    )
    op.create_table(
        "receipt_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("act_number", sa.String(length=64), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("supplier", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt_batches")),
        sa.UniqueConstraint("act_number", name=op.f("uq_receipt_batches_act_number")),
    )
    op.create_index(
        op.f("ix_receipt_batches_received_on"), "receipt_batches", ["received_on"], unique=False
    )
    op.create_table(
        "register_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_register_settings")),
    )
    op.create_table(
        "stocktakes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("responsible", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=128), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stocktakes")),
    )
    op.create_table(
        "write_off_acts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("act_number", sa.String(length=64), nullable=False),
        sa.Column("act_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_off_acts")),
        sa.UniqueConstraint("act_number", name=op.f("uq_write_off_acts_act_number")),
    )
    op.create_index(
        op.f("ix_write_off_acts_act_date"), "write_off_acts", ["act_date"], unique=False
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inventory_number", sa.String(length=64), nullable=False),
        sa.Column("sort_key", sa.String(length=512), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("receipt_batch_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("price_minor", sa.BigInteger(), nullable=True),
        sa.Column("barcode", sa.String(length=64), nullable=True),
        sa.Column("rfid", sa.String(length=64), nullable=True),
        sa.Column("location", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("value_scientific", sa.Boolean(), nullable=False),
        sa.Column("value_historical", sa.Boolean(), nullable=False),
        sa.Column("value_artistic", sa.Boolean(), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=True),
        sa.Column("write_off_act_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["receipt_batch_id"],
            ["receipt_batches.id"],
            name=op.f("fk_items_receipt_batch_id_receipt_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["bib_records.id"], name=op.f("fk_items_record_id_bib_records")
        ),
        sa.ForeignKeyConstraint(
            ["write_off_act_id"],
            ["write_off_acts.id"],
            name=op.f("fk_items_write_off_act_id_write_off_acts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("barcode", name=op.f("uq_items_barcode")),
        sa.UniqueConstraint("inventory_number", name=op.f("uq_items_inventory_number")),
        sa.UniqueConstraint("rfid", name=op.f("uq_items_rfid")),
    )
    op.create_index(op.f("ix_items_location"), "items", ["location"], unique=False)
    op.create_index(op.f("ix_items_receipt_batch_id"), "items", ["receipt_batch_id"], unique=False)
    op.create_index(op.f("ix_items_record_id"), "items", ["record_id"], unique=False)
    op.create_index(op.f("ix_items_sort_key"), "items", ["sort_key"], unique=False)
    op.create_index(op.f("ix_items_status"), "items", ["status"], unique=False)
    op.create_index(op.f("ix_items_write_off_act_id"), "items", ["write_off_act_id"], unique=False)
    op.create_table(
        "stocktake_scans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("stocktake_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=128), nullable=True),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["stocktake_id"],
            ["stocktakes.id"],
            name=op.f("fk_stocktake_scans_stocktake_id_stocktakes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stocktake_scans")),
    )
    op.create_index(
        "ix_stocktake_scans_stocktake_code",
        "stocktake_scans",
        ["stocktake_id", "code"],
        unique=False,
    )
    op.create_table(
        "digital_copies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("bag_id", sa.String(length=128), nullable=False),
        sa.Column("store_uri", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kek_id", sa.String(length=128), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("pdfa_verdict", sa.String(length=64), nullable=False),
        sa.Column("ocr_confidence", sa.Float(), nullable=True),
        sa.Column("payload_bytes", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=False),
        sa.Column("batch_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_digital_copies_item_id_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digital_copies")),
        sa.UniqueConstraint("bag_id", name=op.f("uq_digital_copies_bag_id")),
        sa.UniqueConstraint("item_id", "version", name="uq_digital_copies_item_version"),
    )
    op.create_index(op.f("ix_digital_copies_item_id"), "digital_copies", ["item_id"], unique=False)
    op.create_index(
        op.f("ix_digital_copies_batch_fingerprint"),
        "digital_copies",
        ["batch_fingerprint"],
        unique=False,
    )
    op.create_table(
        "item_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_actions_item_id_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_actions")),
    )
    op.create_index(op.f("ix_item_actions_item_id"), "item_actions", ["item_id"], unique=False)
    op.create_table(
        "copy_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("copy_id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["copy_id"], ["digital_copies.id"], name=op.f("fk_copy_events_copy_id_digital_copies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copy_events")),
    )
    op.create_index(op.f("ix_copy_events_copy_id"), "copy_events", ["copy_id"], unique=False)

    _triggers()
    op.bulk_insert(
        sa.table(
            "inventory_sequences",
            sa.column("name", sa.String),
            sa.column("pattern", sa.String),
            sa.column("next_value", sa.BigInteger),
        ),
        [{"name": "default", "pattern": "{number:07d}", "next_value": 1}],
    )
    op.bulk_insert(
        sa.table(
            "audit_head",
            sa.column("id", sa.Integer),
            sa.column("last_seq", sa.BigInteger),
            sa.column("last_hash", sa.String),
        ),
        [{"id": 1, "last_seq": 0, "last_hash": "0" * 64}],
    )
    op.bulk_insert(
        sa.table("register_settings", sa.column("key", sa.String), sa.column("value", sa.String)),
        [{"key": "national_library", "value": "false"}, {"key": "library_name", "value": ""}],
    )


def _triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    for table in NEVER_DELETED:
        op.execute(
            f"CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{MSG_DELETE}'); END"
        )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{MSG_APPEND_ONLY}'); END"
        )
    # R14: the inventory number can never be changed or corrected.
    op.execute(
        "CREATE TRIGGER items_inventory_number_immutable "
        "BEFORE UPDATE OF inventory_number ON items "
        "WHEN NEW.inventory_number IS NOT OLD.inventory_number "
        f"BEGIN SELECT RAISE(ABORT, '{MSG_INVENTORY}'); END"
    )
    op.execute(
        "CREATE TRIGGER items_written_off_final BEFORE UPDATE ON items "
        "WHEN OLD.status = 'written_off' AND (NEW.status IS NOT OLD.status "
        "OR NEW.write_off_act_id IS NOT OLD.write_off_act_id) "
        f"BEGIN SELECT RAISE(ABORT, '{MSG_WRITTEN_OFF}'); END"
    )
    # R14: every number given is recorded for ever; giving it again violates the primary key.
    op.execute(
        "CREATE TRIGGER items_issue_number AFTER INSERT ON items "
        "BEGIN INSERT INTO issued_inventory_numbers (inventory_number) "
        "VALUES (NEW.inventory_number); END"
    )


def _postgresql_triggers() -> None:
    op.execute(
        f"""
        CREATE FUNCTION qor_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{MSG_DELETE} (table %)', TG_TABLE_NAME; END $$;
        CREATE FUNCTION qor_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{MSG_APPEND_ONLY} (table %)', TG_TABLE_NAME; END $$;
        CREATE FUNCTION qor_items_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.inventory_number IS DISTINCT FROM OLD.inventory_number THEN
            RAISE EXCEPTION '{MSG_INVENTORY} (%)', OLD.inventory_number;
          END IF;
          IF OLD.status = 'written_off' AND (NEW.status IS DISTINCT FROM OLD.status
              OR NEW.write_off_act_id IS DISTINCT FROM OLD.write_off_act_id) THEN
            RAISE EXCEPTION '{MSG_WRITTEN_OFF} (%)', OLD.inventory_number;
          END IF;
          RETURN NEW;
        END $$;
        CREATE FUNCTION qor_items_issue_number() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO issued_inventory_numbers (inventory_number) VALUES (NEW.inventory_number);
          RETURN NEW;
        END $$;
        """  # noqa: S608 - constant messages of this module, no input
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
    op.execute(
        "CREATE TRIGGER items_guard BEFORE UPDATE ON items "
        "FOR EACH ROW EXECUTE FUNCTION qor_items_guard()"
    )
    op.execute(
        "CREATE TRIGGER items_issue_number AFTER INSERT ON items "
        "FOR EACH ROW EXECUTE FUNCTION qor_items_issue_number()"
    )


def downgrade() -> None:
    # R3–R4: dropping the register would delete the fund's records; there is no way back.
    raise RuntimeError("the fund register is never downgraded (R3–R4: nothing is deleted)")
