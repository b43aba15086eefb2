"""A team on real JupyterHub: the hub (dummy password authenticator, local process spawner,
configurable-http-proxy from npm), the team server as a hub service over PostgreSQL, and two people
in two browsers.  Their kernels and labs reach the team server with the hub's tokens; nobody
configures a token, and no name typed into a notebook changes who acts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
import requests

from mlops_lab.net import free_port

from .lab import launch_browser, require_chromium

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parent.parent
PROXY = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"


def hub_config(tmp_path: Path, hub_port: int, service_port: int, db_url: str) -> str:
    """What docs/teams.md gives, with this test's ports, folders and database."""
    return textwrap.dedent(f"""
        import sys
        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {hub_port}
        c.JupyterHub.hub_port = {free_port()}
        c.JupyterHub.db_url = "sqlite:///{tmp_path}/jupyterhub.sqlite"
        c.JupyterHub.cookie_secret_file = "{tmp_path}/cookie_secret"
        c.ConfigurableHTTPProxy.command = ["{PROXY}"]
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
        c.JupyterHub.authenticator_class = "dummy"
        c.DummyAuthenticator.password = "team-password"
        c.Authenticator.allow_all = True
        c.JupyterHub.spawner_class = "simple"
        c.SimpleLocalProcessSpawner.home_dir_template = "{tmp_path}/home/{{username}}"
        c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
        c.Spawner.args = ["--allow-root"]
        c.Spawner.default_url = "/lab"
        c.Spawner.start_timeout = 120
        c.Spawner.http_timeout = 120
        c.Spawner.environment = {{"MLOPS_LAB_TRACKING_URI": "http://127.0.0.1:{service_port}",
                                  "PYTHONPATH": "{ROOT}"}}
        # what a user's server and kernels may do with the hub's token: reach the team server,
        # and let it read their name and groups
        c.Spawner.server_token_scopes = [
            "users:activity!user", "access:servers!user", "read:users:groups!user",
            "access:services!service=mlops-lab",
        ]
        c.JupyterHub.services = [{{
            "name": "mlops-lab",
            "url": "http://127.0.0.1:{service_port}",
            "command": [sys.executable, "-m", "mlops_lab.cli", "--db-url", "{db_url}",
                        "--artifacts", "{tmp_path}/blobs", "server", "--hub", "--port", "{service_port}",
                        "--approvers", "reviewers"],
        }}]
        c.JupyterHub.load_roles = [
            {{"name": "user", "scopes": ["self", "access:services!service=mlops-lab"]}},
        ]
        c.JupyterHub.load_groups = {{"reviewers": {{"users": ["bob"]}}}}
    """)


