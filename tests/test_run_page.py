"""The run page's REST API on a real Jupyter Server: one run in one answer, artifact previews, and
what a person changes (tags, description, deleted or not, registering its model), with bad input."""

from __future__ import annotations

import io
import json

import pytest
import tornado.httpclient

import mlops_lab as ml

from .test_server import get_json, jp_server_config, post_json  # noqa: F401 (a fixture: the same server)

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def full_run(tracker, tmp_path):
    """A run with a curve, single values, a folder, tables, JSON, an image, stdout, a model and children."""
    import polars as pl
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "outputs"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    (folder / "b.txt").write_text("beta")
    frame = pl.DataFrame({"x": list(range(100)), "name": [f"row{i}" for i in range(100)]})
    frame.write_csv(tmp_path / "scores.csv")
    frame.write_parquet(tmp_path / "scores.parquet")
    (tmp_path / "config.json").write_text(json.dumps({"lr": 0.1, "layers": [64, 32]}))
    (tmp_path / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "fake.csv").write_bytes(b"\x00\x01\x02" * 10)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    X, y = load_iris(return_X_y=True)
    with ml.start_run("page", experiment="pages", description="First **try**") as run:
        ml.log_params({"C": 1.0})
        for step in range(50):
            ml.log_metric("loss", 1 / (step + 1), step=step)
        ml.log_metric("accuracy", 0.9)
        ml.log_artifact(folder)
        for name in ("scores.csv", "scores.parquet", "config.json", "weights.bin", "fake.csv", "broken.parquet"):
            ml.log_artifact(tmp_path / name)
        ml.log_text("hello from the cell\n", "stdout.txt")
        tracker.log_bytes(_png(), "figures/curve.png", kind="figure")
        ml.log_model(LogisticRegression(max_iter=500).fit(X, y))
        for c in (0.1, 1.0):
            with ml.start_run(f"page-C={c}", nested=True):
                ml.log_param("C", c)
    ml.flush()
    return run.id


def _png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(2, 2))
    axes.plot([1, 2, 3])
    data = io.BytesIO()
    figure.savefig(data, format="png")
    plt.close(figure)
    return data.getvalue()


async def test_the_run_page_has_everything_in_one_answer(jp_fetch, full_run):
    page = await get_json(jp_fetch, "runs", full_run)
    assert page["info"]["name"] == "page" and page["info"]["deleted"] is False
    assert page["description"] == "First **try**"
    assert page["curve_keys"] == ["loss"]  # accuracy is one value: a number, not a curve at step 0
    assert page["curves"]["loss"]["steps"][:3] == [0, 1, 2] and len(page["curves"]["loss"]["values"]) == 50
    assert page["metrics"]["accuracy"] == 0.9
    assert page["stdout"]["text"] == "hello from the cell\n"
    listed = {a["path"]: a for a in page["artifacts"]}
    assert listed["outputs"]["files"] == 2 and listed["outputs/a.txt"]["folder"] == "outputs"
    assert listed["scores.csv"]["size"] > 0 and page["figures"] == ["figures/curve.png"]
    assert page["models"][0]["name"] == "model" and page["models"][0]["signature"]["inputs"]
    assert [c["name"] for c in page["children"]] == ["page-C=0.1", "page-C=1.0"]
    child = await get_json(jp_fetch, "runs", page["children"][0]["run_id"])
    assert child["parent"] == {"run_id": full_run, "name": "page", "status": "FINISHED"}


async def test_a_failed_run_s_page_carries_its_error(jp_fetch, tracker):
    with pytest.raises(ZeroDivisionError), ml.start_run("broken") as run:
        raise ZeroDivisionError("division by zero")
    ml.flush()
    page = await get_json(jp_fetch, "runs", run.id)
    assert page["info"]["status"] == "FAILED" and "ZeroDivisionError" in page["info"]["error"]


@pytest.mark.parametrize(
    "path, expected",
    [
        ("scores.csv", {"kind": "table"}),
        ("scores.parquet", {"kind": "table"}),
        ("config.json", {"kind": "json"}),
        ("outputs/b.txt", {"kind": "text", "text": "beta"}),
        ("figures/curve.png", {"kind": "image", "media_type": "image/png"}),
        ("weights.bin", {"kind": "binary"}),
        ("fake.csv", {"kind": "binary"}),  # named .csv, not one
        ("broken.parquet", {"kind": "binary"}),
    ],
)
async def test_artifact_previews(jp_fetch, full_run, path, expected):
    preview = await get_json(jp_fetch, "runs", full_run, "artifacts", path, preview="1")
    assert {k: preview.get(k) for k in expected} == expected
    if expected["kind"] == "table":
        assert preview["columns"] == {"x": "Int64" if path.endswith("parquet") else "String", "name": "String"}
        assert len(preview["rows"]) == 20 and preview["rows"][0]["name"] == "row0"
    if path == "broken.parquet":
        assert "not a readable parquet file" in preview["note"]
    if path == "config.json":
        assert json.loads(preview["text"]) == {"lr": 0.1, "layers": [64, 32]}


