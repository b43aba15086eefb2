"""Notebook pipelines: steps as runs on real kernels (nbclient), the cache and why a step is stale,
restoring outs, failures and kills, bad pipelines, the CLI, lineage, and the export to Kubeflow
Pipelines with the real kfp compiler."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

import mlops_lab as ml
from mlops_lab.pipelines import PipelineError, build_pipeline, load_pipeline
from mlops_lab.pipelines.runner import KEY_TAG, PIPELINE_TAG, STEP_TAG, PipelineRunner, watch

DEMO = Path(__file__).parent.parent / "demo_notebooks" / "pipeline"
CLI = [sys.executable, "-m", "mlops_lab.cli"]


def notebook(path: Path, *cells: str, parameters: str | None = None) -> Path:
    """A notebook of code cells; ``parameters`` becomes a first cell tagged 'parameters'."""
    made = nbformat.v4.new_notebook()
    made.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if parameters is not None:
        made.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    made.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(made, path)
    return path


def pipeline_yaml(folder: Path, text: str) -> Path:
    (folder / "pipeline.yaml").write_text(text)
    return folder / "pipeline.yaml"


def runner(workspace, folder: Path, said: list | None = None) -> PipelineRunner:
    return PipelineRunner(workspace, load_pipeline(folder), (said.append if said is not None else None))


def states(runner: PipelineRunner) -> dict[str, str]:
    return {name: state.state for name, state in runner.status().items()}


@pytest.fixture
def demo(tmp_path):
    folder = tmp_path / "pipeline"
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("*.parquet", "profile.csv", ".ipynb_checkpoints"))
    return folder


def step_runs(workspace, pipeline: str) -> list[dict]:
    rows, _, _, tags = workspace.store.runs.search_runs(None, f"tags.`{PIPELINE_TAG}` = '{pipeline}'", None)
    return [{**row, "step": tags[row["id"]].get(STEP_TAG)} for row in rows]


# ---- the demo, end to end ---------------------------------------------------------------------


def test_the_demo_pipeline_runs_then_is_all_cached_then_reruns_only_what_a_data_change_touches(workspace, demo):
    said: list[str] = []
    first = runner(workspace, demo, said).run()
    assert first.ok, first.to_dict()
    assert sorted(first.ran) == ["gate", "holdout", "prepare", "profile", "promote", "register", "train"]
    runs = workspace.store.runs
    pipeline_run = runs.get_run(first.run_id)
    assert pipeline_run.info.status == "FINISHED" and pipeline_run.tags[PIPELINE_TAG] == "churn"
    steps = {r["step"]: r for r in step_runs(workspace, "churn") if r["step"]}
    assert {r["parent_run_id"] for r in steps.values()} == {first.run_id}  # every step a child of the pipeline's run
    train = runs.get_run(steps["train"]["id"])
    assert train.params == {"C": "1.0"} and train.tags[KEY_TAG] == first.steps["train"].key
    assert "LogisticRegression(C=C" in train.info.source  # the notebook's code: the run page shows it
    assert "notebooks/train.ipynb" in {a["path"] for a in train.artifacts}  # the executed notebook is kept
    executed = nbformat.reads(
        workspace.artifacts.get_bytes(
            next(a["hash"] for a in train.artifacts if a["path"] == "notebooks/train.ipynb")
        ).decode(),
        4,
    )
    assert "injected-parameters" in executed.cells[2].metadata["tags"] and "C = 1.0" in executed.cells[2].source
    assert "train accuracy" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    # it names the kernel that ran it (the source says "Python 3"): JupyterLab opens it unmodified
    installed = KernelSpecManager().get_kernel_spec("python3")
    assert executed.metadata.kernelspec == {
        "name": "python3",
        "display_name": installed.display_name,
        "language": "python",
    }
    assert executed.metadata.language_info["name"] == "python"
    # the %%track cell of train.ipynb is a run of its own, a child of the step's run, holding the model
    children = runs.search_runs(None, f"attributes.parent_run_id = '{train.info.id}'", None)[0]
    assert [c["name"] for c in children] == ["churn-logreg"]
    assert [m["name"] for m in runs.get_run(children[0]["id"]).models] == ["model"]
    # outs are versioned: the step's output datasets, the bytes in the artifact store
    prepare = runs.get_run(steps["prepare"]["id"])
    outs = [d for d in prepare.datasets if d["direction"] == "output"]
    assert [d["name"] for d in outs] == ["train.parquet"]
    assert workspace.artifacts.get_bytes(outs[0]["hash"]) == (demo / "data/train.parquet").read_bytes()
    assert {d["name"] for d in prepare.datasets if d["direction"] == "input"} == {"raw.csv"}
    # register → gate → promote: a version in Staging with its gate result
    version = workspace.store.models.get_version("churn", 1)
    assert version.stage == "Staging" and version.run_id == children[0]["id"]
    gate = workspace.store.models.gate_results("churn", 1)
    assert gate and gate[0]["passed"]

    count = len(step_runs(workspace, "churn"))
    again = runner(workspace, demo, said).run()
    assert again.ok and again.ran == [] and again.run_id is None
    assert {s.state for s in again.steps.values()} == {"cached"}
    assert len(step_runs(workspace, "churn")) == count  # a no-op records nothing

    with open(demo / "data/holdout.csv", "a") as holdout:
        holdout.write("777777,12,80.5,2,monthly,1\n")
    status = runner(workspace, demo).status()
    assert status["holdout"].reasons == ["data/holdout.csv changed"]
    assert states(runner(workspace, demo)) == {
        "prepare": "cached", "holdout": "stale", "profile": "cached", "train": "cached",
        "register": "cached", "gate": "stale", "promote": "stale",
    }  # fmt: skip
    third = runner(workspace, demo).run()
    assert sorted(third.ran) == ["gate", "holdout", "promote"] and third.ok
    assert len(workspace.store.models.list_versions("churn")) == 1  # the same version, gated again

    raw = (demo / "data/raw.csv").read_text().splitlines()
    (demo / "data/raw.csv").write_text("\n".join(raw[:-200]) + "\n")  # a new data version: fewer rows
    fourth = runner(workspace, demo).run()
    assert sorted(fourth.ran) == ["gate", "prepare", "profile", "promote", "register", "train"] and fourth.ok
    assert [v.version for v in workspace.store.models.list_versions("churn")] == [1, 2]
    assert workspace.store.models.get_version("churn", 2).stage == "Staging"


def test_lineage_from_a_model_version_back_and_from_a_dataset_forward(workspace, demo):
    assert runner(workspace, demo).run().ok
    found = ml.lineage("churn/1")
    assert [r["name"] for r in found["runs"]] == ["churn-logreg", "train", "churn"]  # cell run → step → pipeline
    assert found["pipeline"]["pipeline"] == "churn"
    by_step = {s["step"]: s for s in found["steps"]}
    assert set(by_step) == {"prepare", "holdout", "profile", "train", "register", "gate", "promote"}
    assert by_step["train"]["notebook"].endswith("train.ipynb") and by_step["train"]["params"] == {"C": "1.0"}
    raw = next(d for d in by_step["prepare"]["datasets"] if d["name"] == "raw.csv")
    downstream = ml.lineage(dataset=raw["hash"])
    made = {r["step"] or r["name"] for r in downstream["runs"]}
    assert {"prepare", "profile", "train", "churn-logreg"} <= made and "holdout" not in made
    assert [(v["name"], v["version"]) for v in downstream["model_versions"]] == [("churn", 1)]
    with pytest.raises(KeyError, match="no run read or wrote"):
        ml.lineage(dataset="0" * 64)


# ---- staleness, the cache, restores -----------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    """Two steps: double the numbers in data/in.txt, then sum them."""
    folder = tmp_path / "small"
    (folder / "data").mkdir(parents=True)
    (folder / "data/in.txt").write_text("1\n2\n3\n")
    notebook(
        folder / "double.ipynb",
        "numbers = [int(x) for x in open('data/in.txt').read().split()]",
        "open('data/doubled.txt', 'w').write('\\n'.join(str(n * factor) for n in numbers))",
        parameters="factor = 2",
    )
    notebook(
        folder / "total.ipynb",
        "open('total.txt', 'w').write(str(sum(int(x) for x in open('data/doubled.txt').read().split())))",
    )
    pipeline_yaml(
        folder,
        """steps:
  double: {notebook: double.ipynb, params: {factor: 2}, deps: [data/in.txt], outs: [data/doubled.txt]}
  total: {notebook: total.ipynb, deps: [data/doubled.txt], outs: [total.txt]}
