"""What ``%%track`` records from a cell, through a real kernel (nbclient): failed cells, loops as
curves, sweeps as child runs, configs, pipelines' hyperparameters, tracebacks, dataset schemas."""

from __future__ import annotations

import io
import json
import re
import warnings

import nbformat
import polars as pl
import pytest
from nbclient import NotebookClient

import mlops_lab as ml
from mlops_lab.errors import ConflictError
from mlops_lab.store import open_store
from mlops_lab.tracking.checkout import ReproducibilityWarning
from mlops_lab.workspace import default_workspace

pytestmark = pytest.mark.timeout(300)

SETUP = """
%load_ext mlops_lab
import mlops_lab as ml
import numpy as np
from sklearn.datasets import load_wine
X, y = load_wine(return_X_y=True)
"""


def execute(cells: list[str], tmp_path, monkeypatch, *, allow_errors: bool = False):
    """Run the cells in one kernel against a store in ``tmp_path``; return the notebook and the store."""
    db_url = f"sqlite:///{tmp_path / 'capture.db'}"
    monkeypatch.setenv("MLOPS_LAB_DB_URL", db_url)
    monkeypatch.setenv("MLOPS_LAB_ARTIFACTS", str(tmp_path / "artifacts"))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in [SETUP, *cells]])
    client = NotebookClient(
        notebook, timeout=240, kernel_name="python3", allow_errors=allow_errors,
        resources={"metadata": {"path": str(tmp_path)}},
    )  # fmt: skip
    client.execute()
    ml.set_store(db_url, str(tmp_path / "artifacts"))
    return notebook, open_store(db_url)


def runs_by_name(store) -> dict:
    runs, *_ = store.runs.search_runs(order_by="attributes.start_time")
    return {r["name"]: store.runs.get_run(r["id"]) for r in runs}


def errors_of(notebook) -> list[dict]:
    return [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]


def test_a_failed_cell_records_only_what_it_bound_and_its_model_is_not_registered_by_accident(tmp_path, monkeypatch):
    notebook, store = execute(
        [
            """
%%track --name good
from sklearn.tree import DecisionTreeClassifier
max_depth = 6
clf = DecisionTreeClassifier(max_depth=max_depth, random_state=0).fit(X, y)
accuracy = clf.score(X, y)
""",
            """
%%track --name broken
max_depth = 2
clf = DecisionTreeClassifier(max_depth=max_depth, random_state=0).fit(X, y)
ratio = 1 / 0
accuracy = clf.score(X, y)
""",
        ],
        tmp_path,
        monkeypatch,
        allow_errors=True,
    )
    broken = runs_by_name(store)["broken"]
    assert broken.info.status == "FAILED" and "ZeroDivisionError" in broken.info.error
    assert broken.params["max_depth"] == "2" and broken.params["clf.max_depth"] == "2"  # was: clf.max_depth=6
    assert "accuracy" not in broken.metrics and "ratio" not in broken.metrics  # was: the good cell's accuracy
    [model] = broken.models
    assert model["name"] == "clf"
    with pytest.raises(ConflictError, match="FAILED"):
        ml.register("wine", broken.info.id, "clf")
    assert ml.register("wine", broken.info.id, "clf", allow_failed=True) == 1  # asked for explicitly
    # The traceback is the user's: the real cell number, no frames of the magic.
    [error] = errors_of(notebook)
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error["traceback"]))  # without colours
    assert "Cell In[3], line 3" in text and "ratio = 1 / 0" in text
    assert "run_tracked_cell" not in text and "Cell In[0]" not in text and "__mlops_lab_" not in text


