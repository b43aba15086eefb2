"""The store on both engines: schema, migrations, batches, latest metrics, bad databases, reaping."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import sqlalchemy as sa

from mlops_lab.store import Batch, Database, MetricSeries, NotFoundError, Store, StoreError, now_ms, open_store
from mlops_lab.store.engine import SCHEMA_REVISION
from mlops_lab.store.file_state import HOST
from mlops_lab.store.runs import SqlRunStore


def make_run(
    store: Store, run_id: str = "a" * 32, *, pid: int = 1, host: str = HOST, heartbeat: int | None = None
) -> str:
    experiment = store.runs.get_or_create_experiment("exp", "tester")
    now = now_ms()
    store.runs.write(
        Batch(
            runs=[
                {
                    "id": run_id,
                    "experiment_id": experiment,
                    "name": "r",
                    "status": "RUNNING",
                    "user": "tester",
                    "start_time": now,
                    "host": host,
                    "pid": pid,
                    "heartbeat_at": heartbeat or now,
                }
            ]
        )
    )
    return run_id


def test_schema_matches_migrations_head_and_models(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from mlops_lab.store.migrations import head_revision

    assert head_revision() == SCHEMA_REVISION
    store = open_store(db_url)
    with store.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_migrations_build_the_same_schema_from_empty(db_url):
    """An empty database brought up by Alembic (the upgrade path) equals one made from the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from mlops_lab.store.migrations import upgrade

    engine = sa.create_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_REVISION
    engine.dispose()
    store = Store.sql(Database(db_url))  # opens without touching the schema
    assert store.runs.list_experiments() == []


def test_reopen_keeps_data(db_url):
    store = Store.sql(Database(db_url))
    run_id = make_run(store)
    store.dispose()
    again = Store.sql(Database(db_url))
    assert again.runs.get_run(run_id).info.name == "r"


def test_latest_metric_follows_step_not_arrival(store):
    run_id = make_run(store)
    points = [(5, 0.5), (1, 0.1), (9, 0.9), (3, 0.3)]
    for step, value in points:  # separate batches, out of order
        store.runs.write(Batch(metrics=[{"run_id": run_id, "key": "m", "value": value, "step": step, "timestamp": 1}]))
    record = store.runs.get_run(run_id)
    assert record.metrics == {"m": 0.9}
    history = store.runs.metric_history(run_id, "m")
    assert [s for s, _, _ in history] == [1, 3, 5, 9]
    with store.db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT min_value, max_value, count FROM latest_metric")).one()
    assert tuple(row) == (0.1, 0.9, 4)


def test_one_batch_folds_into_each_metric_s_summary(store):
    """Within one batch: the newest point by step, then timestamp, and of equal ones the last sent;
    min and max over the values (NaN, stored as NULL, counts but is neither)."""
    run_id = make_run(store)
    points = [
        ("a", 2, 5, 0.4),
        ("a", 2, 5, 0.6),
        ("a", 1, 9, 0.1),
        ("b", 0, 1, None),
        ("b", 0, 2, 3.0),
        ("a", 2, 4, 9.0),
    ]
    store.runs.write(
        Batch(metrics=[{"run_id": run_id, "key": k, "value": v, "step": s, "timestamp": t} for k, s, t, v in points])
    )
    assert store.runs.get_run(run_id).metrics == {"a": 0.6, "b": 3.0}
    with store.db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT key, min_value, max_value, count FROM latest_metric ORDER BY key")).all()
    assert [tuple(r) for r in rows] == [("a", 0.1, 9.0, 4), ("b", 3.0, 3.0, 2)]


def test_a_series_is_written_at_once_and_folds_into_the_latest_value(store):
    """A loop's points (MetricSeries) go through the driver's executemany on both engines."""
    run_id = make_run(store)
    store.runs.write(Batch(metrics=[{"run_id": run_id, "key": "loss", "value": 9.0, "step": 0, "timestamp": 1}]))
    store.runs.write(Batch(metric_series=[MetricSeries(run_id, "loss", 2, [1, 2, 3, 4], [0.5, None, math.inf, 0.25])]))
    history = store.runs.metric_history(run_id, "loss")
    assert [s for s, _, _ in history] == [0, 1, 2, 3, 4] and history[3][2] == math.inf
    assert math.isnan(history[2][2]) and history[4][2] == 0.25
    assert store.runs.get_run(run_id).metrics == {"loss": 0.25}  # the highest step
    with store.db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT min_value, max_value, count FROM latest_metric")).one()
    assert tuple(row) == (0.25, math.inf, 5)


