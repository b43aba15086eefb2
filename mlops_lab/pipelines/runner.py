"""Running a pipeline: which steps are stale and why, the run cache, and the steps as runs.

A step's key is the sha256 of its fingerprint: its code cells, params, deps' contents and the keys
of the steps it runs after (a built-in step: its settings instead of cells and params).  Each step
that finishes is recorded on its run: the tag ``mlops_lab.step_key`` and, under
``mlops_lab.step_record``, the hash of a JSON blob with the fingerprint and the hashes of its outs.
A step is cached when a finished step with its key exists — the last one, or any earlier one (DVC's
run cache) — and its outs are intact; changed or deleted outs are restored from the artifact store
without running it.  Only a step that finished is recorded: a failed or killed one runs again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import difflib
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..artifacts import manifest_bytes, sha256_bytes
from ..errors import MlopsLabError
from ..store.file_state import cached_hashes
from . import notebooks
from .spec import Pipeline, PipelineError, Step

if TYPE_CHECKING:
    from ..workspace import Workspace

PIPELINE_TAG = "mlops_lab.pipeline"
STEP_TAG = "mlops_lab.step"
KEY_TAG = "mlops_lab.step_key"
RECORD_TAG = "mlops_lab.step_record"
RECORD_FORMAT = 1


@dataclass
class Record:
    """What a finished step left: its run, key, fingerprint, outs ({path: {hash, folder}}) and result."""

    run_id: str
    key: str
    fingerprint: dict
    outs: dict
    result: dict
    started: int
    ended: int | None


@dataclass
class StepState:
    name: str
    state: str  # cached | restore | stale | running | done | restored | failed | blocked
    reasons: list[str] = field(default_factory=list)
    key: str | None = None
    record: Record | None = field(default=None, repr=False)  # the finished step this one's outs come from
    run_id: str | None = None
    seconds: float | None = None
    error: str | None = None
    fingerprint: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {
            "step": self.name,
            "state": self.state,
            "reasons": self.reasons,
            "key": self.key,
            "run_id": self.run_id or (self.record.run_id if self.record else None),
            "seconds": self.seconds,
            "error": self.error,
        }


@dataclass
class PipelineResult:
    pipeline: str
    run_id: str | None  # the pipeline's run; None when nothing had to run
    steps: dict[str, StepState]

    @property
    def ok(self) -> bool:
        return not any(s.state in ("failed", "blocked") for s in self.steps.values())

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.steps.values() if s.state in ("done", "failed")]

    def to_dict(self) -> dict:
        return {
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "ok": self.ok,
            "steps": [s.to_dict() for s in self.steps.values()],
        }


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class PipelineRunner:
    """One pipeline over one workspace: ``status()`` says what would run and why, ``run()`` runs it."""

    def __init__(self, workspace: "Workspace", pipeline: Pipeline, progress=None):
        self.workspace = workspace
        self.pipeline = pipeline
        self.progress = progress or (lambda text: None)
        self.runs = workspace.store.runs
        self.file_state = workspace.store.file_state
        self.artifacts = workspace.artifacts
        self.experiment = pipeline.experiment or pipeline.name
        self.states: dict[str, StepState] = {}  # while it runs: each step's state, what builtin steps read
        self._pipeline_run = None

    # ---- what is stale, and why --------------------------------------------------------------

    def status(self, force: set[str] | None = None) -> dict[str, StepState]:
        """Each step's state as things are now: cached, restore (outs to restore), stale (with why)."""
        latest = self.latest_records()
        states: dict[str, StepState] = {}
        for name in self.pipeline.order():
            states[name] = self.assess(self.pipeline.steps[name], states, latest, force or set())
        for running in self.running_steps():
            if running["step"] in states:
                state = states[running["step"]]
                state.state, state.run_id, state.reasons = "running", running["run_id"], []
        return states

    def assess(self, step: Step, states: dict[str, StepState], latest: dict[str, Record], force: set[str]) -> StepState:
        parents = sorted(self.pipeline.upstream[step.name])
        waiting = [p for p in parents if states[p].state in ("stale", "failed", "blocked", "running")]
        if any(states[p].state in ("failed", "blocked") for p in parents):
            failed = [p for p in parents if states[p].state in ("failed", "blocked")]
            return StepState(step.name, "blocked", [f"not run: upstream step {', '.join(failed)} did not finish"])
        fingerprint = self.fingerprint(step, states)
        state = StepState(step.name, "stale", key=digest(fingerprint), fingerprint=fingerprint)
        last = latest.get(step.name)
        if step.name in force:
            state.reasons = ["forced"]
        elif waiting:  # its own changes first (a param, a cell), then what runs before it
            own = [r for r in explain(last, fingerprint) if not r.startswith("upstream step")] if last else []
            own = [r for r in own if r != "its inputs changed"]
            state.reasons = own + [f"upstream step{'s' if len(waiting) > 1 else ''} {', '.join(waiting)} will run"]
        else:
            state.record = last if last is not None and last.key == state.key else self.cached(state.key)
            if state.record is None:
                state.reasons = explain(last, fingerprint)
            else:
                damaged = self.damaged_outs(step, state.record)
                state.state = "restore" if damaged else "cached"
                state.reasons = [f"{out} {what}: restore from run {state.record.run_id[:8]}" for out, what in damaged]
        return state

    def fingerprint(self, step: Step, states: dict[str, StepState]) -> dict:
        upstream = {p: states[p].key for p in sorted(self.pipeline.upstream[step.name])}
        known_outs = {}  # the outs of cached upstream steps, as recorded: no need to read them again
        for parent in upstream:
            record = states[parent].record
            if record is not None:
                known_outs.update({out: entry["hash"] for out, entry in record.outs.items()})
        deps = {dep: known_outs.get(dep) or self.path_hash(self.pipeline.path(dep)) for dep in step.deps}
        fingerprint = {"format": RECORD_FORMAT, "kind": step.kind, "deps": deps, "upstream": upstream}
        if step.kind == "notebook":
            where = f"{self.pipeline.label}, step {step.name!r}"
            notebook = notebooks.read_notebook(self.pipeline.path(step.notebook), where)
            fingerprint.update(
                notebook=step.notebook, cells=notebooks.code_cells(notebook), params=step.params, outs=list(step.outs)
            )
        else:
            fingerprint["config"] = step.config
        return fingerprint

    def path_hash(self, path: Path) -> str | None:
        """sha256 of a file, or of a folder's manifest (the hash its dataset version gets); unchanged
        files are not read again (the file-state cache).  None when it does not exist."""
        if path.is_file():
            return cached_hashes(self.file_state, [path])[str(path.resolve())]
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            hashes = cached_hashes(self.file_state, files)
            return sha256_bytes(
                manifest_bytes({p.relative_to(path).as_posix(): hashes[str(p.resolve())] for p in files})
            )
        return None

    def damaged_outs(self, step: Step, record: Record) -> list[tuple[str, str]]:
        damaged = []
        for out in step.outs:
            entry = record.outs.get(out)
            if entry is None:
                continue
            current = self.path_hash(self.pipeline.path(out))
            if current is None:
                damaged.append((out, "is missing"))
            elif current != entry["hash"]:
                damaged.append((out, "was changed"))
        return damaged

    # ---- records ---------------------------------------------------------------------------------

    def latest_records(self) -> dict[str, Record]:
        """The last finished run of each step of this pipeline."""
        found = self._records(f"tags.`{PIPELINE_TAG}` = '{quoted(self.pipeline.name)}'", 1000)
        latest: dict[str, Record] = {}
        for step, record in found:
            latest.setdefault(step, record)
        return latest

    def cached(self, key: str) -> Record | None:
        """A finished step with this key, from any run of any pipeline (the run cache)."""
        found = self._records(f"tags.`{KEY_TAG}` = '{key}'", 1)
        return found[0][1] if found else None

    def _records(self, condition: str, limit: int) -> list[tuple[str, Record]]:
        rows, _, _, tags = self.runs.search_runs(
            None,
            f"{condition} and attributes.status = 'FINISHED' and tags.`{RECORD_TAG}` != ''",
            ["attributes.start_time DESC"],
            max_results=limit,
        )
        found = []
        for row in rows:
            run_tags = tags.get(row["id"], {})
            try:
                blob = json.loads(self.artifacts.get_bytes(run_tags[RECORD_TAG]))
            except (MlopsLabError, KeyError, ValueError):
                continue  # a record that cannot be read is no record: the step runs again
            found.append(
                (
                    run_tags.get(STEP_TAG, ""),
                    Record(
                        row["id"],
                        run_tags.get(KEY_TAG, ""),
                        blob["fingerprint"],
                        blob["outs"],
                        blob.get("result", {}),
                        row["start_time"],
                        row.get("end_time"),
                    ),
                )
            )
        return found

    def running_steps(self) -> list[dict]:
        rows, _, _, tags = self.runs.search_runs(
            None,
            f"tags.`{PIPELINE_TAG}` = '{quoted(self.pipeline.name)}' and attributes.status = 'RUNNING'",
            ["attributes.start_time DESC"],
            max_results=100,
        )
        return [{"step": tags[r["id"]][STEP_TAG], "run_id": r["id"]} for r in rows if STEP_TAG in tags.get(r["id"], {})]

    # ---- running ---------------------------------------------------------------------------------

    def run(self, *, steps: list[str] | None = None, force: bool = False, jobs: int | None = None) -> PipelineResult:
        """Bring the pipeline (or ``steps`` and what they need) up to date; independent steps run at
        once, up to ``jobs`` (default: the CPUs).  A failed step stops its descendants only."""
        work = self.run_async(steps=steps, force=force, jobs=jobs)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(work)
        # called from a running loop (a notebook's kernel has one): the pipeline gets a thread of its own
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, work).result()

    def stale(self, steps: list[str] | None = None) -> list[str]:
        """The steps a run (of ``steps`` and what they need) would execute or restore, in order;
        empty when all is up to date."""
        wanted = self._wanted(steps)
        return [name for name, state in self.status().items() if name in wanted and state.state != "cached"]

    def watched_files(self) -> list[Path]:
        """What a change to should re-run the pipeline: its file, notebooks and the deps no step writes."""
        made = {out for step in self.pipeline.steps.values() for out in step.outs}
        paths = [self.pipeline.file] if self.pipeline.file else []
        for step in self.pipeline.steps.values():
            if step.notebook:
                paths.append(self.pipeline.path(step.notebook))
            paths.extend(self.pipeline.path(dep) for dep in step.deps if dep not in made)
        return list(dict.fromkeys(paths))

    async def run_async(
        self, *, steps: list[str] | None = None, force: bool = False, jobs: int | None = None
    ) -> PipelineResult:
        wanted = self._wanted(steps)
        forced = (set(steps) if steps else set(wanted)) if force else set()
        latest = self.latest_records()
        states: dict[str, StepState] = {}
        self.states, self._pipeline_run = states, None  # a runner may run more than once
        limit = asyncio.Semaphore(jobs or os.cpu_count() or 1)
        pending = {name: asyncio.Event() for name in wanted}

        async def one(name: str) -> None:
            try:
                for parent in self.pipeline.upstream[name]:
                    await pending[parent].wait()
                step = self.pipeline.steps[name]
                state = self.assess(step, states, latest, forced)
                states[name] = state
                if state.state == "blocked":
                    self.progress(f"{name}: {state.reasons[0]}")
                elif state.state == "cached":
                    self.progress(f"{name}: cached (run {state.record.run_id[:8]})")
                elif state.state == "restore":
                    self.restore(step, state.record)
                    state.state = "restored"
                    self.progress(f"{name}: restored {', '.join(step.outs)} (run {state.record.run_id[:8]})")
                else:
                    async with limit:
                        await self.execute(step, state)
            finally:
                pending[name].set()

        ordered = [name for name in self.pipeline.order() if name in wanted]
        try:
            await asyncio.gather(*(one(name) for name in ordered))
        finally:
            result = PipelineResult(
                self.pipeline.name,
                self._pipeline_run.id if self._pipeline_run else None,
                {n: states[n] for n in ordered if n in states},
            )
            if self._pipeline_run is not None:
                self._finish_pipeline_run(result)
        return result

    def _wanted(self, steps: list[str] | None) -> set[str]:
        if not steps:
            return set(self.pipeline.steps)
        wanted = set()
        for name in steps:
            if name not in self.pipeline.steps:
                raise PipelineError(
                    f"{self.pipeline.label} has no step {name!r}; its steps: {', '.join(self.pipeline.steps)}"
                )
            wanted |= {name} | self.pipeline.ancestors(name)
        return wanted

    def restore(self, step: Step, record: Record) -> None:
        for out in step.outs:
            entry = record.outs.get(out)
            target = self.pipeline.path(out)
            if entry is None or self.path_hash(target) == entry["hash"]:
                continue
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            self.artifacts.export(entry["hash"], target, is_dir=entry["folder"])

    def step_record(self, name: str) -> Record | None:
        """The record a step of the running pipeline stands on (its own new one, or the cached one)."""
        state = self.states.get(name)
        return state.record if state is not None else None

    def step_run(self, name: str) -> str | None:
        record = self.step_record(name)
        return record.run_id if record is not None else None

    @property
    def tracker(self):
        return self.workspace.tracking

    def _start_pipeline_run(self):
        if self._pipeline_run is None:
            self._pipeline_run = self.tracker.start_run(
                self.pipeline.name,
                experiment=self.experiment,
                tags={PIPELINE_TAG: self.pipeline.name},
                notebook_path=str(self.pipeline.file) if self.pipeline.file else None,
                active=False,
            )
        return self._pipeline_run

    def _finish_pipeline_run(self, result: PipelineResult) -> None:
        run = self._pipeline_run
        self.tracker.log_text(json.dumps(result.to_dict(), indent=1), "pipeline/steps.json", run=run)
        self._end(run, "FINISHED" if result.ok else "FAILED", None if result.ok else _failure(result))

    async def execute(self, step: Step, state: StepState) -> None:
        """Run one step as a run, a child of the pipeline's run; record it only if it finished."""
        parent = self._start_pipeline_run()
        why = "; ".join(state.reasons) or "stale"
        self.progress(f"{step.name}: running ({why})")
        source = None
        if step.notebook:  # the notebook's code is the run's source: its page shows it, Compare diffs it
            where = f"{self.pipeline.label}, step {step.name!r}"
            source = notebooks.code_source(notebooks.read_notebook(self.pipeline.path(step.notebook), where))
        run = self.tracker.start_run(
            step.name,
            experiment=self.experiment,
            parent_run_id=parent.id,
            source=source,
            tags={PIPELINE_TAG: self.pipeline.name, STEP_TAG: step.name, KEY_TAG: state.key},
            notebook_path=str(self.pipeline.path(step.notebook)) if step.notebook else None,
            description=f"step {step.name} of pipeline {self.pipeline.name}: {why}",
            capture_git=step.kind == "notebook",
            active=False,
        )
        if step.params:
            self.tracker.log_params(step.params, run=run)
        for dep in step.deps:  # the data it reads, versioned: lineage follows it downstream
            path = self.pipeline.path(dep)
            if path.exists():
                self.tracker.log_dataset(path, path.name, direction="input", source=dep, run=run)
        # no flush here: the kernel's runs name this one as their parent, which is no foreign key, so its
        # row (and the environment it captures, a second the first time) is written while the kernel starts
        state.run_id, started = run.id, time.monotonic()
        try:
            if step.kind == "notebook":
                result = await self._notebook(step, run)
            else:
                from .builtin import run_builtin

                result = await asyncio.to_thread(run_builtin, self, step, run)
            # hashing and storing the outs, and waiting for the writer, off the loop that drives the
            # other steps' kernels
            outs = await asyncio.to_thread(self._record, step, run, state, result)
            state.state, state.seconds = "done", time.monotonic() - started
            state.record = Record(run.id, state.key, state.fingerprint, outs, result, 0, None)
            self.progress(f"{step.name}: done in {state.seconds:.1f} s (run {run.id[:8]})")
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._end(run, "KILLED", "the pipeline was interrupted")
            raise
        except Exception as error:  # the step failed: said on its run and the terminal, its descendants wait
            said = isinstance(error, (MlopsLabError, notebooks.CellFailed))  # messages written for a person
            message = str(error) if said else f"{type(error).__name__}: {error}"
            state.state, state.error, state.seconds = "failed", message, time.monotonic() - started
            await asyncio.to_thread(self._end, run, "FAILED", message[:2000])
            self.progress(f"{step.name}: FAILED: {message}")

    def _record(self, step: Step, run, state: StepState, result: dict) -> dict:
        """Version the outs, record the step under its key, end its run FINISHED; returns the outs."""
        outs = self._outs(step, run)
        record = {"format": RECORD_FORMAT, "fingerprint": state.fingerprint, "outs": outs, "result": result}
        self.tracker.set_tags(
            {RECORD_TAG: self.artifacts.put_bytes(json.dumps(record, sort_keys=True).encode())}, run=run
        )
        self.tracker.flush()  # the outs and the record are stored before the run says FINISHED
        self._end(run, "FINISHED")
        return outs

    def _end(self, run, status: str, error: str | None = None) -> None:
        self.tracker.end_run(status, run=run, error=error)
        self.tracker.flush()

    async def _notebook(self, step: Step, run) -> dict:
        path = self.pipeline.path(step.notebook)
        where = f"{self.pipeline.label}, step {step.name!r}"
        env = {
            **self.workspace.location.environment(),
            "MLOPS_LAB_PARENT_RUN": run.id,
            "MLOPS_LAB_EXPERIMENT": self.experiment,
            "MLOPS_LAB_USER": self.workspace.user,
            "JPY_SESSION_NAME": str(path),
        }
        try:
            executed = await notebooks.execute(step, path, self.pipeline.root, env, where)
        except notebooks.CellFailed as failed:
            self._keep_notebook(step, failed.notebook, run)
            raise
        self._keep_notebook(step, executed, run)
        return {}

    def _keep_notebook(self, step: Step, notebook, run) -> None:
        import nbformat

        self.tracker.log_text(nbformat.writes(notebook), f"notebooks/{Path(step.notebook).name}", run=run)

    def _outs(self, step: Step, run) -> dict:
        """Each out hashed, stored and logged as the run's output dataset; an out the step did not
        write fails it."""
        outs = {}
        for out in step.outs:
            path = self.pipeline.path(out)
            if not path.exists():
                raise PipelineError(
                    f"{self.pipeline.label}, step {step.name!r} finished without writing its out {out!r} ({path})"
                )
            self.tracker.log_dataset(path, path.name, direction="output", source=out, run=run)
            outs[out] = {"hash": self.path_hash(path), "folder": path.is_dir()}
        return outs