@pytest.fixture
def hub(tmp_path, pg_url):
    require_chromium()
    if not PROXY.exists():
        pytest.fail(f"configurable-http-proxy is not installed at {PROXY} (make setup installs it)")
    hub_port, service_port = free_port(), free_port()
    for user in ("alice", "bob"):
        (tmp_path / "home" / user).mkdir(parents=True)
    (tmp_path / "jupyterhub_config.py").write_text(hub_config(tmp_path, hub_port, service_port, pg_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_LAB_", "JUPYTERHUB_"))}
    log = open(tmp_path / "hub.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(tmp_path / "jupyterhub_config.py")],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the hub, its proxy and its service: one process group to stop
    )

    def stop_everything() -> None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever the hub left: the proxy, the service
        except ProcessLookupError:
            pass
        subprocess.run(["pkill", "-f", str(tmp_path)], check=False)  # the users' servers and kernels
        log.close()

    url = f"http://127.0.0.1:{hub_port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if (
                requests.get(f"{url}/hub/health", timeout=2).ok
                and requests.get(f"http://127.0.0.1:{service_port}/health", timeout=2).ok
            ):
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_everything()
            pytest.fail("JupyterHub did not start:\n" + (tmp_path / "hub.log").read_text()[-4000:])
        time.sleep(0.5)
    yield url, tmp_path
    stop_everything()
    print((tmp_path / "hub.log").read_text()[-3000:])


def sign_in(browser, url: str, user: str):
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.on("pageerror", lambda error: print(f"{user} page error:", error))
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", "team-password")
    page.click("#login_submit")
    page.wait_for_url(f"{url}/user/{user}/lab**", timeout=120_000)
    page.locator('.lm-TabBar-tab[data-id="mlops-lab-runs"]').wait_for(timeout=120_000)
    return page


def run_notebook(page, url: str, user: str, name: str) -> None:
    page.goto(f"{url}/user/{user}/lab/tree/{name}")
    page.locator(".jp-Notebook").wait_for(timeout=60_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
    page.locator(".jp-Notebook").click()
    page.keyboard.press("Escape")
    page.get_by_role("menuitem", name="Run").first.click()
    page.get_by_text("Run All Cells", exact=True).click()


def write_notebook(path: Path, cells: list[str]) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


def test_a_team_on_jupyterhub(hub, pg_url, artifacts_dir):
    from playwright.sync_api import sync_playwright

    from mlops_lab.store import open_store

    url, root = hub
    write_notebook(
        root / "home" / "alice" / "train.ipynb",
        [
            "%env MLOPS_LAB_USER=bob",  # a forged name: changes nothing
            "%load_ext mlops_lab",
            "%%track --experiment churn --name alice-run\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "C = 0.5\nmodel = LogisticRegression(C=C).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])\n"
            "accuracy = 1.0",
            "import mlops_lab as ml\nml.flush()\n"
            "run_id = ml.search_runs('churn', filter_string=\"attributes.run_name = 'alice-run'\").run_id[0]\n"
            "version = ml.register('churn-model', run_id)\nml.promote('churn-model', version, 'Staging')\n"
            "request = ml.request_approval('churn-model', version)\n"
            "try:\n    ml.approve(request)\nexcept Exception as error:\n    print('REFUSED:', error)",
        ],
    )
    write_notebook(
        root / "home" / "bob" / "intrude.ipynb",
        [
            "import mlops_lab as ml\n"
            "try:\n    ml.start_run('bob-run', experiment='churn')\nexcept Exception as error:\n"
            "    print('REFUSED:', error)",
        ],
    )
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        alice = sign_in(browser, url, "alice")
        run_notebook(alice, url, "alice", "train.ipynb")
        alice.locator(".jp-OutputArea-output", has_text="REFUSED").wait_for(timeout=120_000)
        refused = alice.locator(".jp-OutputArea-output", has_text="REFUSED").inner_text()
        assert "'alice' asked for this approval and cannot approve it" in refused
        alice.screenshot(path=str(artifacts_dir / "hub-alice-notebook.png"))

        bob = sign_in(browser, url, "bob")
        bob.locator('.lm-TabBar-tab[data-id="mlops-lab-runs"]').click()
        bob.locator(".jp-mlops-runs tr[data-run-id]", has_text="alice-run").wait_for(timeout=30_000)
        bob.screenshot(path=str(artifacts_dir / "hub-bob-sees-alice-run.png"))

        run_notebook(bob, url, "bob", "intrude.ipynb")
        bob.locator(".jp-OutputArea-output", has_text="REFUSED").wait_for(timeout=120_000)
        assert (
            "'bob' needs EDIT on the experiment 'churn'"
            in bob.locator(".jp-OutputArea-output", has_text="REFUSED").inner_text()
        )

        # bob reviews: a member of the approvers' group approves alice's request in the Models panel
        bob.goto(f"{url}/user/bob/lab")
        bob.locator('.lm-TabBar-tab[data-id="mlops-lab-models"]').wait_for(timeout=60_000)
        bob.wait_for_timeout(500)  # the restored layout settles: the panel may already be open
        if not bob.locator("#mlops-lab-models").is_visible():
            bob.locator('.lm-TabBar-tab[data-id="mlops-lab-models"]').click()
        bob.locator('.jp-mlops-ModelsPanel tr[data-model="churn-model"]').click(timeout=30_000)
        view = bob.locator(".jp-mlops-ModelView")
        view.locator(".jp-mlops-approve").click(timeout=30_000)
        view.locator(".jp-mlops-approval", has_text="APPROVED").wait_for(timeout=30_000)
        bob.screenshot(path=str(artifacts_dir / "hub-bob-approves.png"))
        browser.close()

    store = open_store(pg_url)
    run = store.runs.search_runs(filter_string="attributes.run_name = 'alice-run'")[0][0]
    assert run["user"] == "alice"  # not the bob her notebook claimed
    history = {(e["kind"], e["user"]) for e in store.events.events("model", "churn-model")}
    assert {("approval_requested", "alice"), ("approve", "bob")} <= history
