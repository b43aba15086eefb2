"""The team server: tokens, roles, identities, artifacts on S3 through it, faults.

A real ``mlops-lab server`` (in a thread, or as its own process where one is restarted or killed)
over the real PostgreSQL; artifacts on moto's standalone S3 server on loopback.  The kernels'
side is the real REST store, as a notebook uses it through MLOPS_LAB_TRACKING_URI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import requests

import mlops_lab as ml
from mlops_lab.config import StoreLocation
from mlops_lab.errors import ForbiddenError, UnauthorizedError, UnavailableError
from mlops_lab.net import free_port
from mlops_lab.workspace import Workspace, set_default_workspace
from tests.team import TeamServerProcess, TeamServerThread

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def server(pg_url, tmp_path):
    team = TeamServerThread(pg_url, str(tmp_path / "blobs"), admins={"root"})
    yield team
    team.stop()


@pytest.fixture
def as_user(server):
    """A workspace acting as ``user``, through the server, with a token of theirs."""
    opened = []

    def open_as(user: str) -> Workspace:
        workspace = Workspace(server.location(user))
        opened.append(workspace)
        return workspace

    yield open_as
    for workspace in opened:
        workspace.close()


@pytest.fixture(scope="session")
def s3_server():
    """moto's standalone S3 server on loopback, with one bucket."""
    port = free_port()
    process = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url, timeout=1)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("moto's S3 server did not start")
            time.sleep(0.1)
    requests.put(f"{url}/team-artifacts", timeout=5)  # create the bucket
    yield url
    process.terminate()
    process.wait(10)


def test_every_route_needs_a_known_live_token(server):
    routes = [
        ("GET", "api/whoami"),
        ("POST", "api/store/runs/list_experiments"),
        ("POST", "api/artifacts/missing"),
        ("GET", "api/artifacts/" + "0" * 64),
        ("PUT", "api/artifacts/" + "0" * 64),
        ("GET", "api/team/tokens"),
        ("POST", "api/team/tokens"),
        ("DELETE", "api/team/tokens/x"),
        ("GET", "api/team/users"),
        ("PUT", "api/team/users/x"),
        ("GET", "api/team/permissions"),
        ("PUT", "api/team/permissions"),
    ]
    revoked = server.token("mallory")
    server.team.access.revoke_token(None, server.team.access.tokens(None, "mallory")[0]["id"])
    expired_id, expired = server.team.access.create_token(None, "mallory", expires_in_days=1e-9)
    time.sleep(0.01)
    for token, why in [
        (None, "needs a token"),
        ("mlt_x_forged", "not known"),
        (revoked, "revoked"),
        (expired, "expired"),
    ]:
        for method, path in routes:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            answer = requests.request(method, f"{server.url}/{path}", headers=headers, data=b"{}", timeout=10)
            assert answer.status_code == 401, (method, path, token)
            assert why in answer.json()["error"] and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(f"{server.url}/health", timeout=10).json() == {"status": "ok"}  # for load balancers


def test_tokens_are_stored_hashed_and_shown_once(server):
    token_id, secret = server.team.access.create_token(None, "alice", note="laptop")
    db = server.team.calls.store.db
    with db.engine.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM api_token").all()]
    assert rows and not any(secret in str(value) for row in rows for value in row)
    listed = server.team.access.tokens(None, "alice")
    assert [t["id"] for t in listed] == [token_id] and "hash" not in listed[0]
    events = server.team.calls.store.events.events("user", "alice")
    assert [e["kind"] for e in events] == ["token_created"] and secret not in json.dumps(events)


def test_the_acting_user_is_the_token_s_never_mlops_lab_user(server, monkeypatch):
    monkeypatch.setenv("MLOPS_LAB_USER", "the-boss")
    workspace = Workspace(server.location("alice"))
    with pytest.warns(UserWarning, match="MLOPS_LAB_USER='the-boss' is ignored: .* 'alice'"):
        assert workspace.user == "alice"
    set_default_workspace(workspace)
    with ml.start_run("mine", experiment="alice-exp") as run:
        ml.log_metric("loss", 0.5)
    ml.flush()
    record = workspace.store.runs.get_run(run.id)
    assert record.info.user == "alice"
    history = workspace.store.events.events("run", run.id)
    assert history and {event["user"] for event in history} == {"alice"}
    # a hand-made batch that names someone else is written as the token's user
    from mlops_lab.store import Batch

    forged = workspace.store.runs.get_run(run.id).info.model_dump()
    forged.update(id="f" * 32, user="the-boss", name="forged")
    workspace.store.runs.write(Batch(runs=[forged]))
    assert workspace.store.runs.get_run("f" * 32).info.user == "alice"