def test_loops_are_curves_and_the_loop_variable_is_the_step(tmp_path, monkeypatch):
    notebook, store = execute(
        [
            """
%%track --name training
epochs = 40
learning_rate = 0.5
history = []
weight = 10.0
for epoch in range(epochs):
    gradient = 2 * weight
    weight -= learning_rate * gradient * 0.1
    loss = weight ** 2
    if epoch % 10 == 0:
        val_loss = loss * 1.1
    history.append(loss)
final = loss
""",
            """
%%track --name counting
i = 0
while i < 5:
    i += 1
    doubled = i * 2
""",
            "points = ml.get_metric_history(ml.search_runs(filter_string=\"attributes.run_name = 'training'\").run_id[0], 'loss')\n"
            "print(len(points), points[0].step, points[-1].step, type(points[0]).__name__)",
        ],
        tmp_path,
        monkeypatch,
    )
    assert notebook.cells[-1].outputs[0]["text"] == "40 0 39 MetricPoint\n"  # ml.get_metric_history
    run = runs_by_name(store)["training"]
    assert run.params == {"epochs": "40", "learning_rate": "0.5"}  # not history, not weight, not epoch
    loss = store.runs.metric_history(run.info.id, "loss")
    assert [step for step, _, _ in loss] == list(range(40))  # one point per iteration
    assert loss[0][2] == pytest.approx(81.0) and loss[-1][2] < loss[0][2]
    assert [step for step, _, _ in store.runs.metric_history(run.info.id, "val_loss")] == [0, 10, 20, 30]
    assert len(store.runs.metric_history(run.info.id, "history")) == 40  # an accumulator: a series
    assert "epoch" not in run.metrics and "epoch" not in run.params
    assert run.metrics["final"] == pytest.approx(loss[-1][2])
    weight = store.runs.metric_history(run.info.id, "weight")
    assert len(weight) == 40  # bound before the loop (10.0) and in it: only the loop's curve
    counting = runs_by_name(store)["counting"]
    assert [v for _, _, v in store.runs.metric_history(counting.info.id, "doubled")] == [2, 4, 6, 8, 10]


def test_a_sweep_is_a_parent_with_one_child_run_per_trial(tmp_path, monkeypatch):
    notebook, store = execute(
        [
            """
%%track --name svc-sweep
from sklearn.svm import SVC
kernel = "rbf"
for C in [0.1, 1.0, 10.0]:
    clf = SVC(C=C, kernel=kernel).fit(X, y)
    score = clf.score(X, y)
best = max([0.1, 1.0, 10.0])
""",
            "ml.flush()\nprint('later')",
        ],
        tmp_path,
        monkeypatch,
    )
    # skl2onnx warns while converting an SVC on the writer thread: into the run, not a later cell.
    assert [o.get("text") for o in notebook.cells[-1].outputs] == ["later\n"]
    runs = runs_by_name(store)
    parent = runs["svc-sweep"]
    children = [r for r in runs.values() if r.info.parent_run_id == parent.info.id]
    assert sorted(r.params["C"] for r in children) == ["0.1", "1.0", "10.0"]
    assert {r.info.name for r in children} == {"svc-sweep-C=0.1", "svc-sweep-C=1.0", "svc-sweep-C=10.0"}
    for child in children:
        assert child.params["clf.C"] == child.params["C"] and child.params["clf.kernel"] == "rbf"
        assert 0 < child.metrics["score"] <= 1 and [m["name"] for m in child.models] == ["clf"]
        assert child.info.status == "FINISHED"
    scores = {r.params["C"]: r.metrics["score"] for r in children}
    assert scores["10.0"] > scores["0.1"]  # each child kept its own model's score
    assert "C" not in parent.params and "C" not in parent.metrics and "score" not in parent.metrics
    assert parent.models == [] and parent.params["kernel"] == "rbf" and parent.metrics["best"] == 10
    logs = [a for child in children for a in child.artifacts if a["path"] == "clf.conversion.txt"]
    assert logs and b"probA_" in default_workspace().artifacts.get_bytes(logs[0]["hash"])


def test_configs_are_flattened_and_pipelines_log_their_steps_hyperparameters(tmp_path, monkeypatch):
    _, store = execute(
        [
            """
from dataclasses import dataclass
import argparse
import pandas as pd

@dataclass
class Train:
    lr: float = 0.1
    layers: tuple = (64, 32)
""",
            """
%%track --name configured
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.linear_model import LogisticRegression
config = {"lr": 0.1, "epochs": 5, "optimizer": {"name": "adam", "beta": 0.9}}
train = Train(lr=0.01)
args = argparse.Namespace(seed=7, data="wine")
pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=500)).fit(X, y)
scores = {"accuracy": pipe.score(X, y), "rows": len(y)}
""",
            """
frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
subset = frame[frame.a > 13]
""",
            """
%%track --name subset
mean_a = subset["a"].mean()
""",
        ],
        tmp_path,
        monkeypatch,
    )
    runs = runs_by_name(store)
    params = runs["configured"].params
    assert params["config.lr"] == "0.1" and params["config.epochs"] == "5"
    assert params["config.optimizer.name"] == "adam" and params["config.optimizer.beta"] == "0.9"
    assert "config" not in params
    assert params["train.lr"] == "0.01" and params["train.layers"] == "(64, 32)"
    assert params["args.seed"] == "7" and params["args.data"] == "wine"
    assert params["pipe.logisticregression__C"] == "0.3" and params["pipe.standardscaler__with_mean"] == "True"
    assert runs["configured"].metrics["scores.accuracy"] > 0.9 and runs["configured"].metrics["scores.rows"] == 178
    [dataset] = runs["subset"].datasets
    assert set(json.loads(dataset["columns"])) == {"a", "b", "c"}  # was: a column "None" for the index


