"""MLflow's client: experiments can be deleted and restored and carry tags; MLflow 3's logged
models; registered models and versions carry MLflow's tags, source and description

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 06:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiment") as batch:
        batch.add_column(sa.Column("deleted_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("tags", sa.Text(), nullable=True))
    with op.batch_alter_table("registered_model") as batch:
        batch.add_column(sa.Column("tags", sa.Text(), nullable=True))
    with op.batch_alter_table("model_version") as batch:
        batch.add_column(sa.Column("source", sa.Text(), nullable=True))
        batch.add_column(sa.Column("mlflow_model_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("tags", sa.Text(), nullable=True))
    op.create_table(
        "mlflow_logged_model",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("experiment_id", sa.Integer(), sa.ForeignKey("experiment.id"), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("model_type", sa.String(length=250), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_mlflow_logged_model_experiment", "mlflow_logged_model", ["experiment_id", "name"])
    op.create_index("ix_mlflow_logged_model_run_id", "mlflow_logged_model", ["run_id"])
    op.create_table(
        "mlflow_logged_model_file",
        sa.Column("model_id", sa.String(length=40), sa.ForeignKey("mlflow_logged_model.id"), primary_key=True),
        sa.Column("path", sa.String(length=1000), primary_key=True),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mlflow_logged_model_file")
    op.drop_table("mlflow_logged_model")
    with op.batch_alter_table("model_version") as batch:
        for column in ("tags", "description", "mlflow_model_id", "source"):
            batch.drop_column(column)
    with op.batch_alter_table("registered_model") as batch:
        batch.drop_column("tags")
    with op.batch_alter_table("experiment") as batch:
        batch.drop_column("tags")
        batch.drop_column("deleted_at")
