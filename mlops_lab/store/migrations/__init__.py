"""Alembic migrations of the run store.  ``Store`` runs them when a database is behind."""

from pathlib import Path

import sqlalchemy as sa


def alembic_config(connection=None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    """Every revision this version of mlops_lab can upgrade from (the files under versions/)."""
    return {path.name.partition("_")[0] for path in (Path(__file__).parent / "versions").glob("[0-9]*_*.py")}


def upgrade(engine: sa.Engine, from_revision: str | None = None) -> None:
    """Bring a database to the newest schema, in one transaction (PostgreSQL) or a locked one (SQLite)."""
    from alembic import command

    with engine.connect().execution_options(write=True) as connection, connection.begin():
        command.upgrade(alembic_config(connection), "head")
