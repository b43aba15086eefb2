"""MLflow's own client, unmodified, against a real lab's MLflow REST API (``<lab>/mlops-lab/mlflow``);
searches compared with a real ``mlflow server`` given the same runs.

The client keeps its tracking URI and token in the process: each test sets them with monkeypatch.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import requests

from mlops_lab.artifacts import ArtifactStore
from mlops_lab.store import open_store
from tests.lab import LabServer
from tests.lab import mlflow_server as start_mlflow_server

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-lab")
    (root / "notebooks").mkdir()
    env = {
        "MLOPS_LAB_DB_URL": f"sqlite:///{root / 'store.db'}",
        "MLOPS_LAB_ARTIFACTS": str(root / "artifacts"),
        "MLOPS_LAB_USER": "tester",
    }
    server = LabServer(root / "notebooks", env)
    server.store = open_store(env["MLOPS_LAB_DB_URL"])
    server.artifacts = ArtifactStore(env["MLOPS_LAB_ARTIFACTS"])
    server.mlflow_uri = f"{server.url}/mlops-lab/mlflow"
    yield server
    server.stop()


@pytest.fixture
def client(lab, monkeypatch):
    """MLflow's client pointed at the lab, with the lab's token as MLFLOW_TRACKING_TOKEN."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", lab.token)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", lab.mlflow_uri)
    mlflow.set_tracking_uri(lab.mlflow_uri)
    yield mlflow.MlflowClient(lab.mlflow_uri)
    mlflow.set_tracking_uri(None)


def raw(lab, method: str, path: str, body=None, *, token: str | None = "lab", data: bytes | None = None, **kw):
    """One request to the lab's MLflow API, as any HTTP client would send it."""
    headers = {} if token is None else {"Authorization": f"Bearer {lab.token if token == 'lab' else token}"}
    url = f"{lab.mlflow_uri}/api/2.0/{path}"
    if data is None and body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    return requests.request(method, url, data=data, headers=headers, timeout=30, **kw)


def test_mlflow_s_fluent_api_logs_into_the_lab(client, lab, tmp_path):
    folder = tmp_path / "report"
    (folder / "plots").mkdir(parents=True)
    (folder / "summary.txt").write_text("fine")
    (folder / "plots" / "curve.csv").write_text("x,y\n1,2\n")
    mlflow.set_experiment("fluent")
    with mlflow.start_run(run_name="outer") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"layers": 3, "optimizer": "adam"})
        for step in range(20):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_metrics({"accuracy": 0.93, "f1": float("nan")})
        mlflow.set_tags({"team": "ds", "stage": "dev"})
        mlflow.log_dict({"seed": 7}, "config/settings.json")
        mlflow.log_text("hello", "notes.txt")
        mlflow.log_artifacts(str(folder), "report")
        with mlflow.start_run(run_name="inner", nested=True) as child:
            mlflow.log_metric("inner_metric", 2.0)
    run_id = run.info.run_id

    # Stored as ours: the lab's store has the run, its values and its files.
    record = lab.store.runs.get_run(run_id)
    assert (record.info.name, record.info.status, record.info.user) == ("outer", "FINISHED", "tester")
    assert record.experiment == "fluent"
    assert record.params == {"lr": "0.1", "layers": "3", "optimizer": "adam"}
    assert record.metrics["accuracy"] == 0.93 and record.metrics["f1"] != record.metrics["f1"]  # NaN kept
    assert [value for _, _, value in lab.store.runs.metric_history(run_id, "loss")] == [1 / (s + 1) for s in range(20)]
    assert record.tags["team"] == "ds"
    files = {a["path"]: a for a in record.artifacts}
    assert set(files) >= {"config/settings.json", "notes.txt", "report/summary.txt", "report/plots/curve.csv"}
    assert lab.artifacts.get_bytes(files["report/plots/curve.csv"]["hash"]) == b"x,y\n1,2\n"
    assert lab.store.runs.get_run(child.info.run_id).info.parent_run_id == run_id

    # And read back through MLflow's client as MLflow would answer.
    fetched = client.get_run(run_id)
    assert fetched.info.run_name == "outer" and fetched.info.status == "FINISHED"
    assert fetched.info.lifecycle_stage == "active" and fetched.info.end_time >= fetched.info.start_time
    assert fetched.data.params == {"lr": "0.1", "layers": "3", "optimizer": "adam"}
    assert fetched.data.metrics["loss"] == pytest.approx(1 / 20)
    assert fetched.data.tags["mlflow.runName"] == "outer" and fetched.data.tags["stage"] == "dev"
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1 / (s + 1)) for s in range(20)]
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id)] == [
        ("config", True),
        ("notes.txt", False),
        ("report", True),
    ]
    assert [f.path for f in client.list_artifacts(run_id, "report")] == ["report/plots", "report/summary.txt"]
    downloaded = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="report", dst_path=tmp_path))
    assert (downloaded / "plots" / "curve.csv").read_text() == "x,y\n1,2\n"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config/settings.json") == {"seed": 7}
    assert client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == run_id
    children = mlflow.search_runs(
        experiment_names=["fluent"], filter_string=f"tags.mlflow.parentRunId = '{run_id}'", output_format="list"
    )
    assert [r.info.run_name for r in children] == ["inner"]


