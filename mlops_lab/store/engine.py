"""The database under every domain store: engine, schema and migrations, and transactions.

    db = Database("sqlite:///runs.db")
    with db.writing() as conn:      # one write transaction (SQLite takes its lock up front)
        ...
    with db.reading() as conn:      # one read transaction
        ...

Every domain store (runs, registry, drift reports, features, file state, events) opens one of
these per public method and passes the connection to its helpers.
"""

from __future__ import annotations

import contextvars
import functools
import operator
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event, func
from sqlalchemy.exc import DatabaseError
from sqlmodel import SQLModel

from ..config import redact
from ..errors import UnavailableError
from . import models  # noqa: F401  (registers every table on SQLModel.metadata)

# The Alembic revision the models describe; tests check it equals the migrations' head.
SCHEMA_REVISION = "0009"

BUSY_TIMEOUT_MS = 60_000  # how long a SQLite writer waits for another to finish
CHECKPOINT_EVERY_S = 1.0  # how often a writing process copies SQLite's WAL back into the database


class StoreError(UnavailableError):
    """The store cannot be opened or used; the message says which store and why."""


class DatabaseBusy(Exception):
    """Another connection holds the SQLite database's write lock, and the caller chose not to wait
    (``not_waiting``): nothing was written."""


_NOT_WAITING = contextvars.ContextVar("mlops_lab_not_waiting", default=False)


@contextmanager
def not_waiting():
    """Inside, a write transaction on SQLite that would wait for another writer raises
    ``DatabaseBusy`` at once instead: for a short write on an event loop, which must not block,
    and can go to a thread when the database is busy.  (PostgreSQL's writers do not wait for each
    other's transactions to begin; there it changes nothing.)"""
    token = _NOT_WAITING.set(True)
    try:
        yield
    finally:
        _NOT_WAITING.reset(token)


