"""``mlops-lab``: the command line.  Each command parses, calls a service, prints."""

from __future__ import annotations

import argparse
import json
import sys

from .config import resolve
from .errors import InvalidInputError, status_of


def _workspace(args):
    from .workspace import Workspace

    return Workspace(resolve(args.db_url, args.artifacts))


def cmd_info(args) -> int:
    shown = resolve(args.db_url, args.artifacts).public()
    print(f"database:  {shown['db_url']}")
    print(f"artifacts: {shown['artifacts']}")
    print(f"because:   {shown['source']}")
    from .version import __version__

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
    return (
        f"both {installed[0]} and {installed[1]} are installed and overwrite each other's files; "
        "keep one: pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
    )


def cmd_experiments_list(args) -> int:
    rows = _workspace(args).store.runs.list_experiments()
    if args.json:
        print(json.dumps([e.model_dump() for e in rows], indent=2))
        return 0
    print(f"{'ID':>4}  {'NAME':30}  CREATED BY")
    for e in rows:
        print(f"{e.id:>4}  {e.name:30}  {e.created_by}")
    return 0


def _search(args, workspace):
    from .tracking import experiment_ids, runs_frame

    runs = workspace.store.runs
    ids = experiment_ids(runs, args.experiment or None, missing="raise")  # a mistyped name is an error here
    return runs_frame(runs, ids, args.filter, args.order_by, args.max_results)


def cmd_runs_list(args) -> int:
    frame = _search(args, _workspace(args))
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
        return 0
    if frame.empty:
        print("no runs")
        return 0
    columns = ["run_id", "run_name", "status", "start_time", "duration_s"] + [
        c for c in frame.columns if c.startswith(("metrics.", "params."))
    ][:8]
    print(frame[columns].to_string(index=False))
    return 0


def cmd_runs_show(args) -> int:
    record = _workspace(args).store.runs.get_run(args.run_id)
    print(json.dumps(record.to_dict(), indent=2, default=str))
    return 0


def cmd_runs_export(args) -> int:
    workspace = _workspace(args)
    runs = workspace.store.runs
    if args.run_ids:
        ids = args.run_ids
    else:
        ids = list(_search(args, workspace)["run_id"])
    records = []
    for run_id in ids:
        record = runs.get_run(run_id).to_dict()
        record["metric_history"] = {
            key: [{"step": s, "timestamp": t, "value": v} for s, t, v in runs.metric_history(run_id, key)]
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


def cmd_checkout(args) -> int:
    from .tracking.checkout import checkout

    notebook = checkout(_workspace(args), args.run_id, args.into or f"checkout-{args.run_id[:8]}")
    print(f"restored run {args.run_id} into {notebook.parent}; re-run {notebook.name}")
    return 0


def _registry(args):
    return _workspace(args).registry


def cmd_models_list(args) -> int:
    models = _registry(args).models
    for model in models.list_models():
        versions = models.list_versions(model.name)
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(models.aliases(model.name).items()))
        print(
            f"{model.name}: {len(versions)} versions, production {model.production_version or '-'}"
            + (f", aliases {aliases}" if aliases else "")
        )
    return 0


def cmd_models_show(args) -> int:
    registry = _registry(args)
    versions = [v.model_dump() for v in registry.models.list_versions(args.name)]
    print(
        json.dumps(
            {
                "versions": versions,
                "aliases": registry.models.aliases(args.name),
                "history": registry.history(args.name),
            },
            indent=2,
            default=str,
        )
    )
    return 0


def cmd_models_register(args) -> int:
    version = _registry(args).register(args.name, args.run_id, args.model)
    print(f"registered {args.name}/{version}")
    return 0


def cmd_models_promote(args) -> int:
    registry = _registry(args)
    name, version = registry.resolve(args.model)
    registry.promote(name, version, args.stage, comment=args.comment)
    print(f"{name}/{version} is now in {args.stage}")
    return 0


