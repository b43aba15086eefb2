"""Alembic environment: runs on the connection the store hands over (never opens its own)."""

from alembic import context
from sqlmodel import SQLModel

from mlops_lab.store import models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("mlops_lab migrations run through mlops_lab.store, which passes a connection")

context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
context.run_migrations()
