"""the team server: users, hashed tokens, permissions, applied write batches, deployments

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "team_user",
        sa.Column("name", sa.String(length=250), primary_key=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=250), nullable=False),
        sa.Column("note", sa.String(length=250), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_api_token_hash", "api_token", ["hash"], unique=True)
    op.create_index("ix_api_token_user", "api_token", ["user"])
    op.create_table(
        "permission",
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("name", sa.String(length=250), primary_key=True),
        sa.Column("grantee", sa.String(length=250), primary_key=True),
        sa.Column("level", sa.String(length=8), nullable=False),
    )
    op.create_table(
        "applied_batch",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("applied_at", sa.BigInteger(), nullable=False),
    )

    op.create_table(
        "deployment",
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("model", sa.String(length=500), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=250), nullable=False),
        sa.Column("host", sa.String(length=250), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=250), nullable=False),
    )


def downgrade() -> None:
    for table in ("deployment", "applied_batch", "permission", "api_token", "team_user"):
        op.drop_table(table)