def test_mlflow_client_experiments_and_runs(client, lab):
    experiment_id = client.create_experiment("cl-alpha", tags={"owner": "ann"})
    with pytest.raises(mlflow.exceptions.MlflowException, match="already exists") as caught:
        client.create_experiment("cl-alpha")
    assert caught.value.error_code == "RESOURCE_ALREADY_EXISTS"
    client.create_experiment("cl-beta")
    assert client.get_experiment_by_name("cl-alpha").tags == {"owner": "ann"}
    assert client.get_experiment_by_name("no-such") is None
    found = client.search_experiments(filter_string="name LIKE 'cl-%'", order_by=["name DESC"])
    assert [e.name for e in found] == ["cl-beta", "cl-alpha"]
    client.set_experiment_tag(experiment_id, "purpose", "tests")
    assert client.search_experiments(filter_string="tags.purpose = 'tests'")[0].name == "cl-alpha"
    client.rename_experiment(experiment_id, "cl-renamed")
    assert client.get_experiment(experiment_id).name == "cl-renamed"

    run = client.create_run(experiment_id, run_name="batch", tags={"kind": "manual"})
    client.log_batch(
        run.info.run_id,
        metrics=[mlflow.entities.Metric("m", float(i), 1_700_000_000_000 + i, i) for i in range(50)],
        params=[mlflow.entities.Param("alpha", "0.5")],
        tags=[mlflow.entities.RunTag("note", "a batch")],
    )
    client.log_param(run.info.run_id, "alpha", "0.5")  # the same value again: accepted
    client.delete_tag(run.info.run_id, "kind")
    client.update_run(run.info.run_id, name="batch-renamed")
    client.set_terminated(run.info.run_id, "FAILED")
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.status == "FAILED" and fetched.info.run_name == "batch-renamed"
    assert "kind" not in fetched.data.tags and fetched.data.tags["note"] == "a batch"
    assert len(client.get_metric_history(run.info.run_id, "m")) == 50
    assert lab.store.runs.get_run(run.info.run_id).info.name == "batch-renamed"

    client.delete_run(run.info.run_id)
    assert client.search_runs([experiment_id]) == []
    deleted = client.search_runs([experiment_id], run_view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [run.info.run_id]
    assert deleted[0].info.lifecycle_stage == "deleted"
    client.restore_run(run.info.run_id)
    assert [r.info.run_name for r in client.search_runs([experiment_id])] == ["batch-renamed"]

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert "cl-renamed" not in [e.name for e in client.search_experiments()]
    with pytest.raises(mlflow.exceptions.MlflowException, match="active"):
        client.create_run(experiment_id)
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_default_experiment_and_basic_credentials(client, lab, monkeypatch):
    run = client.create_run("0", run_name="in-default")
    assert lab.store.runs.get_run(run.info.run_id).experiment == "Default"
    assert client.get_experiment("0").name == "Default"
    client.set_terminated(run.info.run_id)
    # MLFLOW_TRACKING_USERNAME/PASSWORD: the password is the lab's token.
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "anyone")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", lab.token)
    assert mlflow.MlflowClient(lab.mlflow_uri).get_run(run.info.run_id).info.run_name == "in-default"
    wrong = base64.b64encode(b"anyone:wrong").decode()
    response = requests.get(
        f"{lab.mlflow_uri}/api/2.0/mlflow/runs/get",
        params={"run_id": run.info.run_id},
        headers={"Authorization": f"Basic {wrong}"},
        timeout=30,
    )
    assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"