def test_roles_per_experiment_and_model(server, as_user, tmp_path):
    from sklearn.linear_model import LogisticRegression

    alice, bob = as_user("alice"), as_user("bob")
    set_default_workspace(alice)
    with ml.start_run("alice-run", experiment="churn") as run:
        ml.log_param("C", 1.0)
        ml.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "model")
    ml.flush()
    alice.registry.register("churn-model", run.id)

    # bob reads (the default), and cannot write to alice's experiment
    assert [r["id"] for r in bob.store.runs.search_runs()[0]] == [run.id]
    with pytest.raises(ForbiddenError, match="'bob' needs EDIT on the experiment 'churn'"):
        bob.tracking.start_run("bob-run", experiment="churn")  # said at once, not at the first write
    with pytest.raises(ForbiddenError, match="needs MANAGE on the experiment 'churn'"):
        bob.store.runs.set_deleted(run.id, True, {})
    assert alice.store.runs.search_runs()[0][0]["id"] == run.id  # nothing changed

    # alice grants EDIT: now bob logs there; the grant is an event with who
    alice_team = server.team.access
    alice_id = alice_team.authenticate(alice.location.token)
    alice_team.set_permission(alice_id, "experiment", "churn", "bob", "EDIT")
    bob_run = bob.tracking.start_run("bob-run", experiment="churn")
    bob.tracking.end_run(run=bob_run)
    bob.flush()
    assert {r["name"] for r in bob.store.runs.search_runs()[0]} == {"alice-run", "bob-run"}
    grants = server.team.calls.store.events.events("experiment", "churn")
    assert [(e["kind"], e["user"], e["payload"]["grantee"]) for e in grants][-1] == ("permission", "alice", "bob")
    # bob cannot hand out what he does not manage
    with pytest.raises(ForbiddenError):
        alice_team.set_permission(alice_team.authenticate(bob.location.token), "experiment", "churn", "eve", "MANAGE")

    # approvals: bob may not approve without MANAGE on the model; alice never her own request
    request = alice.registry.request_approval("churn-model", 1)
    with pytest.raises(ForbiddenError, match="'bob' needs MANAGE on the model 'churn-model'"):
        bob.registry.approve(request)
    with pytest.raises(ForbiddenError, match="'alice' asked for this approval and cannot approve it"):
        alice.registry.approve(request)
    alice_team.set_permission(alice_id, "model", "churn-model", "bob", "MANAGE")
    assert bob.registry.approve(request) == "APPROVED"
    alice.registry.promote("churn-model", 1, "Staging")
    alice.registry.promote("churn-model", 1, "Production")
    assert alice.store.models.get_model("churn-model").production_version == 1


def test_the_server_keeps_the_registry_rules_whatever_a_client_sends(server, as_user):
    """A hostile client calls the store directly, skipping the registry service's checks."""
    from sklearn.linear_model import LogisticRegression

    alice = as_user("alice")
    set_default_workspace(alice)
    with ml.start_run("r", experiment="e") as run:
        ml.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "model")
    ml.flush()
    alice.registry.register("m", run.id)
    with pytest.raises(ForbiddenError, match="needs an approval"):
        alice.store.models.set_stage("m", 1, "Production", "x", None, None, True, None)
    request = alice.registry.request_approval("m", 1)
    with pytest.raises(ForbiddenError, match="does not approve"):  # pending, not approved
        alice.store.models.set_stage("m", 1, "Production", "x", None, None, True, request)
    assert alice.store.models.get_model("m").production_version is None
    # the number of approvals needed is the server's, not what the client says
    carol = as_user("carol")
    server.team.access.set_permission(None, "model", "m", "carol", "MANAGE")
    server.team.access.set_permission(None, "model", "m", "dave", "MANAGE")
    alice.store.models.set_policy("m", 2, "alice")
    assert carol.store.models.vote(request, "carol", "approve", None, 1) == "PENDING"
    assert as_user("dave").store.models.vote(request, "dave", "approve", None, 1) == "APPROVED"


