"""Every route asks Jupyter's Authorizer: reading is "read", changing is "write", starting or
stopping serving processes is "execute" (a real server, with an Authorizer a deployment may set)."""

from __future__ import annotations

import json
import re

import pytest
import tornado.httpclient
from jupyter_server.auth.authorizer import Authorizer

import mlops_lab as ml
from mlops_lab.server.handlers import ROUTES

pytest_plugins = ["pytest_jupyter.jupyter_server"]

ALLOWED: set[str] = set()  # the actions the Authorizer below allows, set by each test
ASKED: list[tuple[str, str]] = []


class ListedActions(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        ASKED.append((action, resource))
        return action in ALLOWED


@pytest.fixture
def jp_server_config(tracker, monkeypatch):
    monkeypatch.setenv("MLOPS_LAB_DB_URL", tracker.runs.url)
    monkeypatch.setenv("MLOPS_LAB_ARTIFACTS", tracker.artifacts.root)
    return {"ServerApp": {"jpserver_extensions": {"mlops_lab": True}, "authorizer_class": ListedActions}}


@pytest.fixture
def run_id(tracker):
    with ml.start_run("authz") as run:
        ml.log_metric("acc", 0.9)
    ml.flush()
    return run.id


def calls(run_id):
    """Every route with each method it answers."""
    for pattern, handler in ROUTES:
        path = re.sub(r"\(\[0-9a-f\]\{32\}\)", run_id, pattern).replace("(.+)", "stdout.txt")
        path = path.replace("([^/]+)", "iris").replace("(\\d+)", "1")
        for method in ("get", "post", "put", "delete"):
            if method in handler.__dict__:
                yield method.upper(), path


async def fetch(jp_fetch, method, path):
    body = "{}" if method in ("POST", "PUT") else None
    try:
        response = await jp_fetch("mlops-lab", "api", *path.split("/"), method=method, body=body)
    except tornado.httpclient.HTTPClientError as exc:
        return exc.code, exc.response.body if exc.response else b""
    return response.code, response.body


async def test_a_read_only_user_can_look_but_not_change(jp_fetch, run_id):
    ALLOWED.clear()
    ALLOWED.add("read")
    ASKED.clear()
    for method, path in calls(run_id):
        code, body = await fetch(jp_fetch, method, path)
        if method == "GET":
            assert code != 403, f"GET {path} refused a reader"
        else:
            assert code == 403, f"{method} {path} answered {code} to a read-only user"
    assert ("read", "mlops_lab") in ASKED and ("write", "mlops_lab") in ASKED and ("execute", "mlops_lab") in ASKED


async def test_starting_and_stopping_processes_needs_execute(jp_fetch, run_id):
    ALLOWED.clear()
    ALLOWED.update({"read", "write"})
    serving = [("POST", "deployments"), ("DELETE", "deployments/iris"), ("POST", "deployments/iris/rollout")]
    for method, path in [*serving, ("POST", "pipeline")]:
        code, _ = await fetch(jp_fetch, method, path)
        assert code == 403, f"{method} {path} answered {code} without execute"
    code, body = await fetch(jp_fetch, "GET", "deployments")
    assert code == 200 and json.loads(body) == {"deployments": []}  # nothing was started
