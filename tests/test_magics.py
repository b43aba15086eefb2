"""``%%track`` and ``%track on|off`` on a real IPython shell (no kernel needed)."""

from __future__ import annotations

import time

import pytest
from IPython.core.error import UsageError

import mlops_lab as ml
from mlops_lab.workspace import default_workspace


@pytest.fixture
def ip(tracker):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mlops_lab")
    shell.user_ns.clear()
    shell.user_ns.update({"__name__": "__main__"})
    yield shell
    shell.run_line_magic("track", "off")


def latest_run():
    frame = ml.search_runs(order_by="attributes.start_time DESC", max_results=1)
    return ml.get_run(frame.run_id[0])


CELL = """
import pandas as pd
from sklearn.linear_model import LogisticRegression
C = 0.5
solver = "lbfgs"
layers = [16, 8]
frame = pd.read_csv(path)
model = LogisticRegression(C=C, solver=solver).fit(frame[["x"]], frame["y"])
accuracy = model.score(frame[["x"]], frame["y"])
n_rows = len(frame)
print("trained on", n_rows)
accuracy * 100
"""


def test_track_cell_records_params_metrics_model_data_stdout(ip, tmp_path, capsys):
    data = tmp_path / "train.csv"
    data.write_text("x,y\n0,0\n1,1\n2,0\n3,1\n4,1\n")
    ip.user_ns["path"] = str(data)
    result = ip.run_cell_magic("track", "--experiment magic --name lr-run --tag team=ds --tag stage=dev", CELL)
    assert result == pytest.approx(ip.user_ns["accuracy"] * 100)  # the last expression is still the cell's value
    assert "trained on 5" in capsys.readouterr().out  # output still reaches the notebook
    run = latest_run()
    assert run.info.name == "lr-run" and run.experiment == "magic" and run.info.status == "FINISHED"
    assert run.params["C"] == "0.5" and run.params["solver"] == "lbfgs" and run.params["layers"] == "[16, 8]"
    assert run.params["model.C"] == "0.5"  # the estimator's own hyperparameters
    assert run.metrics["accuracy"] == pytest.approx(ip.user_ns["accuracy"]) and run.metrics["n_rows"] == 5
    assert "frame" not in run.params and "path" not in run.params
    assert run.tags == {"team": "ds", "stage": "dev"}
    assert run.info.source.strip().startswith("import pandas") and run.info.source_hash
    [model] = run.models
    assert model["name"] == "model" and model["flavor"] == "sklearn" and model["onnx_hash"]
    [dataset] = run.datasets
    assert dataset["name"] == "train.csv" and dataset["num_rows"] == 5 and dataset["direction"] == "input"
    stdout = next(a for a in run.artifacts if a["path"] == "stdout.txt")
    assert default_workspace().artifacts.get_bytes(stdout["hash"]) == b"trained on 5\n"


def test_frames_read_from_the_namespace_are_dataset_versions(ip):
    import pandas as pd

    ip.user_ns["features"] = pd.DataFrame({"a": range(10)})
    ip.run_cell_magic("track", "", "total = features['a'].sum()")
    run = latest_run()
    assert [d["name"] for d in run.datasets] == ["features"]
    assert run.metrics["total"] == 45


def test_failing_cell_is_a_failed_run_and_still_raises(ip):
    with pytest.raises(ZeroDivisionError):
        ip.run_cell_magic("track", "", "lr = 0.1\n1 / 0")
    run = latest_run()
    assert run.info.status == "FAILED" and "ZeroDivisionError" in run.info.error
    assert run.params == {"lr": "0.1"}  # what the cell bound before failing is kept


def test_interrupted_cell_is_a_killed_run(ip):
    with pytest.raises(KeyboardInterrupt):
        ip.run_cell_magic("track", "", "raise KeyboardInterrupt")
    assert latest_run().info.status == "KILLED"


def test_syntax_error_makes_no_run(ip):
    with pytest.raises(SyntaxError):
        ip.run_cell_magic("track", "", "x = = 1")
    assert ml.search_runs().empty