def cmd_gate(args) -> int:
    """Exit 0 when every gate asked for passes, 1 when one fails (for CI pipelines)."""
    from .gates import evaluate, parse_threshold, validate_data

    registry = _registry(args)
    name, version = registry.resolve(f"{args.model}/{args.candidate}")
    results = []
    if args.reference:
        results.append(validate_data(registry, name, version, args.data or args.holdout, args.reference))
    if args.holdout:
        thresholds: dict[str, dict] = {}
        for text in args.threshold or []:
            metric, kind, value = parse_threshold(text)
            thresholds.setdefault(metric, {})[kind] = value
        results.append(evaluate(registry, name, version, args.holdout, target=args.target, thresholds=thresholds))
    if not results:
        raise InvalidInputError("give --holdout (evaluation gate) and/or --reference (data gate)")
    for result in results:
        print(result.summary())
        for check in result.checks:
            print(f"  {'ok  ' if check.passed else 'FAIL'} {check.name}: {check.detail}")
    return 0 if all(r.passed for r in results) else 1


def cmd_serve(args) -> int:
    from .serving.process import run_server

    return run_server(args)


def cmd_predict(args) -> int:
    from .serving.predict import predict_file

    result = predict_file(
        args.model,
        args.input,
        args.output,
        chunk_rows=args.chunk_rows,
        keep=args.keep,
        workspace=None if args.model.endswith(".onnx") else _workspace(args),
        providers=["CPUExecutionProvider"] if args.cpu else None,
    )
    print(
        f"{result['rows']:,} rows scored by {result['model']} on {result['provider']} in {result['chunks']} "
        f"chunk(s), {result['seconds']:.2f} s → {args.output}"
    )
    return 0


