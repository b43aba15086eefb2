"""Notebook outputs that outlive the kernel.

``ml.runs()``, ``ml.compare()``, ``ml.models()`` and a drift report show a live ipywidget, and
beside it a static snapshot: HTML with its charts drawn as inline SVG, no script.  The saved
notebook stays readable with no kernel — in JupyterLab (whose stylesheet hides the snapshot
while the live view is there), in nbconvert's HTML and on GitHub.
"""

from __future__ import annotations

import html
import math

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
MAX_POINTS = 300


class NotebookView:
    """A live widget and its static snapshot, displayed together; otherwise it is the widget."""

    def __init__(self, widget, snapshot: str):
        self.widget = widget
        self.snapshot = snapshot

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        # The widget without its text/plain repr: a reader with no kernel sees the snapshot, not "VBox(…)".
        bundle = {k: v for k, v in (self.widget._repr_mimebundle_() or {}).items() if k != "text/plain"}
        if bundle:
            display(bundle, raw=True)
        else:
            display(self.widget)
        display(HTML(f"<div class='mlops-lab-static'>{self.snapshot}</div>"))

    def __getattr__(self, name):
        return getattr(self.widget, name)


def line_chart(title: str, curves: dict[str, tuple[list, list]], width: int = 560, height: int = 220) -> str:
    """Curves (name → steps, values) as one inline SVG with axes' ranges and a legend."""
    points = {
        name: [(float(s), float(v)) for s, v in zip(steps, values) if v is not None and math.isfinite(float(v))]
        for name, (steps, values) in curves.items()
    }
    points = {name: p[:: max(1, len(p) // MAX_POINTS)] for name, p in points.items() if p}
    if not points:
        return ""
    xs = [x for p in points.values() for x, _ in p]
    ys = [y for p in points.values() for _, y in p]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    left, right, top, bottom = 56, 10, 22, 24
    sx = (width - left - right) / ((x1 - x0) or 1)
    sy = (height - top - bottom) / ((y1 - y0) or 1)
    lines, legend = [], []
    for i, (name, p) in enumerate(points.items()):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{left + (x - x0) * sx:.1f},{height - bottom - (y - y0) * sy:.1f}" for x, y in p)
        shape = (
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>'
            if len(p) > 1
            else f'<circle cx="{path.split(",")[0]}" cy="{path.split(",")[1]}" r="3" fill="{colour}"/>'
        )
        lines.append(shape)
        legend.append(f'<span style="color:{colour}">■</span> {html.escape(name)}')
    axis = "#999"
    return (
        f"<div><b>{html.escape(title)}</b> <span style='font-size:11px'>{' &nbsp; '.join(legend)}</span></div>"
        f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="{axis}"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="{axis}"/>'
        f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{y1:.4g}</text>'
        f'<text x="{left - 4}" y="{height - bottom}" font-size="10" text-anchor="end">{y0:.4g}</text>'
        f'<text x="{left}" y="{height - 8}" font-size="10">{x0:g}</text>'
        f'<text x="{width - right}" y="{height - 8}" font-size="10" text-anchor="end">{x1:g}</text>'
        f"{''.join(lines)}</svg>"
    )


def run_card(name: str, status: str, experiment: str, values: dict[str, str]) -> str:
    """A run's name, status and values as a small HTML table (``ml.get_run`` outside the lab)."""
    rows = "".join(
        f"<tr><td style='text-align:left'>{html.escape(k)}</td><td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in values.items()
    )
    return (
        f"<div class='mlops-lab-run'><b>{html.escape(name)}</b> · {html.escape(status)} · {html.escape(experiment)}"
        f"<table>{rows}</table></div>"
    )
