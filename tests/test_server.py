"""The REST API on a real Jupyter Server (pytest-jupyter), reading what a kernel wrote."""

from __future__ import annotations

import json
import re

import pytest
import tornado.httpclient

import mlops_lab as ml
from mlops_lab.server.handlers import ROUTES

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(tracker, monkeypatch):
    # The server resolves the store as a kernel would: here through the environment.
    monkeypatch.setenv("MLOPS_LAB_DB_URL", tracker.runs.url)
    monkeypatch.setenv("MLOPS_LAB_ARTIFACTS", tracker.artifacts.root)
    return {"ServerApp": {"jpserver_extensions": {"mlops_lab": True}}}


@pytest.fixture
def logged_runs(tracker):
    ids = []
    for i in range(3):
        with ml.start_run(f"run-{i}", experiment="rest") as run:
            ml.log_param("model", "rf" if i else "lr")
            ml.log_metric("acc", 0.8 + i / 100)
            ml.log_metric("loss", float("nan") if i == 2 else 0.1)
        ids.append(run.id)
    ml.flush()
    return ids


async def get_json(jp_fetch, *path, **params):
    response = await jp_fetch("mlops-lab", "api", *path, params=params)
    assert response.code == 200
    return json.loads(response.body)


async def test_runs_page_filter_and_sort(jp_fetch, logged_runs):
    page = await get_json(jp_fetch, "runs")
    assert {r["run_id"] for r in page["runs"]} == set(logged_runs)
    assert page["metric_keys"] == ["acc", "loss"] and page["param_keys"] == ["model"]
    nan_run = next(r for r in page["runs"] if r["name"] == "run-2")
    assert nan_run["metrics"]["loss"] == "NaN"  # valid JSON, no bare NaN
    page = await get_json(jp_fetch, "runs", filter="params.model = 'rf'", order_by="metrics.acc DESC", limit="1")
    assert [r["name"] for r in page["runs"]] == ["run-2"]


async def test_run_detail_info_and_experiments(jp_fetch, logged_runs, tracker):
    detail = await get_json(jp_fetch, "runs", logged_runs[0])
    assert detail["info"]["name"] == "run-0" and detail["params"] == {"model": "lr"}
    summary = detail["metric_summaries"]["acc"]
    assert summary.pop("timestamp") > 0  # the latest point's
    assert summary == {"last_step": 0, "min": 0.8, "max": 0.8, "count": 1}
    info = await get_json(jp_fetch, "info")
    assert info["db_url"] == tracker.runs.url and "MLOPS_LAB_DB_URL" in info["source"]
    experiments = await get_json(jp_fetch, "experiments")
    assert "rest" in [e["name"] for e in experiments["experiments"]]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"filter": "metrics.acc >"}, "ends early"),
        ({"filter": "params.x = 'a'; DROP TABLE run"}, "unexpected character"),
        ({"limit": "lots"}, "limit must be an integer"),
        ({"limit": "100000"}, "limit must be from 1 to 1000"),
        ({"offset": "-1"}, "offset must be from 0"),
    ],
)
async def test_bad_requests_are_400_with_a_message(jp_fetch, logged_runs, params, message):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", "runs", params=params)
    assert info.value.code == 400
    assert message in json.loads(info.value.response.body)["error"]
    assert len((await get_json(jp_fetch, "runs"))["runs"]) == 3  # nothing was harmed


async def test_unknown_run_is_404(jp_fetch, logged_runs):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", "runs", "0" * 32)
    assert info.value.code == 404


async def test_drift_reports_list_and_detail(jp_fetch, tracker):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    report = ml.drift(pd.DataFrame({"a": rng.normal(size=500)}), pd.DataFrame({"a": rng.normal(2, 1, size=500)}))
    report_id = ml.save_drift_report(report, "weekly", model="churn/2")
    listed = await get_json(jp_fetch, "drift-reports")
    assert [r["id"] for r in listed["reports"]] == [report_id]
    assert listed["reports"][0]["model_name"] == "churn" and listed["reports"][0]["dataset_drift"] is True
    detail = await get_json(jp_fetch, "drift-reports", report_id)
    assert detail["report"]["columns"][0]["column"] == "a" and detail["record"]["name"] == "weekly"
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", "drift-reports", "0" * 32)
    assert info.value.code == 404


