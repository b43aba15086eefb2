"""file state cache

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 06:02:00.232517
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_state",
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=250), nullable=False),
        sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("host", "path"),
    )


def downgrade() -> None:
    op.drop_table("file_state")