def test_track_works_in_a_new_kernel_without_load_ext_and_can_be_turned_off(tmp_path, monkeypatch):
    cell = "%%track --name no-setup\nrows = 10\nscore = rows / 4"
    monkeypatch.setenv("MLOPS_LAB_DB_URL", f"sqlite:///{tmp_path / 'zero.db'}")
    monkeypatch.setenv("MLOPS_LAB_ARTIFACTS", str(tmp_path / "artifacts"))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()  # no %load_ext anywhere
    run = runs_by_name(open_store(f"sqlite:///{tmp_path / 'zero.db'}"))["no-setup"]
    assert run.params == {"rows": "10"} and run.metrics == {"score": 2.5}

    monkeypatch.setenv("MLOPS_LAB_AUTOLOAD", "0")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True).execute()
    assert "Cell magic `%%track` not found" in notebook.cells[0].outputs[0]["text"]  # IPython's UsageError
    cells = [nbformat.v4.new_code_cell("%load_ext mlops_lab"), nbformat.v4.new_code_cell(cell)]
    NotebookClient(nbformat.v4.new_notebook(cells=cells), timeout=120, kernel_name="python3").execute()  # still works


def test_seeds_are_params_and_unseeded_randomness_is_said_and_warned_of(tmp_path, monkeypatch):
    _, store = execute(
        [
            "from numpy.random import default_rng\nfrom sklearn.ensemble import RandomForestClassifier",
            """
%%track --name seeded
from sklearn.tree import DecisionTreeClassifier
np.random.seed(3)
rng = np.random.default_rng(11)
noise = float(rng.normal(size=5).sum())
clf = DecisionTreeClassifier(random_state=5).fit(X, y)
""",
            """
%%track --name left-to-chance
g = default_rng()
value = float(g.random())
order = np.random.permutation(10)
forest = RandomForestClassifier(n_estimators=3, n_jobs=2).fit(X, y)
""",
        ],
        tmp_path,
        monkeypatch,
    )
    runs = runs_by_name(store)
    seeded = runs["seeded"]
    assert {k: v for k, v in seeded.params.items() if k.startswith("seed.")} == {
        "seed.numpy": "3", "seed.numpy_rng": "11", "seed.clf": "5"
    }  # fmt: skip
    assert seeded.tags["reproducibility"] == "seeded"
    chance = runs["left-to-chance"]
    said = chance.tags["reproducibility"]
    assert said.startswith("unseeded") and "numpy global generator" in said
    assert "numpy_rng made without a seed" in said and "forest.random_state is None" in said  # through the import
    assert "threads (forest.n_jobs=2)" in chance.tags["nondeterminism"]
    with pytest.warns(ReproducibilityWarning, match="not expected to reproduce"):
        ml.checkout(chance.info.id, tmp_path / "again")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ml.checkout(seeded.info.id, tmp_path / "seeded-again")  # no warning for a seeded run