def test_hostile_calls_are_refused_and_change_nothing(server, as_user):
    alice = as_user("alice")
    set_default_workspace(alice)
    with ml.start_run("r", experiment="e") as run:
        ml.log_metric("m", 1.0)
    ml.flush()
    headers = {"Authorization": f"Bearer {alice.location.token}"}

    def call(path, body, status):
        answer = requests.post(f"{server.url}/api/store/{path}", data=body, headers=headers, timeout=10)
        assert answer.status_code == status, answer.text
        return answer.json()["error"]

    assert "not JSON" in call("runs/get_run", b"{nope", 400)
    assert "unexpected keyword" in call("runs/get_run", json.dumps({"run_id": run.id, "x": 1}), 400)
    assert "missing a required" in call("runs/get_run", b"{}", 400)
    assert "no store call" in call("runs/_call", b"{}", 404)
    assert "no store call" in call("runs/dispose", b"{}", 404)
    batch = {"run_updates": [[run.id, {"user": "mallory"}]]}
    assert "user cannot be changed" in call("runs/write", json.dumps({"batch": batch, "batch_id": "b1"}), 403)
    batch = {"events": [{"entity_type": "model", "entity_id": "m", "kind": "stage", "user": "x", "time": 1}]}
    assert "events of its own runs" in call("runs/write", json.dumps({"batch": batch, "batch_id": "b2"}), 403)
    assert "malformed" in call("runs/write", json.dumps({"batch": {"nope": []}, "batch_id": "b3"}), 400)
    assert "no run with id" in call(
        "runs/write",
        json.dumps({"batch": {"tags": [{"run_id": "x" * 32, "key": "k", "value": "v"}]}, "batch_id": "b4"}),
        404,
    )
    assert alice.store.runs.get_run(run.id).info.user == "alice"
    # a blob whose bytes do not hash to its name is not kept
    answer = requests.put(f"{server.url}/api/artifacts/{'a' * 64}", data=b"not that", headers=headers, timeout=10)
    assert answer.status_code == 400 and "nothing kept" in answer.json()["error"]
    assert alice.artifacts.missing([("a" * 64, 8)]) == [True]
    answer = requests.get(f"{server.url}/api/artifacts/{'a' * 64}", headers=headers, timeout=10)
    assert answer.status_code == 404


