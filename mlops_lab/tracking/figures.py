"""Figures as run artifacts: matplotlib figures, plotly figures and PIL images, by value or as a
notebook displays them (a PNG, or plotly's own JSON so the chart stays interactive)."""

from __future__ import annotations

import base64
import io
import json
import sys

PLOTLY_MIME = "application/vnd.plotly.v1+json"
MAX_FIGURES = 50  # a cell that draws in a loop keeps its first figures, not thousands


def encode(figure) -> tuple[bytes, str] | None:
    """``(data, suffix)`` for a figure object (``.png`` or ``.plotly.json``); None for anything else."""
    kind = type(figure)
    module = kind.__module__.partition(".")[0]
    if module == "plotly" and hasattr(figure, "to_json"):
        return figure.to_json().encode(), ".plotly.json"
    if module == "matplotlib" and hasattr(figure, "savefig"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue(), ".png"
    if module == "PIL" and hasattr(figure, "save"):
        buffer = io.BytesIO()
        figure.save(buffer, format="PNG")
        return buffer.getvalue(), ".png"
    return None


def from_display(data: dict) -> tuple[bytes, str] | None:
    """A figure in a display's mime bundle (what ``plt.show()``, ``fig.show()`` or ``display(img)`` send)."""
    if PLOTLY_MIME in data:
        return json.dumps(data[PLOTLY_MIME]).encode(), ".plotly.json"
    png = data.get("image/png")
    if isinstance(png, str):
        return base64.b64decode(png), ".png"
    if isinstance(png, bytes):
        return png, ".png"
    return None


class CellFigures:
    """Collects the figures a cell shows: displays while it runs, then the matplotlib figures it
    opened and left open (the inline backend shows those after the cell) and its value."""

    def __init__(self, shell):
        self.shell = shell
        self.figures: list[tuple[bytes, str]] = []
        self._publisher = getattr(shell, "display_pub", None)
        self._publish = None
        self._open_before: set[int] = set()

    def __enter__(self):
        pyplot = sys.modules.get("matplotlib.pyplot")
        self._open_before = set(pyplot.get_fignums()) if pyplot is not None else set()
        if self._publisher is not None:
            self._publish = self._publisher.publish

            def publish(data, *args, **kwargs):
                self._keep(from_display(data) if isinstance(data, dict) else None)
                return self._publish(data, *args, **kwargs)

            self._publisher.publish = publish
        return self

    def __exit__(self, *exc):
        if self._publisher is not None:
            self._publisher.publish = self._publish
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            for number in pyplot.get_fignums():
                if number not in self._open_before:
                    self._keep(_safely(encode, pyplot.figure(number)))

    def add_value(self, value) -> None:
        """The cell's value, shown by IPython after the cell: a figure there is the cell's too."""
        self._keep(_safely(encode, value))

    def _keep(self, figure: tuple[bytes, str] | None) -> None:
        if figure is not None and len(self.figures) < MAX_FIGURES:
            self.figures.append(figure)


def _safely(function, value):
    try:
        return function(value)
    except Exception:  # a figure that cannot be drawn is the user's to see, not the run's to fail
        return None