def test_figures_a_cell_shows_are_logged_with_the_run(tmp_path, monkeypatch):
    notebook, store = execute(
        [
            """
%%track --name drawn
import matplotlib.pyplot as plt
import plotly.graph_objects as go
from PIL import Image
plt.plot([1, 2, 3])
plt.title("left open: the inline backend shows it after the cell")
go.Figure(go.Bar(y=[1, 3, 2])).show()
display(Image.new("RGB", (8, 8), "red"))
""",
            """
%%track --name value
go.Figure(go.Scatter(y=[3, 1, 2]))
""",
        ],
        tmp_path,
        monkeypatch,
    )
    runs = runs_by_name(store)
    blobs = default_workspace().artifacts
    drawn = {a["path"]: blobs.get_bytes(a["hash"]) for a in runs["drawn"].artifacts if a["path"].startswith("figures/")}
    assert sorted(drawn) == ["figures/figure-1.plotly.json", "figures/figure-2.png", "figures/figure-3.png"]
    assert json.loads(drawn["figures/figure-1.plotly.json"])["data"][0]["type"] == "bar"
    assert all(data.startswith(b"\x89PNG") for path, data in drawn.items() if path.endswith(".png"))
    [value] = [a for a in runs["value"].artifacts if a["path"].startswith("figures/")]
    assert json.loads(blobs.get_bytes(value["hash"]))["data"][0]["type"] == "scatter"
    assert any("image/png" in o.get("data", {}) for o in notebook.cells[1].outputs)  # still shown in the notebook


def test_log_figure_keeps_matplotlib_plotly_and_images_and_refuses_the_rest(tracker):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    from mlops_lab.errors import InvalidInputError

    figure = plt.figure()
    plt.plot([0, 1])
    with ml.start_run() as run:
        ml.log_figure(figure, "plots/line.png")
        ml.log_figure(go.Figure(go.Bar(y=[1])), "plots/bar.json")
        ml.log_figure(go.Figure(go.Bar(y=[1])), "plots/bar.html")
        with pytest.raises(InvalidInputError, match="saved as .png"):
            ml.log_figure(figure, "plots/line.json")
        with pytest.raises(TypeError, match="log_figure takes"):
            ml.log_figure({"not": "a figure"}, "plots/x.png")
    paths = sorted(a["path"] for a in ml.get_run(run.id).artifacts)
    assert paths == ["plots/bar.html", "plots/bar.json", "plots/line.png"]


def test_many_files_read_are_one_folder_version_and_frames_are_hashed_once(tmp_path, monkeypatch):
    shards = tmp_path / "shards"
    (shards / "train").mkdir(parents=True)
    (shards / "valid").mkdir()
    for i in range(300):
        (shards / ("train" if i % 3 else "valid") / f"part-{i:03d}.csv").write_text(f"x,y\n{i},{i % 2}\n")
    (tmp_path / "labels.csv").write_text("id,label\n1,a\n")
    loader = f"""
%%track --name loader
import os, glob
rows = 0
for path in sorted(glob.glob({str(shards)!r} + "/*/*.csv")):
    with open(path) as handle:
        rows += len(handle.read().splitlines()) - 1
labels = pd.read_csv({str(tmp_path / "labels.csv")!r})
"""
    _, store = execute(
        [
            "import pandas as pd\nframe = pd.DataFrame({'a': range(1000), 'b': [0.5] * 1000})",
            loader,
            "%%track --name first\ntotal = frame['a'].sum()",
            "%%track --name again\ntotal = frame['a'].sum()",
            "frame.loc[3, 'a'] = -1",
            "%%track --name changed\ntotal = frame['a'].sum()",
        ],
        tmp_path,
        monkeypatch,
    )
    runs = runs_by_name(store)
    by_name = {d["name"]: d for d in runs["loader"].datasets}
    assert set(by_name) == {"shards", "labels.csv"}  # 300 files read: one version of the folder
    assert by_name["shards"]["format"] == "files" and by_name["shards"]["num_rows"] == 300
    manifest = default_workspace().artifacts.get_manifest(by_name["shards"]["hash"])
    assert len(manifest) == 300 and "train/part-001.csv" in manifest and "valid/part-000.csv" in manifest
    restored = ml.checkout(runs["loader"].info.id, tmp_path / "restored").parent
    assert (restored / "shards" / "valid" / "part-003.csv").read_text() == "x,y\n3,1\n"
    frames = {
        name: [d["hash"] for d in runs[name].datasets if d["name"] == "frame"] for name in ("first", "again", "changed")
    }
    assert frames["first"] == frames["again"] and len(frames["first"]) == 1  # the unchanged frame: one version
    assert frames["changed"] != frames["first"]  # an in-place change is a new version


