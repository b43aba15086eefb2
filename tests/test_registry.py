"""The model registry on both engines: versions, stages, aliases, approvals, races, bad requests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlops_lab as ml
from mlops_lab.registry import ConflictError, Registry, RegistryError
from mlops_lab.store import NotFoundError


@pytest.fixture
def iris_run(tracker):
    X, y = load_iris(return_X_y=True)
    with ml.start_run("iris-lr") as run:
        ml.log_model(LogisticRegression(max_iter=500).fit(X, y), "model")
        ml.log_metric("accuracy", 0.97)
    ml.flush()
    return run.id, X


def registry_as(workspace, user: str) -> Registry:
    """``user``'s registry: the same workspace as them, or through a team server, with their token."""
    if workspace.location.is_team_server:
        from mlops_lab.workspace import Workspace
        from tests.team import server_of

        return Workspace(server_of(workspace.location.db_url).location(user)).registry
    return workspace.as_user(user).registry


def test_register_checks_onnx_and_keeps_lineage(workspace, tracker, iris_run):
    run_id, X = iris_run
    version = ml.register("iris", run_id, sample_rows=X[:50])
    assert version == 1 and ml.register("iris", run_id) == 2
    model = ml.load_model("iris/1")
    assert (
        model.predict(X[:5]).tolist()
        == LogisticRegression(max_iter=500).fit(X, load_iris(return_X_y=True)[1]).predict(X[:5]).tolist()
    )
    assert "CPUExecutionProvider" in model.providers
    saved = workspace.store.models.get_version("iris", 1)
    assert saved.run_id == run_id and saved.max_difference is not None and saved.max_difference <= 1e-4
    assert '"accuracy": 0.97' in saved.metrics


def test_registration_refused_when_onnx_disagrees(tracker, iris_run):
    run_id, X = iris_run
    with pytest.raises(RegistryError, match="largest difference .* above the tolerance 1e-12; nothing was registered"):
        ml.register("strict", run_id, sample_rows=X, tolerance=1e-12)
    with pytest.raises(NotFoundError):
        ml.load_model("strict")


def test_stages_aliases_and_history(workspace, tracker, iris_run):
    run_id, _ = iris_run
    alice, bob = registry_as(workspace, "alice"), registry_as(workspace, "bob")
    v1, v2 = alice.register("iris", run_id), alice.register("iris", run_id)
    alice.set_policy("iris", 0)  # no approvals needed for this part
    alice.promote("iris", v1, "Staging", comment="offline eval ok")
    alice.promote("iris", v1, "Production")
    alice.promote("iris", v2, "Staging")
    alice.promote("iris", v2, "Production", comment="better")  # v1 archived by default
    assert alice.resolve("iris@production") == ("iris", v2)
    assert [v.stage for v in workspace.store.models.list_versions("iris")] == ["Archived", "Production"]
    bob.set_alias("iris", "champion", v2)
    bob.set_alias("iris", "challenger", v1)
    assert ml.load_model("iris@champion").version == v2 and alice.resolve("iris@challenger") == ("iris", v1)
    bob.set_alias("iris", "challenger", None)
    with pytest.raises(NotFoundError, match="no alias 'challenger'"):
        alice.resolve("iris@challenger")
    history = [(e["kind"], e["user"], e["payload"].get("to")) for e in ml.model_history("iris")]
    assert ("stage", "alice", "Production") in history and ("alias", "bob", v2) in history
    assert ("stage", "alice", "Archived") in history  # the replaced version's move is recorded too


def test_production_needs_approvals_by_others(workspace, tracker, iris_run):
    run_id, _ = iris_run
    alice, bob, carol = (registry_as(workspace, u) for u in ("alice", "bob", "carol"))
    version = alice.register("iris", run_id)
    alice.set_policy("iris", 2)
    alice.promote("iris", version, "Staging")
    with pytest.raises(PermissionError, match="needs 2 approval"):
        alice.promote("iris", version, "Production")
    request = alice.request_approval("iris", version, comment="ship it")
    with pytest.raises(PermissionError, match="cannot approve it themselves"):
        alice.approve(request)
    assert bob.approve(request, comment="metrics look right") == "PENDING"
    with pytest.raises(ValueError, match="already voted"):
        bob.approve(request)
    with pytest.raises(PermissionError):
        alice.promote("iris", version, "Production")
    assert carol.approve(request) == "APPROVED"
    alice.promote("iris", version, "Production")
    assert alice.resolve("iris@production") == ("iris", version)
    with pytest.raises(ValueError, match="is USED, not open"):
        carol.reject(request)
    rejected = alice.request_approval("iris", version, stage="Production")
    assert bob.reject(rejected, comment="no") == "REJECTED"


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda r: r.promote("iris", 99, "Staging"), NotFoundError, "no version 99"),
        (lambda r: r.promote("ghost", 1, "Staging"), NotFoundError, "no version 1"),
        (lambda r: r.promote("iris", 1, "Production"), RegistryError, "cannot go from None to Production"),
        (lambda r: r.promote("iris", 1, "Live"), RegistryError, "stage must be one of"),
        (lambda r: r.promote("iris", 1, "None"), RegistryError, "already in None"),
        (lambda r: r.set_alias("iris", "production", 1), RegistryError, "not a stage name"),
        (lambda r: r.set_alias("iris", "bad alias!", 1), RegistryError, "letters, digits"),
        (lambda r: r.set_alias("iris", "champion", 7), NotFoundError, "no version 7"),
        (lambda r: r.resolve("iris@@x"), RegistryError, "must look like"),
        (lambda r: r.register("a/b", "0" * 32), RegistryError, "may not contain"),
        (lambda r: r.register("iris", "0" * 32), NotFoundError, "no run with id"),
        (lambda r: r.set_policy("iris", -1), RegistryError, "non-negative"),
        (lambda r: r.approve("0" * 32), NotFoundError, "no approval request"),
    ],
)
def test_bad_requests_change_nothing(workspace, tracker, iris_run, call, error, message):
    run_id, _ = iris_run
    registry = registry_as(workspace, "alice")
    registry.register("iris", run_id)
    before = len(registry.history("iris"))
    with pytest.raises(error, match=message):
        call(registry)
    assert len(registry.history("iris")) == before
    assert workspace.store.models.get_version("iris", 1).stage == "None"