def test_nan_and_infinity_round_trip(store):
    run_id = make_run(store)
    store.runs.write(
        Batch(
            metrics=[
                {"run_id": run_id, "key": "nan", "value": None, "step": 0, "timestamp": 1},
                {"run_id": run_id, "key": "inf", "value": math.inf, "step": 0, "timestamp": 1},
                {"run_id": run_id, "key": "ninf", "value": -math.inf, "step": 0, "timestamp": 1},
            ]
        )
    )
    metrics = store.runs.get_run(run_id).metrics
    assert math.isnan(metrics["nan"]) and metrics["inf"] == math.inf and metrics["ninf"] == -math.inf
    assert store.runs.get_run(run_id).to_dict()["metrics"] == {"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity"}


def test_searches_give_every_metric_exactly(store):
    """SQLite writes numbers into JSON with 15 digits; a search must give back the very double stored."""
    run_id = make_run(store)
    values = {"third": 1 / 3, "tiny": 1e-300, "big": 1.7976931348623157e308, "inf": math.inf, "nan": None}
    store.runs.write(
        Batch(metrics=[{"run_id": run_id, "key": k, "value": v, "step": 0, "timestamp": 1} for k, v in values.items()])
    )
    _, _, metrics, _ = store.runs.search_runs(None, f"attributes.run_id = '{run_id}'")
    found = metrics[run_id]
    assert {k: found[k] for k in ("third", "tiny", "big", "inf")} == {
        k: values[k] for k in ("third", "tiny", "big", "inf")
    }
    assert math.isnan(found["nan"])


def test_a_failing_batch_changes_nothing(store):
    run_id = make_run(store)
    store.runs.write(Batch(params=[{"run_id": run_id, "key": "p", "value": "1", "value_num": 1.0}]))
    bad = Batch(
        metrics=[{"run_id": run_id, "key": "m", "value": 1.0, "step": 0, "timestamp": 1}],
        tags=[{"run_id": "f" * 32, "key": "t", "value": "x"}],  # no such run: foreign key fails
    )
    # (a team server refuses the batch before writing: it checks the runs it names)
    with pytest.raises(sa.exc.IntegrityError if isinstance(store.runs, SqlRunStore) else NotFoundError):
        store.runs.write(bad)
    record = store.runs.get_run(run_id)
    assert record.params == {"p": "1"} and record.metrics == {} and record.tags == {}


def test_killed_process_runs_are_marked_on_next_access(store):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    killed = make_run(store, "b" * 32, pid=dead_pid)
    silent = make_run(store, "c" * 32, host="elsewhere", heartbeat=now_ms() - 3600_000)
    alive = make_run(store, "d" * 32, pid=__import__("os").getpid())
    store.runs.reap_stale_runs(force=True)
    assert store.runs.get_run(killed).info.status == "KILLED"
    assert store.runs.get_run(silent).info.status == "KILLED"
    assert store.runs.get_run(alive).info.status == "RUNNING"
    events = store.events.events("run", killed)
    assert events[-1]["payload"]["to"] == "KILLED"


def test_corrupt_sqlite_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "broken.db"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="not corrupt|not a database"):
        Store.sql(Database(f"sqlite:///{path}"))
    assert path.read_bytes() == garbage