def test_a_frame_changed_right_after_a_tracked_cell_read_it_is_recorded_as_it_was(tracker):
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mlops_lab")
    shell.user_ns["frame"] = pd.DataFrame({"a": range(10)})
    shell.run_cell("%%track --name read\ntotal = frame['a'].sum()").raise_error()
    shell.run_cell("frame.loc[0, 'a'] = 100").raise_error()  # before the writer thread reads it
    ml.flush()
    [run] = [ml.get_run(i) for i in ml.search_runs().run_id]
    stored = default_workspace().artifacts.get_bytes(run.datasets[0]["hash"])
    assert pl.read_ipc(io.BytesIO(stored))["a"].to_list() == list(range(10))  # what the cell read


def test_a_running_cell_shows_its_run_live_and_the_store_has_its_latest_values(tmp_path, monkeypatch):
    notebook, store = execute(
        [
            """
%%track --name live
import time
_seen = None
for epoch in range(30):
    loss = 1 / (epoch + 1)
    time.sleep(0.06)
    if epoch == 25:  # more than a second in: the finished iterations' points are in the store
        _run = ml.get_run(ml.active_run().id)
        _seen = (_run.info.status, _run.metrics.get("loss"))
""",
            "print(_seen)",
            "%%track --quiet --name silent\nx = 1",
        ],
        tmp_path,
        monkeypatch,
    )
    status, latest = eval(notebook.cells[2].outputs[0]["text"])
    assert status == "RUNNING" and latest is not None and latest < 1  # the Runs panel shows it as it runs
    [output] = [o for o in notebook.cells[1].outputs if "text/html" in o.get("data", {})]
    shown = output["data"]["text/html"]  # the last state stays in the saved notebook
    assert "FINISHED" in shown and "<b>live</b>" in shown and "<svg" in shown and "loss" in shown
    assert "data-commandlinker-command='mlops-lab:open-run'" in shown and "1 metric" in shown
    assert not [o for o in notebook.cells[3].outputs if "text/html" in o.get("data", {})]  # --quiet
    assert [s for s, _, _ in store.runs.metric_history(runs_by_name(store)["live"].info.id, "loss")] == list(range(30))


def test_pytorch_xgboost_and_lightgbm_models_are_captured_converted_registered_and_served(tmp_path, monkeypatch):
    notebook, store = execute(
        [
            """
%%track --name xgb --quiet
from xgboost import XGBClassifier
booster = XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
accuracy = booster.score(X, y)
""",
            """
%%track --name lgbm --quiet
from lightgbm import LGBMClassifier
gbm = LGBMClassifier(n_estimators=20, verbose=-1, random_state=0).fit(X, y)
accuracy = gbm.score(X, y)
""",
            """
%%track --name torch --quiet
import torch
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(13, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
inputs, labels = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32), torch.tensor(y)
for epoch in range(40):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(inputs), labels)
    loss.backward()
    optimizer.step()
""",
            "import time; time.sleep(0.5); ml.flush(); print('after')",
        ],
        tmp_path,
        monkeypatch,
    )
    assert [o.get("text") for o in notebook.cells[-1].outputs] == ["after\n"]  # no exporter chatter in a later cell
    runs = runs_by_name(store)
    import numpy as np
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    for run_name, model, rows in (
        ("xgb", "booster", X),
        ("lgbm", "gbm", X),
        ("torch", "net", (X - X.mean(0)) / X.std(0)),
    ):
        run = runs[run_name]
        [logged] = run.models
        assert logged["name"] == model and logged["onnx_hash"], logged["onnx_error"]
        version = ml.register(f"wine-{run_name}", run.info.id, model, sample_rows=rows[:64])  # verified
        predicted = ml.load_model(f"wine-{run_name}/{version}").predict(rows)
        labels = predicted if predicted.ndim == 1 else predicted.argmax(axis=1)
        assert (labels == y).mean() > 0.9, run_name
    torch_run = runs["torch"]
    assert torch_run.params["seed.torch"] == "0" and torch_run.params["net.parameters"] == "275"
    assert [s for s, _, _ in store.runs.metric_history(torch_run.info.id, "loss")] == list(range(40))
    assert runs["xgb"].params["booster.max_depth"] == "3" and runs["xgb"].params["seed.booster"] == "0"
    served = ml.serve("wine-torch/1", name="wine-torch", log_sample=0)
    try:
        scores = served.predict(((X - X.mean(0)) / X.std(0))[:5].astype(np.float32))
        assert scores.shape == (5, 3) and (scores.argmax(axis=1) == y[:5]).all()
    finally:
        served.stop()
