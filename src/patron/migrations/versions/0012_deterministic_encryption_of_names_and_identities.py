"""names and identity values become text: they are written as AES-SIV tokens when a key is set (longer than the
values), so they stay matchable and unique while encrypted

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 18:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = {"display_name": 200, "first_name": 100, "last_name": 100}


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for column, length in NAMES.items():
            batch_op.alter_column(
                column, existing_type=sa.VARCHAR(length=length), type_=sa.Text(), existing_nullable=True
            )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.VARCHAR(length=320), type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.Text(), type_=sa.VARCHAR(length=320), existing_nullable=False)
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for column, length in NAMES.items():
            batch_op.alter_column(
                column, existing_type=sa.Text(), type_=sa.VARCHAR(length=length), existing_nullable=True
            )