def test_artifacts_datasets_and_request_logs_on_s3_through_the_server(pg_url, tmp_path, s3_server, monkeypatch):
    """The server holds the bucket's credentials; the kernel has none and never touches S3."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    env = {**S3_ENV, "AWS_ENDPOINT_URL": s3_server}
    team = TeamServerProcess(pg_url, "s3://team-artifacts/blobs", env=env)
    try:
        for name in (*S3_ENV, "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
        token = team.token("alice")
        workspace = Workspace(StoreLocation(team.url, team.url, "test", token))
        set_default_workspace(workspace)
        data = tmp_path / "train.csv"
        pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]}).to_csv(data, index=False)
        (tmp_path / "notes.txt").write_text("hello from the kernel")
        with ml.start_run("s3", experiment="blobs") as run:
            ml.log_dataset(pd.read_csv(data), "train")
            ml.log_artifact(str(tmp_path / "notes.txt"))
            ml.log_model(LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]), "model")
        ml.flush()
        record = workspace.store.runs.get_run(run.id)
        notes = next(a for a in record.artifacts if a["path"].endswith("notes.txt"))
        assert workspace.artifacts.get_bytes(notes["hash"]) == b"hello from the kernel"
        # the blobs are in the bucket, named by their hash
        import s3fs

        s3 = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": s3_server})
        keys = {path.rsplit("/", 2)[-2] + path.rsplit("/", 1)[-1] for path in s3.find("team-artifacts/blobs")}
        assert {notes["hash"], record.models[0]["model_hash"], record.datasets[0]["hash"]} <= keys
        version = workspace.registry.register("s3-model", run.id)
        assert workspace.registry.load_model(f"s3-model/{version}").predict([[3.0]]).tolist() == [1]

        # a deployment's request log goes to the bucket too, through the server, and reads back
        from mlops_lab.serving.client import ServingClient
        from mlops_lab.serving.manager import ServingManager
        from mlops_lab.serving.request_log import read_stored_request_log

        manager = ServingManager(workspace, check_seconds=0.1)
        try:
            manager.start(f"s3-model/{version}", name="s3-api")
            ready = manager.wait_ready("s3-api")
            client = ServingClient(ready["url"], "s3-api")
            for x in (0.0, 3.0, 2.5):
                client.predict(np.array([[x]], dtype=np.float32))
        finally:
            manager.shutdown()  # the last file is written and kept as the process stops
        logged = read_stored_request_log(workspace, "s3-api")
        assert logged.height == 3
        (kept,) = [e for e in workspace.store.events.events("deployment", "s3-api") if e["kind"] == "request_log"]
        assert kept["payload"]["rows"] == 3
        keys = {path.rsplit("/", 2)[-2] + path.rsplit("/", 1)[-1] for path in s3.find("team-artifacts/blobs")}
        assert kept["payload"]["hash"] in keys
    finally:
        team.stop()


def test_the_server_restarted_while_a_kernel_logs_loses_and_doubles_nothing(pg_url, tmp_path):
    team = TeamServerProcess(pg_url, str(tmp_path / "blobs"))
    try:
        token = team.token("alice")
        script = textwrap.dedent("""
            import sys, time
            import mlops_lab as ml
            with ml.start_run("through a restart", experiment="faults") as run:
                for step in range(600):
                    ml.log_metric("loss", 1.0 / (step + 1), step=step)
                    time.sleep(0.005)
            ml.flush()
            print(run.id)
        """)
        env = {**os.environ, "MLOPS_LAB_TRACKING_URI": team.url, "MLOPS_LAB_TOKEN": token}
        kernel = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        team.kill()  # mid-run: the kernel's writes fail until it is back
        time.sleep(1.5)
        team.start()
        out, _ = kernel.communicate(timeout=120)
        assert kernel.returncode == 0
        run_id = out.strip().splitlines()[-1]
        workspace = Workspace(StoreLocation(team.url, team.url, "test", token))
        steps = [step for step, _, _ in workspace.store.runs.metric_history(run_id, "loss")]
        assert steps == list(range(600))  # every point once: none lost, none doubled
        assert workspace.store.runs.get_run(run_id).info.status == "FINISHED"
    finally:
        team.stop()


def test_a_write_batch_sent_twice_is_applied_once(server, as_user):
    from mlops_lab.store import Batch

    alice = as_user("alice")
    run = alice.tracking.start_run("r", experiment="e")
    alice.tracking.end_run(run=run)
    alice.flush()
    points = Batch(metrics=[{"run_id": run.id, "key": "m", "value": 1.0, "step": 0, "timestamp": 1}])
    alice.store.runs.write(points, "the-same-id")
    alice.store.runs.write(points, "the-same-id")  # its answer was lost; the client sends it again
    assert alice.store.runs.count_metric_points(run.id) == 1


def test_cli_tokens_users_and_permissions_through_the_server(server, monkeypatch, capsys):
    from mlops_lab.cli import main

    monkeypatch.setenv("MLOPS_LAB_TRACKING_URI", server.url)
    monkeypatch.setenv("MLOPS_LAB_TOKEN", server.token("root", admin=True))
    assert main(["token", "create", "--user", "bob", "--note", "ci", "--expires-days", "30"]) == 0
    bob_token = capsys.readouterr().out.strip()
    assert bob_token.startswith("mlt_") and server.team.access.authenticate(bob_token).user == "bob"
    assert main(["token", "list", "--user", "bob"]) == 0
    listing = capsys.readouterr().out
    assert "bob" in listing and "ci" in listing and bob_token not in listing
    token_id = listing.splitlines()[1].split()[0]
    assert main(["users", "--admin", "carol"]) == 0
    assert "carol  (admin)" in capsys.readouterr().out
    assert main(["permissions", "set", "experiment", "churn", "group:analysts", "EDIT"]) == 0
    assert main(["permissions", "list"]) == 0
    assert "group:analysts" in capsys.readouterr().out
    # bob is no admin: he lists only his own tokens and cannot list users
    monkeypatch.setenv("MLOPS_LAB_TOKEN", bob_token)
    assert main(["users"]) == 2
    assert "only an admin" in capsys.readouterr().err
    assert main(["token", "revoke", token_id]) == 0
    capsys.readouterr()
    assert main(["token", "list"]) == 2  # his token no longer works
    assert "revoked" in capsys.readouterr().err
    with pytest.raises(UnauthorizedError):
        server.team.access.authenticate(bob_token)


def test_deployments_are_team_state(server, as_user):
    """Every lab lists the team's deployments; the owner's lab runs each (and runs it again after a
    restart); another may stop it only with MANAGE on its model, and the owner's lab carries it out."""
    from sklearn.linear_model import LogisticRegression

    from mlops_lab.serving.manager import ServingError, ServingManager
    from mlops_lab.store.file_state import HOST

    alice, bob = as_user("alice"), as_user("bob")
    set_default_workspace(alice)
    with ml.start_run("r", experiment="e") as run:
        ml.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "model")
    ml.flush()
    alice.registry.register("churn", run.id)
    alice_lab = ServingManager(alice, check_seconds=0.1, reconcile=True)
    bob_lab = ServingManager(bob, check_seconds=0.1, reconcile=True)

    def wait(condition, what: str, seconds: float = 60):
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    try:
        alice_lab.start("churn/1", name="churn-api", log_sample=0.0)
        port = alice_lab.wait_ready("churn-api")["port"]
        (seen,) = [d for d in bob_lab.list() if d["name"] == "churn-api"]
        assert (seen["owner"], seen["host"], seen["state"], seen["here"]) == ("alice", HOST, "elsewhere", False)
        assert bob_lab.get("churn-api")["history"][0]["user"] == "alice"
        with pytest.raises(ForbiddenError, match="alice's deployment; changing it needs MANAGE on the model 'churn'"):
            bob_lab.stop("churn-api")
        with pytest.raises(ServingError, match="churn-api is alice's deployment on"):
            bob_lab.start("churn/1", name="churn-api")

        alice_lab.shutdown()  # the lab stops (its processes with it) and comes back
        alice_lab = ServingManager(alice, check_seconds=0.1, reconcile=True)
        wait(lambda: [d["state"] for d in alice_lab.list()] == ["ready"], "re-adopted and ready")
        assert alice_lab.get("churn-api")["port"] == port  # clients keep their address
        assert "adopted" in [e["kind"] for e in alice_lab.history("churn-api")]

        server.team.access.set_permission(None, "model", "churn", "bob", "MANAGE")
        assert bob_lab.stop("churn-api")["state"] == "stopped"  # wanted; alice's lab does it
        wait(lambda: alice_lab.get("churn-api")["state"] == "stopped", "stopped by alice's lab", 30)
        assert ("stop", "bob") in [(e["kind"], e["user"]) for e in alice_lab.history("churn-api")]
        bob_lab.remove("churn-api")
        assert [d["name"] for d in alice_lab.list()] == ["churn-api"]  # still known here, stopped
        assert alice.store.deployments.list() == []
    finally:
        alice_lab.shutdown()
        bob_lab.shutdown()


