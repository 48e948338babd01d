"""Fixity audit schedules per storage location: each store URI may have its own deep-check
interval (Archivematica has one for the whole depository). A NULL interval: the location
follows the setting again (register rows are never deleted).

Revision ID: 0006_audit_schedules
Revises: 0005_audit_chains
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_audit_schedules"
down_revision = "0005_audit_chains"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_schedules",
        sa.Column("store_uri", sa.String(length=1024), nullable=False),
        sa.Column("deep_every_days", sa.Integer(), nullable=True),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("deep_every_days IS NULL OR deep_every_days BETWEEN 1 AND 3650",
                           name=op.f("ck_audit_schedules_days")),
        sa.PrimaryKeyConstraint("store_uri", name=op.f("pk_audit_schedules")),
    )


def downgrade() -> None:
    op.drop_table("audit_schedules")