async def test_compare_history_code_diff_and_artifacts(jp_fetch, logged_runs, tracker, tmp_path):
    ids = ",".join(logged_runs[:2])
    result = await get_json(jp_fetch, "compare", runs=ids)
    assert next(r for r in result["params"] if r["key"] == "model")["differs"] is True
    curve = await get_json(jp_fetch, "runs", logged_runs[0], "metric-history", key="acc")
    assert curve["points"] == 1 and curve["values"] == [0.8]
    diff = await get_json(jp_fetch, "code-diff", left=logged_runs[0], right=logged_runs[1])
    assert diff["identical"] is True
    (tmp_path / "notes.txt").write_text("secret-free notes")
    with ml.start_run() as run:
        ml.log_artifact(tmp_path / "notes.txt")
    ml.flush()
    response = await jp_fetch("mlops-lab", "api", "runs", run.id, "artifacts", "notes.txt")
    assert response.body == b"secret-free notes"
    assert response.headers["Content-Disposition"] == 'attachment; filename="notes.txt"'


@pytest.mark.parametrize("path", ["..%2F..%2Fetc%2Fpasswd", "a%2F..%2F..%2Fnotes.txt", "%2Fetc%2Fpasswd", "nope.txt"])
async def test_artifact_paths_cannot_escape(jp_fetch, logged_runs, path):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", "runs", logged_runs[0], "artifacts", path)
    assert info.value.code in (400, 404)
    assert b"root:" not in (info.value.response.body or b"")


@pytest.mark.parametrize(
    "route, params, code",
    [
        (("compare",), {"runs": ""}, 400),
        (("compare",), {"runs": ",".join(["a" * 32] * 2)}, 400),
        (("compare",), {"runs": "f" * 32}, 404),
        (("code-diff",), {"left": "f" * 32}, 400),
        (("runs", "f" * 32, "metric-history"), {"key": "acc"}, 404),
    ],
)
async def test_bad_compare_requests(jp_fetch, logged_runs, route, params, code):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", *route, params=params)
    assert info.value.code == code


async def post_json(jp_fetch, *path, body, headers=None):
    response = await jp_fetch("mlops-lab", "api", *path, method="POST", body=json.dumps(body), headers=headers or {})
    return json.loads(response.body)


async def signed_in(jp_fetch) -> dict:
    """Headers that keep one identity across requests (a token alone gets a new anonymous user each
    time; the browser keeps the identity cookie, as this does)."""
    response = await jp_fetch("mlops-lab", "api", "info")
    cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
    return {"Cookie": "; ".join(cookies)}