class CuttableLink:
    """A TCP relay to PostgreSQL that the test can cut (every connection dropped, new ones refused)
    and mend: what the team server sees when its database restarts."""

    def __init__(self, target_port: int = 5432):
        import socket
        import threading

        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._socket, self._threading = socket, threading
        self._connections: list = []
        self.mend()

    def mend(self) -> None:
        self._listener = self._socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = self._socket.create_connection(self.target)
            self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except OSError:
                    pass

    def cut(self) -> None:
        try:
            self._listener.shutdown(self._socket.SHUT_RDWR)  # wakes the accept (a close alone does not)
        except OSError:
            pass
        self._listener.close()
        for connection in self._connections:
            try:
                connection.shutdown(self._socket.SHUT_RDWR)
                connection.close()
            except OSError:
                pass
        self._connections = []


def test_postgresql_going_away_is_a_clear_error_then_the_server_recovers(pg_url, tmp_path, monkeypatch):

    link = CuttableLink()
    through_link = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{link.port}")
    assert through_link != pg_url
    team = TeamServerThread(through_link, str(tmp_path / "blobs"))
    try:
        monkeypatch.setenv("MLOPS_LAB_RETRY_SECONDS", "1")
        impatient = Workspace(team.location("alice"))
        assert impatient.store.runs.client.retry_seconds == 1  # (its client is made on first use)
        monkeypatch.setenv("MLOPS_LAB_RETRY_SECONDS", "120")
        patient = Workspace(team.location("alice"))
        assert patient.store.runs.client.retry_seconds == 120
        set_default_workspace(patient)
        with ml.start_run("before", experiment="faults") as run:
            ml.log_metric("loss", 1.0, step=0)
        ml.flush()

        resumed = patient.tracking.resume_run(run.id)
        link.cut()
        with pytest.raises(UnavailableError, match="the team server's database cannot be reached right now"):
            impatient.store.runs.get_run(run.id)
        for step in range(1, 50):
            patient.tracking.log_metric("loss", 1.0 / (step + 1), step=step, run=resumed)
        time.sleep(2)  # the writer's batches are refused meanwhile, and sent again
        link.mend()
        patient.tracking.end_run(run=resumed)
        patient.flush()
        steps = [step for step, _, _ in patient.store.runs.metric_history(run.id, "loss")]
        assert steps == list(range(50))  # nothing lost, nothing doubled
        assert impatient.store.runs.get_run(run.id).info.status == "FINISHED"
    finally:
        link.cut()
        team.stop()


