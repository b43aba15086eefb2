"""The workspace: one object for where data lives, who acts, and the services on them."""

from __future__ import annotations

import threading

import pytest

import mlops_lab as ml
from mlops_lab.config import StoreLocation
from mlops_lab.store import StoreError
from mlops_lab.workspace import Workspace, default_workspace, set_default_workspace


def test_opening_a_workspace_touches_nothing_until_asked(tmp_path):
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"garbage" * 100)
    workspace = Workspace(StoreLocation(f"sqlite:///{broken}", str(tmp_path / "artifacts"), "test"), user="ada")
    assert workspace.user == "ada" and not (tmp_path / "artifacts").exists()  # a server still starts
    with pytest.raises(StoreError, match="not corrupt|not a database"):
        _ = workspace.store
    assert broken.read_bytes() == b"garbage" * 100


def test_copies_for_other_users_share_what_is_expensive(workspace):
    alice = workspace.as_user("alice")
    assert alice.user == "alice" and workspace.user == "tester"
    assert alice.store is workspace.store and alice.artifacts is workspace.artifacts
    assert alice.registry.user == "alice" and workspace.registry.user == "tester"
    assert alice.drift_reports.user == "alice"
    # one tracker and one set of serving processes, acting as the workspace that was opened
    assert alice.tracking is workspace.tracking and alice.tracking.user == "tester"


def test_a_shared_service_is_built_once_whichever_thread_asks_first(tmp_path):
    workspace = Workspace(StoreLocation(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "a"), "test"))
    seen, barrier = [], threading.Barrier(8)

    def ask():
        barrier.wait()
        seen.append(workspace.tracking)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(t) for t in seen}) == 1
    workspace.close()


def test_set_store_replaces_the_default_and_finishes_what_the_old_one_had_open(tmp_path):
    first = ml.set_store(f"sqlite:///{tmp_path / 'one.db'}", str(tmp_path / "one"))
    assert default_workspace() is first
    run = ml.start_run("left-open")
    second = ml.set_store(f"sqlite:///{tmp_path / 'two.db'}", str(tmp_path / "two"))
    assert default_workspace() is second and second is not first
    assert first.store.runs.get_run(run.id).info.status == "FINISHED"  # ended and written, not lost
    assert ml.search_runs().empty  # the new store has none of the old runs
    set_default_workspace(None)
    assert default_workspace() is not second  # resolved again on next use
