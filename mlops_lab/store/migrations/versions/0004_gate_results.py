"""gate results

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 05:47:15.320182
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_result",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("gate", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("user", sqlmodel.sql.sqltypes.AutoString(length=250), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"],
            ["registered_model.name"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("gate_result", schema=None) as batch_op:
        batch_op.create_index("ix_gate_result_version", ["name", "version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gate_result", schema=None) as batch_op:
        batch_op.drop_index("ix_gate_result_version")

    op.drop_table("gate_result")
