"""Shared fixtures: real SQLite files and the real PostgreSQL on 127.0.0.1:5432, no mocks.

PostgreSQL tests get a schema of their own (dropped afterwards).  Where PostgreSQL is not
reachable they skip with the reason, unless MLOPS_LAB_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples: a run that passes passes again (a
# developer's run keeps exploring new ones; what it finds becomes a plain regression test).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

PG_URL = os.environ.get("MLOPS_LAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("MLOPS_LAB_REQUIRE_SERVICES") == "1"
ARTIFACTS_DIR = Path(__file__).parent.parent / "test-artifacts"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own default store home; none touches the user's."""
    monkeypatch.setenv("MLOPS_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLOPS_LAB_DB_URL", raising=False)
    monkeypatch.delenv("MLOPS_LAB_ARTIFACTS", raising=False)
    monkeypatch.delenv("MLOPS_LAB_EXPERIMENT", raising=False)
    monkeypatch.setenv("MLOPS_LAB_USER", "tester")
    yield
    from mlops_lab.store import forget_stores
    from mlops_lab.workspace import set_default_workspace

    set_default_workspace(None)
    forget_stores()


def _pg_available() -> str | None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # the reason is shown in the skip
        return f"PostgreSQL at {PG_URL} is not reachable: {exc.__class__.__name__}: {str(exc)[:200]}"


_pg_problem: list = []


def pg_problem() -> str | None:
    if not _pg_problem:
        _pg_problem.append(_pg_available())
    return _pg_problem[0]


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema."""
    problem = pg_problem()
    if problem:
        if REQUIRE_SERVICES:
            pytest.fail(problem)
        pytest.skip(problem)
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    from mlops_lab.store import forget_stores

    forget_stores()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'store.db'}"


# The store tests: each runs on SQLite, on PostgreSQL, and through a team server (REST, on PostgreSQL).
STORE_TEST_MODULES = {"test_store", "test_tracking", "test_registry"}


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc):
    module = metafunc.module.__name__.rpartition(".")[2]
    if module not in STORE_TEST_MODULES or "workspace" not in metafunc.fixturenames:
        return
    if any("db_url" in str(marker.args[0]) for marker in metafunc.definition.iter_markers("parametrize")):
        return  # the test names its engines
    # as a marker, which takes precedence over the fixture's own params
    metafunc.definition.add_marker(pytest.mark.parametrize("db_url", ["sqlite", "postgresql", "team"], indirect=True))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test that takes this runs on both engines ("team": the team server's PostgreSQL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def workspace(request, db_url, tmp_path):
    """The process's workspace, on the engine under test, used by the fluent API too.  Through a
    team server, it acts as "tester" with a token of theirs (and ``store.db`` is the server's
    database, for the tests that read rows back)."""
    from mlops_lab.config import StoreLocation
    from mlops_lab.workspace import Workspace, set_default_workspace

    server = None
    if getattr(request.node, "callspec", None) and request.node.callspec.params.get("db_url") == "team":
        from tests.team import TeamServerThread

        # an open team (anyone manages anything): these tests are about the store; tests/test_team.py
        # is about who may do what
        server = TeamServerThread(db_url, str(tmp_path / "server-artifacts"), default_level="MANAGE")
        ws = Workspace(server.location("tester"))
        ws.store.db = server.team.calls.store.db
    else:
        ws = Workspace(StoreLocation(db_url, str(tmp_path / "artifacts"), "test"))
    set_default_workspace(ws)
    yield ws
    ws.close()
    if server is not None:
        server.stop()


@pytest.fixture
def tracker(workspace):
    """The workspace's tracking service."""
    return workspace.tracking


@pytest.fixture
def store(workspace):
    """The workspace's stores, one per domain."""
    return workspace.store


@pytest.fixture(scope="session")
def artifacts_dir():
    """Where tests keep what a person should look at (screenshots)."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
