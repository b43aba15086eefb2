"""Notebook widgets: ``ml.runs(...)``, ``ml.compare([...])`` and ``ml.models()`` (ipywidgets with
plotly charts), each with a static snapshot that stays readable in the saved notebook.

They render what the tracking service returns; they work wherever ipywidgets do (JupyterLab,
Notebook 7, VS Code).
"""

from __future__ import annotations

import html

import numpy as np

from .errors import status_of
from .snapshot import NotebookView, line_chart
from .tracking.compare import code_diff, compare_runs, metric_history
from .workspace import default_workspace

SNAPSHOT_CHARTS = 4  # metrics drawn in the static snapshot of a comparison
DIFF_COLOURS = {"replace": "#fff3cd", "delete": "#f8d7da", "insert": "#d4edda", "equal": "transparent"}


def _table(rows: list[dict], runs: list[dict], only_differences: bool, title: str) -> str:
    shown = [r for r in rows if r["differs"] or not only_differences]
    if not shown:
        return f"<p><i>{html.escape(title)}: {'no differences' if rows else 'none'}</i></p>"
    head = "".join(f"<th>{html.escape(r['name'])}</th>" for r in runs)
    body = []
    for row in shown:
        style = ' style="background:#fff3cd"' if row["differs"] else ""
        cells = "".join(
            f"<td>{html.escape('' if row['values'].get(r['run_id']) is None else str(row['values'][r['run_id']]))}</td>"
            for r in runs
        )
        body.append(f"<tr{style}><td><b>{html.escape(row['key'])}</b></td>{cells}</tr>")
    return (
        f"<h4>{html.escape(title)}</h4><table class='mlops-compare'><thead><tr><th></th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average, as TensorBoard's smoothing slider does."""
    if weight <= 0 or len(values) == 0:
        return values
    out, last = np.empty_like(values), values[0]
    for i, v in enumerate(values):
        last = last * weight + (1 - weight) * v if np.isfinite(v) else last
        out[i] = last
    return out


def curves_figure(store, runs: list[dict], key: str, smoothing: float = 0.0, log_y: bool = False):
    import plotly.graph_objects as go

    figure = go.Figure()
    for run in runs:
        curve = metric_history(store, run["run_id"], key)
        values = np.array([float(v) for v in curve["values"]], dtype=float)
        figure.add_scatter(x=curve["steps"], y=_smooth(values, smoothing), mode="lines", name=html.escape(run["name"]))
    figure.update_layout(
        title=f"{key} by step",
        xaxis_title="step",
        yaxis_title=key,
        height=380,
        yaxis_type="log" if log_y else "linear",
        margin={"t": 50, "b": 40},
    )
    return figure


def parallel_figure(comparison: dict, metric: str):
    """Parallel coordinates from every numeric param to ``metric``."""
    import plotly.graph_objects as go

    run_ids = [r["run_id"] for r in comparison["runs"]]
    dimensions = []
    for row in comparison["params"]:
        try:
            values = [float(row["values"].get(i)) for i in run_ids]
        except (TypeError, ValueError):
            continue
        dimensions.append({"label": row["key"], "values": values})
    target = next((row for row in comparison["metrics"] if row["key"] == metric), None)
    colour = [float(target["values"].get(i) or np.nan) for i in run_ids] if target else None
    if target:
        dimensions.append({"label": metric, "values": colour})
    figure = go.Figure(
        go.Parcoords(
            dimensions=dimensions, line={"color": colour, "colorscale": "Viridis", "showscale": True} if colour else {}
        )
    )
    figure.update_layout(title=f"params → {metric}", height=380)
    return figure


def code_diff_html(diff: dict) -> str:
    rows = []
    for row in diff["rows"]:
        colour = DIFF_COLOURS[row["op"]]
        left = html.escape(row["left"]) if row["left"] is not None else ""
        right = html.escape(row["right"]) if row["right"] is not None else ""
        rows.append(
            f"<tr style='background:{colour}'><td>{row['left_line'] or ''}</td><td><pre>{left}</pre></td>"
            f"<td>{row['right_line'] or ''}</td><td><pre>{right}</pre></td></tr>"
        )
    head = (
        f"<tr><th></th><th>{html.escape(diff['left']['name'])}</th><th></th>"
        f"<th>{html.escape(diff['right']['name'])}</th></tr>"
    )
    note = "<p><i>identical code</i></p>" if diff["identical"] else ""
    return f"{note}<table class='mlops-code-diff'>{head}{''.join(rows)}</table>"


def compare(run_ids: list[str]):
    """A comparison of runs: differing values, metric curves, parallel coordinates, code diff."""
    import ipywidgets as widgets

    workspace = default_workspace()
    workspace.flush()
    store = workspace.store.runs
    comparison = compare_runs(store, list(run_ids))
    runs = comparison["runs"]
    only = widgets.Checkbox(value=True, description="only what differs")
    tables = widgets.HTML()

    def render_tables(_=None):
        tables.value = "".join(
            _table(comparison[part], runs, only.value, title)
            for part, title in (
                ("params", "params"),
                ("metrics", "metrics (latest)"),
                ("tags", "tags"),
                ("datasets", "data versions"),
                ("environment", "environment"),
                ("packages", "packages"),
            )
        )

    only.observe(render_tables, names="value")
    render_tables()
    metric_keys = [row["key"] for row in comparison["metrics"]]
    children = [only, tables]
    if metric_keys:
        metric = widgets.Dropdown(options=metric_keys, description="metric")
        smoothing = widgets.FloatSlider(value=0.0, min=0.0, max=0.99, step=0.01, description="smoothing")
        log_y = widgets.Checkbox(value=False, description="log scale")
        charts = widgets.Output()

        def render_charts(_=None):
            charts.clear_output(wait=True)
            with charts:
                curves_figure(store, runs, metric.value, smoothing.value, log_y.value).show()
                if len(runs) > 1:
                    parallel_figure(comparison, metric.value).show()

        for control in (metric, smoothing, log_y):
            control.observe(render_charts, names="value")
        render_charts()
        children += [widgets.HBox([metric, smoothing, log_y]), charts]
    code = ""
    if len(runs) >= 2:
        code = f"<h4>code: {html.escape(runs[0]['name'])} ↔ {html.escape(runs[1]['name'])}</h4>" + code_diff_html(
            code_diff(store, runs[0]["run_id"], runs[1]["run_id"])
        )
        children.append(widgets.HTML(code))
    charts = "".join(
        line_chart(
            f"{key} by step",
            {
                run["name"]: (curve["steps"], curve["values"])
                for run in runs
                for curve in [metric_history(store, run["run_id"], key)]
            },
        )
        for key in metric_keys[:SNAPSHOT_CHARTS]
    )
    return NotebookView(widgets.VBox(children), f"<h3>Comparing {len(runs)} runs</h3>{tables.value}{charts}{code}")


def runs(
    experiment: str | list[str] | None = None,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int = 100,
):
    """Runs as a table with a filter box, and a param-vs-metric scatter."""
    import ipywidgets as widgets

    tracking = default_workspace().tracking
    box = widgets.Text(
        value=filter_string or "",
        description="filter",
        placeholder="metrics.acc > 0.9",
        continuous_update=False,
        layout={"width": "480px"},
    )
    table, message, chart = widgets.HTML(), widgets.HTML(), widgets.Output()
    x_axis = widgets.Dropdown(description="x")
    y_axis = widgets.Dropdown(description="y")
    state = {}

    def load(_=None):
        try:
            frame = tracking.search_runs(experiment, box.value or None, order_by, max_results)
        except ValueError as exc:
            message.value = f"<span style='color:#c0392b'>{html.escape(str(exc))}</span>"
            return
        message.value = f"{len(frame)} runs"
        state["frame"] = frame
        shown = frame.drop(columns=["notebook_path", "parent_run_id", "user"], errors="ignore")
        table.value = shown.to_html(index=False, na_rep="", escape=True, max_rows=max_results)
        params = [c for c in frame.columns if c.startswith("params.")]
        metrics = [c for c in frame.columns if c.startswith("metrics.")]
        x_axis.options, y_axis.options = params + metrics, metrics
        plot()

    def plot(_=None):
        chart.clear_output(wait=True)
        frame = state.get("frame")
        if frame is None or frame.empty or not x_axis.value or not y_axis.value:
            return
        import plotly.express as px

        with chart:
            shown = frame.assign(run_name=frame["run_name"].map(html.escape))  # plotly reads <a>… as markup
            px.scatter(shown, x=x_axis.value, y=y_axis.value, hover_name="run_name", height=360).show()

    box.observe(load, names="value")  # on Enter or leaving the box
    x_axis.observe(plot, names="value")
    y_axis.observe(plot, names="value")
    load()
    shown = f"<p>{html.escape(box.value or 'all runs')}: {message.value}</p>{table.value}"
    return NotebookView(widgets.VBox([box, message, table, widgets.HBox([x_axis, y_axis]), chart]), shown)


def models():
    """The registry as a widget: models, versions with stages and aliases, gates, approvals,
    history, and the same actions as the Models panel (as this kernel's user)."""
    import ipywidgets as widgets

    from .registry import STAGES

    registry = default_workspace().registry
    names = [m["name"] for m in registry.overview()]
    if not names:
        empty = '<i>No registered models yet: ml.register("name", run_id).</i>'
        return NotebookView(widgets.HTML(empty), empty)
    picker = widgets.Dropdown(options=names, description="model")
    body = widgets.HTML()
    version = widgets.Dropdown(description="version")
    stage = widgets.Dropdown(options=list(STAGES), description="to stage")
    comment = widgets.Text(description="comment", placeholder="why")
    move, ask = widgets.Button(description="Move"), widgets.Button(description="Request approval")
    request = widgets.Dropdown(description="request")
    approve, reject = widgets.Button(description="Approve"), widgets.Button(description="Reject")
    message = widgets.HTML()

    def render(_=None):
        detail = registry.describe(picker.value)
        aliases = detail["aliases"]
        rows = []
        for v in reversed(detail["versions"]):
            pointed = ", ".join(a for a, n in aliases.items() if n == v["version"])
            gates = " ".join(
                f"{g['gate']} {'✓' if g['passed'] else '✗'}" for g in detail["gates"] if g["version"] == v["version"]
            )
            metrics = ", ".join(f"{k} {val:.4g}" for k, val in v["metrics"].items() if val is not None)
            rows.append(
                f"<tr><td>{v['version']}</td><td><b>{html.escape(v['stage'])}</b></td><td>{html.escape(pointed)}</td>"
                f"<td>{html.escape(metrics)}</td><td>{html.escape(gates)}</td><td><code>{v['run_id']}</code></td>"
                f"<td>{html.escape(v['created_by'])}</td></tr>"
            )
        history = "".join(
            f"<tr><td>{e['time']}</td><td>{html.escape(e['user'])}</td><td>{html.escape(e['kind'])}</td>"
            f"<td>{html.escape(json_payload(e['payload']))}</td></tr>"
            for e in reversed(detail["history"])
        )
        body.value = (
            f"<table><tr><th>version</th><th>stage</th><th>aliases</th><th>metrics</th><th>gates</th>"
            f"<th>run</th><th>by</th></tr>{''.join(rows)}</table><h4>history</h4><table>{history}</table>"
        )
        chosen = version.value
        version.options = [v["version"] for v in reversed(detail["versions"])]
        version.value = chosen if chosen in version.options else version.options[0]
        request.options = [
            (f"v{a['version']} → {a['stage']} by {a['requested_by']}", a["id"])
            for a in detail["approvals"]
            if a["status"] == "PENDING"
        ]
        request.value = request.options[0][1] if request.options else None

    def act(action, done):
        def handler(_):
            try:
                action()
                message.value = html.escape(done())
            except Exception as exc:
                if status_of(exc) is None:  # a bug, not a refused request: let it show in full
                    raise
                message.value = f"<span style='color:#c0392b'>{html.escape(str(exc))}</span>"
            render()

        return handler

    move.on_click(
        act(
            lambda: registry.promote(picker.value, version.value, stage.value, comment=comment.value or None),
            lambda: f"version {version.value} moved to {stage.value}",
        )
    )
    ask.on_click(
        act(
            lambda: registry.request_approval(picker.value, version.value, comment=comment.value or None),
            lambda: f"approval for version {version.value} requested",
        )
    )
    approve.on_click(act(lambda: registry.approve(request.value, comment=comment.value or None), lambda: "approved"))
    reject.on_click(act(lambda: registry.reject(request.value, comment=comment.value or None), lambda: "rejected"))
    pages = []
    for name in reversed(names):  # every model in the snapshot, not only the one picked; the first last
        picker.value = name
        render()
        pages.insert(0, f"<h3>{html.escape(name)}</h3>{body.value}")
    picker.observe(render, names="value")
    view = widgets.VBox(
        [
            picker,
            body,
            widgets.HBox([version, stage, comment]),
            widgets.HBox([move, ask]),
            widgets.HBox([request, approve, reject]),
            message,
        ]
    )
    return NotebookView(view, "".join(pages))


def json_payload(payload: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in payload.items() if v is not None)
