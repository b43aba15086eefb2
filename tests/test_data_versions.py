"""Data versions: hashing with the state cache, checkout of a run, dataset diffs."""

from __future__ import annotations

import os

import mlops_lab as ml
from mlops_lab.artifacts import sha256_file
from mlops_lab.tracking.capture import cached_file_hash


def test_unchanged_files_are_not_read_again(workspace, tracker, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(1 << 20) * 8)
    first = cached_file_hash(workspace.store.file_state, path)
    assert first == sha256_file(path)
    # Same size and modification time, other bytes: the cache answers without reading the file,
    # which is how it makes the second hash of a large file cost a stat and a lookup.
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.write(b"X")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cached_file_hash(workspace.store.file_state, path) == first
    # A real change (a new modification time) is hashed again.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert cached_file_hash(workspace.store.file_state, path) == sha256_file(path) != first


def test_logged_files_use_the_cache(workspace, tracker, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    with ml.start_run() as run:
        ml.log_dataset(data)
        ml.log_artifact(data, "copy.csv")
    record = ml.get_run(run.id)
    assert record.datasets[0]["hash"] == record.artifacts[0]["hash"] == sha256_file(data)
    info = data.stat()
    key = (str(data.resolve()), info.st_ino, info.st_mtime_ns, info.st_size)
    assert workspace.store.file_state.file_hashes([key]) == {key[0]: sha256_file(data)}


CELL = """
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
n_estimators = 25
frame = pd.read_csv("train.csv")
model = RandomForestClassifier(n_estimators=n_estimators, random_state=7).fit(frame[["a", "b"]], frame["y"])
accuracy = model.score(frame[["a", "b"]], frame["y"])
"""


def test_checkout_restores_a_run_that_re_runs_to_the_same_metrics(tracker, tmp_path, monkeypatch):
    import nbformat
    import numpy as np
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell
    from nbclient import NotebookClient

    work = tmp_path / "work"
    work.mkdir()
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "y": rng.integers(0, 2, 300)}).to_csv(
        work / "train.csv", index=False
    )
    monkeypatch.chdir(work)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mlops_lab")
    shell.run_cell_magic("track", "--experiment repro --name forest", CELL)
    original = ml.search_runs("repro").iloc[0]

    restored = tmp_path / "restored"
    notebook_path = ml.checkout(original.run_id, restored)
    assert sorted(p.name for p in restored.iterdir()) == [
        "forest.ipynb",
        "models",
        "requirements.txt",
        "run.json",
        "train.csv",
    ]
    assert (restored / "models" / "model.pkl").exists() and (restored / "models" / "model.onnx").exists()
    assert "scikit-learn==" in (restored / "requirements.txt").read_text()

    monkeypatch.setenv("MLOPS_LAB_DB_URL", tracker.runs.url)
    monkeypatch.setenv("MLOPS_LAB_ARTIFACTS", tracker.artifacts.root)
    notebook = nbformat.read(notebook_path, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(restored)}}
    ).execute()
    rerun = ml.search_runs("repro-reproduced").iloc[0]
    assert rerun["metrics.accuracy"] == original["metrics.accuracy"]
    assert rerun["tags.reproduces"] == original.run_id
    assert rerun["params.n_estimators"] == "25"

    import pytest

    with pytest.raises(FileExistsError, match="not an empty folder"):
        ml.checkout(original.run_id, restored)


def test_dataset_diff_schema_rows_keys_and_drift(tracker):
    import numpy as np
    import pandas as pd
    import pytest

    from mlops_lab.monitoring import DriftError

    rng = np.random.default_rng(1)
    old = pd.DataFrame({"id": range(1000), "x": rng.normal(size=1000), "city": rng.choice(["a", "b"], 1000), "gone": 1})
    new = pd.DataFrame(
        {"id": range(100, 1150), "x": rng.normal(1.0, 1, size=1050), "city": rng.choice(["a", "b"], 1050), "extra": 2.0}
    )
    new["gone"] = "1"  # same column, another dtype
    with ml.start_run() as run:
        ml.log_dataset(old, "v1")
        ml.log_dataset(new, "v2")
    hashes = {d["name"]: d["hash"] for d in ml.get_run(run.id).datasets}
    diff = ml.dataset_diff(hashes["v1"], hashes["v2"], key="id")
    assert diff["rows"] == {"left": 1000, "right": 1050, "change": 50}
    assert diff["columns_added"] == ["extra"] and diff["columns_removed"] == []
    assert diff["dtype_changes"] == {"gone": {"left": "Int64", "right": "String"}}
    assert diff["keys"]["added"] == 150 and diff["keys"]["removed"] == 100
    assert diff["keys"]["added_sample"][0] == {"id": 1000} and diff["keys"]["duplicated_left"] == 0
    drifted = {c["column"]: c["drift"] for c in diff["drift"]["columns"]}
    assert drifted == {"x": True, "city": False}
    with pytest.raises(DriftError, match="key column"):
        ml.dataset_diff(hashes["v1"], hashes["v2"], key="nope")