async def test_models_panel_api_with_approvals(workspace, jp_fetch, tracker):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    with ml.start_run() as run:
        ml.log_model(LogisticRegression(max_iter=500).fit(X, y))
    ml.flush()
    version = ml.register("iris", run.id)
    me = await signed_in(jp_fetch)
    listed = (await get_json(jp_fetch, "models"))["models"]
    assert listed[0]["name"] == "iris" and listed[0]["versions"][0]["stage"] == "None"
    detail = await post_json(
        jp_fetch,
        "models",
        "iris",
        "versions",
        str(version),
        "stage",
        body={"stage": "Staging", "comment": "from the panel"},
        headers=me,
    )
    assert detail["versions"][0]["stage"] == "Staging"
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:  # Production needs an approval
        await post_json(
            jp_fetch, "models", "iris", "versions", str(version), "stage", body={"stage": "Production"}, headers=me
        )
    assert info.value.code == 403 and "needs 1 approval" in json.loads(info.value.response.body)["error"]
    request = (await post_json(jp_fetch, "models", "iris", "versions", str(version), "approvals", body={}, headers=me))[
        "request"
    ]
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:  # the requester cannot approve
        await post_json(jp_fetch, "approvals", request, body={"decision": "approve"}, headers=me)
    assert info.value.code == 403 and "cannot approve it themselves" in json.loads(info.value.response.body)["error"]
    assert workspace.as_user("second-user").registry.approve(request) == "APPROVED"
    detail = await post_json(
        jp_fetch, "models", "iris", "versions", str(version), "stage", body={"stage": "Production"}, headers=me
    )
    assert detail["model"]["production_version"] == version
    detail = await post_json(jp_fetch, "models", "iris", "aliases", body={"alias": "champion", "version": version})
    assert detail["aliases"] == {"champion": version}
    kinds = [e["kind"] for e in detail["history"]]
    assert kinds[:2] == ["registered", "stage"] and "approve" in kinds and kinds[-1] == "alias"
    for path, body, code in [
        (("models", "iris", "versions", "9", "stage"), {"stage": "Staging"}, 404),
        (("models", "iris", "versions", str(version), "stage"), {"stage": "Live"}, 400),
        (("models", "iris", "versions", str(version), "stage"), {}, 400),
        (("approvals", request), {"decision": "maybe"}, 400),
        (("models", "ghost"), None, 404),
    ]:
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            if body is None:
                await jp_fetch("mlops-lab", "api", *path)
            else:
                await post_json(jp_fetch, *path, body=body, headers=me)
        assert info.value.code == code, path