class Database:
    """One database, SQLite (WAL) or PostgreSQL.  Thread-safe."""

    def __init__(self, db_url: str):
        self.url = db_url
        self.shown_url = redact(db_url)  # what messages say: no password
        self.dialect = sa.engine.make_url(db_url).get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported database {redact(db_url)!r}: use sqlite:///PATH or postgresql+psycopg://…")
        self.engine = self._make_engine(db_url)
        self._checkpointing = threading.Lock()
        self._checkpointed_at = 0.0
        self._ensure_schema()

    def _make_engine(self, db_url: str) -> sa.Engine:
        if self.dialect == "sqlite":
            path = sa.engine.make_url(db_url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(db_url, connect_args={"timeout": 60, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_connection, _record):
                dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA cache_size=-65536")  # 64 MB of pages per connection, not 2 MB
                cursor.execute("PRAGMA wal_autocheckpoint=0")  # a thread of ours does it: ``_checkpoint_soon``
                cursor.close()

            @event.listens_for(engine, "begin")
            def _on_begin(connection):
                # A writer takes the lock up front: a deferred transaction that later writes can
                # fail at once with "database is locked" instead of waiting its turn.
                write = connection.get_execution_options().get("write", False)
                if not (write and _NOT_WAITING.get()):
                    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
                    return
                # Only taking the lock waits in WAL mode (readers never block, a commit appends).
                driver = connection.connection.driver_connection
                driver.execute("PRAGMA busy_timeout=0")
                try:
                    driver.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    raise DatabaseBusy(str(exc)) from exc
                finally:
                    driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

            return engine
        if db_url.startswith("postgresql://"):
            db_url = "postgresql+psycopg://" + db_url.removeprefix("postgresql://")
        return sa.create_engine(db_url, pool_pre_ping=True, pool_size=5, max_overflow=5)

    # ---- transactions ------------------------------------------------------------------------

    @contextmanager
    def writing(self):
        """A connection in a write transaction (``with db.writing() as conn``): all of it lands or none."""
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn
        if self.dialect == "sqlite" and time.monotonic() - self._checkpointed_at > CHECKPOINT_EVERY_S:
            self._checkpoint_soon()

    def _checkpoint_soon(self) -> None:
        """Copy the WAL's new pages into the database file, in a thread.  SQLite's own checkpoint
        runs inside the commit that takes the WAL past 1,000 pages, which then copies them and syncs
        the file (4 ms for ~670 pages where it was measured; far longer on a slow or network disk):
        the lab's event loop, where one-value writes run (``not_waiting``), must not wait for that."""
        if not self._checkpointing.acquire(blocking=False):
            return  # one is running
        self._checkpointed_at = time.monotonic()

        def checkpoint() -> None:
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")  # never waits for a reader or writer
            except sa.exc.SQLAlchemyError:
                pass  # the next write tries again; meanwhile the WAL serves reads as well
            finally:
                self._checkpointing.release()

        threading.Thread(target=checkpoint, name="mlops_lab-checkpoint", daemon=True).start()

    @contextmanager
    def reading(self):
        """A connection in a read transaction: what it reads is one consistent snapshot."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # ---- schema ------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        try:
            with self.writing() as conn:
                if self.dialect == "postgresql":
                    # Two processes opening a fresh database must not both create the tables.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7245001)"))
                tables = set(sa.inspect(conn).get_table_names())
                if "alembic_version" in tables:
                    revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
                    if revision == SCHEMA_REVISION:
                        return
                    from .migrations import known_revisions

                    if revision not in known_revisions():
                        raise StoreError(
                            f"{self.shown_url} has schema revision {revision!r}, which this mlops_lab (schema "
                            f"{SCHEMA_REVISION}) does not know: it was written by a newer version; upgrade "
                            "mlops_lab to use it (nothing was changed)"
                        )
                elif not tables:
                    SQLModel.metadata.create_all(conn)
                    conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
                    conn.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": SCHEMA_REVISION})
                    return
                else:
                    raise StoreError(
                        f"{self.shown_url} holds tables of another application ({', '.join(sorted(tables)[:5])}); "
                        "mlops_lab will not write into it: point MLOPS_LAB_DB_URL at a new or mlops_lab database"
                    )
            self._upgrade(revision)
        except DatabaseError as exc:
            raise StoreError(
                f"cannot open store {self.shown_url}: {exc.orig or exc}. Is it a database file, and not corrupt?"
            ) from exc

    def _upgrade(self, revision: str | None) -> None:
        from . import migrations

        migrations.upgrade(self.engine, from_revision=revision)

    # ---- statements that differ by engine -----------------------------------------------------

    def insert(self, model):
        """An INSERT that can say ON CONFLICT (each engine has its own)."""
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(model.__table__)

    def json_object(self, *pairs):
        """``{k1: v1, …}`` from alternating keys and values; the function differs by engine."""
        return func.json_object(*pairs) if self.dialect == "sqlite" else func.json_build_object(*pairs)

    def json_group(self, key, value):
        """An aggregate building ``{key: value}`` from rows; the function differs by engine."""
        if self.dialect == "sqlite":
            if isinstance(value.type, sa.Float):
                # SQLite writes infinity as a bare Inf, not JSON, and other numbers to 15 digits, which
                # changes them: 21 digits of SQLite's own printf give every double back exactly.
                value = sa.case(
                    (value > sys.float_info.max, "Infinity"),
                    (value < -sys.float_info.max, "-Infinity"),
                    (value.is_(None), None),
                    else_=func.json(func.printf("%!.20e", value)),
                )
            return func.json_group_object(key, value)
        return func.json_object_agg(key, value)

    def compiled(self, statement, values: dict | None = None) -> tuple[str, tuple | dict]:
        """SQL text and parameters in the driver's own form, to run without SQLAlchemy's per-row work;
        ``values`` fill the statement's named ``bindparam``s."""
        compiled = statement.compile(dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True})
        params = {**compiled.params, **(values or {})}
        if compiled.positiontup is not None:  # SQLite's "?" placeholders take a tuple in order
            return str(compiled), tuple(params[name] for name in compiled.positiontup)
        return str(compiled), params

    def insert_many(self, conn, model, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """Insert ``rows`` (tuples in the order of ``columns``) through the driver's own executemany,
        in ``conn``'s transaction: for many thousands of plain rows (a loop's metric points),
        SQLAlchemy's per-row work costs more than the write itself."""
        sql, to_parameters = self._insert_sql(model.__table__, columns)
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(sql, rows if to_parameters is None else [to_parameters(row) for row in rows])
        finally:
            cursor.close()

    @functools.lru_cache(maxsize=64)  # noqa: B019 (a Database lives as long as its process)
    def _insert_sql(self, table, columns: tuple[str, ...]):
        """The INSERT's SQL for ``columns``, compiled once (compiling costs more than a small insert),
        and how a row becomes the driver's parameters: None when the tuple goes as it is."""
        compiled = sa.insert(table).values({c: sa.bindparam(c) for c in columns}).compile(self.engine)
        if compiled.positiontup is None:  # named placeholders (psycopg) take dicts
            return str(compiled), lambda row: dict(zip(columns, row))
        if list(compiled.positiontup) != list(columns):  # "?" placeholders take the statement's order
            return str(compiled), operator.itemgetter(*[columns.index(name) for name in compiled.positiontup])
        return str(compiled), None

    def raw_rows(self, sql: str, parameters: tuple | dict) -> list[tuple]:
        """Plain tuples straight from the driver: for results of many thousands of rows."""
        with self.engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            try:
                cursor.execute(sql, parameters)
                return cursor.fetchall()
            finally:
                cursor.close()

    def dispose(self) -> None:
        self.engine.dispose()