def quoted(text: str) -> str:
    return text.replace("'", "\\'")


def _failure(result: PipelineResult) -> str:
    return "; ".join(f"{s.name}: {s.error}" for s in result.steps.values() if s.state == "failed")[:2000]


def explain(last: Record | None, now: dict) -> list[str]:
    """Why a step must run: what differs from its last finished run."""
    if last is None:
        return ["never ran"]
    before = last.fingerprint
    reasons = []
    if before.get("kind") != now.get("kind") or before.get("notebook") != now.get("notebook"):
        reasons.append(f"now {now.get('notebook') or now['kind']} (was {before.get('notebook') or before.get('kind')})")
    old_cells, new_cells = before.get("cells", []), now.get("cells", [])
    matcher = difflib.SequenceMatcher(a=[h for _, h in old_cells], b=[h for _, h in new_cells], autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "replace":
            reasons.extend(f"cell {new_cells[i][0]} changed" for i in range(b1, b2))
        elif op == "insert":
            reasons.extend(f"cell {new_cells[i][0]} added" for i in range(b1, b2))
        elif op == "delete":
            reasons.extend(f"cell {old_cells[i][0]} removed" for i in range(a1, a2))
    old_params, new_params = before.get("params", {}), now.get("params", {})
    for key in sorted(set(old_params) | set(new_params)):
        if key not in new_params:
            reasons.append(f"param {key} no longer set (was {old_params[key]!r})")
        elif key not in old_params:
            reasons.append(f"param {key} = {new_params[key]!r} added")
        elif old_params[key] != new_params[key] or type(old_params[key]) is not type(new_params[key]):
            reasons.append(f"param {key} {old_params[key]!r} → {new_params[key]!r}")
    old_deps, new_deps = before.get("deps", {}), now.get("deps", {})
    for dep in new_deps:
        if dep not in old_deps:
            reasons.append(f"dep {dep} added")
        elif new_deps[dep] is None:
            reasons.append(f"{dep} is missing")
        elif old_deps[dep] != new_deps[dep]:
            reasons.append(f"{dep} changed")
    reasons.extend(f"dep {dep} removed" for dep in old_deps if dep not in new_deps)
    if before.get("outs") != now.get("outs"):
        reasons.append("its outs changed")
    old_config, new_config = before.get("config") or {}, now.get("config") or {}
    if old_config != new_config:
        changed = sorted(k for k in old_config.keys() | new_config.keys() if old_config.get(k) != new_config.get(k))
        reasons.append(f"settings changed: {', '.join(changed)}")
    for parent, key in now.get("upstream", {}).items():
        if before.get("upstream", {}).get(parent) != key:
            reasons.append(f"upstream step {parent} changed")
    return reasons or ["its inputs changed"]


def snapshot(paths: list[Path]) -> dict:
    """(mtime, size) of each path, a folder's files included: what ``watch`` compares."""
    seen = {}
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            try:
                info = file.stat()
                seen[str(file)] = (info.st_mtime_ns, info.st_size)
            except OSError:
                seen[str(file)] = None
    return seen


def watch(
    workspace: "Workspace", file, *, interval: float = 2.0, progress=print, rounds: int | None = None, **options
) -> None:
    """Run the pipeline, then again each time its file, a notebook or a dep changes (until interrupted,
    or ``rounds`` runs)."""
    from .spec import load_pipeline

    done = 0
    while rounds is None or done < rounds:
        try:
            runner = PipelineRunner(workspace, load_pipeline(file), progress)
            watched = runner.watched_files()
            result = runner.run(**options)
            progress(
                f"{'up to date' if not result.ran else 'ran ' + ', '.join(result.ran)}; watching {len(watched)} files"
            )
        except PipelineError as error:  # a pipeline.yaml being edited: say why, wait for the next change
            progress(f"error: {error}")
            watched = [Path(file)]
        done += 1
        if rounds is not None and done >= rounds:
            return
        before = snapshot(watched)
        while snapshot(watched) == before:
            time.sleep(interval)
