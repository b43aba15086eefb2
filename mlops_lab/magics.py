"""``%%track``, ``%track on|off`` and ``%serve``: doors onto ``mlops_lab.tracking.cells`` and ``ml.serve``.

%load_ext mlops_lab
%%track --experiment churn --name rf-200 --tag team=ds
n_estimators = 200
model = RandomForestClassifier(n_estimators=n_estimators).fit(X, y)
acc = model.score(X_test, y_test)

%serve churn@production --canary churn@candidate --canary-share 0.1
"""

from __future__ import annotations

import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .errors import status_of


def _tags(pairs: list[str] | None) -> dict:
    tags = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--tag takes key=value, got {pair!r}")
        tags[key] = value
    return tags


@magics_class
class TrackMagics(Magics):
    def __init__(self, shell):
        super().__init__(shell)
        self.auto_args: str | None = None  # the %track on arguments while tracking every cell
        self._inside_cell = False  # the cell body is transformed again inside %%track

    @magic_arguments()
    @argument("mode", nargs="?", choices=["on", "off", "status"], help="line form: track every following cell")
    @argument("--experiment", "-e", help="experiment name (default: MLOPS_LAB_EXPERIMENT or 'Default')")
    @argument("--name", "-n", help="run name (default: a generated one)")
    @argument("--tag", "-t", action="append", help="tag as key=value; repeatable")
    @argument("--quiet", "-q", action="store_true", help="no live output under the cell")
    @line_cell_magic
    def track(self, line: str, cell: str | None = None):
        """Track a cell as a run (``%%track``), or every following cell (``%track on``)."""
        __tracebackhide__ = True  # a failing cell's traceback shows the user's frames
        try:
            args = parse_argstring(self.track, line)
        except SystemExit:  # argparse on bad input
            raise UsageError(f"%track: cannot parse {line!r}; see %track?") from None
        if cell is None:
            return self._switch(args, line)
        if args.mode is not None:
            raise UsageError("%%track takes options only; use the line form for %track on|off")
        from .tracking.cells import run_tracked_cell
        from .workspace import default_workspace

        tags = _tags(args.tag)
        self._inside_cell = True
        try:
            return run_tracked_cell(
                default_workspace().tracking,
                self.shell,
                cell,
                experiment=args.experiment,
                name=args.name,
                tags=tags,
                quiet=args.quiet,
            )
        finally:
            self._inside_cell = False

    def _switch(self, args, line: str):
        if args.mode == "on":
            _tags(args.tag)  # refuse bad tags now, not on every cell
            self.auto_args = " ".join(shlex.quote(part) for part in shlex.split(line)[1:])
            if self._auto_transform not in self.shell.input_transformers_cleanup:
                self.shell.input_transformers_cleanup.append(self._auto_transform)
            print("mlops_lab: tracking every cell as a run (%track off to stop)")
        elif args.mode == "off":
            self.auto_args = None
            if self._auto_transform in self.shell.input_transformers_cleanup:
                self.shell.input_transformers_cleanup.remove(self._auto_transform)
            print("mlops_lab: cell tracking off")
        else:
            from .workspace import default_workspace

            state = "on" if self.auto_args is not None else "off"
            print(f"mlops_lab: tracking every cell is {state}; store {default_workspace().location.db_url}")

    @magic_arguments()
    @argument("model", nargs="?", help="name@alias, name@production, name/3 or a .onnx file")
    @argument("--name", help="deployment name (default: the model's name)")
    @argument("--canary", help="a second version for a share of traffic")
    @argument("--canary-share", type=float, help="share of traffic for the canary, 0..1")
    @argument("--shadow", help="a version that gets a copy of traffic, compared, never returned")
    @argument("--max-batch-size", type=int)
    @argument("--max-queue-delay-us", type=int)
    @argument("--cpu", action="store_true", help="stay on the CPU even with CUDA")
    @argument("--token", help="require Authorization: Bearer TOKEN")
    @argument("--stop", metavar="NAME", help="stop a deployment")
    @argument("--list", action="store_true", help="list deployments")
    @line_magic
    def serve(self, line: str):
        """Serve a registered model (``%serve churn@production``), list (``--list``) or stop (``--stop``)."""
        try:
            args = parse_argstring(self.serve, line)
        except SystemExit:
            raise UsageError(f"%serve: cannot parse {line!r}; see %serve?") from None
        from . import api

        if args.list:
            import pandas as pd

            return pd.DataFrame(api.deployments(), columns=["name", "model", "state", "url", "restarts"])
        if args.stop:
            return api.stop_serving(args.stop)["state"]
        if not args.model:
            raise UsageError("%serve needs a model (churn@production), --list or --stop NAME")
        options = {
            key: value
            for key, value in vars(args).items()
            if key not in ("model", "stop", "list", "cpu") and value is not None
        }
        if args.cpu:
            options["cpu"] = True
        try:
            return api.serve(args.model, **options)
        except Exception as exc:
            if status_of(exc) is None:
                raise  # a bug: its traceback is wanted
            raise UsageError(f"%serve: {exc}") from None  # a refused request: one line, no traceback

    def _auto_transform(self, lines: list[str]) -> list[str]:
        """With %track on, each cell is run as if it began with %%track (one code path for both)."""
        if self.auto_args is None or self._inside_cell or not lines:
            return lines
        first = lines[0].lstrip()
        if first.startswith("%%") or first.startswith("%track") or not "".join(lines).strip():
            return lines
        return [f"%%track {self.auto_args}\n", *lines]


def register(ipython) -> None:
    ipython.register_magics(TrackMagics)


def unregister(ipython) -> None:
    magics = ipython.magics_manager.registry.get("TrackMagics")
    if magics is not None and magics._auto_transform in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(magics._auto_transform)
