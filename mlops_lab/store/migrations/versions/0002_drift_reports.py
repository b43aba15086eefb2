"""drift reports

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 04:57:05.925570
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_report",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("user", sqlmodel.sql.sqltypes.AutoString(length=250), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("current", sa.Text(), nullable=False),
        sa.Column("share_drifted", sa.Float(), nullable=False),
        sa.Column("dataset_drift", sa.Boolean(), nullable=False),
        sa.Column("drifted_columns", sa.Text(), nullable=False),
        sa.Column("blob_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("model_name", sqlmodel.sql.sqltypes.AutoString(length=250), nullable=True),
        sa.Column("model_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("deployment", sqlmodel.sql.sqltypes.AutoString(length=250), nullable=True),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("drift_report", schema=None) as batch_op:
        batch_op.create_index("ix_drift_report_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("drift_report", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_report_created")

    op.drop_table("drift_report")