@pytest.mark.browser
def test_the_team_section_in_the_lab(server, tmp_path, artifacts_dir):
    """An admin's lab on a team server: who they are, a token made and revoked, a grant, the users."""
    from playwright.sync_api import sync_playwright

    from tests.lab import LabServer, launch_browser, require_chromium

    require_chromium()
    server.token("bob")
    root = tmp_path / "notebooks"
    root.mkdir()
    lab = LabServer(root, {"MLOPS_LAB_TRACKING_URI": server.url, "MLOPS_LAB_TOKEN": server.token("root", admin=True)})
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.on("pageerror", lambda error: print("page error:", error))
            page.goto(f"{lab.url}/lab?token={lab.token}")
            page.locator('.lm-TabBar-tab[data-id="mlops-lab-team"]').click(timeout=60_000)
            panel = page.locator("#mlops-lab-team")
            panel.get_by_text(f"root (admin) on {server.url}").wait_for(timeout=15_000)
            assert "bob" in panel.locator(".jp-mlops-team-users").inner_text()

            panel.get_by_label("Token note").fill("ci")
            panel.get_by_label("Expires in days").fill("30")
            panel.get_by_role("button", name="New token").click()
            secret = panel.get_by_label("New token").input_value()
            assert server.team.access.authenticate(secret).user == "root"
            token_id = secret.split("_")[1]
            panel.locator(f'tr[data-token="{token_id}"]', has_text="ci").wait_for(timeout=15_000)

            panel.get_by_label("Grant on").select_option("model")
            panel.get_by_label("Experiment or model").fill("churn")
            panel.get_by_label("Grantee").fill("bob")
            panel.get_by_label("Level").select_option("EDIT")
            panel.get_by_role("button", name="Grant").click()
            panel.locator(".jp-mlops-team-permissions tr", has_text="bob").wait_for(timeout=15_000)
            assert server.team.access.team.levels("model", ["bob"], ["churn"]) == {"churn": ["EDIT"]}
            page.screenshot(path=str(artifacts_dir / "team-section.png"))

            panel.locator(f'tr[data-token="{token_id}"] button', has_text="Revoke").click()
            panel.locator(f'tr[data-token="{token_id}"]', has_text="revoked").wait_for(timeout=15_000)
            with pytest.raises(UnauthorizedError, match="revoked"):
                server.team.access.authenticate(secret)
            browser.close()
    finally:
        lab.stop()


def test_blobs_stream_through_the_server_and_a_corrupt_one_never_arrives_whole(server, as_user, monkeypatch):
    alice = as_user("alice")
    data = os.urandom(5 << 20)  # five chunks
    digest = alice.artifacts.put_bytes(data)
    assert alice.artifacts.get_bytes(digest) == data
    assert alice.artifacts.read_head(digest, 10) == (data[:10], len(data))
    stored = server.team.artifacts.local_path(digest)
    stored.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped in the last chunk
    monkeypatch.setenv("MLOPS_LAB_RETRY_SECONDS", "1")
    reader = as_user("alice")
    with pytest.raises(UnavailableError, match="cut its answer off"):
        reader.artifacts.get_bytes(digest)