def test_dataset_versions_keep_a_small_preview(tracker, tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"a": range(100), "text": ["x" * 500] * 100})
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    with ml.start_run() as run:
        ml.log_dataset(frame, "frame")
        ml.log_dataset(path)
    previews = {d["name"]: d["preview"] for d in ml.get_run(run.id).to_dict()["datasets"]}
    assert [row["a"] for row in previews["frame"]] == [0, 1, 2, 3, 4]
    assert len(previews["frame"][0]["text"]) == 100  # long values are shortened
    assert previews["rows.csv"][0]["a"] == 0


def test_names_that_are_paths_are_refused_when_logged(tracker):
    import pandas as pd
    import pytest
    from sklearn.linear_model import LinearRegression

    from mlops_lab.errors import InvalidInputError

    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [2.0, 4.0]})
    for bad in ("..", ".", "../../.bashrc", "/etc/passwd", "a\\b"):
        with pytest.raises(InvalidInputError, match="becomes a file name"):
            ml.start_run(bad)
    with ml.start_run("fine") as run:
        for bad in ("..", "../x", "/abs"):
            with pytest.raises(InvalidInputError, match="becomes a file name"):
                ml.log_dataset(frame, bad)
            with pytest.raises(InvalidInputError, match="becomes a file name"):
                ml.log_model(LinearRegression().fit(frame[["x"]], frame["y"]), bad)
        ml.log_metric("m", 1.0)  # the run goes on
    ml.flush()
    assert ml.get_run(run.id).metrics == {"m": 1.0}


def test_checkout_of_an_old_store_with_path_names_writes_only_inside_its_folder(workspace, tmp_path):
    """Names written by an older version (or straight into the database) are made file names on the way out."""
    import json

    from mlops_lab.store import Batch, now_ms

    runs, blobs = workspace.store.runs, workspace.artifacts
    experiment = runs.get_or_create_experiment("evil", "mallory")
    run_id, now = "e" * 32, now_ms()
    data = blobs.put_bytes(b"x\n1\n")
    model = blobs.put_bytes(b"not a pickle")
    runs.write(
        Batch(
            runs=[
                {
                    "id": run_id,
                    "experiment_id": experiment,
                    "name": "../../../pwned",
                    "status": "FINISHED",
                    "user": "mallory",
                    "start_time": now,
                    "end_time": now,
                    "source": "x = 1",
                    "host": "h",
                    "pid": 1,
                    "heartbeat_at": now,
                }
            ],
            datasets=[
                {"hash": data, "format": "csv", "num_rows": 1, "num_bytes": 4, "columns": "{}", "created_at": now}
            ],
            run_datasets=[
                {"run_id": run_id, "dataset_hash": data, "direction": "input", "name": "..", "source": "s"},
                {"run_id": run_id, "dataset_hash": data, "direction": "input", "name": "/tmp/abs", "source": "s"},
            ],
            models=[
                {
                    "run_id": run_id,
                    "name": "../../.bashrc",
                    "flavor": "sklearn",
                    "model_hash": model,
                    "onnx_hash": None,
                    "signature": json.dumps({}),
                    "onnx_error": None,
                    "created_at": now,
                }
            ],
        )
    )
    into = tmp_path / "a" / "b" / "into"
    before = {p for p in tmp_path.rglob("*")}
    notebook = ml.checkout(run_id, into)
    written = {p for p in tmp_path.rglob("*")} - before
    assert written and all(p == into or p.is_relative_to(into) for p in written if not into.is_relative_to(p))
    assert notebook.parent == into and (into / "models" / ".._.._.bashrc.pkl").read_bytes() == b"not a pickle"
    assert (into / "_..").read_bytes() == (into / "_tmp_abs").read_bytes() == b"x\n1\n"
