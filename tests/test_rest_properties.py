"""Any body sent to the lab's REST routes gets a result or a 4xx with a message: never a 500, and
nothing stored is changed by a refused request (a real Jupyter server, hypothesis-made bodies)."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlops_lab as ml

from .lab import LabServer

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=12,
)
FIELDS = st.sampled_from(["stage", "comment", "alias", "version", "decision", "canary", "canary_share", "shadow"])
BODIES = st.dictionaries(FIELDS, VALUES | st.sampled_from(["Staging", "Production", "approve", "champion", 1]))
RAW = st.binary(max_size=40) | st.sampled_from([b"", b"{", b"[1]", b'{"stage": NaN}', b'{"version": 1e999}'])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from mlops_lab.config import StoreLocation
    from mlops_lab.workspace import Workspace, set_default_workspace

    root = tmp_path_factory.mktemp("rest")
    workspace = Workspace(StoreLocation(f"sqlite:///{root / 's.db'}", str(root / "artifacts"), "test"))
    set_default_workspace(workspace)
    X, y = load_iris(return_X_y=True)
    with ml.start_run() as run:
        ml.log_model(LogisticRegression(max_iter=300).fit(X, y))
    ml.flush()
    ml.register("iris", run.id)
    request = workspace.as_user("owner").registry.request_approval("iris", 1)
    (root / "notebooks").mkdir()
    server = LabServer(root / "notebooks", {"MLOPS_LAB_DB_URL": workspace.location.db_url,
                                            "MLOPS_LAB_ARTIFACTS": workspace.location.artifacts})  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    opener.open(urllib.request.Request(f"{server.url}/mlops-lab/api/info",
                                       headers={"Authorization": f"token {server.token}"})).read()  # fmt: skip
    yield server, opener, workspace, request
    server.stop()
    set_default_workspace(None)


def post(lab, path: str, body: bytes) -> tuple[int, dict]:
    server, opener, _, _ = lab
    request = urllib.request.Request(
        f"{server.url}/mlops-lab/api/{path}", data=body, method="POST",
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


ROUTES = ["models/iris/versions/1/stage", "models/iris/aliases", "models/iris/versions/1/approvals",
          "approvals/{request}", "deployments/iris/rollout"]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=BODIES.map(lambda b: json.dumps(b).encode()) | RAW)
def test_any_body_gets_a_result_or_a_4xx(lab, route, body):
    _, _, workspace, request = lab
    before = workspace.registry.describe("iris")
    status, answer = post(lab, route.format(request=request), body)
    assert status < 500, (route, body, answer)
    if status >= 400:
        assert isinstance(answer.get("error"), str) and answer["error"] and answer.get("status") == status
        after = workspace.registry.describe("iris")
        assert after["versions"] == before["versions"] and after["aliases"] == before["aliases"]