def cmd_server(args) -> int:
    import asyncio
    import os

    from .server.team import build_team_server, serve

    location = resolve(args.db_url, args.artifacts)
    hub_api = os.environ.get("JUPYTERHUB_API_URL") if args.hub else None
    if args.hub and not hub_api:
        raise InvalidInputError("--hub: JUPYTERHUB_API_URL is not set (JupyterHub sets it for its services)")
    team = build_team_server(
        location.db_url,
        location.artifacts,
        default_level=args.default_permission,
        admins=set(args.admin or []),
        approver_group=args.approvers,
        hub_api_url=hub_api,
        hub_service=os.environ.get("JUPYTERHUB_SERVICE_NAME") if args.hub else None,
        default_required_approvals=args.required_approvals,
    )
    base_url = args.base_url or (os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/") if args.hub else "/")
    shown = location.public()

    def ready(port: int) -> None:
        print(f"mlops-lab team server on http://{args.host}:{port}{base_url} — store {shown['db_url']}", flush=True)

    try:
        asyncio.run(serve(team, args.host, args.port, base_url, ready))
    except KeyboardInterrupt:
        pass
    return 0


def _team(args):
    """The team's administration: through the team server when one is configured, else straight on
    the database as the server's operator (whoever can open the database is trusted with it)."""
    import functools

    location = resolve(args.db_url, args.artifacts)
    if location.is_team_server:
        from .remote import RemoteClient
        from .team.client import TeamClient

        return TeamClient(RemoteClient(location.db_url, location.token))
    from .store import open_store
    from .team import Access

    access = Access(open_store(location.db_url))

    class Operator:
        def __getattr__(self, name):
            return functools.partial(getattr(access, name), None)

    return Operator()


def cmd_token_create(args) -> int:
    token_id, secret = _team(args).create_token(args.user, note=args.note, expires_in_days=args.expires_days)
    print(secret)
    print(f"token {token_id}: shown once, keep it (MLOPS_LAB_TOKEN)", file=sys.stderr)
    return 0


def cmd_token_list(args) -> int:
    from datetime import datetime

    def when(ms):
        return "-" if ms is None else datetime.fromtimestamp(ms / 1000).isoformat(timespec="minutes")

    print(f"{'ID':12}  {'USER':16}  {'CREATED':16}  {'EXPIRES':16}  {'REVOKED':16}  NOTE")
    for t in _team(args).tokens(args.user):
        created, expires, revoked = when(t["created_at"]), when(t["expires_at"]), when(t["revoked_at"])
        print(f"{t['id']:12}  {t['user']:16}  {created:16}  {expires:16}  {revoked:16}  {t['note']}")
    return 0


def cmd_token_revoke(args) -> int:
    _team(args).revoke_token(args.token_id)
    print(f"revoked token {args.token_id}")
    return 0


def cmd_users(args) -> int:
    team = _team(args)
    for name in args.admin or []:
        team.set_admin(name, True)
    for name in args.not_admin or []:
        team.set_admin(name, False)
    for user in team.users():
        print(f"{user['name']}{'  (admin)' if user['is_admin'] else ''}")
    return 0


def cmd_permissions_list(args) -> int:
    for p in _team(args).permissions(args.kind, args.name):
        print(f"{p['kind']:10}  {p['name']:30}  {p['grantee']:20}  {p['level']}")
    return 0


def cmd_permissions_set(args) -> int:
    level = None if args.level == "NONE" else args.level
    _team(args).set_permission(args.kind, args.name, args.grantee, level)
    print(f"{args.grantee}: {args.level} on {args.kind} {args.name!r}")
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

    restore = commands.add_parser("checkout", help="restore a run's data, code, models and requirements")
    restore.add_argument("run_id")
    restore.add_argument("--into", help="a new or empty folder (default: checkout-<run id>)")
    restore.set_defaults(func=cmd_checkout)

    models = commands.add_parser("models", help="the model registry").add_subparsers(dest="action", required=True)
    models.add_parser("list", help="registered models").set_defaults(func=cmd_models_list)
    show = models.add_parser("show", help="a model's versions, aliases and history, as JSON")
    show.add_argument("name")
    show.set_defaults(func=cmd_models_show)
    register = models.add_parser("register", help="register a run's logged model as a new version")
    register.add_argument("name")
    register.add_argument("run_id")
    register.add_argument("--model", default="model", help="the logged model's name in the run")
    register.set_defaults(func=cmd_models_register)
    promote = models.add_parser("promote", help="move a version to a stage")
    promote.add_argument("model", help="name/3, name@alias or name@staging")
    promote.add_argument("stage", choices=["None", "Staging", "Production", "Archived"])
    promote.add_argument("--comment")
    promote.set_defaults(func=cmd_models_promote)

    gate = commands.add_parser("gate", help="run a model version's gates; exits 1 if one fails")
    gate.add_argument("model", help="registered model name")
    gate.add_argument("--candidate", required=True, type=int, help="the version to check")
    gate.add_argument("--holdout", help="labelled holdout: dataset version hash or file (evaluation gate)")
    gate.add_argument("--target", help="the holdout's label column")
    gate.add_argument("--threshold", action="append", help="metric:kind=value, e.g. accuracy:max_regression=0.01")
    gate.add_argument("--reference", help="reference data for the data gate (hash or file)")
    gate.add_argument("--data", help="data to validate (default: the holdout)")
    gate.set_defaults(func=cmd_gate)

    from .serving.options import add_arguments

    serve = commands.add_parser("serve", help="serve a model over the v2 inference protocol (KServe/Triton REST)")
    add_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    predict = commands.add_parser("predict", help="score a parquet or CSV file in chunks")
    predict.add_argument("model", help="name@alias, name/3, name, or a .onnx file")
    predict.add_argument("input", help="a .parquet or .csv file")
    predict.add_argument("output", help="a .parquet or .csv file to write")
    predict.add_argument("--chunk-rows", type=int, default=50_000, help="rows in memory at a time")
    predict.add_argument("--keep", action="append", help="an input column to copy to the output (an id); repeatable")
    predict.add_argument("--cpu", action="store_true", help="use the CPU even when CUDA is available")
    predict.set_defaults(func=cmd_predict)

    server = commands.add_parser("server", help="the team server: one store for a team, behind authenticated REST")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=5050)
    server.add_argument("--base-url", help="a path prefix (default: / or, with --hub, JupyterHub's service prefix)")
    server.add_argument(
        "--default-permission", default="READ", choices=["NONE", "READ", "EDIT", "MANAGE"],
        help="what anyone may do on an experiment or model without a grant (default READ)",
    )  # fmt: skip
    server.add_argument("--admin", action="append", help="a user who may do anything; repeatable")
    server.add_argument("--approvers", help="a group whose members may approve any model's versions")
    server.add_argument("--required-approvals", type=int, default=1, help="approvals before Production (default 1)")
    server.add_argument("--hub", action="store_true", help="run as a JupyterHub service: accept hub tokens")
    server.set_defaults(func=cmd_server)

    token = commands.add_parser("token", help="team server tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="a new token (printed once)")
    create.add_argument("--user", help="whose (default: yours; an admin may name anyone)")
    create.add_argument("--note", default="", help="what it is for")
    create.add_argument("--expires-days", type=float, help="days until it stops working")
    create.set_defaults(func=cmd_token_create)
    listing = token.add_parser("list", help="tokens (yours; an admin's: everyone's)")
    listing.add_argument("--user")
    listing.set_defaults(func=cmd_token_list)
    revoke = token.add_parser("revoke", help="stop a token working")
    revoke.add_argument("token_id")
    revoke.set_defaults(func=cmd_token_revoke)

    users = commands.add_parser("users", help="the team server's users (admins only)")
    users.add_argument("--admin", action="append", help="make this user an admin; repeatable")
    users.add_argument("--not-admin", action="append", help="make this user an admin no more; repeatable")
    users.set_defaults(func=cmd_users)

    imports = commands.add_parser("import", help="bring a history in from another tool").add_subparsers(
        dest="tool", required=True
    )
    from_mlflow = imports.add_parser(
        "mlflow", help="experiments, runs, artifacts, logged models and the registry of an MLflow tracking store"
    )
    from_mlflow.add_argument(
        "source", help="a tracking URI (http(s)://, sqlite:///, postgresql://) or an mlruns folder"
    )
    from_mlflow.add_argument("--experiment", action="append", help="only this experiment (repeatable)")
    from_mlflow.add_argument("--report", help="write what was imported and skipped, as JSON, to this file")
    from_mlflow.set_defaults(func=cmd_import_mlflow)

    permissions = commands.add_parser("permissions", help="who may read, edit or manage what").add_subparsers(
        dest="action", required=True
    )
    listing = permissions.add_parser("list", help="grants")
    listing.add_argument("--kind", choices=["experiment", "model"])
    listing.add_argument("--name")
    listing.set_defaults(func=cmd_permissions_list)
    grant = permissions.add_parser("set", help="grant a level (NONE takes the grant away)")
    grant.add_argument("kind", choices=["experiment", "model"])
    grant.add_argument("name")
    grant.add_argument("grantee", help="a user, or group:<name>")
    grant.add_argument("level", choices=["NONE", "READ", "EDIT", "MANAGE"])
    grant.set_defaults(func=cmd_permissions_set)

    pipeline = commands.add_parser("pipeline", help="notebook pipelines (pipeline.yaml)").add_subparsers(
        dest="action", required=True
    )

    def pipeline_file(p):
        p.add_argument("file", nargs="?", default="pipeline.yaml", help="the pipeline file or its folder")

    run = pipeline.add_parser("run", help="run the stale steps (exits 1 if a step fails)")
    pipeline_file(run)
    run.add_argument("--step", action="append", help="only this step and what it needs (repeatable)")
    run.add_argument("--force", action="store_true", help="run the steps even if cached")
    run.add_argument("--if-changed", action="store_true", help="exit 0 at once when nothing is stale (cron, CI)")
    run.add_argument("--jobs", type=int, help="steps at once (default: the CPUs)")
    run.set_defaults(func=cmd_pipeline_run)
    status = pipeline.add_parser("status", help="each step's state, and why it is stale")
    pipeline_file(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_pipeline_status)
    dag = pipeline.add_parser("dag", help="the steps in order with what each runs after")
    pipeline_file(dag)
    dag.add_argument("--dot", action="store_true", help="as Graphviz dot")
    dag.set_defaults(func=cmd_pipeline_dag)
    watch = pipeline.add_parser("watch", help="run, then run again whenever a notebook, dep or the file changes")
    pipeline_file(watch)
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between looks (default 2)")
    watch.add_argument("--jobs", type=int)
    watch.set_defaults(func=cmd_pipeline_watch)
    export = pipeline.add_parser("export", help="compile for Kubeflow Pipelines / Vertex AI Pipelines")
    pipeline_file(export)
    export.add_argument("--kfp", required=True, metavar="OUT.yaml", help="write the KFP v2 IR YAML here")
    export.add_argument("--image", default="python:3.11-slim", help="the container image with mlops_lab and the code")
    export.add_argument(
        "--pipeline-path", help="the pipeline file's path inside the image (default: the one given, as given)"
    )
    export.set_defaults(func=cmd_pipeline_export)
    return parser


def cmd_import_mlflow(args) -> int:
    from .mlflow_api.importer import import_mlflow

    workspace = _workspace(args)
    interactive = sys.stderr.isatty()

    def progress(text: str) -> None:
        if interactive:
            print(f"\r{text[:100]:<100}", end="" if text else "\r", file=sys.stderr, flush=True)

    report = import_mlflow(
        args.source,
        workspace.store,
        workspace.artifacts,
        workspace.registry,
        workspace.user,
        experiments=args.experiment or None,
        progress=progress,
    )
    found = report.to_dict()
    if args.report:
        with open(args.report, "w") as out:
            json.dump(found, out, indent=2)
    print(
        f"imported from {report.source} in {report.seconds:.1f} s: {report.experiments} experiments, "
        f"{report.runs_imported:,} runs ({report.runs_already_here:,} already here), "
        f"{report.metric_points:,} metric points, {report.params:,} params, {report.tags:,} tags, "
        f"{report.artifact_files:,} artifact files ({report.artifact_bytes:,} bytes), {report.datasets} datasets, "
        f"{report.logged_models} logged models, {report.registered_models} registered models, "
        f"{report.versions_imported} versions ({report.versions_already_here} already here), {report.aliases} aliases"
    )
    for item in report.skipped:
        print(f"skipped {item['what']} {item['id']}: {item['why']}")
    return 0


# ---- pipelines -----------------------------------------------------------------------------------


def _pipeline(args, progress=None):
    from .pipelines import load_pipeline
    from .pipelines.runner import PipelineRunner

    return PipelineRunner(_workspace(args), load_pipeline(args.file), progress)


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_pipeline_run(args) -> int:
    runner = _pipeline(args, _say)
    if args.if_changed and not args.force:
        stale = runner.stale(args.step)
        if not stale:
            print(f"{runner.pipeline.name}: up to date, nothing to do")
            return 0
    result = runner.run(steps=args.step, force=args.force, jobs=args.jobs)
    if not result.ran and result.ok:
        print(f"{runner.pipeline.name}: up to date")
    elif result.ok:
        print(f"{runner.pipeline.name}: ran {', '.join(result.ran)} (run {result.run_id})")
    else:
        print(
            f"{runner.pipeline.name}: FAILED ({', '.join(s.name for s in result.steps.values() if s.state == 'failed')})",
            file=sys.stderr,
        )
    return 0 if result.ok else 1


def cmd_pipeline_status(args) -> int:
    runner = _pipeline(args)
    states = runner.status()
    if args.json:
        print(json.dumps({"pipeline": runner.pipeline.name, "steps": [s.to_dict() for s in states.values()]}, indent=2))
        return 0
    stale = [s for s in states.values() if s.state != "cached"]
    print(
        f"{runner.pipeline.name} ({runner.pipeline.label}): "
        + (f"{len(stale)} of {len(states)} steps to run" if stale else "up to date")
    )
    width = max(len(name) for name in states)
    for state in states.values():
        run = state.run_id or (state.record.run_id if state.record else None)
        why = "; ".join(state.reasons) or (f"run {run[:8]}" if run else "")
        print(f"  {state.name:<{width}}  {state.state:<8}  {why}")
    return 0


def cmd_pipeline_dag(args) -> int:
    from .pipelines import load_pipeline

    pipeline = load_pipeline(args.file)
    if args.dot:
        print(f'digraph "{pipeline.name}" {{')
        for name in pipeline.order():
            print(f'  "{name}";')
        for parent, child in pipeline.edges():
            print(f'  "{parent}" -> "{child}";')
        print("}")
        return 0
    width = max(len(name) for name in pipeline.steps)
    for name in pipeline.order():
        step = pipeline.steps[name]
        what = step.notebook if step.kind == "notebook" else f"{step.kind} {step.config['model']}"
        after = sorted(pipeline.upstream[name])
        print(f"{name:<{width}}  {what}" + (f"  ← {', '.join(after)}" if after else ""))
    return 0


def cmd_pipeline_watch(args) -> int:
    from .pipelines.runner import watch

    try:
        watch(_workspace(args), args.file, interval=args.interval, progress=_say, jobs=args.jobs)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_pipeline_export(args) -> int:
    from .pipelines import load_pipeline
    from .pipelines.kfp import export_kfp

    pipeline = load_pipeline(args.file)
    path = export_kfp(pipeline, args.kfp, image=args.image, pipeline_file=args.pipeline_path)
    print(f"{pipeline.name}: Kubeflow Pipelines v2 IR YAML written to {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:
        if status_of(exc) is None and not isinstance(exc, OSError):
            raise  # a bug: the traceback is what a maintainer needs
        print(f"mlops-lab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
