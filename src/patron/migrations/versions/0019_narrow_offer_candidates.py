"""Offer candidates narrowed for whole-base decisions: keyed by customer and rank (without rowid on SQLite), the
reason's parts that every customer shares moved to one row per offer in ``offer_decisions``.

The old candidates are dropped, not converted: they are derived data, and a customer not decided yet is worked out
live until offers are decided again.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("offer_candidates", schema=None) as batch_op:
        batch_op.drop_index("ix_offer_candidates_customer")
    op.drop_table("offer_candidates")
    op.create_table(
        "offer_candidates",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("offer_id", ID, nullable=True),
        sa.Column("p_accept", sa.Float(), nullable=True),
        sa.Column("expected_value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_offer_candidates_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_candidates_offer_id_offers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("customer_id", "rank", name=op.f("pk_offer_candidates")),
        sqlite_with_rowid=False,
    )  # fmt: skip
    op.create_table(
        "offer_decisions",
        sa.Column("offer_id", ID, nullable=False),
        sa.Column("p_source", sa.Text(), nullable=False),
        sa.Column("margin_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_decisions_offer_id_offers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("offer_id", name=op.f("pk_offer_decisions")),
    )


def downgrade() -> None:
    op.drop_table("offer_decisions")
    op.drop_table("offer_candidates")
    op.create_table(
        "offer_candidates",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("offer_id", ID, nullable=True),
        sa.Column("expected_value", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_offer_candidates_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_offer_candidates_offer_id_offers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_candidates")),
    )  # fmt: skip
    with op.batch_alter_table("offer_candidates", schema=None) as batch_op:
        batch_op.create_index("ix_offer_candidates_customer", ["customer_id", "expected_value"], unique=False)
