"""Rendering a drift report: an HTML table with small histograms, and an ipywidget with plotly
charts of the column you pick (overlaid histogram and ECDF) and of drift over time."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the report imports this module to render itself; types only, so no cycle
    from .report import ColumnDrift, DriftReport

METHOD_LABELS = {
    "ks": "KS p-value",
    "wasserstein": "Wasserstein (ref. std)",
    "chi_square": "chi-square p-value",
    "jensen_shannon": "Jensen–Shannon distance (base 2)",
    "mmd": "MMD p-value",
}


def _sparkline(column: "ColumnDrift", width: int = 120, height: int = 28) -> str:
    plot = column.plot
    ref, cur = plot.get("reference"), plot.get("current")
    if not ref:
        return ""
    top = max(max(ref), max(cur)) or 1
    step = width / len(ref)
    bars = []
    for i, (r, c) in enumerate(zip(ref, cur)):
        x = i * step
        bars.append(
            f'<rect x="{x:.1f}" y="{height - r / top * height:.1f}" width="{step * 0.48:.1f}" '
            f'height="{r / top * height:.1f}" fill="#8c9db5"/>'
        )
        bars.append(
            f'<rect x="{x + step * 0.5:.1f}" y="{height - c / top * height:.1f}" width="{step * 0.48:.1f}" '
            f'height="{c / top * height:.1f}" fill="#e07b39"/>'
        )
    return f'<svg width="{width}" height="{height}" role="img" aria-label="histogram">{"".join(bars)}</svg>'


def _value(column: "ColumnDrift") -> str:
    statistic = column.statistic(column.method)
    shown = statistic.p_value if statistic.p_value is not None else statistic.value
    return f"{shown:.4g}"


def report_html(report: "DriftReport") -> str:
    rows = []
    for c in report.columns:
        badge = '<b style="color:#c0392b">drift</b>' if c.drift else '<span style="color:#2e7d32">ok</span>'
        role = "" if c.role == "feature" else f" <i>({c.role})</i>"
        rows.append(
            f"<tr><td>{html.escape(c.column)}{role}</td><td>{c.kind}</td><td>{badge}</td>"
            f"<td>{METHOD_LABELS.get(c.method, c.method)}</td><td style='text-align:right'>{_value(c)}</td>"
            f"<td style='text-align:right'>{c.score:.4g}</td><td>{_sparkline(c)}</td></tr>"
        )
    notes = []
    if report.only_in_reference:
        notes.append(f"only in the reference: {', '.join(map(html.escape, report.only_in_reference))}")
    if report.only_in_current:
        notes.append(f"only in the current data: {', '.join(map(html.escape, report.only_in_current))}")
    return (
        f"<div class='mlops-drift'><p><b>{html.escape(report.summary())}</b> — reference {report.reference_rows:,} rows, "
        f"current {report.current_rows:,} rows. Bars: <span style='color:#8c9db5'>reference</span> / "
        f"<span style='color:#e07b39'>current</span>. Score: Wasserstein distance in reference standard deviations "
        f"(numeric) or Jensen–Shannon distance in base 2 (categorical).</p>"
        f"<table><thead><tr><th>column</th><th>kind</th><th>drift</th><th>test</th><th>value</th><th>score</th>"
        f"<th>histogram</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{''.join(f'<p>{n}</p>' for n in notes)}</div>"
    )


def column_figure(column: "ColumnDrift"):
    """Overlaid histogram and ECDF (numeric) or category shares (categorical)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    plot = column.plot
    if column.kind == "numeric":
        figure = make_subplots(rows=1, cols=2, subplot_titles=("histogram (share of rows)", "ECDF"))
        edges = plot["edges"]
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        figure.add_bar(x=centers, y=plot["reference"], name="reference", marker_color="#8c9db5", row=1, col=1)
        figure.add_bar(x=centers, y=plot["current"], name="current", marker_color="#e07b39", opacity=0.7, row=1, col=1)
        figure.add_scatter(
            x=plot["reference_quantiles"], y=plot["levels"], name="reference ECDF", line_color="#8c9db5", row=1, col=2
        )
        figure.add_scatter(
            x=plot["current_quantiles"], y=plot["levels"], name="current ECDF", line_color="#e07b39", row=1, col=2
        )
        figure.update_layout(barmode="overlay")
    else:
        figure = go.Figure(
            [
                go.Bar(
                    x=plot.get("categories", []), y=plot.get("reference", []), name="reference", marker_color="#8c9db5"
                ),
                go.Bar(x=plot.get("categories", []), y=plot.get("current", []), name="current", marker_color="#e07b39"),
            ]
        )
    label = METHOD_LABELS.get(column.method, column.method)
    figure.update_layout(
        title=f"{column.column}: {'drift' if column.drift else 'no drift'} ({label} {_value(column)})",
        height=360,
        margin={"t": 60, "b": 40, "l": 40, "r": 20},
    )
    return figure


def over_time_figure(report: "DriftReport"):
    import plotly.graph_objects as go

    periods = [row["period"] for row in report.over_time or []]
    figure = go.Figure()
    for c in report.features:
        figure.add_scatter(
            x=periods, y=[row.get(c.column) for row in report.over_time], mode="lines+markers", name=c.column
        )
    figure.update_layout(title="drift score per period", yaxis_title="score", height=360)
    return figure


def drift_widget(report: "DriftReport"):
    """The report as an ipywidget: the table, then the chosen column's charts."""
    import ipywidgets as widgets

    table = widgets.HTML(report_html(report))
    options = [(f"{'⚠ ' if c.drift else ''}{c.column}", c.column) for c in report.columns if c.plot]
    picker = widgets.Dropdown(options=options, description="column", layout={"width": "360px"})
    chart = widgets.Output()

    def show(change=None):
        chart.clear_output(wait=True)
        if picker.value is not None:
            with chart:
                column_figure(report.column(picker.value)).show()

    picker.observe(show, names="value")
    show()
    children = [table, picker, chart]
    if report.over_time:
        over_time = widgets.Output()
        with over_time:
            over_time_figure(report).show()
        children.append(over_time)
    return widgets.VBox(children)
