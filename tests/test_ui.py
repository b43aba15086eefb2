"""The sidebar in a real browser: JupyterLab on loopback, Chromium driven by Playwright."""

from __future__ import annotations

import time

import pytest

import mlops_lab as ml

from .lab import LabServer, launch_browser, require_chromium

pytestmark = pytest.mark.browser


@pytest.fixture
def lab(tracker, tmp_path):
    require_chromium()
    root = tmp_path / "notebooks"
    root.mkdir()
    server = LabServer(root, {"MLOPS_LAB_DB_URL": tracker.runs.url, "MLOPS_LAB_ARTIFACTS": tracker.artifacts.root})
    yield server
    server.stop()


def open_runs_panel(page, lab) -> None:
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.lm-TabBar-tab[data-id="mlops-lab-runs"]').click(timeout=60_000)
    page.locator(".jp-mlops-runs tr[data-run-id]").first.wait_for(timeout=10_000)


def compare_all_listed(page) -> None:
    """Tick every run the panel lists and open the comparison."""
    for box in page.locator(".jp-mlops-runs tr[data-run-id] input[type=checkbox]").all():
        box.check()
    page.locator(".jp-mlops-compare-button").click()


@pytest.fixture
def page(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        # The browser's errors in the test's output: what a failing UI test needs first.
        page.on("pageerror", lambda error: print("page error:", error))
        page.on("console", lambda message: print("console:", message.text) if message.type == "error" else None)
        yield page
        context.close()
        browser.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_runs_panel_lists_runs_and_filters(lab, page, artifacts_dir):
    for i, (model, acc) in enumerate([("rf", 0.91), ("rf", 0.87), ("lr", 0.78)]):
        with ml.start_run(f"sweep-{i}", experiment="ui"):
            ml.log_param("model", model)
            ml.log_metrics({"accuracy": acc, "loss": 1 - acc})
    ml.flush()

    page.goto(f"{lab.url}/lab?token={lab.token}")
    tab = page.locator('.lm-TabBar-tab[data-id="mlops-lab-runs"]')
    tab.wait_for(timeout=60_000)
    opened = time.monotonic()
    tab.click()
    rows = page.locator(".jp-mlops-runs tr[data-run-id]")
    rows.first.wait_for(timeout=10_000)
    interactive_s = time.monotonic() - opened
    assert rows.count() == 3
    assert page.locator(".jp-mlops-runs th").all_inner_texts() == ["", "Run", "Started", "Duration", "accuracy", "loss"]
    assert "sweep-0" in page.locator(".jp-mlops-runs").inner_text()
    page.screenshot(path=str(artifacts_dir / "runs-panel.png"))

    # Choose a param as a column; "only what differs" keeps it since the models differ.
    page.locator(".jp-mlops-columns summary").click()
    page.locator('.jp-mlops-columns input[data-column="params.model"]').check()
    page.locator('.jp-mlops-columns input[data-column="metrics.loss"]').uncheck()
    assert page.locator(".jp-mlops-runs th").all_inner_texts()[4:] == ["accuracy", "model"]
    page.locator(".jp-mlops-columns summary").click()
    page.screenshot(path=str(artifacts_dir / "runs-panel-columns.png"))

    box = page.locator(".jp-mlops-filter")
    asked = []
    page.on("request", lambda request: asked.append(request.url) if "/mlops-lab/api/runs" in request.url else None)
    box.fill("metrics.accuracy >")
    box.press("Enter")
    page.locator("#mlops-lab-runs .jp-mlops-message.jp-mlops-error").wait_for(timeout=10_000)
    assert "ends early" in page.locator("#mlops-lab-runs .jp-mlops-message").inner_text()
    assert rows.count() == 0  # no stale rows under the error
    page.wait_for_timeout(5_000)  # two polls' time: the refused filter is not sent again
    assert len([url for url in asked if "accuracy" in url]) == 1
    page.screenshot(path=str(artifacts_dir / "runs-panel-bad-filter.png"))

    box.fill("metrics.accuracy > 2")
    box.press("Enter")
    page.get_by_text("No runs match this filter.").wait_for(timeout=10_000)  # not "No runs yet"
    assert rows.count() == 0

    box.fill("params.model = 'rf'")  # CSV of what is listed: every run, every param and metric
    box.press("Enter")
    page.wait_for_function("document.querySelectorAll('.jp-mlops-runs tr[data-run-id]').length === 2", timeout=10_000)
    with page.expect_download() as download:
        page.locator(".jp-mlops-csv-button").click()
    import csv
    import io
    from pathlib import Path

    listed = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert sorted(r["name"] for r in listed) == ["sweep-0", "sweep-1"]
    assert {r["params.model"] for r in listed} == {"rf"} and {r["metrics.accuracy"] for r in listed} == {"0.91", "0.87"}

    box.fill("params.model = 'rf' and metrics.accuracy > 0.9")
    box.press("Enter")
    page.wait_for_function("document.querySelectorAll('.jp-mlops-runs tr[data-run-id]').length === 1", timeout=10_000)
    assert "sweep-0" in rows.first.inner_text()

    # A run logged while the panel is open appears without a reload.
    box.fill("")
    box.press("Enter")
    with ml.start_run("late-arrival", experiment="ui"):
        ml.log_metric("accuracy", 0.95)
    ml.flush()
    page.wait_for_function("document.querySelectorAll('.jp-mlops-runs tr[data-run-id]').length === 4", timeout=15_000)
    print(f"Runs panel interactive {interactive_s:.2f} s after opening")
    assert interactive_s < 5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_drift_panel_lists_reports_and_opens_one(lab, page, artifacts_dir):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"age": rng.normal(40, 10, 5000), "plan": rng.choice(["basic", "pro"], 5000)})
    current = pd.DataFrame({"age": rng.normal(48, 10, 5000), "plan": rng.choice(["basic", "pro", "student"], 5000)})
    current["day"] = pd.Timestamp("2026-11-01") + pd.to_timedelta(np.arange(5000) // 1000, unit="D")
    report = ml.drift(reference, current, timestamp="day", period="1d")
    ml.save_drift_report(report, "weekly check", model="churn/3")

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.lm-TabBar-tab[data-id="mlops-lab-drift"]').click(timeout=60_000)
    row = page.locator(".jp-mlops-DriftPanel tr[data-report-id]")
    row.first.wait_for(timeout=10_000)
    assert "weekly check" in row.first.inner_text() and "churn/3" in row.first.inner_text()
    page.screenshot(path=str(artifacts_dir / "drift-panel.png"))
    row.first.click()
    table = page.locator(".jp-mlops-drift-table tr[data-column]")
    table.first.wait_for(timeout=10_000)
    assert table.count() == 2
    assert "Dataset drift: 2 of 2 features drifted" in page.locator(".jp-mlops-drift-summary").inner_text()
    # Every test's statistic and p-value, a column each; no Value/Score pair that repeats one of them.
    headers = page.locator(".jp-mlops-drift-table th").all_inner_texts()
    for title in ("KS D", "KS p", "PSI", "Wasserstein (σ)", "Jensen–Shannon", "χ²", "χ² p"):
        assert title in headers, title
    assert "Value" not in headers and "Score" not in headers
    age = {
        cell.get_attribute("data-statistic"): cell.inner_text()
        for cell in page.locator('.jp-mlops-drift-table tr[data-column="age"] td[data-statistic]').all()
    }
    assert float(age["KS p"]) < 0.05 and float(age["Wasserstein (σ)"]) > 0.5 and age["χ²"] == ""
    deciding = page.locator('.jp-mlops-drift-table tr[data-column="age"] td.jp-mlops-deciding')
    assert deciding.count() >= 1  # the test that decides is marked
    # The report has a time column: each day's scores.
    periods = page.locator(".jp-mlops-period-table tr")
    periods.nth(5).wait_for(timeout=10_000)
    assert periods.count() == 6  # a header and five days
    page.locator(".jp-mlops-drift-periods .main-svg").first.wait_for(timeout=15_000)
    page.locator(".jp-mlops-drift-chart .main-svg").first.wait_for(timeout=15_000)  # the first column's charts
    page.locator('.jp-mlops-drift-table tr[data-column="plan"]').click()
    page.wait_for_function(
        "document.querySelector('.jp-mlops-drift-chart').innerText.includes('student')", timeout=10_000
    )
    page.screenshot(path=str(artifacts_dir / "drift-report.png"))
    page.locator(".jp-mlops-drift-model", has_text="churn/3").click()  # the model the report is about
    page.locator(".jp-mlops-ModelView").wait_for(timeout=10_000)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_compare_two_runs_in_the_main_area(lab, page, artifacts_dir, tracker):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    for depth, extra in ((3, ""), (8, "model.fit(X, y)\n")):
        run = tracker.start_run(f"tree-depth-{depth}", experiment="ui", source=f"depth = {depth}\n{extra}score = 1\n")
        tracker.log_params({"depth": depth, "criterion": "gini"}, run=run)
        for step in range(30):
            tracker.log_metrics({"loss": 1 / (step + depth)}, step=step, run=run)
        figure = plt.figure(figsize=(3, 2))
        plt.plot([1 / (s + depth) for s in range(30)])
        tracker.log_figure(figure, "figures/loss.png", run=run)
        plt.close(figure)
        tracker.log_figure(go.Figure(go.Bar(y=[depth, 1, 2])), "figures/importance.json", run=run)
        tracker.end_run(run=run)
    tracker.flush()

    open_runs_panel(page, lab)
    for box in page.locator(".jp-mlops-runs tr[data-run-id] input[type=checkbox]").all():
        box.check()
    button = page.locator(".jp-mlops-compare-button")
    assert button.inner_text() == "Compare 2"
    button.click()
    view = page.locator(".jp-mlops-CompareView")
    view.locator("tr[data-key=depth]").wait_for(timeout=10_000)
    assert view.locator("tr[data-key=criterion]").count() == 0  # the same in both: hidden by default
    view.locator(".jp-mlops-chart .main-svg").first.wait_for(timeout=15_000)  # plotly drew the curves
    view.locator(".jp-mlops-scatter .main-svg").first.wait_for(timeout=15_000)  # param against metric
    view.locator(".jp-mlops-diff-replace").first.wait_for(timeout=10_000)
    assert "model.fit(X, y)" in view.locator(".jp-mlops-diff").inner_text()
    # Each run's figures side by side: the PNGs decoded, the plotly JSON drawn.
    page.wait_for_function(
        "[...document.querySelectorAll('.jp-mlops-figure img')].filter(i => i.naturalWidth > 0).length === 2",
        timeout=15_000,
    )
    view.locator(".jp-mlops-figure .main-svg").nth(1).wait_for(timeout=15_000)
    assert view.locator(".jp-mlops-figure-table td.jp-mlops-key").all_inner_texts() == ["importance.json", "loss.png"]
    page.set_viewport_size({"width": 1400, "height": 1900})  # the whole view, charts and code included
    view.locator(".jp-mlops-chart .main-svg").first.wait_for(timeout=15_000)
    page.mouse.move(5, 5)  # no hover line over the chart
    page.screenshot(path=str(artifacts_dir / "compare-view.png"))
    view.locator(".jp-mlops-figures").screenshot(path=str(artifacts_dir / "compare-figures.png"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_runs_table_renders_only_the_rows_in_view(lab, page, tracker):
    for i in range(400):
        run = tracker.start_run(f"many-{i:03d}", experiment="many")
        tracker.log_metrics({"score": i}, run=run)
        tracker.log_params({"same": "x"}, run=run)
        tracker.end_run(run=run)
    tracker.flush()
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.lm-TabBar-tab[data-id="mlops-lab-runs"]').click(timeout=60_000)
    rows = page.locator(".jp-mlops-runs tr[data-run-id]")
    rows.first.wait_for(timeout=10_000)
    assert "400 latest runs" in page.locator("#mlops-lab-runs .jp-mlops-message").inner_text()
    assert 10 < rows.count() < 100  # a window of rows, not 400
    page.locator("#mlops-lab-runs .jp-mlops-scroll").evaluate("node => node.scrollTop = node.scrollHeight")
    page.wait_for_function(
        "[...document.querySelectorAll('.jp-mlops-runs tr[data-run-id]')]"
        ".some(row => row.innerText.includes('many-000'))",
        timeout=10_000,
    )
    page.locator(".jp-mlops-columns summary").click()
    page.locator('.jp-mlops-columns input[data-column="params.same"]').check()
    assert page.locator(".jp-mlops-runs th").all_inner_texts()[4:] == ["score", "same"]
    page.locator("#mlops-lab-runs .jp-mlops-toggle input").check()
    assert page.locator(".jp-mlops-runs th").all_inner_texts()[4:] == ["score"]  # 'same' never differs


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_notebook_s_runs_appear_and_compare(lab, page, artifacts_dir, tracker, monkeypatch, tmp_path):
    """The whole path: a real notebook on a real kernel tracks runs; the lab shows and compares them."""
    import shutil
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MLOPS_LAB_DB_URL", tracker.runs.url)
    monkeypatch.setenv("MLOPS_LAB_ARTIFACTS", tracker.artifacts.root)
    notebook_path = tmp_path / "01_tracking.ipynb"
    shutil.copy(Path(__file__).parent.parent / "demo_notebooks" / "01_tracking.ipynb", notebook_path)
    notebook = nbformat.read(notebook_path, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.lm-TabBar-tab[data-id="mlops-lab-runs"]').click(timeout=60_000)
    box = page.locator(".jp-mlops-filter")
    box.fill("attributes.run_name IN ('rf-baseline', 'rf-deeper')")
    box.press("Enter")
    page.wait_for_function("document.querySelectorAll('.jp-mlops-runs tr[data-run-id]').length === 2", timeout=15_000)
    page.screenshot(path=str(artifacts_dir / "runs-panel-notebook.png"))
    compare_all_listed(page)
    view = page.locator(".jp-mlops-CompareView")
    view.locator("tr[data-key=max_depth]").wait_for(timeout=15_000)
    assert "accuracy" in view.locator(".jp-mlops-compare-table").nth(1).inner_text()
    view.locator(".jp-mlops-chart .main-svg").first.wait_for(timeout=15_000)
    assert "n_estimators = 100" in view.locator(".jp-mlops-diff").inner_text()


@pytest.fixture
def shared_lab(tracker, tmp_path):
    """A lab whose identity provider names people (as JupyterHub's does): each browser is a person."""
    require_chromium()
    root = tmp_path / "notebooks"
    root.mkdir()
    server = LabServer(
        root,
        {"MLOPS_LAB_DB_URL": tracker.runs.url, "MLOPS_LAB_ARTIFACTS": tracker.artifacts.root},
        args=("--ServerApp.identity_provider_class=tests.identity.NamedByHeader",),
    )
    yield server
    server.stop()


def _iris_version(name: str = "iris") -> int:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    with ml.start_run("iris-train") as run:
        ml.log_model(LogisticRegression(max_iter=500).fit(X, y))
        ml.log_metric("accuracy", 0.97)
    ml.flush()
    return ml.register(name, run.id)


def _open_model(page, lab, name: str, version: int):
    page.goto(f"{lab.url}/lab?token={lab.token}")
    tab = page.locator('.lm-TabBar-tab[data-id="mlops-lab-models"]')
    tab.wait_for(timeout=60_000)
    page.wait_for_timeout(500)  # the restored layout settles: the panel may already be open
    if not page.locator("#mlops-lab-models").is_visible():
        tab.click()
    page.locator(f'.jp-mlops-ModelsPanel tr[data-model="{name}"]').click(timeout=10_000)
    view = page.locator(".jp-mlops-ModelView")
    view.locator(f'tr[data-version="{version}"]').wait_for(timeout=10_000)
    return view


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_models_panel_promotion_with_a_second_user_s_approval(shared_lab, tracker, artifacts_dir):
    """Two people in two browsers: alice asks for Production, bob approves, alice's open view shows it
    without a reload, and she promotes."""
    from playwright.sync_api import sync_playwright

    version = _iris_version()

    def move(view, stage):
        row = view.locator(f'tr[data-version="{version}"]')
        row.locator("select").select_option(stage)
        row.locator(".jp-mlops-move").click()

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        people = {
            name: browser.new_context(
                viewport={"width": 1400, "height": 900}, extra_http_headers={"X-Lab-User": name}
            ).new_page()
            for name in ("alice", "bob")
        }
        view = _open_model(people["alice"], shared_lab, "iris", version)
        move(view, "Staging")
        view.locator(".jp-mlops-badge", has_text="Staging").wait_for(timeout=10_000)
        move(view, "Production")
        view.locator(".jp-mlops-message.jp-mlops-error", has_text="needs 1 approval").wait_for(timeout=10_000)
        view.locator(f'tr[data-version="{version}"] .jp-mlops-request').click()
        view.locator(".jp-mlops-approval", has_text="PENDING").wait_for(timeout=10_000)
        view.locator(".jp-mlops-approve").click()  # asking and approving oneself is refused
        view.locator(".jp-mlops-message.jp-mlops-error", has_text="'alice' asked for this approval").wait_for(
            timeout=10_000
        )

        second = _open_model(people["bob"], shared_lab, "iris", version)
        second.locator(".jp-mlops-approve").click()
        second.locator(".jp-mlops-approval", has_text="APPROVED").wait_for(timeout=10_000)
        people["bob"].screenshot(path=str(artifacts_dir / "models-approval-by-reviewer.png"))

        view.locator(".jp-mlops-approval", has_text="APPROVED").wait_for(timeout=15_000)  # alice's view, live
        move(view, "Production")
        view.locator(f'tr[data-version="{version}"] .jp-mlops-badge', has_text="Production").wait_for(timeout=10_000)
        assert "Production: version 1" in view.inner_text()
        assert "approve" in view.locator(".jp-mlops-history").inner_text()
        people["alice"].screenshot(path=str(artifacts_dir / "models-promoted.png"))
        browser.close()
    users = {e["user"]: e["kind"] for e in ml.model_history("iris") if e["kind"] in ("approve", "approval_requested")}
    assert users == {"alice": "approval_requested", "bob": "approve"}  # names, not random ids


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_in_a_single_user_lab_asking_in_a_notebook_and_approving_in_the_sidebar_is_one_person(
    lab, page, tracker, artifacts_dir
):
    version = _iris_version()
    ml.promote("iris", version, "Staging")
    ml.request_approval("iris", version, comment="from my notebook")  # the kernel's user: tester
    view = _open_model(page, lab, "iris", version)
    view.locator(".jp-mlops-approval", has_text="asked by tester").wait_for(timeout=10_000)
    view.locator(".jp-mlops-approve").click()
    view.locator(".jp-mlops-message.jp-mlops-error", has_text="'tester' asked for this approval").wait_for(
        timeout=10_000
    )
    page.screenshot(path=str(artifacts_dir / "models-one-person-one-name.png"))
    assert {e["user"] for e in ml.model_history("iris")} == {"tester"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_compare_shows_what_changed_in_the_data(lab, page, tracker):
    import pandas as pd

    for rows in (3, 4):
        with ml.start_run(f"data-{rows}", experiment="data"):
            ml.log_dataset(pd.DataFrame({"a": range(rows)}), "train")
    ml.flush()
    open_runs_panel(page, lab)
    compare_all_listed(page)
    button = page.locator(".jp-mlops-CompareView .jp-mlops-dataset-diff")
    button.click(timeout=15_000)
    page.get_by_text("drifted:").wait_for(timeout=10_000)
    text = page.locator('.jp-mlops-CompareView tr[data-key="input:train"]').inner_text()
    assert "rows 4 → 3" in text or "rows 3 → 4" in text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serving_panel_starts_a_model_and_shows_a_crash_restart(lab, page, artifacts_dir, tmp_path):
    import os
    import signal

    from .onnx_models import mlp

    model = tmp_path / "scorer.onnx"
    model.write_bytes(mlp([8, 16, 2]))
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.lm-TabBar-tab[data-id="mlops-lab-serving"]').click(timeout=60_000)
    form = page.locator(".jp-mlops-serving-form")
    form.locator("input").first.fill(str(model))
    form.locator("button").click()
    row = page.locator('.jp-mlops-serving-list tr[data-deployment="scorer"]')
    row.locator(".jp-mlops-serving-ready").wait_for(timeout=60_000)
    assert "127.0.0.1:" in row.inner_text()
    page.screenshot(path=str(artifacts_dir / "serving-panel.png"))
    # At the sidebar's default width every column and the form are whole.
    panel = page.locator("#mlops-lab-serving").bounding_box()
    right = panel["x"] + panel["width"] + 1
    for cell in [*page.locator(".jp-mlops-serving-list th").all(), *row.locator("td").all(), form]:
        box = cell.bounding_box()
        assert box["x"] >= panel["x"] - 1 and box["x"] + box["width"] <= right, cell.inner_text()

    # The serving process dies: the lab restarts it and the panel says so.
    pid = lab.api("GET", "deployments/scorer")["pid"]
    os.kill(pid, signal.SIGKILL)
    from playwright.sync_api import expect

    expect(row.locator(".jp-mlops-restarts")).to_have_text("restarted 1×", timeout=30_000)
    row.locator(".jp-mlops-serving-ready").wait_for(timeout=60_000)
    assert lab.api("GET", "deployments/scorer")["pid"] != pid
    row.click()
    view = page.locator(".jp-mlops-DeploymentView")
    view.locator("text=restarted 1×").wait_for(timeout=10_000)
    view.locator("text=crashed by watcher").first.wait_for(timeout=10_000)
    assert "CPU" in view.locator(".jp-mlops-serving-roles").inner_text()
    rollout = view.locator(".jp-mlops-serving-rollout")  # a canary, without a restart
    rollout.locator("input").nth(0).fill(str(model))
    rollout.locator("input").nth(1).fill("0.2")
    rollout.locator("button").click()
    view.locator(".jp-mlops-serving-roles td", has_text="canary (20%)").wait_for(timeout=30_000)
    view.locator("text=rollout by").first.wait_for(timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "serving-deployment.png"))
    page.locator('.jp-mlops-serving-list tr[data-deployment="scorer"] button').click()
    row.locator(".jp-mlops-serving-stopped").wait_for(timeout=60_000)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_notebook_serves_through_the_lab(lab, tmp_path):
    """``ml.serve`` in a kernel of the lab asks the lab to run the process: the panel's list has it,
    and it keeps running after the kernel is gone."""
    from .onnx_models import mlp

    model = tmp_path / "nb.onnx"
    model.write_bytes(mlp([8, 16, 2]))
    out = lab.run_in_kernel(
        "import numpy as np, mlops_lab as ml\n"
        f"served = ml.serve({str(model)!r}, name='from-kernel', log_sample=0)\n"
        "print(type(served._control).__name__, served.predict(np.ones((3, 8), np.float32)).shape)\n"
    )
    assert out.split() == ["LabController", "(3,", "2)"]
    listed = {d["name"]: d for d in lab.api("GET", "deployments")["deployments"]}
    assert listed["from-kernel"]["state"] == "ready"  # the kernel was shut down; the lab still serves
    assert lab.api("DELETE", "deployments/from-kernel")["state"] == "stopped"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_views_open_once_through_commands_and_come_back_after_a_reload(lab, page, artifacts_dir):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    with ml.start_run("iris-train") as run:
        ml.log_model(LogisticRegression(max_iter=500).fit(X, y))
    ml.flush()
    ml.register("iris", run.id)

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.lm-TabBar-tab[data-id="mlops-lab-models"]').click(timeout=60_000)
    model_row = page.locator('.jp-mlops-ModelsPanel tr[data-model="iris"]')
    model_row.click(timeout=10_000)
    page.locator('.jp-mlops-ModelView tr[data-version="1"]').wait_for(timeout=10_000)
    model_row.click()  # a second click shows the same tab, not a second one
    run_link = page.locator(".jp-mlops-ModelView .jp-mlops-link").first
    run_link.click()
    page.locator(".jp-mlops-RunView h2").wait_for(timeout=10_000)
    page.locator('.lm-TabBar-tab[data-id="mlops-model-iris"]').click()
    run_link.click()
    page.wait_for_timeout(500)
    assert page.locator('.lm-TabBar-tab[data-id="mlops-model-iris"]').count() == 1
    assert page.locator(f'.lm-TabBar-tab[data-id="mlops-run-{run.id}"]').count() == 1
    assert page.locator(".jp-mlops-ModelView").count() == 1 and page.locator(".jp-mlops-RunView").count() == 1

    page.wait_for_timeout(1500)  # the layout restorer saves the open tabs to the workspace
    page.reload()
    page.locator(f'.lm-TabBar-tab[data-id="mlops-run-{run.id}"]').wait_for(timeout=60_000)  # both tabs restored
    page.locator('.lm-TabBar-tab[data-id="mlops-model-iris"]').click()
    page.locator('.jp-mlops-ModelView tr[data-version="1"]').wait_for(timeout=10_000)  # and loaded again
    page.screenshot(path=str(artifacts_dir / "views-restored.png"))


VIEWS_NOTEBOOK = [
    "import mlops_lab as ml\nimport numpy as np\nimport pandas as pd\n"
    "from sklearn.linear_model import LogisticRegression\nfrom sklearn.datasets import load_iris\n"
    "X, y = load_iris(return_X_y=True)",
    "%%track --name view-a --quiet\nC = 0.1\nmodel = LogisticRegression(C=C, max_iter=300).fit(X, y)\n"
    "for step in range(5):\n    loss = 1 / (step + 1)",
    "%%track --name view-b --quiet\nC = 1.0\nmodel = LogisticRegression(C=C, max_iter=300).fit(X, y)\n"
    "for step in range(5):\n    loss = 1 / (step + 2)",
    "ids = list(ml.search_runs(order_by=['attributes.start_time']).run_id)\nml.register('iris-views', ids[0], 'model')",
    "ml.runs()",
    "ml.compare(ids)",
    "ml.models()",
    "rng = np.random.default_rng(0)\n"
    "ml.drift(pd.DataFrame({'age': rng.normal(40, 5, 500)}), pd.DataFrame({'age': rng.normal(48, 5, 500)}))",
]


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_notebook_views_stay_readable_with_no_kernel(lab, page, artifacts_dir, tracker, monkeypatch):
    """ml.runs/compare/models/drift outputs, executed by nbclient and saved: readable in nbconvert's
    HTML with no kernel, and in the lab reopened with a kernel that never ran them."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    monkeypatch.setenv("MLOPS_LAB_DB_URL", tracker.runs.url)
    monkeypatch.setenv("MLOPS_LAB_ARTIFACTS", tracker.artifacts.root)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in VIEWS_NOTEBOOK])
    # (a cell timeout under the test's own: a stuck cell is named, not only the test)
    NotebookClient(notebook, timeout=200, kernel_name="python3").execute()  # the kernel is shut down after
    path = lab.root / "views.ipynb"
    nbformat.write(notebook, path)

    page_html, _ = HTMLExporter().from_notebook_node(nbformat.read(path, as_version=4))
    assert page_html.count("mlops-lab-static") == 4
    for text in ("view-a", "Comparing 2 runs", "<svg", "iris-views", "features drifted", "age"):
        assert text in page_html

    page.goto(f"{lab.url}/lab/tree/views.ipynb?token={lab.token}")
    snapshots = page.locator(".jp-OutputArea-output .mlops-lab-static")
    snapshots.nth(3).wait_for(timeout=60_000)
    page.wait_for_function(
        "[...document.querySelectorAll('.mlops-lab-static')].every(node => node.offsetParent !== null)",
        timeout=30_000,
    )  # all four shown: their live widgets cannot be drawn by a kernel that never ran them
    assert page.get_by_text("Error displaying widget").filter(visible=True).count() == 0
    assert "Comparing 2 runs" in snapshots.nth(1).inner_text() and "iris-views" in snapshots.nth(2).inner_text()
    page.screenshot(path=str(artifacts_dir / "notebook-views-no-kernel.png"), full_page=True)
    # Run again with the kernel: the live widgets are drawn, and their snapshots give way.
    page.locator(".jp-Notebook").click()
    page.keyboard.press("Escape")
    page.get_by_role("menuitem", name="Run").first.click()
    page.get_by_text("Run All Cells", exact=True).click()
    page.wait_for_function(
        "document.querySelectorAll('.jp-OutputArea-output .widget-vbox').length >= 3", timeout=90_000
    )
    page.wait_for_function(
        "[...document.querySelectorAll('.mlops-lab-static')].filter(node => node.offsetParent !== null).length === 0",
        timeout=30_000,
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_sweep_s_trials_nest_under_their_parent_in_the_runs_panel(lab, page, tracker, artifacts_dir):
    parent = tracker.start_run("svc-sweep", experiment="nest")
    for c in (0.1, 1.0, 10.0):
        child = tracker.start_run(f"svc-sweep-C={c}", experiment="nest", nested=True)
        tracker.log_params({"C": c}, run=child)
        tracker.end_run(run=child)
    tracker.end_run(run=parent)
    tracker.start_run("alone", experiment="nest")
    tracker.end_run()
    tracker.flush()
    open_runs_panel(page, lab)
    names = page.locator(".jp-mlops-runs tr[data-run-id] .jp-mlops-run-name")
    assert sorted(names.all_inner_texts()) == ["alone", "▸ 3svc-sweep"]  # (the two may start in one ms)
    page.locator(".jp-mlops-tree-toggle").click()
    page.wait_for_function("document.querySelectorAll('.jp-mlops-runs tr.jp-mlops-child-run').length === 3")
    shown = [name for name in names.all_inner_texts() if name != "alone"]
    assert shown[0] == "▾ 3svc-sweep" and sorted(shown[1:]) == [
        "svc-sweep-C=0.1",
        "svc-sweep-C=1.0",
        "svc-sweep-C=10.0",
    ]  # fmt: skip  (the trials right under their parent)
    page.locator("#mlops-lab-runs").screenshot(path=str(artifacts_dir / "runs-panel-nested.png"))
    page.locator(".jp-mlops-tree-toggle").click()  # and folded again
    page.wait_for_function("document.querySelectorAll('.jp-mlops-runs tr.jp-mlops-child-run').length === 0")


def _a_run_with_everything(tracker, tmp_path) -> str:
    """A run as a notebook leaves one: curves, single values, files, a figure, a model, data, children."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "outputs"
    folder.mkdir()
    (folder / "notes.txt").write_text("a note")
    pd.DataFrame({"x": range(30), "label": [f"row{i}" for i in range(30)]}).to_csv(tmp_path / "scores.csv", index=False)
    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([3, 1, 2])
    png = io.BytesIO()
    figure.savefig(png, format="png")
    plt.close(figure)
    X, y = load_iris(return_X_y=True)
    with ml.start_run("iris-page", experiment="pages", description="Baseline before *feature work*") as run:
        ml.log_params({"C": 1.0, "solver": "lbfgs"})
        for step in range(200):
            ml.log_metrics({"loss": 1 / (step + 1), "val_loss": 1.2 / (step + 1)}, step=step)
        ml.log_metric("accuracy", 0.953)
        ml.set_tag("team", "churn")
        ml.log_artifact(folder)
        ml.log_artifact(tmp_path / "scores.csv")
        tracker.log_bytes(png.getvalue(), "figures/loss.png", kind="figure")
        ml.log_text("epoch 1 done\nepoch 2 done\n", "stdout.txt")
        ml.log_dataset(pd.DataFrame(X, columns=["a", "b", "c", "d"]), "iris")
        ml.log_model(LogisticRegression(max_iter=500).fit(X, y))
        for c in (0.1, 10.0):
            with ml.start_run(f"iris-page-C={c}", nested=True):
                ml.log_param("C", c)
    ml.flush()
    return run.id


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_run_page_opened_from_the_runs_panel(lab, page, tracker, artifacts_dir, tmp_path):
    run_id = _a_run_with_everything(tracker, tmp_path)
    open_runs_panel(page, lab)
    page.locator(".jp-mlops-runs tr[data-run-id] .jp-mlops-open-run", has_text="iris-page").first.click()
    view = page.locator(".jp-mlops-RunView")
    view.locator("h2").wait_for(timeout=10_000)
    assert "iris-page" in view.locator("h2").inner_text() and "FINISHED" in view.locator("h2").inner_text()
    assert page.locator(f'.lm-TabBar-tab[data-id="mlops-run-{run_id}"]').inner_text() == "Run: iris-page"
    view.locator(".jp-mlops-curve.js-plotly-plot").nth(1).wait_for(timeout=20_000)  # loss and val_loss
    assert view.locator(".jp-mlops-curve").count() == 2  # accuracy is one number: in the table, not a curve
    assert view.locator('.jp-mlops-metrics-table tr[data-key="accuracy"]').inner_text().split()[:2] == [
        "accuracy",
        "0.953",
    ]
    view.locator(".jp-mlops-markdown em", has_text="feature work").wait_for()  # the description, as markdown
    assert "lbfgs" in view.locator('[data-section="params"]').inner_text()
    assert "epoch 2 done" in view.locator(".jp-mlops-stdout").inner_text()
    view.locator('[data-section="figures"] img').wait_for(timeout=10_000)
    assert view.locator(".jp-mlops-model-card h4").inner_text() == "model · sklearn"
    assert view.locator(".jp-mlops-signature tr").count() >= 3  # a header, the input, the outputs
    assert [c.strip() for c in view.locator(".jp-mlops-children li .jp-mlops-link").all_inner_texts()] == [
        "iris-page-C=0.1",
        "iris-page-C=10.0",
    ]
    page.screenshot(path=str(artifacts_dir / "run-page.png"))

    # Artifacts: a table's first rows, a folder's files, a download.
    view.locator('.jp-mlops-artifacts tr[data-path="scores.csv"] .jp-mlops-preview-button').click()
    view.locator(".jp-mlops-artifact-preview .jp-mlops-preview-table tr").nth(20).wait_for(timeout=10_000)
    assert "row0" in view.locator(".jp-mlops-artifact-preview").inner_text()
    view.locator('.jp-mlops-artifacts tr[data-path="outputs/notes.txt"] .jp-mlops-preview-button').click()
    view.locator(".jp-mlops-artifact-preview .jp-mlops-preview-text", has_text="a note").wait_for(timeout=10_000)
    view.locator('.jp-mlops-artifacts tr[data-path="figures/loss.png"] .jp-mlops-preview-button').click()
    view.locator(".jp-mlops-artifact-preview img").wait_for(timeout=10_000)
    with page.expect_download() as download:
        view.locator('.jp-mlops-artifacts tr[data-path="scores.csv"] .jp-mlops-download-button').click()
    from pathlib import Path

    assert Path(download.value.path()).read_text().startswith("x,label\n0,row0")
    view.locator('[data-section="artifacts"]').screenshot(path=str(artifacts_dir / "run-page-artifacts.png"))
    view.locator('.jp-mlops-datasets tr[data-dataset="iris"] button', has_text="Preview").click()
    assert view.locator(".jp-mlops-dataset-preview .jp-mlops-preview-table tr").count() == 6  # head + 5 rows

    # The description and tags, edited in place.
    view.locator(".jp-mlops-edit-description").click()
    view.locator(".jp-mlops-description-editor").fill("Now with **bold** results")
    view.locator(".jp-mlops-save-description").click()
    view.locator(".jp-mlops-markdown strong", has_text="bold").wait_for(timeout=10_000)
    view.get_by_label("Tag key").fill("reviewed")
    view.get_by_label("Tag value").fill("yes")
    view.get_by_role("button", name="Add tag").click()
    view.locator('.jp-mlops-tags tr[data-key="reviewed"]').wait_for(timeout=10_000)
    view.get_by_label("Remove the tag team").click()
    page.wait_for_function("!document.querySelector('.jp-mlops-tags tr[data-key=\"team\"]')", timeout=10_000)
    assert tracker.get_run(run_id).tags == {"description": "Now with **bold** results", "reviewed": "yes"}
    view.get_by_label("Tag key").fill(" ")
    view.get_by_role("button", name="Add tag").click()
    view.locator(".jp-mlops-run-status.jp-mlops-error", has_text="non-empty").wait_for(timeout=10_000)

    # Register the run's model from its page.
    view.locator(".jp-mlops-register-button").click()
    page.locator(".jp-Dialog input").fill("iris-from-page")
    page.locator(".jp-Dialog").get_by_role("button", name="Register").click()
    view.locator(".jp-mlops-run-status", has_text="Registered iris-from-page version 1.").wait_for(timeout=30_000)
    view.get_by_role("button", name="Open iris-from-page").click()
    page.locator('.jp-mlops-ModelView tr[data-version="1"]').wait_for(timeout=10_000)
    page.locator(f'.lm-TabBar-tab[data-id="mlops-run-{run_id}"]').click()

    # Delete: the run leaves the Runs panel, its page says so; Restore brings it back.
    view.locator(".jp-mlops-delete-run").click()
    view.locator("h2 .jp-mlops-deleted").wait_for(timeout=10_000)
    page.wait_for_function(f"!document.querySelector('.jp-mlops-runs tr[data-run-id=\"{run_id}\"]')", timeout=10_000)
    view.locator(".jp-mlops-delete-run", has_text="Restore").click()
    page.locator(f'.jp-mlops-runs tr[data-run-id="{run_id}"]').wait_for(timeout=10_000)

    # A child's page links back to its parent.
    view.locator(".jp-mlops-children .jp-mlops-link", has_text="iris-page-C=0.1").click()
    child = page.locator(".jp-mlops-RunView:visible")
    child.locator(".jp-mlops-relatives", has_text="Parent: iris-page").wait_for(timeout=10_000)
    child.get_by_role("button", name="Compare with siblings").click()  # the parent's children, side by side
    page.locator(".jp-mlops-CompareView h2", has_text="Comparing 2 runs").wait_for(timeout=10_000)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_run_page_is_live_while_the_run_runs_and_shows_a_failure(lab, page, tracker, artifacts_dir):
    run = tracker.start_run("live-run", experiment="pages")
    tracker.log_metric("loss", 1.0, step=0, run=run)
    tracker.log_metric("loss", 0.5, step=1, run=run)
    tracker.flush()
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.lm-TabBar-tab[data-id="mlops-lab-runs"]').wait_for(timeout=60_000)
    page.get_by_role("menuitem", name="View").click()  # the command palette: "open run" asks for the id
    page.get_by_text("Activate Command Palette").click()
    page.locator(".lm-CommandPalette-input").fill("MLOps: open run")
    page.locator(".lm-CommandPalette-item", has_text="MLOps: open run").click()
    page.locator(".jp-Dialog input").fill(run.id)
    page.keyboard.press("Enter")
    view = page.locator(".jp-mlops-RunView")
    view.locator("h2", has_text="RUNNING").wait_for(timeout=10_000)
    points = view.locator('.jp-mlops-metrics-table tr[data-key="loss"] td').nth(4)
    assert points.inner_text() == "2"
    for step in range(2, 6):
        tracker.log_metric("loss", 1 / (step + 1), step=step, run=run)
    tracker.flush()
    page.wait_for_function(
        "document.querySelector('.jp-mlops-metrics-table tr[data-key=\"loss\"] td:nth-child(5)').textContent === '6'",
        timeout=10_000,
    )  # no reload: the page polls while the run runs
    tracker.end_run("FAILED", run=run, error="Traceback (most recent call last):\nValueError: the data ran out")
    tracker.flush()
    view.locator("h2", has_text="FAILED").wait_for(timeout=10_000)
    assert "ValueError: the data ran out" in view.locator(".jp-mlops-traceback").inner_text()
    page.screenshot(path=str(artifacts_dir / "run-page-failed.png"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_get_run_in_a_notebook_opens_the_run_page_and_its_notebook(lab, page, tracker, artifacts_dir):
    """ml.get_run(id) draws a card in the output; its button opens the run page, whose code section
    links back to the notebook the cell ran in. The saved card shows with no kernel."""
    import nbformat

    cells = [
        "%%track --name from-lab --quiet\nC = 0.5\nscore = C * 2\nprint('trained')",
        "import mlops_lab as ml\nml.flush()\n"
        "ml.get_run(ml.search_runs(filter_string=\"attributes.run_name = 'from-lab'\").run_id[0])",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab.root / "card.ipynb")
    page.goto(f"{lab.url}/lab/tree/card.ipynb?token={lab.token}")
    page.locator(".jp-Notebook").wait_for(timeout=60_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
    page.locator(".jp-Notebook").click()
    page.keyboard.press("Escape")
    page.get_by_role("menuitem", name="Run").first.click()
    page.get_by_text("Run All Cells", exact=True).click()
    card = page.locator(".jp-mlops-RunOutput")
    card.wait_for(timeout=90_000)
    assert "from-lab" in card.inner_text() and "FINISHED" in card.inner_text() and "score 1" in card.inner_text()
    page.screenshot(path=str(artifacts_dir / "get-run-card.png"))
    card.get_by_role("button", name="Open run page").click()
    view = page.locator(".jp-mlops-RunView")
    view.locator(".jp-mlops-source", has_text="score = C * 2").wait_for(timeout=10_000)
    assert "trained" in view.locator(".jp-mlops-stdout").inner_text()
    assert view.locator('[data-section="params"] tr[data-key="C"]').inner_text().split() == ["C", "0.5"]
    view.locator(".jp-mlops-open-notebook").click()  # back to the notebook the cell ran in
    page.wait_for_function(
        "document.querySelector('.lm-DockPanel .lm-TabBar-tab.lm-mod-current').textContent.includes('card.ipynb')"
    )
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1000)
    saved = nbformat.read(lab.root / "card.ipynb", as_version=4)
    assert "application/vnd.mlops-lab.run+json" in saved.cells[1].outputs[0]["data"]
    assert "from-lab" in saved.cells[1].outputs[0]["data"]["text/html"]  # readers without the lab get HTML


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_runs_panel_experiments_sorting_status_and_selection_at_the_default_width(lab, page, tracker, artifacts_dir):
    for experiment, name, acc in [("alpha", "a-low", 0.7), ("alpha", "a-high", 0.9), ("beta", "b-mid", 0.8)]:
        with ml.start_run(name, experiment=experiment):
            ml.log_metrics({"accuracy": acc, "a_metric_with_a_long_name": acc / 3})
            ml.log_params({"model": "rf", "max_depth": 3})
    run = tracker.start_run("b-broken", experiment="beta")
    tracker.end_run("FAILED", run=run, error="ValueError: bad")
    ml.flush()
    open_runs_panel(page, lab)
    rows = page.locator(".jp-mlops-runs tr[data-run-id]")
    names = page.locator(".jp-mlops-runs tr[data-run-id] .jp-mlops-open-run")
    assert rows.count() == 4

    # At the sidebar's default width nothing is cut: the controls fit, the fixed columns are whole,
    # the values scroll sideways under a name that stays.
    panel = page.locator("#mlops-lab-runs").bounding_box()
    for control in (".jp-mlops-experiment-picker", ".jp-mlops-filter", ".jp-mlops-toolbar"):
        box = page.locator(f"#mlops-lab-runs {control}").bounding_box()
        assert box["x"] >= panel["x"] and box["x"] + box["width"] <= panel["x"] + panel["width"] + 1, control
    scroller = page.locator("#mlops-lab-runs .jp-mlops-scroll")
    edge = scroller.bounding_box()["x"] + scroller.bounding_box()["width"]
    headers = page.locator(".jp-mlops-runs th")
    for i in range(4):  # the tick, Run, Started, Duration
        box = headers.nth(i).bounding_box()
        assert box["x"] + box["width"] <= edge + 1, headers.nth(i).inner_text()
    page.locator("#mlops-lab-runs").screenshot(path=str(artifacts_dir / "runs-panel-default-width.png"))
    scroller.evaluate("node => { node.scrollLeft = node.scrollWidth; }")
    page.wait_for_timeout(200)
    last = headers.last.bounding_box()
    assert last["x"] + last["width"] <= edge + 1  # the last column is reachable whole
    name_cell = page.locator(".jp-mlops-runs tr[data-run-id] td:nth-child(2)").first.bounding_box()
    assert name_cell["x"] >= scroller.bounding_box()["x"] - 1  # the name stayed in view
    scroller.evaluate("node => { node.scrollLeft = 0; }")

    # Status as a word and an icon; Started and Duration apart.
    failed = page.locator(".jp-mlops-runs tr[data-run-id]", has_text="b-broken")
    assert failed.locator(".jp-mlops-status").text_content() == "✗FAILED"
    assert [h.strip() for h in headers.all_inner_texts()[:4]] == ["", "Run", "Started", "Duration"]

    # Sortable headers: descending, ascending, then as it was.
    accuracy = page.locator(".jp-mlops-runs th", has_text="accuracy")
    accuracy.click()
    page.wait_for_function(
        "document.querySelector('.jp-mlops-runs tr[data-run-id] .jp-mlops-open-run')?.textContent === 'a-high'"
    )
    assert names.all_inner_texts()[:3] == ["a-high", "b-mid", "a-low"]
    assert page.locator(".jp-mlops-runs th", has_text="accuracy").get_attribute("data-sort") == "desc"
    page.locator(".jp-mlops-runs th", has_text="accuracy").click()
    page.wait_for_function(
        "document.querySelector('.jp-mlops-runs tr[data-run-id] .jp-mlops-open-run')?.textContent === 'a-low'"
    )
    assert names.all_inner_texts()[:3] == ["a-low", "b-mid", "a-high"]  # (the run without it last)

    # The experiment selector, and the same through the filter.
    page.locator(".jp-mlops-experiment-picker").select_option("alpha")
    page.wait_for_function("document.querySelectorAll('.jp-mlops-runs tr[data-run-id]').length === 2")
    assert sorted(names.all_inner_texts()) == ["a-high", "a-low"]
    page.locator(".jp-mlops-experiment-picker").select_option("")
    box = page.locator(".jp-mlops-filter")
    box.fill("attributes.experiment = 'beta'")
    box.press("Enter")
    page.wait_for_function("document.querySelectorAll('.jp-mlops-runs tr[data-run-id]').length === 2")
    assert sorted(names.all_inner_texts()) == ["b-broken", "b-mid"]

    # A selection is kept, and said, when the filter hides part of it; Clear empties it.
    box.fill("")
    box.press("Enter")
    page.wait_for_function("document.querySelectorAll('.jp-mlops-runs tr[data-run-id]').length === 4")
    for name in ("a-high", "b-mid"):
        page.locator(".jp-mlops-runs tr[data-run-id]", has_text=name).locator("input[type=checkbox]").check()
    assert page.locator(".jp-mlops-selection").inner_text().startswith("2 selected")
    box.fill("attributes.experiment = 'alpha'")
    box.press("Enter")
    page.locator(".jp-mlops-selection", has_text="2 selected (1 not in this list)").wait_for(timeout=10_000)
    assert page.locator(".jp-mlops-compare-button").inner_text() == "Compare 2"
    page.locator("#mlops-lab-runs").screenshot(path=str(artifacts_dir / "runs-panel-selection.png"))
    page.locator(".jp-mlops-clear-selection").click()
    assert page.locator(".jp-mlops-compare-button").inner_text() == "Compare"
    assert page.locator(".jp-mlops-runs tr[data-run-id] input:checked").count() == 0


def _overlaps(boxes: list[dict]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes[i + 1 :], i + 1)
        if a["x"] < b["x"] + b["width"] - 1
        and b["x"] < a["x"] + a["width"] - 1
        and a["y"] < b["y"] + b["height"] - 1
        and b["y"] < a["y"] + a["height"] - 1
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_compare_defaults_read_and_charts_follow_the_view_s_size(lab, page, tracker, artifacts_dir):
    ids = []
    for i, (c, solver) in enumerate([(0.1, "lbfgs"), (1.0, "lbfgs"), (10.0, "saga")]):
        source = f"C = {c}\nsolver = {solver!r}\nmodel = fit(C, solver)\n" + "# a long comment " * 20 * (i == 2)
        run = tracker.start_run(f"trial-{i}", experiment="cmp", source=source)
        tracker.log_params({"C": c, "solver": solver, "seed": 7, "optimizer.learning_rate_schedule": "cosine"}, run=run)
        for step in range(30):
            tracker.log_metric("loss", (1 + i) / (step + 1), step=step, run=run)
        tracker.log_metrics({"accuracy": 0.8 + i / 20, "n_features": 4}, run=run)
        tracker.end_run(run=run)
        ids.append(run.id)
    tracker.flush()
    open_runs_panel(page, lab)
    compare_all_listed(page)
    view = page.locator(".jp-mlops-CompareView")
    view.locator(".jp-mlops-chart.js-plotly-plot").first.wait_for(timeout=20_000)
    page.wait_for_function("document.querySelectorAll('.jp-mlops-CompareView .js-plotly-plot').length >= 3")

    # The primary metric is accuracy, logged once per run: a bar per run, not dots at step 0.
    assert view.get_by_label("Metric", exact=True).input_value() == "accuracy"
    assert view.locator(".jp-mlops-chart[data-kind]").first.get_attribute("data-kind") == "bars"
    view.get_by_label("Metric", exact=True).select_option("loss")
    page.wait_for_function(
        "document.querySelector('.jp-mlops-CompareView .jp-mlops-chart[data-kind]').dataset.kind === 'curves'"
    )
    # Parallel coordinates: the params that differ and the primary metric; not seed, not the equal schedule.
    view.locator(".jp-mlops-axes summary").click()
    checked = [box.get_attribute("data-axis") for box in view.locator(".jp-mlops-axes input:checked").all()]
    assert checked == ["params.C", "params.solver", "metrics.accuracy"]
    view.locator('.jp-mlops-axes input[data-axis="params.optimizer.learning_rate_schedule"]').check()
    page.wait_for_function(
        "[...document.querySelectorAll('.jp-mlops-CompareView svg text')].some(t => t.textContent.startsWith('…'))"
    )  # a long name is shortened, its end kept
    view.locator(".jp-mlops-axes summary").click()
    # The scatter's x is a param that varies, its y the primary metric.
    assert view.get_by_label("Scatter x", exact=True).input_value() == "params.C"
    assert view.get_by_label("Scatter y", exact=True).input_value() == "accuracy"
    # Any pair's code, wrapped to the view's width.
    view.get_by_label("Code on the left").select_option(ids[0])
    view.get_by_label("Code on the right").select_option(ids[2])
    view.locator(".jp-mlops-diff", has_text="C = 0.1").filter(has_text="a long comment").wait_for(timeout=10_000)
    widths = page.evaluate(
        "[document.querySelector('.jp-mlops-CompareView .jp-mlops-diff'), document.querySelector('.jp-mlops-CompareView')]"
        ".map(node => node.getBoundingClientRect().width)"
    )
    assert widths[0] <= widths[1]
    page.screenshot(path=str(artifacts_dir / "compare-defaults.png"), full_page=True)

    def chart_boxes() -> list[dict]:
        page.wait_for_timeout(700)  # the resize is debounced, then plotly redraws
        boxes = [chart.bounding_box() for chart in view.locator(".js-plotly-plot").all()]
        width = view.bounding_box()["x"] + view.bounding_box()["width"]
        assert all(box["x"] + box["width"] <= width + 1 for box in boxes), "a chart is wider than its view"
        return boxes

    assert _overlaps(chart_boxes()) == []
    page.set_viewport_size({"width": 900, "height": 800})  # the window narrower
    assert _overlaps(chart_boxes()) == []
    page.screenshot(path=str(artifacts_dir / "compare-narrow-window.png"), full_page=True)
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:visible").first  # the sidebar dragged wider
    box = handle.bounding_box()
    before = view.bounding_box()["width"]
    page.mouse.move(box["x"] + 1, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 200, steps=5)
    page.mouse.up()
    boxes = chart_boxes()
    assert view.bounding_box()["width"] < before - 100  # the view did get narrower
    assert _overlaps(boxes) == []
    page.set_viewport_size({"width": 1400, "height": 900})
    assert _overlaps(chart_boxes()) == []
    page.screenshot(path=str(artifacts_dir / "compare-after-resizes.png"), full_page=True)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serving_refuses_unknown_models_charts_traffic_over_a_swap_and_removes(lab, page, tracker, artifacts_dir):
    import json
    import urllib.request

    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    versions = []
    for c in (1.0, 0.01):
        with ml.start_run(f"scorer-C={c}") as run:
            ml.log_model(LogisticRegression(C=c, max_iter=500).fit(X, y))
        ml.flush()
        versions.append(ml.register("scorer", run.id))
    ml.set_approval_policy("scorer", 0)
    for version in versions:
        ml.promote("scorer", version, "Staging")
    ml.promote("scorer", versions[0], "Production")

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.lm-TabBar-tab[data-id="mlops-lab-serving"]').click(timeout=60_000)
    form = page.locator(".jp-mlops-serving-form")
    form.locator("input").first.fill("nope@production")  # refused before any process starts
    form.locator("button").click()
    page.locator("#mlops-lab-serving .jp-mlops-message.jp-mlops-error", has_text="nope").wait_for(timeout=10_000)
    assert page.locator(".jp-mlops-serving-list tr[data-deployment]").count() == 0
    assert lab.api("GET", "deployments")["deployments"] == []
    page.locator("#mlops-lab-serving").screenshot(path=str(artifacts_dir / "serving-unknown-model.png"))

    form.locator("input").first.fill("scorer@production")
    form.locator("button").click()
    row = page.locator('.jp-mlops-serving-list tr[data-deployment="scorer"]')
    row.locator(".jp-mlops-serving-ready").wait_for(timeout=60_000)
    url = lab.api("GET", "deployments/scorer")["url"]

    def traffic(requests: int) -> None:
        body = {"inputs": [{"name": "input", "shape": [4, 4], "datatype": "FP32", "data": X[:4].ravel().tolist()}]}
        for _ in range(requests):
            request = urllib.request.Request(f"{url}/v2/models/scorer/infer", data=json.dumps(body).encode())
            urllib.request.urlopen(request, timeout=30).read()

    row.click()
    view = page.locator(".jp-mlops-DeploymentView")
    view.locator(".jp-mlops-serving-roles").wait_for(timeout=10_000)
    for _ in range(3):
        traffic(20)
        page.wait_for_timeout(2_100)  # a poll between bursts: a rate per poll
    ml.promote("scorer", versions[1], "Production")  # @production moves: the process swaps to version 2
    page.wait_for_function(
        "[...document.querySelectorAll('.jp-mlops-serving-roles td')].some(td => td.textContent.startsWith('2'))",
        timeout=30_000,
    )
    for _ in range(3):
        traffic(20)
        page.wait_for_timeout(2_100)
    legend = page.evaluate(
        "[...document.querySelectorAll('.jp-mlops-serving-chart[data-chart=\"requests\"] .legendtext')]"
        ".map(t => t.textContent)"
    )
    assert legend == ["1", "2"]  # version 1's figures stay beside version 2's after the swap
    rates = page.evaluate(
        "document.querySelector('.jp-mlops-serving-chart[data-chart=\"requests\"]').data"
        ".map(trace => Math.max(...trace.y.filter(v => v !== null)))"
    )
    assert all(rate > 1 for rate in rates)
    assert page.locator(".jp-mlops-serving-chart.js-plotly-plot").count() == 3
    page.screenshot(path=str(artifacts_dir / "serving-charts-over-a-swap.png"))

    if not page.locator("#mlops-lab-serving").is_visible():  # stop, then remove
        page.locator('.lm-TabBar-tab[data-id="mlops-lab-serving"]').click()
    row.locator("button", has_text="Stop").click()
    row.locator(".jp-mlops-serving-stopped").wait_for(timeout=60_000)
    row.locator(".jp-mlops-remove-deployment").click()
    row.wait_for(state="detached", timeout=10_000)
    assert lab.api("GET", "deployments")["deployments"] == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_runs_mlflow_logs_sit_beside_ours_in_the_runs_panel_and_compare(lab, page, tracker, artifacts_dir, monkeypatch):
    """MLflow's own client, pointed at the lab, beside a run of ours: one table, one comparison."""
    mlflow = pytest.importorskip("mlflow")

    run = tracker.start_run("ours-depth-3", experiment="side-by-side")
    tracker.log_params({"depth": 3}, run=run)
    for step in range(20):
        tracker.log_metrics({"loss": 1 / (step + 3)}, step=step, run=run)
    tracker.end_run(run=run)
    tracker.flush()
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", lab.token)
    mlflow.set_tracking_uri(f"{lab.url}/mlops-lab/mlflow")
    try:
        mlflow.set_experiment("side-by-side")
        with mlflow.start_run(run_name="mlflow-depth-8") as logged:
            mlflow.log_param("depth", 8)
            for step in range(20):
                mlflow.log_metric("loss", 1 / (step + 8), step=step)
    finally:
        mlflow.set_tracking_uri(None)

    open_runs_panel(page, lab)
    rows = page.locator(".jp-mlops-runs tr[data-run-id]")
    assert sorted(rows.locator(".jp-mlops-open-run").all_inner_texts()) == ["mlflow-depth-8", "ours-depth-3"]
    compare_all_listed(page)
    view = page.locator(".jp-mlops-CompareView")
    view.locator("tr[data-key=depth]").wait_for(timeout=10_000)
    assert (
        "8" in view.locator("tr[data-key=depth]").inner_text()
        and "3" in view.locator("tr[data-key=depth]").inner_text()
    )
    view.locator(".jp-mlops-chart .main-svg").first.wait_for(timeout=15_000)  # both curves drawn
    page.mouse.move(5, 5)
    page.screenshot(path=str(artifacts_dir / "mlflow-runs-beside-ours.png"))
    # The MLflow run's own page, as any run's.
    page.locator(".jp-mlops-runs .jp-mlops-open-run", has_text="mlflow-depth-8").click()
    run_view = page.locator(".jp-mlops-RunView")
    run_view.locator("text=mlflow-depth-8").first.wait_for(timeout=10_000)
    run_view.locator(".main-svg").first.wait_for(timeout=15_000)  # its loss curve

    # The link MLflow's client prints ("View run at …/mlops-lab/mlflow/#/experiments/…/runs/…")
    # opens the same page in a fresh lab.
    link = f"{lab.url}/mlops-lab/mlflow/#/experiments/{logged.info.experiment_id}/runs/{logged.info.run_id}"
    page.goto(link)
    page.locator(".jp-mlops-RunView", has_text="mlflow-depth-8").wait_for(timeout=60_000)
    assert "mlops-run=" + logged.info.run_id in page.url


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_pipelines_panel_draws_the_dag_runs_it_live_and_says_what_is_stale(lab, page, tracker, artifacts_dir):
    import shutil
    from pathlib import Path

    demo = Path(__file__).parent.parent / "demo_notebooks" / "pipeline"
    folder = lab.root / "churn"
    shutil.copytree(demo, folder, ignore=shutil.ignore_patterns("*.parquet", "profile.csv", ".ipynb_checkpoints"))
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.lm-TabBar-tab[data-id="mlops-lab-pipelines"]').click(timeout=60_000)
    nodes = page.locator(".jp-mlops-dag-node")
    nodes.nth(6).wait_for(timeout=15_000)
    assert nodes.count() == 7 and page.locator(".jp-mlops-dag-edge").count() == 6
    assert "7 of 7 steps to run" in page.locator("#mlops-lab-pipelines .jp-mlops-message").inner_text()
    assert page.locator('.jp-mlops-pipeline-steps tr[data-step="train"]').inner_text().split("\t")[:3] == [
        "stale",
        "train",
        "upstream step prepare will run",
    ]
    # at JupyterLab's default sidebar width the DAG, the controls and the table fit the panel
    panel = page.locator("#mlops-lab-pipelines").bounding_box()
    for part in [".jp-mlops-dag svg", ".jp-mlops-pipeline-controls button", ".jp-mlops-pipeline-steps"]:
        box = page.locator(f"#mlops-lab-pipelines {part}").first.bounding_box()
        assert box["x"] >= panel["x"] - 1 and box["x"] + box["width"] <= panel["x"] + panel["width"] + 1, part
    page.screenshot(path=str(artifacts_dir / "pipelines-stale.png"))

    page.locator("#mlops-lab-pipelines .jp-mlops-pipeline-controls button").click()
    page.locator(".jp-mlops-dag-node.jp-mlops-step-running").first.wait_for(timeout=30_000)  # live progress
    page.screenshot(path=str(artifacts_dir / "pipelines-running.png"))
    page.wait_for_function(
        "document.querySelectorAll('.jp-mlops-dag-node.jp-mlops-step-done').length === 7", timeout=180_000
    )
    message = "document.querySelector('#mlops-lab-pipelines .jp-mlops-message').innerText"
    page.wait_for_function(f"{message}.includes('every step is cached')", timeout=30_000)  # the process ended
    duration = page.locator('.jp-mlops-dag-node[data-step="train"] .jp-mlops-dag-state').text_content()
    assert duration.startswith("done · ") and duration.endswith("s"), duration
    page.screenshot(path=str(artifacts_dir / "pipelines-done.png"))
    page.locator('.jp-mlops-pipeline-steps tr[data-step="train"] .jp-mlops-executed').click()
    executed = page.locator(".jp-NotebookPanel", has_text="train accuracy")  # as the step's kernel ran it
    executed.wait_for(timeout=30_000)
    assert "# Parameters" in executed.inner_text()
    # once its kernel is up, nothing in it changed: it names the kernel that ran it, as JupyterLab does
    page.wait_for_function("document.querySelector('#jp-main-statusbar').innerText.includes('Idle')", timeout=60_000)
    page.wait_for_timeout(500)
    assert "jp-mod-dirty" not in page.locator(".lm-DockPanel .lm-TabBar-tab.lm-mod-current").get_attribute("class")
    page.screenshot(path=str(artifacts_dir / "pipelines-executed-notebook.png"))

    with open(folder / "data" / "holdout.csv", "a") as holdout:
        holdout.write("888888,3,99.0,4,monthly,1\n")
    holdout_row = "document.querySelector('.jp-mlops-pipeline-steps tr[data-step=\"holdout\"]').innerText"
    page.wait_for_function(f"{holdout_row}.includes('data/holdout.csv changed')", timeout=15_000)
    stale = page.locator(".jp-mlops-dag-node.jp-mlops-step-stale").evaluate_all(
        "nodes => nodes.map(n => n.dataset.step)"
    )
    assert stale == ["holdout", "gate", "promote"]
    page.screenshot(path=str(artifacts_dir / "pipelines-after-a-data-change.png"))
    page.locator('.jp-mlops-dag-node[data-step="train"]').click()  # the step's run page
    page.locator(".jp-mlops-RunView").wait_for(timeout=15_000)
    page.locator(".jp-mlops-RunView", has_text="train.ipynb").first.wait_for(timeout=15_000)
    page.screenshot(path=str(artifacts_dir / "pipelines-step-run-page.png"))

    # lineage both ways: from the version the pipeline registered back to its steps, then from the
    # raw data forward to that version
    view = _open_model(page, lab, "churn", 1)
    view.locator('tr[data-version="1"] .jp-mlops-lineage-link').click()
    lineage = page.locator(".jp-mlops-LineageView").last
    lineage.locator(".jp-mlops-lineage-table tr[data-run]").nth(6).wait_for(timeout=15_000)
    assert "Lineage of churn/1 (Staging)" in lineage.inner_text()
    chain = lineage.locator(".jp-mlops-lineage-chain").inner_text()
    assert chain == "Logged by churn-logreg ← step train ← pipeline churn", chain
    prepare = lineage.locator(".jp-mlops-lineage-table tr", has_text="prepare.ipynb")
    assert "min_tenure=0" in prepare.inner_text() and "train.parquet" in prepare.inner_text()
    page.screenshot(path=str(artifacts_dir / "lineage-of-a-model-version.png"))
    prepare.locator(".jp-mlops-lineage-data", has_text="raw.csv").click()
    downstream = page.locator(".jp-mlops-LineageView", has_text="Downstream of data version").last
    downstream.locator(".jp-mlops-lineage-versions li").first.wait_for(timeout=15_000)
    assert downstream.locator(".jp-mlops-lineage-versions li").all_inner_texts() == ["churn/1 (Staging)"]
    steps = downstream.locator(".jp-mlops-lineage-table tr[data-run] td:first-child").all_inner_texts()
    assert {"prepare", "profile", "train", "churn-logreg"} <= set(steps) and "holdout" not in steps
    page.screenshot(path=str(artifacts_dir / "lineage-downstream-of-data.png"))