def test_unknown_logged_model_name(tracker, iris_run):
    run_id, _ = iris_run
    with pytest.raises(NotFoundError, match="no model named 'nope' .*it has: model"):
        ml.register("iris", run_id, "nope")


def _ready_for_race(workspace, run_id) -> tuple[int, int]:
    registry = registry_as(workspace, "alice")
    v1, v2 = registry.register("race", run_id), registry.register("race", run_id)
    registry.set_policy("race", 0)
    registry.promote("race", v1, "Staging")
    registry.promote("race", v2, "Staging")
    return v1, v2


def test_two_promotions_at_once_threads(workspace, tracker, iris_run):
    run_id, _ = iris_run
    v1, v2 = _ready_for_race(workspace, run_id)
    registry = registry_as(workspace, "alice")
    # Both read "no version in Production" before either writes: the slow path of a real race.
    models = registry.models
    barrier = threading.Barrier(2)
    outcomes = {}

    def promote(version):
        barrier.wait()
        try:
            models.set_stage("race", version, "Production", "alice", None, None, True, None)
            outcomes[version] = "won"
        except ConflictError as exc:
            outcomes[version] = str(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in (v1, v2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o == "won" for o in outcomes.values()) == [False, True]
    loser = next(o for o in outcomes.values() if o != "won")
    assert "another promotion won" in loser
    winner = next(v for v, o in outcomes.items() if o == "won")
    assert registry.resolve("race@production") == ("race", winner)
    stages = [e["payload"]["to"] for e in registry.history("race") if e["kind"] == "stage"]
    assert stages.count("Production") == 1


def test_two_promotions_at_once_processes(workspace, tracker, iris_run, tmp_path):
    run_id, _ = iris_run
    v1, v2 = _ready_for_race(workspace, run_id)
    script = textwrap.dedent("""
        import sys, time
        from mlops_lab.config import StoreLocation
        from mlops_lab.errors import ConflictError
        from mlops_lab.store import open_store
        store = open_store(sys.argv[1], sys.argv[4] or None)  # a team server's needs its token
        start = float(sys.argv[3])
        while time.time() < start:
            pass
        try:
            store.models.set_stage("race", int(sys.argv[2]), "Production", "bot", None, None, True, None)
            print("won")
        except ConflictError:
            print("conflict")
    """)
    import time

    start = time.time() + 2
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, tracker.runs.url, str(v), str(start), workspace.location.token or ""],
            stdout=subprocess.PIPE,
            text=True,
        )
        for v in (v1, v2)
    ]
    results = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert results == ["conflict", "won"]
    stages = [e["payload"]["to"] for e in ml.model_history("race") if e["kind"] == "stage"]
    assert stages.count("Production") == 1


def test_models_widget_shows_and_acts(tracker, iris_run):
    import ipywidgets

    run_id, _ = iris_run
    assert "No registered models" in ml.models().value
    ml.register("iris", run_id)
    widget = ml.models()
    assert isinstance(widget.widget, ipywidgets.VBox) and "<h3>" in widget.snapshot
    body, controls, buttons, approvals, message = widget.children[1:]
    assert "<b>None</b>" in body.value and run_id in body.value
    version_box, stage_box, comment_box = controls.children
    stage_box.value = "Production"
    buttons.children[0].click()  # Move: None → Production is not allowed
    assert "cannot go from None to Production" in message.value
    stage_box.value, comment_box.value = "Staging", "looks good"
    buttons.children[0].click()
    assert "moved to Staging" in message.value and "<b>Staging</b>" in body.value
    buttons.children[1].click()  # request approval
    assert approvals.children[0].options
    approvals.children[1].click()  # approving one's own request is refused
    assert "cannot approve it themselves" in message.value
    assert "looks good" in body.value  # the comment is in the history


def test_a_requester_cannot_lower_the_policy_under_their_own_request(workspace, tracker, iris_run):
    run_id, _ = iris_run
    alice, bob = registry_as(workspace, "alice"), registry_as(workspace, "bob")
    version = alice.register("iris", run_id)
    alice.promote("iris", version, "Staging")
    alice.set_policy("iris", 2)  # raising is always allowed
    alice.request_approval("iris", version)
    for lower in (1, 0, None):  # None: back to the default of 1
        with pytest.raises(PermissionError, match="open approval request"):
            alice.set_policy("iris", lower)
    assert alice.required_approvals("iris") == 2
    with pytest.raises(PermissionError, match="needs 2 approval"):
        alice.promote("iris", version, "Production")
    bob.set_policy("iris", 1)  # someone else may, and it is on the record
    policies = [(e["user"], e["payload"]) for e in alice.history("iris") if e["kind"] == "policy"]
    assert policies == [("alice", {"required_approvals": 2}), ("bob", {"required_approvals": 1})]