async def test_in_a_single_user_lab_one_person_is_one_name(workspace, jp_fetch, tracker):
    """The lab acts as its own user (MLOPS_LAB_USER or the OS user), the name its kernels log under,
    never a random id per browser or per token-only request: asking in a notebook and approving in
    the sidebar is one person approving themselves."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    with ml.start_run() as run:
        ml.log_model(LogisticRegression(max_iter=500).fit(X, y))
    ml.flush()
    version = ml.register("iris", run.id)
    ml.promote("iris", version, "Staging")
    request = ml.request_approval("iris", version)  # in a notebook, as the kernel's user
    for headers in ({}, await signed_in(jp_fetch)):  # the token alone, and a browser's identity cookie
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            await post_json(jp_fetch, "approvals", request, body={"decision": "approve"}, headers=headers)
        assert info.value.code == 403
        assert "cannot approve it themselves" in json.loads(info.value.response.body)["error"]
    await post_json(jp_fetch, "models", "iris", "versions", str(version), "stage", body={"stage": "Archived"})
    history = workspace.registry.describe("iris")["history"]
    assert {e["user"] for e in history} == {"tester"}  # the notebook's and the sidebar's, one name
    assert workspace.as_user("reviewer").registry.approve(request) == "APPROVED"  # a second person can


async def test_every_route_refuses_anonymous_calls(jp_fetch, jp_base_url, jp_http_port, logged_runs):
    client = tornado.httpclient.AsyncHTTPClient()
    for pattern, handler in ROUTES:
        path = re.sub(r"\(\[0-9a-f\]\{32\}\)", logged_runs[0], pattern).replace("(.+)", "stdout.txt")
        path = path.replace("([^/]+)", "iris").replace("(\\d+)", "1").replace("(logged|onnx)", "onnx")
        url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}mlops-lab/api/{path}"
        if "get" in handler.__dict__:
            response = await client.fetch(url, raise_error=False)
        else:
            response = await client.fetch(url, method="POST", body="{}", raise_error=False)
        assert response.code == 403, f"{path} answered {response.code} without a token"
        assert logged_runs[0] not in response.body.decode(errors="replace")
        if "delete" in handler.__dict__:
            response = await client.fetch(url, method="DELETE", raise_error=False)
            assert response.code == 403, f"DELETE {path} answered {response.code} without a token"
        if "put" in handler.__dict__:
            response = await client.fetch(url, method="PUT", body="{}", raise_error=False)
            assert response.code == 403, f"PUT {path} answered {response.code} without a token"


async def test_polling_while_a_kernel_writes(jp_fetch, tracker, tmp_path):
    """The panel polls while another process logs: every answer is whole, and nothing goes backwards."""
    import asyncio
    import subprocess
    import sys

    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\n"
                "import mlops_lab as ml\n"
                "ml.set_store(sys.argv[1], sys.argv[2])\n"
                "deadline = time.monotonic() + 6\n"
                "i = 0\n"
                "while time.monotonic() < deadline:\n"
                "    with ml.start_run(f'live-{i}', experiment='live'):\n"
                "        for step in range(50):\n"
                "            ml.log_metric('loss', 1 / (step + 1))\n"
                "            time.sleep(0.001)\n"
                "    i += 1\n"
            ),
            tracker.runs.url,
            tracker.artifacts.root,
        ]
    )
    seen_counts: dict[str, int] = {}
    polls = 0
    try:
        while writer.poll() is None:
            page = await get_json(jp_fetch, "runs", experiment="live", limit="50")
            for run in page["runs"]:
                detail = await get_json(jp_fetch, "runs", run["run_id"])
                count = detail["metric_summaries"].get("loss", {}).get("count", 0)
                assert count >= seen_counts.get(run["run_id"], 0)  # never goes backwards
                assert run["status"] in ("RUNNING", "FINISHED")
                seen_counts[run["run_id"]] = count
            polls += 1
            await asyncio.sleep(0.05)
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0 and polls > 5 and len(seen_counts) > 3
    final = await get_json(jp_fetch, "runs", experiment="live", limit="1000")
    assert all(r["status"] == "FINISHED" for r in final["runs"])


async def test_dataset_diff_route_takes_hashes_only(jp_fetch, tracker):
    import pandas as pd

    with ml.start_run() as run:
        ml.log_dataset(pd.DataFrame({"a": [1, 2, 3]}), "v1")
        ml.log_dataset(pd.DataFrame({"a": [1, 2, 3, 4], "b": [0, 0, 0, 0]}), "v2")
    hashes = {d["name"]: d["hash"] for d in ml.get_run(run.id).datasets}
    diff = await get_json(jp_fetch, "dataset-diff", left=hashes["v1"], right=hashes["v2"])
    assert diff["rows"]["change"] == 1 and diff["columns_added"] == ["b"]
    for hostile in ("/etc/passwd", "../../x.csv", "ab" * 31):
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            await jp_fetch("mlops-lab", "api", "dataset-diff", params={"left": hostile, "right": hashes["v2"]})
        assert info.value.code == 400


async def test_deployments_start_watch_and_stop(jp_fetch, tmp_path):
    import asyncio

    from .onnx_models import mlp

    model = tmp_path / "tiny.onnx"
    model.write_bytes(mlp([4, 8, 2]))
    started = await post_json(jp_fetch, "deployments", body={"model": str(model), "max_batch_size": 8, "log_sample": 0})
    assert started["name"] == "tiny" and started["url"].startswith("http://127.0.0.1:")
    try:
        for _ in range(300):
            detail = await get_json(jp_fetch, "deployments", "tiny")
            if detail["state"] == "ready":
                break
            await asyncio.sleep(0.1)
        assert detail["state"] == "ready" and detail["server"]["roles"]["primary"]["max_batch_size"] == 8
        listed = await get_json(jp_fetch, "deployments")
        assert [d["name"] for d in listed["deployments"]] == ["tiny"]
        assert [e["kind"] for e in detail["history"]][:3] == ["requested", "started", "ready"]
        assert detail["history"][0]["payload"]["options"] == {"max_batch_size": 8, "log_sample": 0}
        rolled = await post_json(
            jp_fetch, "deployments", "tiny", "rollout", body={"canary": str(model), "canary_share": 0.5}
        )
        assert rolled["options"]["canary_share"] == 0.5
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            await post_json(jp_fetch, "deployments", "tiny", "rollout", body={"replicas": 2})
        assert info.value.code == 400
        log = await get_json(jp_fetch, "deployments", "tiny", "log", lines="50")
        assert "serving tiny at" in log["log"]
        for body, message in (
            ({}, "lacks model"),
            ({"model": str(model), "name": "tiny"}, "already being served"),
            ({"model": str(model), "name": "x", "bogus": 1}, "unknown serving option"),
        ):
            with pytest.raises(tornado.httpclient.HTTPClientError) as info:
                await post_json(jp_fetch, "deployments", body=body)
            assert info.value.code == 400 and message in info.value.response.reason
    finally:
        stopped = await jp_fetch("mlops-lab", "api", "deployments", "tiny", method="DELETE")
    assert json.loads(stopped.body)["state"] == "stopped"
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", "deployments", "nothing-here")
    assert info.value.code == 404


@pytest.mark.parametrize(
    ("path", "params", "error"),
    [
        (("runs", "0" * 32), {}, "NotFoundError"),
        (("runs",), {"filter": "metrics.acc >"}, "InvalidInputError"),
        (("models", "nope"), {}, "NotFoundError"),
    ],
)
async def test_error_answers_rebuild_into_the_same_error_class(jp_fetch, logged_runs, path, params, error):
    """What a REST client (the serving client, the team server's) does with an error answer."""
    from mlops_lab import errors

    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", *path, params=params)
    body = json.loads(info.value.response.body)
    assert set(body) == {"error", "status"} and body["status"] == info.value.code
    rebuilt = errors.error_from_response(info.value.code, info.value.response.body)
    assert type(rebuilt) is getattr(errors, error) and str(rebuilt) == body["error"]


async def test_requests_another_site_started_are_refused(jp_fetch, jp_base_url, jp_http_port, logged_runs):
    """A top-level navigation from another site carries the lab's cookie (SameSite=Lax); browsers mark it."""
    cookie = (await signed_in(jp_fetch))["Cookie"]  # what a signed-in browser holds, and no token
    client = tornado.httpclient.AsyncHTTPClient()
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}mlops-lab/api/runs?filter=metrics.acc%20%3E%200"

    async def get(site):
        headers = {"Cookie": cookie} | ({"Sec-Fetch-Site": site} if site else {})
        return await client.fetch(url, headers=headers, raise_error=False)

    for site in ("cross-site", "same-site"):
        response = await get(site)
        assert response.code == 403 and "another site" in json.loads(response.body)["error"]
        assert logged_runs[0] not in response.body.decode()
    for site in ("same-origin", "none", None):  # the lab's own pages, a typed address, a non-browser client
        response = await get(site)
        assert response.code == 200 and len(json.loads(response.body)["runs"]) == 3
    # a client that sends the token itself is not a browser following a link
    page = await jp_fetch("mlops-lab", "api", "runs", headers={"Sec-Fetch-Site": "cross-site"})
    assert len(json.loads(page.body)["runs"]) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"alias": "a", "version": Infinity}', "not JSON"),
        (b'{"alias": "a", "version": NaN}', "not JSON"),
        (b'{"alias": "a", "version": 123456789012345678901234}', "out of range"),
        (b'{"alias": {"x": 1}, "version": 1}', "alias"),
        (b'{"alias": "a", "version": "1"}', "version"),
        (b"[1, 2]", "JSON object"),
    ],
)
async def test_odd_json_bodies_are_400_not_500(workspace, jp_fetch, logged_runs, body, message):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    with ml.start_run() as run:
        ml.log_model(LogisticRegression(max_iter=500).fit(X, y))
    ml.flush()
    ml.register("iris", run.id)
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", "models", "iris", "aliases", method="POST", body=body)
    assert info.value.code == 400 and message in json.loads(info.value.response.body)["error"]
    assert workspace.registry.describe("iris")["aliases"] == {}


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "(" * 350 + "metrics.acc > 1" + ")" * 350},
        {"filter": " or ".join(["metrics.acc > 1"] * 1_100)},
        {"order_by": [f"metrics.m{i}" for i in range(70)]},
        {"filter": "metrics.acc > " + "1" * 16_000 + "a"},
    ],
)
async def test_oversized_searches_are_400_and_quick(jp_fetch, logged_runs, params):
    import time

    start = time.perf_counter()
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await jp_fetch("mlops-lab", "api", "runs", params=params)
    assert info.value.code == 400 and time.perf_counter() - start < 2.0