def test_bad_requests_answer_in_mlflow_s_error_shape_and_change_nothing(client, lab):
    run = client.create_run("0", run_name="target")
    run_id = run.info.run_id
    client.log_param(run_id, "kept", "1")

    def refused(response, status: int, code: str) -> str:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error_code"] == code, body
        return body["message"]

    batch = {"run_id": run_id, "params": [{"key": "new", "value": "x"}], "metrics": [{"key": "m", "value": "abc"}]}
    assert "metric 'm'" in refused(raw(lab, "POST", "mlflow/runs/log-batch", batch), 400, "INVALID_PARAMETER_VALUE")
    message = refused(
        raw(lab, "POST", "mlflow/runs/log-parameter", {"run_id": run_id, "key": "kept", "value": "2"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "Changing param values is not allowed" in message
    refused(raw(lab, "POST", "mlflow/runs/log-batch", data=b"{not json"), 400, "MALFORMED_REQUEST")
    refused(raw(lab, "POST", "mlflow/runs/log-batch", [1, 2]), 400, "MALFORMED_REQUEST")
    refused(raw(lab, "POST", "mlflow/runs/log-metric", {"run_id": "f" * 32, "key": "m", "value": 1}), 404,
            "RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    refused(raw(lab, "POST", "mlflow/runs/log-metric", {"run_id": "../../etc", "key": "m", "value": 1}), 404,
            "RESOURCE_DOES_NOT_EXIST")  # fmt: skip
    refused(raw(lab, "POST", "mlflow/runs/log-metric", {"run_id": run_id, "key": "../m", "value": 1}), 400,
            "INVALID_PARAMETER_VALUE")  # fmt: skip
    refused(raw(lab, "POST", "mlflow/runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "step": 2**70}),
            400, "INVALID_PARAMETER_VALUE")  # fmt: skip
    too_many = {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": i} for i in range(1001)]}
    assert "at most 1000" in refused(
        raw(lab, "POST", "mlflow/runs/log-batch", too_many), 400, "INVALID_PARAMETER_VALUE"
    )
    refused(raw(lab, "POST", "mlflow/no-such/endpoint", {}), 404, "ENDPOINT_NOT_FOUND")
    refused(raw(lab, "GET", "mlflow/runs/log-batch"), 405, "ENDPOINT_NOT_FOUND")
    refused(raw(lab, "POST", "mlflow/runs/search", {"filter": "metrics.m >>> 1"}), 400, "INVALID_PARAMETER_VALUE")
    refused(raw(lab, "POST", "mlflow/runs/search", {"page_token": "not-a-token"}), 400, "INVALID_PARAMETER_VALUE")
    refused(raw(lab, "GET", "mlflow/runs/get", params={"run_id": run_id}, token=None), 403, "PERMISSION_DENIED")
    refused(raw(lab, "GET", "mlflow/runs/get", params={"run_id": run_id}, token="forged"), 403, "PERMISSION_DENIED")
    upload = f"mlflow-artifacts/artifacts/1/{run_id}/artifacts/x.txt"
    refused(raw(lab, "PUT", upload, data=b"wrong experiment"), 404, "RESOURCE_DOES_NOT_EXIST")
    experiment_id = run.info.experiment_id
    escape = f"mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/a/%2E%2E/%2E%2E/escape.txt"
    refused(raw(lab, "PUT", escape, data=b"out"), 400, "INVALID_PARAMETER_VALUE")

    # Nothing of the refused calls was stored.
    record = lab.store.runs.get_run(run_id)
    assert record.params == {"kept": "1"} and record.metrics == {} and record.artifacts == []


# ---- searches, against a real MLflow server --------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    with start_mlflow_server(f"sqlite:///{root / 'mlflow.db'}", root / "server.log", root / "artifacts") as url:
        yield url


def _same_runs(uri: str, name: str = "search-compare") -> str:
    """The same experiment of runs on either server: params, metrics (some missing, one NaN), tags,
    distinct start times so both order ties alike."""
    client = mlflow.MlflowClient(uri)
    experiment_id = client.create_experiment(name)
    for i in range(30):
        run = client.create_run(experiment_id, run_name=f"r{i:02d}", start_time=1_700_000_000_000 + i * 1000)
        metrics = [mlflow.entities.Metric("loss", 1 / (i + 1), 1_700_000_000_000, 0)]
        if i % 3:
            metrics.append(mlflow.entities.Metric("acc", round((i * 37 % 17) / 17, 4), 1_700_000_000_000, 0))
        if i == 7:
            metrics.append(mlflow.entities.Metric("acc_nan", float("nan"), 1_700_000_000_000, 0))
        client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[mlflow.entities.Param("model", ["rf", "gbm", "lr"][i % 3]), mlflow.entities.Param("seed", str(i))],
            tags=[mlflow.entities.RunTag("group", "even" if i % 2 == 0 else "odd")],
        )
        client.set_terminated(run.info.run_id, "FAILED" if i % 10 == 9 else "FINISHED", end_time=1_700_000_100_000 + i)
    return experiment_id


SEARCHES = [
    (None, None),
    ("metrics.acc > 0.3", ["metrics.acc DESC"]),
    ("params.model = 'gbm'", ["metrics.loss ASC"]),
    ("tags.group = 'odd' and metrics.loss < 0.2", ["attributes.start_time ASC"]),
    ("attributes.status = 'FAILED'", None),
    ("attributes.run_name LIKE 'r1%'", ["metrics.acc ASC"]),
    ("params.model != 'rf'", ["params.model DESC", "metrics.loss DESC"]),
    (None, ["metrics.acc DESC"]),
    (None, ["attributes.run_name DESC"]),
    ("tags.mlflow.runName != 'r05'", ["attributes.end_time DESC"]),
]


def _search(uri: str, experiment_id: str, filter_string, order_by, page_size: int | None = None) -> list:
    client = mlflow.MlflowClient(uri)
    found, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string or "", order_by=order_by, max_results=page_size or 1000, page_token=token
        )
        found += [
            (
                r.info.run_name,
                r.info.status,
                {k: (None if v != v else v) for k, v in r.data.metrics.items()},
                r.data.params,
                r.data.tags.get("group"),
            )
            for r in page
        ]
        token = page.token
        if not token:
            return found


def test_searches_answer_as_mlflow_server_does(client, lab, mlflow_server, monkeypatch):
    ours = _same_runs(lab.mlflow_uri)
    theirs = _same_runs(mlflow_server)
    for filter_string, order_by in SEARCHES:
        expected = _search(mlflow_server, theirs, filter_string, order_by)
        assert expected, (filter_string, order_by)  # each search finds something
        assert _search(lab.mlflow_uri, ours, filter_string, order_by) == expected, (filter_string, order_by)
    # Pages of 7 give the same runs in the same order as one answer.
    assert _search(lab.mlflow_uri, ours, None, ["metrics.acc DESC"], page_size=7) == _search(
        mlflow_server, theirs, None, ["metrics.acc DESC"]
    )


def test_searches_answer_as_mlflow_server_does_on_postgresql(pg_url, mlflow_server, tmp_path, monkeypatch):
    """The same comparison with the lab's store on PostgreSQL (its own NULL and float ordering)."""
    (tmp_path / "notebooks").mkdir()
    lab = LabServer(tmp_path / "notebooks", {"MLOPS_LAB_DB_URL": pg_url, "MLOPS_LAB_ARTIFACTS": str(tmp_path / "a")})
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", lab.token)
        uri = f"{lab.url}/mlops-lab/mlflow"
        ours, theirs = _same_runs(uri, "search-compare-pg"), _same_runs(mlflow_server, "search-compare-pg")
        for filter_string, order_by in SEARCHES:
            expected = _search(mlflow_server, theirs, filter_string, order_by)
            assert _search(uri, ours, filter_string, order_by) == expected, (filter_string, order_by)
    finally:
        lab.stop()


def test_a_run_logged_by_mlflow_is_one_of_ours(client, lab):
    """The lab's own REST API (what the Runs panel reads) lists MLflow's runs beside the others."""
    mlflow.set_experiment("side-by-side")
    with mlflow.start_run(run_name="from-mlflow"):
        mlflow.log_metric("accuracy", 0.8)
    page = lab.api("GET", "runs?experiment=side-by-side")
    assert [r["name"] for r in page["runs"]] == ["from-mlflow"]
    assert page["runs"][0]["metrics"]["accuracy"] == 0.8


def test_mlflow_s_asynchronous_logging_lands_every_point(client, lab):
    """What docs/mlflow.md advises for speed: MLflow's client queues the calls and sends them as
    batches from a thread of its own; every point, param and tag arrives, in order."""
    mlflow.set_experiment("async-logging")
    with mlflow.start_run(run_name="async") as run:
        for step in range(300):
            mlflow.log_metric("loss", 1 / (step + 1), step=step, synchronous=False)
        mlflow.log_param("lr", 0.01, synchronous=False)
        mlflow.set_tag("phase", "train", synchronous=False).wait()
    mlflow.flush_async_logging()
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(step, 1 / (step + 1)) for step in range(300)]
    stored = lab.api("GET", f"runs/{run.info.run_id}")
    assert stored["params"] == {"lr": "0.01"} and stored["tags"]["phase"] == "train"
    assert stored["metrics"]["loss"] == 1 / 300


def test_a_quick_write_waits_for_a_busy_store_in_a_thread_while_the_lab_keeps_answering(client, lab):
    """log-metric, log-parameter and set-tag run on the lab's event loop (cheaper than a thread); when
    another writer (a kernel) holds the SQLite store, they wait in a thread: the lab does not freeze,
    and the value lands once the writer is done."""
    import sqlite3
    import threading

    run_id = client.create_run("0", run_name="busy-store").info.run_id
    holder = sqlite3.connect(lab.store.db.engine.url.database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    calls = [
        lambda: client.log_metric(run_id, "loss", 0.5, step=3),
        lambda: client.log_param(run_id, "lr", "0.1"),
        lambda: client.set_tag(run_id, "phase", "train"),
    ]
    logging = [threading.Thread(target=call) for call in calls]
    try:
        for thread in logging:
            thread.start()
        time.sleep(0.5)
        assert all(thread.is_alive() for thread in logging)  # waiting for the store, not refused
        started = time.monotonic()
        requests.get(f"{lab.url}/api/status", headers={"Authorization": f"token {lab.token}"}, timeout=5)
        assert time.monotonic() - started < 1  # the event loop is free
    finally:
        holder.commit()
        holder.close()
    for thread in logging:
        thread.join(timeout=30)
    record = lab.store.runs.get_run(run_id)
    assert record.metrics == {"loss": 0.5} and record.params == {"lr": "0.1"} and record.tags["phase"] == "train"


def test_basic_header_that_is_not_base64_is_refused(lab):
    headers = {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()[:-1] + "!"}
    response = requests.get(f"{lab.mlflow_uri}/api/2.0/mlflow/experiments/search", headers=headers, timeout=30)
    assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"


# ---- models MLflow logs -----------------------------------------------------------------------------


def _iris():
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True)
    return frame.data, frame.target


def test_a_scikit_learn_model_logged_by_mlflow_loads_back_and_registers_as_ours(client, lab, tmp_path):
    import numpy as np
    import onnxruntime
    from sklearn.linear_model import LogisticRegression

    from mlops_lab.config import StoreLocation
    from mlops_lab.workspace import Workspace

    X, y = _iris()
    estimator = LogisticRegression(max_iter=500).fit(X, y)
    mlflow.set_experiment("mlflow-models")
    with mlflow.start_run(run_name="logreg") as run:
        mlflow.log_metric("accuracy", estimator.score(X, y))
        info = mlflow.sklearn.log_model(estimator, name="model", input_example=X.head(3))
    run_id = run.info.run_id

    # MLflow's client reads it back, by the model's id and through the run.
    assert info.model_id.startswith("m-")
    loaded = mlflow.sklearn.load_model(f"models:/{info.model_id}")
    assert (loaded.predict(X) == estimator.predict(X)).all()
    assert (mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(X) == estimator.predict(X)).all()
    model = client.get_logged_model(info.model_id)
    assert model.status.to_proto() == mlflow.entities.LoggedModelStatus.READY.to_proto()
    assert model.source_run_id == run_id
    assert [m.model_id for m in client.search_logged_models([run.info.experiment_id])] == [info.model_id]
    assert [o.model_id for o in client.get_run(run_id).outputs.model_outputs] == [info.model_id]
    assert "MLmodel" in [f.path for f in client.list_logged_model_artifacts(info.model_id)]

    # It is one of the run's models: registered, converted to ONNX and verified like ml.log_model's.
    record = lab.store.runs.get_run(run_id)
    assert [(m["name"], m["flavor"]) for m in record.models] == [("model", "sklearn")]
    assert json.loads(record.models[0]["signature"])["input_columns"] == list(X.columns)
    workspace = Workspace(StoreLocation(lab.store.url, str(lab.artifacts.root), "test"))
    try:
        version = workspace.registry.register("iris-from-mlflow", run_id, "model")
        described = workspace.store.models.get_version("iris-from-mlflow", version)
        session = onnxruntime.InferenceSession(workspace.artifacts.get_bytes(described.onnx_hash))
        labels = session.run(None, {session.get_inputs()[0].name: X.to_numpy(dtype=np.float32)})[0]
        assert (labels == estimator.predict(X)).mean() > 0.99
        assert described.max_difference is not None
    finally:
        workspace.close()


def test_autolog_on_scikit_learn(client, lab):
    from sklearn.ensemble import RandomForestClassifier

    X, y = _iris()
    mlflow.set_experiment("autolog")
    mlflow.sklearn.autolog(log_input_examples=True)
    try:
        with mlflow.start_run(run_name="forest") as run:
            RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    fetched = client.get_run(run.info.run_id)
    assert fetched.data.params["n_estimators"] == "5" and fetched.data.params["max_depth"] == "3"
    assert fetched.data.metrics["training_accuracy_score"] > 0.9
    assert fetched.data.tags["estimator_name"] == "RandomForestClassifier"
    record = lab.store.runs.get_run(run.info.run_id)
    assert [m["flavor"] for m in record.models] == ["sklearn"]  # its model, ours too
    assert record.datasets and record.datasets[0]["direction"] == "input"  # the training data it logged


def test_logged_model_requests_are_checked(client, lab):
    run = client.create_run("0")
    experiment_id = run.info.experiment_id
    body = {"experiment_id": experiment_id, "name": "../x", "source_run_id": run.info.run_id}
    response = raw(lab, "POST", "mlflow/logged-models", body)
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    other = client.create_experiment("elsewhere")
    body = {"experiment_id": other, "name": "m", "source_run_id": run.info.run_id}
    assert raw(lab, "POST", "mlflow/logged-models", body).status_code == 400
    missing = "m-" + "0" * 32
    response = raw(lab, "GET", f"mlflow/logged-models/{missing}")
    assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    model = client.create_logged_model(experiment_id, name="m")
    response = raw(lab, "PATCH", f"mlflow/logged-models/{model.model_id}", {"status": "LOGGED_MODEL_DONE"})
    assert response.status_code == 400
    bad_filter = {"experiment_ids": [experiment_id], "filter": "metrics.x > 1; drop"}
    assert raw(lab, "POST", "mlflow/logged-models/search", bad_filter).status_code == 400
    assert (
        client.get_logged_model(model.model_id).status.to_proto()
        == mlflow.entities.LoggedModelStatus.PENDING.to_proto()
    )


def test_mlflow_s_registry_keeps_ours_and_its_rules(client, lab):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from mlops_lab.config import StoreLocation
    from mlops_lab.workspace import Workspace

    X, y = _iris()
    estimator = LogisticRegression(max_iter=500).fit(X, y)
    mlflow.set_experiment("mlflow-registry")
    with mlflow.start_run(run_name="to-register") as run:
        info = mlflow.sklearn.log_model(estimator, name="model", input_example=X.head(3))

    created = mlflow.register_model(f"models:/{info.model_id}", "iris-mlflow")
    assert created.version == "1" and created.run_id == run.info.run_id
    with pytest.raises(mlflow.exceptions.MlflowException) as caught:
        client.create_registered_model("iris-mlflow")
    assert caught.value.error_code == "RESOURCE_ALREADY_EXISTS"
    client.update_registered_model("iris-mlflow", description="iris, from MLflow")
    client.set_registered_model_tag("iris-mlflow", "team", "ds")
    client.update_model_version("iris-mlflow", "1", description="first")
    client.set_model_version_tag("iris-mlflow", "1", "validated", "yes")
    client.set_registered_model_alias("iris-mlflow", "champion", "1")

    # MLflow's client loads it by alias, through MLflow's own model format.
    loaded = mlflow.pyfunc.load_model("models:/iris-mlflow@champion")
    assert (loaded.predict(X) == estimator.predict(X)).all()
    model = client.get_registered_model("iris-mlflow")
    assert (
        model.description == "iris, from MLflow" and model.tags == {"team": "ds"} and model.aliases == {"champion": "1"}
    )
    version = client.get_model_version_by_alias("iris-mlflow", "champion")
    assert (version.description, version.tags) == ("first", {"validated": "yes"})
    assert version.source == f"models:/{info.model_id}"
    assert [v.version for v in client.search_model_versions("name='iris-mlflow'")] == ["1"]
    assert [m.name for m in client.search_registered_models("name LIKE 'iris-ml%'")] == ["iris-mlflow"]

    # It is a version of ours: converted to ONNX and checked against the estimator.
    ours = lab.store.models.get_version("iris-mlflow", 1)
    assert ours.onnx_hash and ours.max_difference is not None and ours.source == f"models:/{info.model_id}"

    # The registry's rules hold through MLflow's API: no Production without another person's approval.
    client.transition_model_version_stage("iris-mlflow", "1", "Staging")
    with pytest.raises(mlflow.exceptions.MlflowException, match="approval") as caught:
        client.transition_model_version_stage("iris-mlflow", "1", "Production")
    assert caught.value.error_code == "PERMISSION_DENIED"
    assert client.get_model_version("iris-mlflow", "1").current_stage == "Staging"
    workspace = Workspace(StoreLocation(lab.store.url, str(lab.artifacts.root), "test"))
    try:
        request = workspace.as_user("tester").registry.request_approval("iris-mlflow", 1)
        workspace.as_user("reviewer").registry.approve(request)
    finally:
        workspace.close()
    promoted = client.transition_model_version_stage("iris-mlflow", "1", "production")
    assert promoted.current_stage == "Production"
    assert [v.version for v in client.get_latest_versions("iris-mlflow", stages=["Production"])] == ["1"]
    with pytest.raises(mlflow.exceptions.MlflowException, match="Production"):
        client.delete_model_version("iris-mlflow", "1")
    history = [e["kind"] for e in lab.store.events.events("model", "iris-mlflow")]
    assert {"registered", "alias", "stage"} <= set(history)

    # Served by the lab from Production, as any registered version: ONNX on onnxruntime.
    from mlops_lab.serving.client import ServingClient

    started = lab.api(
        "POST", "deployments", {"model": "iris-mlflow@production", "name": "iris-mlflow", "log_sample": 0}
    )
    try:
        deadline = time.monotonic() + 90
        while lab.api("GET", "deployments/iris-mlflow")["state"] != "ready" and time.monotonic() < deadline:
            time.sleep(0.5)
        rows = X.head(60)  # within one request's batch size
        served = ServingClient(started["url"], "iris-mlflow").predict(rows.to_numpy(dtype=np.float32))
        assert (np.asarray(served).ravel() == estimator.predict(rows)).mean() > 0.98
    finally:
        lab.api("DELETE", "deployments/iris-mlflow")

    client.rename_registered_model("iris-mlflow", "iris-renamed")
    assert client.get_model_version("iris-renamed", "1").current_stage == "Production"
    client.delete_registered_model_alias("iris-renamed", "champion")
    assert client.get_registered_model("iris-renamed").aliases == {}
    assert np.isfinite(ours.max_difference)


def test_a_model_mlflow_cannot_hand_us_is_refused_clearly(client, lab):
    run = client.create_run("0")
    client.log_text(run.info.run_id, "not a model", "model/notes.txt")
    with pytest.raises(mlflow.exceptions.MlflowException, match="ONNX") as caught:
        client.create_model_version("nothing-here", f"runs:/{run.info.run_id}/model", run.info.run_id)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    response = raw(lab, "POST", "mlflow/model-versions/create", {"name": "x", "source": "s3://bucket/model"})
    assert response.status_code == 400 and "Unsupported model version source" in response.json()["message"]
    with pytest.raises(mlflow.exceptions.MlflowException) as caught:
        client.get_registered_model("nothing-here")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


# ---- at the team server's root ------------------------------------------------------------------------


@pytest.fixture
def team_server(pg_url, tmp_path):
    from tests.team import TeamServerThread

    server = TeamServerThread(pg_url, str(tmp_path / "blobs"), default_level="READ")
    yield server
    server.stop()


def test_mlflow_s_client_through_the_team_server_as_the_token_s_user(team_server, monkeypatch):

    alice, bob = team_server.token("alice"), team_server.token("bob")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.url)
    mlflow.set_tracking_uri(team_server.url)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", alice)
        mlflow.set_experiment("alice-exp")
        with mlflow.start_run(run_name="alice-run") as run:
            mlflow.log_params({"C": 1.0})
            mlflow.log_metric("accuracy", 0.9)
            mlflow.log_text("hello", "notes.txt")
        client = mlflow.MlflowClient(team_server.url)
        fetched = client.get_run(run.info.run_id)
        assert fetched.info.user_id == "alice" and fetched.data.metrics == {"accuracy": 0.9}
        assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes.txt") == "hello"

        # Bob may read (the default level) but not log into alice's experiment.
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", bob)
        client = mlflow.MlflowClient(team_server.url)
        assert client.get_run(run.info.run_id).info.run_name == "alice-run"
        with pytest.raises(mlflow.exceptions.MlflowException) as caught:
            client.log_metric(run.info.run_id, "accuracy", 0.1)
        assert caught.value.error_code == "PERMISSION_DENIED"
        assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.9}  # unchanged

        # Without a token: MLflow's UNAUTHENTICATED; a forged one too.
        for headers in ({}, {"Authorization": "Bearer mlt_forged"}):
            response = requests.get(
                f"{team_server.url}/api/2.0/mlflow/runs/get", params={"run_id": run.info.run_id}, headers=headers
            )
            assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"
        # Basic credentials carry the token as their password.
        response = requests.get(
            f"{team_server.url}/api/2.0/mlflow/runs/get", params={"run_id": run.info.run_id}, auth=("x", alice)
        )
        assert response.status_code == 200 and response.json()["run"]["info"]["user_id"] == "alice"
    finally:
        mlflow.set_tracking_uri(None)
    record = team_server.team.calls.store.runs.get_run(run.info.run_id)
    assert record.info.user == "alice" and record.params == {"C": "1.0"}


