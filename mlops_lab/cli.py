"""``mlops-lab``: the command line.  Each command parses, calls a service, prints."""

from __future__ import annotations

import argparse
import json
import sys

from .config import ConfigError, resolve


def _tracker(args):
    from .tracking import Tracker

    return Tracker(resolve(args.db_url, args.artifacts))


def cmd_info(args) -> int:
    location = resolve(args.db_url, args.artifacts)
    print(f"database:  {location.db_url}")
    print(f"artifacts: {location.artifacts}")
    print(f"because:   {location.source}")
    from . import __version__

    print(f"version:   {__version__}")
    problem = onnxruntime_conflict()
    if problem:
        print(f"warning:   {problem}", file=sys.stderr)
    return 0


def onnxruntime_conflict() -> str | None:
    """onnxruntime and onnxruntime-gpu write the same files: with both installed, one is broken."""
    from importlib import metadata

    installed = []
    for name in ("onnxruntime", "onnxruntime-gpu"):
        try:
            installed.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    if len(installed) < 2:
        return None
    return (f"both {installed[0]} and {installed[1]} are installed and overwrite each other's files; "
            "keep one: pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu")


def cmd_experiments_list(args) -> int:
    tracker = _tracker(args)
    rows = tracker.store.list_experiments()
    if args.json:
        print(json.dumps([e.model_dump() for e in rows], indent=2))
        return 0
    print(f"{'ID':>4}  {'NAME':30}  CREATED BY")
    for e in rows:
        print(f"{e.id:>4}  {e.name:30}  {e.created_by}")
    return 0


def _search(args, tracker):
    from .tracking import runs_frame

    experiment_ids = None
    if args.experiment:
        found = tracker.store.experiment_id(args.experiment)
        if found is None:
            raise LookupError(f"no experiment named {args.experiment!r}")
        experiment_ids = [found]
    return runs_frame(tracker.store, experiment_ids, args.filter, args.order_by, args.max_results)


def cmd_runs_list(args) -> int:
    frame = _search(args, _tracker(args))
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
        return 0
    if frame.empty:
        print("no runs")
        return 0
    columns = ["run_id", "run_name", "status", "start_time", "duration_s"] + \
        [c for c in frame.columns if c.startswith(("metrics.", "params."))][:8]
    print(frame[columns].to_string(index=False))
    return 0


def cmd_runs_show(args) -> int:
    record = _tracker(args).get_run(args.run_id)
    print(json.dumps(record.to_dict(), indent=2, default=str))
    return 0


def cmd_runs_export(args) -> int:
    tracker = _tracker(args)
    if args.run_ids:
        ids = args.run_ids
    else:
        ids = list(_search(args, tracker)["run_id"])
    records = []
    for run_id in ids:
        record = tracker.get_run(run_id).to_dict()
        record["metric_history"] = {
            key: [{"step": s, "timestamp": t, "value": v} for s, t, v in tracker.store.metric_history(run_id, key)]
            for key in record["metrics"]
        }
        records.append(record)
    text = json.dumps({"runs": records}, indent=2, default=str)
    if args.output in (None, "-"):
        print(text)
    else:
        with open(args.output, "w") as handle:
            handle.write(text)
        print(f"exported {len(records)} runs to {args.output}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops-lab", description="mlops_lab: runs, models and data from the shell")
    parser.add_argument("--db-url", help="database URL (default: see `mlops-lab info`)")
    parser.add_argument("--artifacts", help="artifact store path or fsspec URL")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("info", help="which store is used, and why").set_defaults(func=cmd_info)

    experiments = commands.add_parser("experiments", help="experiments").add_subparsers(dest="action", required=True)
    listing = experiments.add_parser("list", help="list experiments")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_experiments_list)

    runs = commands.add_parser("runs", help="runs").add_subparsers(dest="action", required=True)

    def search_options(p):
        p.add_argument("--experiment", "-e", help="experiment name")
        p.add_argument("--filter", "-f", help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\"")
        p.add_argument("--order-by", "-o", action="append", help="e.g. 'metrics.acc DESC'; repeatable")
        p.add_argument("--max-results", "-n", type=int, default=100)

    listing = runs.add_parser("list", help="list runs")
    search_options(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_runs_list)

    show = runs.add_parser("show", help="everything stored about one run, as JSON")
    show.add_argument("run_id")
    show.set_defaults(func=cmd_runs_show)

    export = runs.add_parser("export", help="runs with their metric histories, as JSON")
    export.add_argument("run_ids", nargs="*", help="run ids (default: the runs the search options select)")
    search_options(export)
    export.add_argument("--output", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_runs_export, max_results=10_000)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .store import FilterError, NotFoundError, StoreError

    try:
        return args.func(args)
    except (ConfigError, FilterError, StoreError, NotFoundError, LookupError, ValueError, OSError) as exc:
        print(f"mlops-lab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