def test_foreign_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "other.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(sa.text("INSERT INTO customers VALUES (1, 'ada')"))
    with pytest.raises(StoreError, match="another application.*customers"):
        Store.sql(Database(f"sqlite:///{path}"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM customers")).scalar() == "ada"
        assert sa.inspect(conn).get_table_names() == ["customers"]


def test_unsupported_url_is_a_clear_error():
    with pytest.raises(StoreError, match="unsupported database"):
        Database("mysql://root@localhost/test")


def test_events_are_append_only_history(workspace, tracker):
    with tracker.start_run("r") as run:
        tracker.set_tags({"stage": "a"})
        tracker.set_tags({"stage": "b"})
    tracker.flush()
    kinds = [(e["kind"], e["payload"]) for e in workspace.store.events.events("run", run.id)]
    assert kinds[0][0] == "created"
    assert [p for k, p in kinds if k == "tags"] == [{"stage": "a"}, {"stage": "b"}]
    assert kinds[-1] == ("status", {"from": "RUNNING", "to": "FINISHED", "error": None})
    assert json.loads(json.dumps(kinds))  # payloads are plain JSON


def test_upgrade_from_the_first_schema_keeps_data(db_url):
    """A store made by an older release (revision 0001) is migrated on open, and its runs survive."""
    from alembic import command

    from mlops_lab.store.migrations import alembic_config

    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(sa.text("INSERT INTO experiment (name, created_at, created_by) VALUES ('old', 1, 'me')"))
        conn.execute(
            sa.text(
                'INSERT INTO run (id, experiment_id, name, status, "user", start_time, host, pid, heartbeat_at) '
                "VALUES ('" + "e" * 32 + "', 1, 'kept', 'FINISHED', 'me', 1, 'h', 1, 1)"
            )
        )
        assert "drift_report" not in sa.inspect(conn).get_table_names()
    engine.dispose()
    store = Store.sql(Database(db_url))
    assert store.runs.get_run("e" * 32).info.name == "kept"
    with store.db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_REVISION
        assert "drift_report" in sa.inspect(conn).get_table_names()


def test_a_store_from_a_newer_version_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "newer.db"
    Store.sql(Database(f"sqlite:///{path}")).dispose()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="schema revision '0099'.*newer version"):
        Database(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_a_write_that_will_not_wait_is_refused_at_once_and_leaves_nothing(tmp_path):
    """Under ``not_waiting`` (a write on the lab's event loop) a SQLite writer that finds another
    holding the lock raises ``DatabaseBusy`` at once, writing nothing; without it, it waits its turn."""
    import sqlite3
    import threading
    import time

    from mlops_lab.store.engine import DatabaseBusy, not_waiting

    store = Store.sql(Database(f"sqlite:///{tmp_path / 'store.db'}"))
    run_id = make_run(store)
    point = {"run_id": run_id, "key": "m", "value": 1.0, "step": 0, "timestamp": 1}
    holder = sqlite3.connect(tmp_path / "store.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # a kernel in the middle of its write
    started = time.monotonic()
    with not_waiting(), pytest.raises(DatabaseBusy):
        store.runs.write(Batch(metrics=[point]))
    assert time.monotonic() - started < 1
    released = threading.Timer(0.5, holder.commit)
    released.start()
    store.runs.write(Batch(metrics=[{**point, "step": 1}]))  # waits for the holder, then lands
    released.join()
    assert [step for step, _, _ in store.runs.metric_history(run_id, "m")] == [1]
    with not_waiting():  # the lock is free: the same write lands, and the connection waits again after
        store.runs.write(Batch(metrics=[{**point, "step": 2}]))
    assert [step for step, _, _ in store.runs.metric_history(run_id, "m")] == [1, 2]
    with store.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60_000
    holder.close()


def test_sqlite_s_write_ahead_log_is_copied_back_by_a_thread_not_by_a_commit(tmp_path):
    """A commit never runs SQLite's checkpoint itself (a copy and a sync, long on a slow disk, which
    would freeze the lab's event loop where one-value writes run): a thread copies the WAL back."""
    import time

    path = tmp_path / "store.db"
    store = Store.sql(Database(f"sqlite:///{path}"))
    with store.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    run_id = make_run(store)
    time.sleep(1.2)  # the schema's own checkpoint is done; the next write is due another
    before = path.stat().st_size
    points = [{"run_id": run_id, "key": "m", "value": float(i), "step": i, "timestamp": 1} for i in range(5000)]
    store.runs.write(Batch(metrics=points))
    deadline = time.monotonic() + 10
    while path.stat().st_size <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > before  # the points' pages reached the database file
    assert len(store.runs.metric_history(run_id, "m")) == 5000
