"""Recommender runs with each customer's recommended products; each contact's own offer and why; uplift targeting

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 17:02:19.823667
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recommender_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("split", sa.Date(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("tested", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommender_runs")),
    )
    op.create_table(
        "recommendations",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_recommendations_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_recommendations_product_id_products"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["recommender_runs.id"],
            name=op.f("fk_recommendations_run_id_recommender_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "customer_id", "rank", name=op.f("pk_recommendations")),
    )
    with op.batch_alter_table("recommendations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recommendations_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "recommended_products",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("popular_rank", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_recommended_products_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["recommender_runs.id"],
            name=op.f("fk_recommended_products_run_id_recommender_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "product_id", name=op.f("pk_recommended_products")),
    )
    with op.batch_alter_table("campaign_contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("offer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch_op.add_column(sa.Column("offer_reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_campaign_contacts_offer_id_offers"), "offers", ["offer_id"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("campaign_plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("best_offer", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("uplift_model", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("contact_cost_minor", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_plans", schema=None) as batch_op:
        batch_op.drop_column("contact_cost_minor")
        batch_op.drop_column("uplift_model")
        batch_op.drop_column("best_offer")

    with op.batch_alter_table("campaign_contacts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_campaign_contacts_offer_id_offers"), type_="foreignkey")
        batch_op.drop_column("offer_reason")
        batch_op.drop_column("offer_id")

    op.drop_table("recommended_products")
    with op.batch_alter_table("recommendations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recommendations_customer_id"))

    op.drop_table("recommendations")
    op.drop_table("recommender_runs")
