"""Items get a shelf mark (шифр хранения · расстановочный шифр), kept apart from the location.

Revision ID: 0004_item_shelf_mark
Revises: 0003_elibrary
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_item_shelf_mark"
down_revision = "0003_elibrary"
branch_labels = None
depends_on = None


# A plain ADD COLUMN, not a batch copy: rebuilding ``items`` on SQLite would drop the triggers
# that keep inventory numbers immutable (R14) and rows undeletable (R3–R4).


def upgrade() -> None:
    op.add_column("items", sa.Column("shelf_mark", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("items", "shelf_mark")
