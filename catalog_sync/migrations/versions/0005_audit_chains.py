"""The audit log becomes several hash chains, so appenders no longer queue for one head row.

Every entry gets the chain it belongs to and its position in that chain; ``audit_head`` holds
one row per chain. Entries written before this revision stay exactly as they were — the log is
append-only, so they are not rewritten — and form chain 0, whose head is the old head row; chain
0 is closed and verifies as before. New entries go to chains 1..``CHAINS``. On PostgreSQL the
global sequence number of new entries comes from the ``audit_seq`` sequence (no lock).

Revision ID: 0005_audit_chains
Revises: 0004_item_shelf_mark
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_audit_chains"
down_revision = "0004_item_shelf_mark"
branch_labels = None
depends_on = None

# As catalog_sync.audit.CHAINS when this revision was written (a later change of that constant
# needs a revision of its own that adds head rows).
CHAINS = 32
GENESIS = "0" * 64

# Plain ADD COLUMN, not a batch copy: rebuilding ``audit_log`` on SQLite would drop the triggers
# that keep it append-only. Old rows keep chain 0 and no chain position (their seq is it).


def upgrade() -> None:
    op.add_column(
        "audit_log", sa.Column("chain", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("audit_log", sa.Column("chain_seq", sa.BigInteger(), nullable=True))
    op.create_index("ix_audit_log_chain_seq", "audit_log", ["chain", "seq"], unique=True)
    op.create_index(
        "uq_audit_log_chain_position", "audit_log", ["chain", "chain_seq"], unique=True
    )
    op.execute("UPDATE audit_head SET id = 0 WHERE id = 1")
    op.bulk_insert(
        sa.table(
            "audit_head",
            sa.column("id", sa.Integer),
            sa.column("last_seq", sa.BigInteger),
            sa.column("last_hash", sa.String),
        ),
        [{"id": c, "last_seq": 0, "last_hash": GENESIS} for c in range(1, CHAINS + 1)],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE audit_seq AS bigint")
        op.execute(
            "SELECT setval('audit_seq', (SELECT coalesce(max(seq), 0) + 1 FROM audit_log), false)"
        )


def downgrade() -> None:
    # Only a log that never left chain 0 can go back to one chain.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE audit_seq")
    op.execute("DELETE FROM audit_head WHERE id > 0")
    op.execute("UPDATE audit_head SET id = 1 WHERE id = 0")
    op.drop_index("uq_audit_log_chain_position", table_name="audit_log")
    op.drop_index("ix_audit_log_chain_seq", table_name="audit_log")
    op.drop_column("audit_log", "chain_seq")
    op.drop_column("audit_log", "chain")