def test_bad_options_are_usage_errors(ip):
    with pytest.raises(UsageError, match="key=value"):
        ip.run_cell_magic("track", "--tag novalue", "x = 1")
    with pytest.raises(UsageError):
        ip.run_cell_magic("track", "on", "x = 1")
    with pytest.raises(UsageError):
        ip.run_line_magic("track", "sideways")
    assert ml.search_runs().empty


def test_track_on_tracks_every_cell_until_off(ip):
    ip.run_line_magic("track", "on --experiment auto")
    ip.run_cell("alpha = 3")
    ip.run_cell("beta = alpha * 2")
    ip.run_line_magic("track", "off")
    ip.run_cell("gamma = 1")
    frame = ml.search_runs("auto", order_by="attributes.start_time")
    assert len(frame) == 2
    assert frame["params.alpha"].tolist()[0] == "3" and frame["metrics.beta"].tolist()[1] == 6


def test_track_on_still_reports_errors_to_the_shell(ip):
    ip.run_line_magic("track", "on")
    result = ip.run_cell("raise ValueError('nope')")
    ip.run_line_magic("track", "off")
    assert isinstance(result.error_in_exec, ValueError)
    assert latest_run().info.status == "FAILED"


def test_track_on_an_empty_cell_costs_milliseconds(ip):
    ip.run_cell_magic("track", "", "pass")  # first run pays for imports
    durations = []
    for _ in range(20):
        start = time.perf_counter()
        ip.run_cell_magic("track", "", "pass")
        durations.append(time.perf_counter() - start)
    durations.sort()
    assert durations[len(durations) // 2] < 0.05  # generous: CI machines are noisy; bench/ has the figure


def test_frames_the_cell_makes_before_reading_are_not_inputs(ip):
    import pandas as pd

    ip.user_ns["frame"] = pd.DataFrame({"a": [1, 2]})  # left over from an earlier cell
    ip.user_ns["raw"] = pd.DataFrame({"a": [3, 4]})
    ip.run_cell_magic(
        "track",
        "",
        "import pandas as pd\nframe = pd.DataFrame({'a': [5]})\ntotal = frame['a'].sum()\nraw = raw.dropna()",
    )
    assert [d["name"] for d in latest_run().datasets] == ["raw"]  # read then rebound: an input


def test_credentials_a_cell_reads_are_not_logged_as_data(ip, tmp_path, capsys, monkeypatch):
    import json

    (tmp_path / "service-account.json").write_text(json.dumps({"type": "x", "private_key": "-----BEGIN"}))
    (tmp_path / "gcp.json").write_text(json.dumps({"client_secret": "s3cr3t"}))  # found by its keys
    (tmp_path / "api_token.txt").write_text("tok-123")
    (tmp_path / ".env").write_text("PASSWORD=hunter2\n")
    (tmp_path / "our-keys.cfg").write_text("k=v\n")  # a pattern of the user's own (MLOPS_LAB_SECRET_FILES)
    (tmp_path / "train.csv").write_text("x,y\n1,0\n2,1\n")
    monkeypatch.setenv("MLOPS_LAB_SECRET_FILES", "*-keys.cfg")
    ip.user_ns["folder"] = str(tmp_path)
    ip.run_cell_magic(
        "track",
        "--name creds",
        "import os\n"
        "texts = [open(os.path.join(folder, n)).read() for n in "
        "('service-account.json', 'gcp.json', 'api_token.txt', '.env', 'our-keys.cfg', 'train.csv')]\n",
    )
    ml.flush()
    run = latest_run()
    assert [d["name"] for d in run.datasets] == ["train.csv"]
    err = capsys.readouterr().err
    assert "service-account.json looks like credentials" in err and "api_token.txt looks like credentials" in err
    stored = json.dumps(run.to_dict())
    assert "hunter2" not in stored and "tok-123" not in stored and "BEGIN" not in stored


def test_credentials_logged_on_purpose_are_never_previewed(tracker, tmp_path):
    secret = tmp_path / "db_passwords.csv"
    secret.write_text("KEY,VALUE\nDB_PASSWORD,hunter2\n")
    with ml.start_run("explicit") as run:
        ml.log_dataset(str(secret), "db_passwords.csv")
    ml.flush()
    [dataset] = ml.get_run(run.id).datasets
    assert dataset["preview"] is None and "hunter2" not in str(ml.get_run(run.id).to_dict())
