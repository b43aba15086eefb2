"""The small output under a tracked cell: the run's name and status, and its loop curves as they
grow (updated at most once a second), then what the run recorded.  It is HTML with inline SVG, so
the saved notebook still shows it with no kernel, in nbconvert and on GitHub."""

from __future__ import annotations

import html
import json

MAX_CURVES = 6
CURVE_POINTS = 120
STATUS_MARK = {"RUNNING": "●", "FINISHED": "✓", "FAILED": "✗", "KILLED": "■"}
STATUS_COLOUR = {"RUNNING": "#1976d2", "FINISHED": "#2e7d32", "FAILED": "#c62828", "KILLED": "#6d4c41"}


def sparkline(values: list[float], width: int = 120, height: int = 24) -> str:
    """An inline SVG of a curve (evenly thinned to at most CURVE_POINTS points)."""
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    if len(finite) < 2:
        return ""
    stride = max(1, len(values) // CURVE_POINTS)
    shown = [v for v in values[::stride] if v == v and abs(v) != float("inf")]
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    step = width / max(1, len(shown) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in enumerate(shown))
    return (
        f'<svg width="{width}" height="{height}" style="vertical-align:middle">'
        f'<polyline fill="none" stroke="#1976d2" stroke-width="1.5" points="{points}"/></svg>'
    )


def render(run_name: str, run_id: str, status: str, seconds: float, curves: dict, summary: str = "") -> str:
    mark, colour = STATUS_MARK.get(status, "●"), STATUS_COLOUR.get(status, "#555")
    link = html.escape(json.dumps({"runId": run_id}), quote=True)
    rows = []
    for key, (steps, values) in list(curves.items())[:MAX_CURVES]:
        if values:
            rows.append(
                f"<tr><td style='padding-right:8px'>{html.escape(key)}</td><td>{sparkline(values)}</td>"
                f"<td style='padding-left:8px'>{values[-1]:.6g} <span style='color:#777'>step {steps[-1]}</span></td></tr>"
            )
    more = (
        f"<div style='color:#777'>and {len(curves) - MAX_CURVES} more curves</div>" if len(curves) > MAX_CURVES else ""
    )
    return (
        "<div class='mlops-lab-run' style='font-size:12px;font-family:var(--jp-ui-font-family,sans-serif)'>"
        f"<span style='color:{colour}'>{mark} {html.escape(status)}</span> "
        f"run <b>{html.escape(run_name)}</b> <span style='color:#777'>{_duration(seconds)}</span> · "
        f"<a href='#' data-commandlinker-command='mlops-lab:open-run' data-commandlinker-args='{link}' "
        f"title='{html.escape(run_id)}'>open the run</a>"
        f"{(' · ' + html.escape(summary)) if summary else ''}"
        f"{'<table>' + ''.join(rows) + '</table>' if rows else ''}{more}</div>"
    )


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class LiveOutput:
    """One display under the cell, replaced in place as the run goes on."""

    def __init__(self, run_name: str, run_id: str):
        from IPython.display import HTML, display

        self.run_name, self.run_id, self._html = run_name, run_id, HTML
        self.handle = display(HTML(render(run_name, run_id, "RUNNING", 0.0, {})), display_id=True)

    def update(self, status: str, seconds: float, curves: dict, summary: str = "") -> None:
        self.handle.update(self._html(render(self.run_name, self.run_id, status, seconds, curves, summary)))