@pytest.mark.parametrize("path", ["..%2Fstore.db", "%2Fetc%2Fpasswd", "nope.txt", "outputs%2Fnope.txt"])
async def test_previews_of_paths_outside_or_unknown_are_refused(jp_fetch, full_run, path):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", "runs", full_run, "artifacts", path, params={"preview": "1"})
    assert info.value.code in (400, 404)


async def test_a_logged_model_downloads_as_logged_and_as_onnx(jp_fetch, full_run):
    import onnx

    response = await jp_fetch("mlops-lab", "api", "runs", full_run, "models", "model", "onnx")
    assert onnx.load_model_from_string(response.body).graph.input
    assert response.headers["Content-Type"] == "application/octet-stream"
    response = await jp_fetch("mlops-lab", "api", "runs", full_run, "models", "model", "logged")
    assert 'filename="model.pkl"' in response.headers["Content-Disposition"]
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", "runs", full_run, "models", "nope", "onnx")
    assert info.value.code == 404


async def test_tags_and_the_description_are_edited_in_place_and_recorded(jp_fetch, full_run, workspace):
    answer = await post_json(
        jp_fetch, "runs", full_run, "tags", body={"set": {"team": "churn", "description": "Better"}, "remove": []}
    )
    assert answer["tags"]["team"] == "churn" and answer["tags"]["description"] == "Better"
    answer = await post_json(jp_fetch, "runs", full_run, "tags", body={"remove": ["team"]})
    assert "team" not in answer["tags"]
    events = workspace.store.events.events("run", full_run)
    edits = [e for e in events if e["kind"] == "tags edited"]
    assert [e["payload"] for e in edits] == [
        {"set": {"team": "churn", "description": "Better"}, "removed": []},
        {"set": {}, "removed": ["team"]},
    ]


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "nothing to change"),
        ({"set": ["a"]}, "object {key: value}"),
        ({"set": {"": "x"}}, "non-empty"),
        ({"set": {"k" * 300: "x"}}, "at most 250"),
        ({"set": {"a": "x" * 9000}}, "at most 8000"),
        ({"set": {"a": "1"}, "remove": ["a"]}, "both set and removed"),
        ({"rename": {"a": "b"}}, "not ['rename']"),
    ],
)
async def test_bad_tag_edits_are_400_and_change_nothing(jp_fetch, full_run, body, message):
    before = (await get_json(jp_fetch, "runs", full_run))["tags"]
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await post_json(jp_fetch, "runs", full_run, "tags", body=body)
    assert info.value.code == 400 and message in json.loads(info.value.response.body)["error"]
    assert (await get_json(jp_fetch, "runs", full_run))["tags"] == before


async def test_a_deleted_run_leaves_the_list_and_comes_back_when_restored(jp_fetch, full_run, workspace):
    listed = lambda page: {r["run_id"] for r in page["runs"]}  # noqa: E731
    assert full_run in listed(await get_json(jp_fetch, "runs"))
    response = await jp_fetch("mlops-lab", "api", "runs", full_run, method="DELETE")
    assert json.loads(response.body) == {"run_id": full_run, "deleted": True}
    assert full_run not in listed(await get_json(jp_fetch, "runs"))
    assert listed(await get_json(jp_fetch, "runs", lifecycle="deleted")) == {full_run}
    page = await get_json(jp_fetch, "runs", full_run)
    assert page["info"]["deleted"] is True and page["params"] == {"C": "1.0"}  # kept whole
    await post_json(jp_fetch, "runs", full_run, "restore", body={})
    assert full_run in listed(await get_json(jp_fetch, "runs"))
    assert [e["kind"] for e in workspace.store.events.events("run", full_run)][-2:] == ["deleted", "restored"]
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", "runs", "f" * 32, method="DELETE")
    assert info.value.code == 404
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await get_json(jp_fetch, "runs", lifecycle="gone")
    assert info.value.code == 400


async def test_runs_filter_by_experiment_name(jp_fetch, full_run):
    with ml.start_run("elsewhere", experiment="other"):
        pass
    ml.flush()
    page = await get_json(jp_fetch, "runs", filter="attributes.experiment = 'pages'")
    assert [r["name"] for r in page["runs"]] == ["page"]
    assert [r["name"] for r in (await get_json(jp_fetch, "runs", filter="attributes.experiment != 'pages'"))["runs"]][
        0
    ] == "elsewhere"


async def test_the_register_button_registers_the_run_s_model(jp_fetch, full_run, workspace):
    answer = await post_json(jp_fetch, "models", "iris-page", "versions", body={"run_id": full_run, "model": "model"})
    assert answer == {"name": "iris-page", "version": 1}
    assert workspace.registry.describe("iris-page")["versions"][0]["run_id"] == full_run
    for body, code in (({"run_id": full_run, "model": "nope"}, 404), ({"run_id": 5}, 400), ({}, 400)):
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            await post_json(jp_fetch, "models", "iris-page", "versions", body=body)
        assert info.value.code == code
    assert len(workspace.registry.describe("iris-page")["versions"]) == 1
