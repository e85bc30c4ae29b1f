"""Each segment's member count at every evaluation (the trend on the segments page).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 01:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segment_sizes",
        sa.Column("segment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_segment_sizes_segment_id_segments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("segment_id", "evaluated_at", name=op.f("pk_segment_sizes")),
    )


def downgrade() -> None:
    op.drop_table("segment_sizes")