""",
    )
    return folder


def test_status_says_why_each_step_is_stale(workspace, small):
    assert runner(workspace, small).status()["double"].reasons == ["never ran"]
    assert runner(workspace, small).run().ok
    assert (small / "total.txt").read_text() == "12"
    assert states(runner(workspace, small)) == {"double": "cached", "total": "cached"}

    book = nbformat.read(small / "double.ipynb", 4)
    book.cells[2].source += "  # the same, said differently"
    book.cells.insert(1, nbformat.v4.new_markdown_cell("Markdown does not count."))
    nbformat.write(book, small / "double.ipynb")
    status = runner(workspace, small).status()
    assert status["double"].reasons == ["cell 4 changed"]  # numbered as the notebook now shows it
    assert status["total"].reasons == ["upstream step double will run"]

    text = (small / "pipeline.yaml").read_text().replace("factor: 2", "factor: 3")
    (small / "pipeline.yaml").write_text(text)
    (small / "data/in.txt").write_text("1\n2\n3\n4\n")
    assert runner(workspace, small).status()["double"].reasons == [
        "cell 4 changed",
        "param factor 2 → 3",
        "data/in.txt changed",
    ]
    result = runner(workspace, small).run()
    assert result.ran == ["double", "total"] and (small / "total.txt").read_text() == "30"


def test_changed_or_deleted_outs_are_restored_and_an_earlier_result_comes_from_the_run_cache(workspace, small):
    assert runner(workspace, small).run().ok
    (small / "total.txt").unlink()
    (small / "data/doubled.txt").write_text("garbage")
    status = runner(workspace, small).status()
    assert status["double"].state == "restore" and status["double"].reasons[0].startswith(
        "data/doubled.txt was changed"
    )
    assert status["total"].state == "restore" and status["total"].reasons[0].startswith("total.txt is missing")
    result = runner(workspace, small).run()
    assert result.ran == [] and {s.state for s in result.steps.values()} == {"restored"}
    assert (small / "data/doubled.txt").read_text() == "2\n4\n6" and (small / "total.txt").read_text() == "12"

    original = (small / "pipeline.yaml").read_text()
    (small / "pipeline.yaml").write_text(original.replace("factor: 2", "factor: 5"))
    assert runner(workspace, small).run().ran == ["double", "total"]
    assert (small / "total.txt").read_text() == "30"
    (small / "pipeline.yaml").write_text(original)  # back to factor 2: that result is in the run cache
    status = runner(workspace, small).status()
    assert status["double"].state == "restore"  # not stale: an earlier run with this key exists
    back = runner(workspace, small).run()
    assert back.ran == [] and (small / "total.txt").read_text() == "12"


def test_force_and_one_step_with_what_it_needs(workspace, small):
    assert runner(workspace, small).run().ok
    result = runner(workspace, small).run(steps=["double"], force=True)
    assert result.ran == ["double"] and list(result.steps) == ["double"]
    (small / "data/in.txt").write_text("5\n")
    only = runner(workspace, small).run(steps=["double"])
    assert only.ran == ["double"] and "total" not in only.steps
    assert states(runner(workspace, small)) == {"double": "cached", "total": "stale"}
    with pytest.raises(PipelineError, match="has no step 'nope'; its steps: double, total"):
        runner(workspace, small).run(steps=["nope"])


def test_params_go_in_as_papermill_puts_them(workspace, tmp_path):
    notebook(tmp_path / "p.ipynb", "open('out.json', 'w').write(__import__('json').dumps([rate, name, layers, flags]))",
             parameters="rate = 0.1\nname = 'a'\nlayers = [1]\nflags = {'x': True}")  # fmt: skip
    pipeline_yaml(
        tmp_path,
        "steps:\n  p: {notebook: p.ipynb, params: {rate: 1, name: b, layers: [2, 3], flags: {x: false}}, outs: [out.json]}\n",
    )
    assert runner(workspace, tmp_path).run().ok
    assert json.loads((tmp_path / "out.json").read_text()) == [1, "b", [2, 3], {"x": False}]


def test_independent_steps_run_at_once(workspace, tmp_path):
    for name in ("a", "b"):
        notebook(tmp_path / f"{name}.ipynb", "import time; time.sleep(3)", f"open('{name}.txt', 'w').write('done')")
    pipeline_yaml(
        tmp_path, "steps:\n  a: {notebook: a.ipynb, outs: [a.txt]}\n  b: {notebook: b.ipynb, outs: [b.txt]}\n"
    )
    result = runner(workspace, tmp_path).run()
    assert result.ok
    runs = {r["step"]: r for r in step_runs(workspace, tmp_path.name) if r["step"]}
    # each slept 3 s in a kernel of its own; their runs overlap in time
    assert runs["a"]["start_time"] < runs["b"]["end_time"] and runs["b"]["start_time"] < runs["a"]["end_time"]


# ---- failures ---------------------------------------------------------------------------------


def test_a_failed_step_stops_its_descendants_keeps_what_finished_and_the_next_run_resumes(workspace, tmp_path):
    notebook(tmp_path / "ok.ipynb", "open('ok.txt', 'w').write('fine')")
    notebook(tmp_path / "bad.ipynb", "x = 1", "y = x / 0", "open('bad.txt', 'w').write('never')")
    notebook(tmp_path / "after.ipynb", "open('after.txt', 'w').write(open('bad.txt').read())")
    pipeline_yaml(
        tmp_path,
        "steps:\n  ok: {notebook: ok.ipynb, outs: [ok.txt]}\n  bad: {notebook: bad.ipynb, outs: [bad.txt]}\n"
        "  after: {notebook: after.ipynb, deps: [bad.txt], outs: [after.txt]}\n",
    )
    said: list[str] = []
    result = runner(workspace, tmp_path, said).run()
    assert not result.ok
    assert result.steps["ok"].state == "done" and result.steps["after"].state == "blocked"
    assert result.steps["bad"].error == "cell 2 of bad.ipynb raised ZeroDivisionError: division by zero"
    assert "bad: FAILED: cell 2 of bad.ipynb raised ZeroDivisionError: division by zero" in said
    bad_run = workspace.store.runs.get_run(result.steps["bad"].run_id)
    assert bad_run.info.status == "FAILED" and "ZeroDivisionError" in bad_run.info.error
    assert "notebooks/bad.ipynb" in {a["path"] for a in bad_run.artifacts}  # the failed notebook, to read
    assert workspace.store.runs.get_run(result.run_id).info.status == "FAILED"
    assert states(runner(workspace, tmp_path)) == {"ok": "cached", "bad": "stale", "after": "stale"}

    notebook(tmp_path / "bad.ipynb", "x = 1", "y = x / 1", "open('bad.txt', 'w').write('now')")
    again = runner(workspace, tmp_path).run()
    assert again.ok and again.ran == ["bad", "after"] and (tmp_path / "after.txt").read_text() == "now"


def test_a_step_that_does_not_write_its_out_fails(workspace, tmp_path):
    notebook(tmp_path / "n.ipynb", "pass")
    pipeline_yaml(tmp_path, "steps:\n  n: {notebook: n.ipynb, outs: [made.txt]}\n")
    result = runner(workspace, tmp_path).run()
    assert result.steps["n"].state == "failed"
    assert "step 'n' finished without writing its out 'made.txt'" in result.steps["n"].error
    assert states(runner(workspace, tmp_path)) == {"n": "stale"}


def test_a_kernel_killed_mid_step_fails_it_and_nothing_is_recorded_as_done(workspace, tmp_path):
    notebook(
        tmp_path / "k.ipynb",
        "import os, signal",
        "open('k.txt', 'w').write('half')\nos.kill(os.getpid(), signal.SIGKILL)",
    )
    pipeline_yaml(tmp_path, "steps:\n  k: {notebook: k.ipynb, outs: [k.txt]}\n")
    result = runner(workspace, tmp_path).run()
    assert result.steps["k"].state == "failed"
    assert result.steps["k"].error.startswith("the kernel running k.ipynb died (killed, or out of memory) in cell 2")
    assert states(runner(workspace, tmp_path)) == {"k": "stale"}


def test_a_pipeline_killed_mid_step_leaves_no_step_done_and_resumes(tmp_path):
    folder = tmp_path / "killed"
    notebook(folder / "first.ipynb", "open('first.txt', 'w').write('1')")
    notebook(
        folder / "slow.ipynb",
        "import time; open('started', 'w').write('1'); time.sleep(60)",
        "open('slow.txt', 'w').write('2')",
    )
    pipeline_yaml(
        folder,
        "steps:\n  first: {notebook: first.ipynb, outs: [first.txt]}\n"
        "  slow: {notebook: slow.ipynb, deps: [first.txt], outs: [slow.txt]}\n",
    )
    env = {
        **os.environ,
        "MLOPS_LAB_DB_URL": f"sqlite:///{tmp_path / 'k.db'}",
        "MLOPS_LAB_ARTIFACTS": str(tmp_path / "a"),
    }
    process = subprocess.Popen(
        [*CLI, "pipeline", "run", str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while not (folder / "started").exists():
        assert time.monotonic() < deadline and process.poll() is None, process.stdout.read().decode()
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and the step's kernel, at once
    process.wait()
    status = subprocess.run(
        [*CLI, "pipeline", "status", str(folder), "--json"], env=env, capture_output=True, text=True, check=True
    )
    assert {s["step"]: s["state"] for s in json.loads(status.stdout)["steps"]} == {"first": "cached", "slow": "stale"}
    notebook(folder / "slow.ipynb", "open('slow.txt', 'w').write('2')")
    resumed = subprocess.run([*CLI, "pipeline", "run", str(folder)], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "first: cached" in resumed.stdout and "slow: done" in resumed.stdout


# ---- bad pipelines ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: [a, b]", "needs a non-empty 'steps' mapping"),
        (
            "steps:\n  a: {notebook: a.ipynb, deps: [y], outs: [x]}\n  b: {notebook: b.ipynb, deps: [x], outs: [y]}\n",
            "steps .* form a cycle",
        ),
        (
            "steps:\n  a: {notebook: a.ipynb, outs: [x]}\n  b: {notebook: b.ipynb, outs: [x]}\n",
            "steps 'a' and 'b' both write x",
        ),
        ("steps:\n  a: {notebook: missing.ipynb}\n", r"step 'a': notebook .*missing.ipynb does not exist"),
        (
            "steps:\n  a: {notebook: a.ipynb, deps: [data/nowhere.csv]}\n",
            r"step 'a': dep 'data/nowhere.csv' does not exist .* and no step writes it",
        ),
        (
            "steps:\n  a: {notebook: c.ipynb, params: {n: 3}}\n",
            r"step 'a': c.ipynb has no cell tagged 'parameters' to take params \['n'\]",
        ),
        (
            "steps:\n  a: {notebook: a.ipynb, params: {n: three}}\n",
            r"step 'a': param n = 'three' is a string, but a.ipynb's parameters cell sets n = 1, a number",
        ),
        (
            "steps:\n  a: {notebook: a.ipynb, params: {m: 3}}\n",
            r"step 'a': param 'm' is not set in a.ipynb's parameters cell \(it sets \['n'\]\)",
        ),
        ("steps:\n  a: {notebook: a.ipynb, retries: 3}\n", r"step 'a': unknown keys \['retries'\]"),
        ("steps:\n  a: {notebook: a.ipynb, outs: [../../outside.txt]}\n", "must lie inside the pipeline's folder"),
        ("steps:\n  a: {notebook: a.ipynb, after: [ghost]}\n", "after names no step 'ghost'"),
        (
            "steps:\n  r: {register: {model: m, from: g}}\n  g: {gate: {model: m, data: a.ipynb, reference: a.ipynb}}\n",
            "from must name a notebook step",
        ),
        (
            "steps:\n  g: {gate: {model: m, holdout: a.ipynb, target: y, thresholds: {accuracy: {least: 1}}}}\n",
            "threshold accuracy.least is not one of",
        ),
        ("steps:\n  p: {promote: {model: m, stage: Live}}\n", "promote's stage must be one of"),
        (
            "steps:\n  a: {notebook: a.ipynb, gate: {model: m}}\n",
            "must have exactly one of notebook, gate, register, promote",
        ),
        ("steps: {a: {notebook: a.ipynb}\n", "is not valid YAML"),
        ("steps:\n  'a b': {notebook: a.ipynb}\n", "step name 'a b' must be letters"),
    ],
)
def test_bad_pipelines_are_refused_with_the_file_and_the_step(tmp_path, text, message):
    notebook(tmp_path / "a.ipynb", "pass", parameters="n = 1")
    notebook(tmp_path / "b.ipynb", "pass")
    notebook(tmp_path / "c.ipynb", "pass")
    file = pipeline_yaml(tmp_path, text)
    with pytest.raises(PipelineError, match=message) as error:
        load_pipeline(tmp_path)
    assert str(file) in str(error.value)


def test_the_dag_comes_from_deps_outs_after_and_the_builtin_steps_links(tmp_path):
    for name in ("a", "b", "c"):
        notebook(tmp_path / f"{name}.ipynb", "pass")
    notebook(tmp_path / "holdout.csv", "pass")
    pipeline_yaml(
        tmp_path,
        "steps:\n  c: {notebook: c.ipynb, deps: [y], outs: [z], after: [a]}\n"
        "  b: {notebook: b.ipynb, deps: [x], outs: [y]}\n  a: {notebook: a.ipynb, outs: [x]}\n"
        "  promote: {promote: {model: m, stage: Staging}}\n  register: {register: {model: m, from: c}}\n"
        "  gate: {gate: {model: m, holdout: holdout.csv, target: y, thresholds: {accuracy: {min: 0.5}}}}\n",
    )
    pipeline = load_pipeline(tmp_path)
    assert pipeline.order() == ["a", "b", "c", "register", "gate", "promote"]  # file order where free
    assert pipeline.edges() == [
        ("a", "b"), ("a", "c"), ("b", "c"), ("c", "register"), ("register", "gate"),
        ("gate", "promote"), ("register", "promote"),
    ]  # fmt: skip
    assert pipeline.steps["gate"].deps == ("holdout.csv",)


def test_a_notebook_that_is_not_one_and_a_missing_file_are_refused(tmp_path):
    (tmp_path / "broken.ipynb").write_text("{not json")
    pipeline_yaml(tmp_path, "steps:\n  a: {notebook: broken.ipynb, params: {x: 1}}\n")
    with pytest.raises(PipelineError, match=r"step 'a': .*broken.ipynb is not a notebook Jupyter can read"):
        load_pipeline(tmp_path)
    with pytest.raises(PipelineError, match="no pipeline file at"):
        load_pipeline(tmp_path / "elsewhere")
    with pytest.raises(PipelineError, match="must be a mapping"):
        build_pipeline(["steps"])


# ---- the CLI, watch, Kubeflow -------------------------------------------------------------------


def test_the_cli_runs_says_status_draws_the_dag_and_fails_on_a_failed_gate(tmp_path, demo):
    env = {
        **os.environ,
        "MLOPS_LAB_DB_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "MLOPS_LAB_ARTIFACTS": str(tmp_path / "a"),
    }

    def cli(*args, check=True):
        done = subprocess.run([*CLI, "pipeline", *args], env=env, capture_output=True, text=True, cwd=demo)
        assert not check or done.returncode == 0, done.stdout + done.stderr
        return done

    assert "train     train.ipynb  ← prepare" in cli("dag").stdout
    assert '"register" -> "gate";' in cli("dag", "--dot").stdout
    status = cli("status").stdout
    assert status.startswith("churn (") and "7 of 7 steps to run" in status and "never ran" in status
    run = cli("run")
    assert "register: registered churn/1" in run.stdout and "churn: ran " in run.stdout
    assert cli("run", "--if-changed").stdout.strip() == "churn: up to date, nothing to do"
    assert "up to date" in cli("status").stdout

    text = (demo / "pipeline.yaml").read_text().replace("{min: 0.7}", "{min: 0.99}").replace("C: 1.0", "C: 0.5")
    (demo / "pipeline.yaml").write_text(text)
    assert "param C 1.0 → 0.5" in cli("status").stdout
    book = json.loads((demo / "prepare.ipynb").read_text())
    book["cells"][2]["source"] += ["\n# the same cleaning"]
    (demo / "prepare.ipynb").write_text(json.dumps(book))
    train = next(line for line in cli("status").stdout.splitlines() if line.strip().startswith("train"))
    assert train.split(None, 2)[2] == "param C 1.0 → 0.5; upstream step prepare will run"  # its own change too
    failed = cli("run", "--if-changed", check=False)
    assert failed.returncode == 1
    assert "gate: FAILED: churn/2: evaluation gate FAILED: accuracy" in failed.stdout
    assert "promote: not run: upstream step gate did not finish" in failed.stdout
    missing = cli("status", "nowhere.yaml", check=False)
    assert missing.returncode == 2 and "no pipeline file at nowhere.yaml" in missing.stderr


def test_watch_runs_again_when_a_dep_changes(workspace, small):
    said: list[str] = []

    def change_later():
        deadline = time.monotonic() + 60
        while not any(line.startswith("ran double, total") for line in said) and time.monotonic() < deadline:
            time.sleep(0.1)
        (small / "data/in.txt").write_text("10\n")

    changer = threading.Thread(target=change_later)
    changer.start()
    watch(workspace, small, interval=0.2, progress=said.append, rounds=2)
    changer.join()
    assert [line for line in said if line.startswith(("ran", "up to date"))] == [
        "ran double, total; watching 4 files",
        "ran double, total; watching 4 files",
    ]
    assert (small / "total.txt").read_text() == "20"


def test_export_compiles_for_kubeflow_pipelines_and_loads_back(tmp_path, demo):
    from kfp import components

    out = tmp_path / "churn-kfp.yaml"
    export = ["pipeline", "export", str(demo), "--kfp", str(out), "--image", "example/churn:1"]
    done = subprocess.run([*CLI, *export, "--pipeline-path", "pipeline.yaml"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded = components.load_component_from_file(str(out))
    assert loaded.name == "churn"
    tasks = loaded.pipeline_spec.root.dag.tasks
    assert {name: sorted(task.dependent_tasks) for name, task in tasks.items()} == {
        "prepare": [], "holdout": [], "profile": [], "train": ["prepare"], "register": ["train"],
        "gate": ["holdout", "register"], "promote": ["gate", "register"],
    }  # fmt: skip
    executors = loaded.pipeline_spec.deployment_spec["executors"]
    container = executors["exec-train"]["container"]
    assert container["image"] == "example/churn:1"
    assert list(container["command"]) == [
        "mlops-lab",
        "--db-url",
        "{{$.inputs.parameters['tracking_uri']}}",
        "pipeline",
        "run",
        "pipeline.yaml",
        "--step",
        "train",
    ]
    assert "tracking_uri" in loaded.pipeline_spec.root.input_definitions.parameters
    bad = subprocess.run(
        [*CLI, "pipeline", "export", str(demo), "--kfp", str(out), "--image", "two words"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--image must name a container image" in bad.stderr


def test_a_pipeline_on_the_team_server_records_its_steps_and_lineage_there(pg_url, tmp_path, small):
    """What a Kubeflow task does: the pipeline against the team store; its kernels log through it too."""
    from mlops_lab.workspace import Workspace, set_default_workspace

    from .team import TeamServerThread

    notebook(
        small / "total.ipynb",
        "%load_ext mlops_lab",
        "%%track --name summing\ntotal = sum(int(x) for x in open('data/doubled.txt').read().split())\n"
        "open('total.txt', 'w').write(str(total))",
    )
    server = TeamServerThread(pg_url, str(tmp_path / "server-artifacts"), default_level="EDIT")
    try:
        workspace = Workspace(server.location("ci"))
        set_default_workspace(workspace)
        first = runner(workspace, small).run()
        assert first.ok, first.to_dict()
        assert (small / "total.txt").read_text() == "12"
        steps = {r["step"]: r for r in step_runs(workspace, small.name) if r["step"]}
        assert {r["user"] for r in steps.values()} == {"ci"}  # the token's user, on the server
        cell = workspace.store.runs.search_runs(None, f"attributes.parent_run_id = '{steps['total']['id']}'", None)[0]
        assert [(c["name"], c["user"]) for c in cell] == [("summing", "ci")]  # the kernel logged through the server
        assert runner(workspace, small).run().ran == []  # the records come back through the server
        (small / "data/doubled.txt").unlink()
        (small / "total.txt").unlink()
        restored = runner(workspace, small).run()  # outs from the server's artifacts
        assert restored.ran == [] and (small / "total.txt").read_text() == "12"
        raw = next(d for d in workspace.store.runs.get_run(steps["double"]["id"]).datasets if d["name"] == "in.txt")
        downstream = ml.lineage(dataset=raw["hash"])
        assert {r["step"] or r["name"] for r in downstream["runs"]} == {"double", "total", "summing"}
        workspace.close()
    finally:
        set_default_workspace(None)
        server.stop()


def test_a_pipeline_runs_from_a_notebook_whose_kernel_has_its_own_event_loop(tmp_path, small, monkeypatch):
    monkeypatch.setenv("MLOPS_LAB_DB_URL", f"sqlite:///{tmp_path / 'nb.db'}")
    monkeypatch.setenv("MLOPS_LAB_ARTIFACTS", str(tmp_path / "nb-artifacts"))
    driver = notebook(
        tmp_path / "driver.ipynb",
        "import mlops_lab as ml\np = ml.pipeline('small')\nprint([s.state for s in p.status().values()])",
        "result = p.run()\nprint(result.ok, result.ran)",
        "print(ml.pipeline('small').stale())",
    )
    from nbclient import NotebookClient

    book = nbformat.read(driver, 4)
    NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = ["".join(o.get("text", "") for o in cell.outputs) for cell in book.cells]
    assert printed[0] == "['stale', 'stale']\n"
    assert printed[1].endswith("True ['double', 'total']\n")  # after the steps' own progress lines
    assert printed[2] == "[]\n"