async def test_what_the_property_tests_found_is_a_clear_400(workspace, jp_fetch, logged_runs):
    """Found by tests/test_rest_properties.py: a comment that is not text, a version past any integer."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    with ml.start_run() as run:
        ml.log_model(LogisticRegression(max_iter=500).fit(X, y))
    ml.flush()
    ml.register("iris", run.id)
    me = await signed_in(jp_fetch)
    for path, body, message in [
        (("models", "iris", "versions", "1", "approvals"), {"comment": []}, "a comment must be text"),
        (("models", "iris", "versions", "1", "stage"), {"stage": "Staging", "comment": {"a": 1}}, "a comment"),
        (("models", "iris", "versions", "9" * 30, "stage"), {"stage": "Staging"}, "out of range"),
    ]:
        with pytest.raises(tornado.httpclient.HTTPClientError) as info:
            await post_json(jp_fetch, *path, body=body, headers=me)
        assert info.value.code == 400 and message in json.loads(info.value.response.body)["error"], path
    assert workspace.registry.describe("iris")["approvals"] == []


async def test_the_team_routes_say_when_the_store_is_no_team_server(jp_fetch, tracker):
    from tornado.httpclient import HTTPClientError

    answer = await jp_fetch("mlops-lab", "api", "team")
    assert json.loads(answer.body) == {"server": None}
    for method, path, body in [
        ("POST", "team/tokens", "{}"),
        ("PUT", "team/permissions", '{"kind": "model", "name": "m", "grantee": "x"}'),
        ("DELETE", "team/tokens/abc", None),
    ]:
        with pytest.raises(HTTPClientError) as refused:
            await jp_fetch(
                "mlops-lab", "api", *path.split("/"), method=method, body=body, allow_nonstandard_methods=True
            )
        assert refused.value.code == 400 and "not a team server" in refused.value.response.body.decode()


async def test_pipelines_are_found_run_and_watched_through_the_api(jp_fetch, jp_root_dir, tracker):
    import asyncio

    from .test_pipelines import notebook, pipeline_yaml

    folder = jp_root_dir / "work" / "small"
    notebook(folder / "make.ipynb", "open('made.txt', 'w').write(str(n))", parameters="n = 1")
    notebook(folder / "use.ipynb", "1 / 0")
    pipeline_yaml(
        folder,
        "name: small\nsteps:\n  make: {notebook: make.ipynb, params: {n: 2}, outs: [made.txt]}\n"
        "  use: {notebook: use.ipynb, deps: [made.txt]}\n",
    )
    (jp_root_dir / "broken").mkdir()
    (jp_root_dir / "broken" / "pipeline.yaml").write_text("steps: 3")
    found = await get_json(jp_fetch, "pipelines")
    assert [(p["path"], p["name"], p["steps"]) for p in found["pipelines"]] == [
        ("broken/pipeline.yaml", None, 0),
        ("work/small/pipeline.yaml", "small", 2),
    ]
    assert "needs a non-empty 'steps' mapping" in found["pipelines"][0]["error"]

    view = await get_json(jp_fetch, "pipeline", path="work/small/pipeline.yaml")
    assert [(s["step"], s["state"], s["reasons"]) for s in view["steps"]] == [
        ("make", "stale", ["never ran"]),
        ("use", "stale", ["upstream step make will run"]),
    ]
    assert view["edges"] == [["make", "use"]] and view["steps"][0]["notebook"] == "work/small/make.ipynb"
    started = await post_json(jp_fetch, "pipeline", body={"path": "work/small/pipeline.yaml"})
    assert started["launch"]["running"]
    with pytest.raises(tornado.httpclient.HTTPClientError) as busy:
        await post_json(jp_fetch, "pipeline", body={"path": "work/small/pipeline.yaml"})
    assert busy.value.code == 409 and "is running already" in busy.value.response.reason
    for _ in range(600):
        view = await get_json(jp_fetch, "pipeline", path="work/small/pipeline.yaml")
        if not view["launch"]["running"]:
            break
        await asyncio.sleep(0.1)
    assert (
        view["launch"]["exit_code"] == 1
        and "use: FAILED: cell 1 of use.ipynb raised ZeroDivisionError" in view["launch"]["output"]
    )
    states = {s["step"]: s for s in view["steps"]}
    assert states["make"]["state"] == "done" and states["make"]["seconds"] > 0 and states["make"]["run_id"]
    assert states["use"]["state"] == "failed" and "ZeroDivisionError" in states["use"]["error"]
    assert view["last_run"]["status"] == "FAILED"
    assert (folder / "made.txt").read_text() == "2"
    executed = await post_json(
        jp_fetch, "pipeline", "executed", body={"path": "work/small/pipeline.yaml", "run_id": states["use"]["run_id"]}
    )
    assert executed["notebook"] == f"work/small/executed/use-{states['use']['run_id'][:8]}.ipynb"
    kept = json.loads((jp_root_dir / executed["notebook"]).read_text())
    assert any(o.get("ename") == "ZeroDivisionError" for c in kept["cells"] for o in c.get("outputs", []))
    for body, message in (
        ({"path": "work/small/pipeline.yaml", "run_id": "0" * 32}, "no run"),
        ({"path": "work/small/pipeline.yaml", "run_id": "x"}, "run_id must be"),
        ({"path": "work/small/pipeline.yaml", "run_id": view["last_run"]["id"]}, "is no step of pipeline 'small'"),
    ):
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await post_json(jp_fetch, "pipeline", "executed", body=body)
        assert message in refused.value.response.reason, body

    for body, code, message in (
        ({"path": "../outside.yaml"}, 400, "lies outside the lab's folder"),
        ({"path": "work/small/make.ipynb"}, 400, "a pipeline is a .yaml file"),
        ({"path": "work/none/pipeline.yaml"}, 404, "no pipeline file"),
        ({"path": "work/small/pipeline.yaml", "step": "nope"}, 400, "has no step 'nope'"),
        ({"path": "work/small/pipeline.yaml", "force": "yes"}, 400, "force must be true or false"),
        ({"path": "work/small/pipeline.yaml", "env": {}}, 400, "takes path, step and force"),
        ({"path": "broken/pipeline.yaml"}, 400, "needs a non-empty 'steps' mapping"),
    ):
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await post_json(jp_fetch, "pipeline", body=body)
        assert refused.value.code == code and message in refused.value.response.reason, body


async def test_lineage_route(jp_fetch, tracker):
    with ml.start_run("reads") as run:
        ml.log_dataset(__import__("pandas").DataFrame({"x": [1, 2]}), "frame")
    ml.flush()
    digest = ml.get_run(run.id).datasets[0]["hash"]
    found = await get_json(jp_fetch, "lineage", dataset=digest)
    assert [r["run_id"] for r in found["runs"]] == [run.id] and found["model_versions"] == []
    for params, code in (({}, 400), ({"dataset": "0" * 64}, 404), ({"model": "nope/1"}, 404)):
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await jp_fetch("mlops-lab", "api", "lineage", params=params)
        assert refused.value.code == code, params