def test_mlflow_s_system_tags_are_our_columns_and_find_our_runs(client, lab):
    from mlops_lab.config import StoreLocation
    from mlops_lab.workspace import Workspace

    workspace = Workspace(StoreLocation(lab.store.url, str(lab.artifacts.root), "test"))
    try:
        ours = workspace.tracking.start_run("tracked-here", experiment="system-tags")
        workspace.tracking.end_run(run=ours)
        workspace.flush()
    finally:
        workspace.close()
    experiment = client.get_experiment_by_name("system-tags").experiment_id
    found = client.search_runs([experiment], "tags.mlflow.runName = 'tracked-here'")
    assert [r.info.run_id for r in found] == [ours.id]
    assert found[0].data.tags["mlflow.user"] == found[0].info.user_id
    # Set through MLflow's tags, they change the run's columns, not a second copy.
    run = client.create_run(experiment, run_name="first-name")
    client.set_tag(run.info.run_id, "mlflow.runName", "second-name")
    record = lab.store.runs.get_run(run.info.run_id)
    assert record.info.name == "second-name" and "mlflow.runName" not in record.tags
    ordered = client.search_runs([experiment], order_by=["tags.mlflow.runName ASC"])
    assert [r.info.run_name for r in ordered] == ["second-name", "tracked-here"]
    response = raw(lab, "POST", "mlflow/runs/delete-tag", {"run_id": run.info.run_id, "key": "mlflow.runName"})
    assert response.status_code == 400 and "run_name" in response.json()["message"]
