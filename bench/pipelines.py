"""A 6-step notebook pipeline: mlops_lab against `dvc repro` and papermill, side by side.

    .venv/bin/python bench/pipelines.py [--repeats 5]

The same six notebooks (s1 → s2 → s3, s1 → s4, s3 + s4 → s5 → s6; each reads its inputs and
writes one file) as a `pipeline.yaml` and as a `dvc.yaml` whose stages run papermill.
  1. the no-op re-run, nothing changed (median of --repeats): `mlops-lab pipeline run` as a
     command and `ml.pipeline(...).run()` in a process that has it loaded, against `dvc repro`;
     goal (#15): ours <= 0.5 s.
  2. the first run, every step executed (one step at a time, as papermill and `dvc repro` run
     them): the time per step of ours against papermill executing the same notebooks in-process
     (the overhead of a step: its run, hashing, recording, the executed notebook kept), and of
     `dvc repro` (papermill as a command per stage).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

HERE = Path(sys.executable).parent
STEPS = {  # step: (inputs, output)
    "s1": (["data/in.txt"], "data/s1.txt"),
    "s2": (["data/s1.txt"], "data/s2.txt"),
    "s3": (["data/s2.txt"], "data/s3.txt"),
    "s4": (["data/s1.txt"], "data/s4.txt"),
    "s5": (["data/s3.txt", "data/s4.txt"], "data/s5.txt"),
    "s6": (["data/s5.txt"], "data/s6.txt"),
}


def make_project(folder: Path) -> None:
    (folder / "data").mkdir(parents=True)
    (folder / "data/in.txt").write_text("\n".join(str(i) for i in range(10_000)))
    for step, (inputs, output) in STEPS.items():
        book = nbformat.v4.new_notebook()
        book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        book.cells = [
            nbformat.v4.new_code_cell("scale = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(
                f"numbers = [int(x) for path in {inputs!r} for x in open(path).read().split()]\n"
                f"open({output!r}, 'w').write('\\n'.join(str(n * scale % 100_003) for n in numbers))"
            ),
        ]
        nbformat.write(book, folder / f"{step}.ipynb")
    lines = ["name: bench", "steps:"]
    for step, (inputs, output) in STEPS.items():
        lines.append(f"  {step}: {{notebook: {step}.ipynb, params: {{scale: 3}}, deps: {inputs}, outs: [{output}]}}")
    (folder / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    stages = ["stages:"]
    for step, (inputs, output) in STEPS.items():
        stages += [
            f"  {step}:",
            f"    cmd: {HERE / 'papermill'} --no-progress-bar --log-level WARNING {step}.ipynb executed/{step}.ipynb -p scale 3",
            f"    deps: [{step}.ipynb, {', '.join(inputs)}]",
            f"    outs: [{output}]",
        ]
    (folder / "dvc.yaml").write_text("\n".join(stages) + "\n")
    (folder / "executed").mkdir()


def timed(command: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pipelines-"))
    ours, dvc = work / "ours", work / "dvc"
    make_project(ours)
    make_project(dvc)
    env = {
        **os.environ,
        "MLOPS_LAB_DB_URL": f"sqlite:///{work / 'store.db'}",
        "MLOPS_LAB_ARTIFACTS": str(work / "artifacts"),
    }
    env.pop("MLOPS_LAB_TRACKING_URI", None)
    mlops_lab = [str(HERE / "mlops-lab"), "pipeline", "run", "--jobs", "1"]
    dvc_command = [str(HERE / "dvc")]
    try:
        timed([str(HERE / "mlops-lab"), "experiments", "list"], ours, env)  # a store that exists, as a user's does
        timed([*dvc_command, "init", "--no-scm", "-q"], dvc, env)
        timed([*dvc_command, "config", "core.analytics", "false"], dvc, env)

        # 2. the first run, every step executed
        papermill_dir = work / "papermill"
        make_project(papermill_dir)
        import papermill

        started = time.perf_counter()
        for step in STEPS:
            papermill.execute_notebook(
                str(papermill_dir / f"{step}.ipynb"), str(papermill_dir / "executed" / f"{step}.ipynb"),
                parameters={"scale": 3}, kernel_name="python3", cwd=str(papermill_dir), progress_bar=False,
            )  # fmt: skip
        papermill_first = time.perf_counter() - started
        ours_first = timed(mlops_lab, ours, env)
        dvc_first = timed([*dvc_command, "repro", "-q"], dvc, env)
        for step, (_, output) in STEPS.items():
            assert (ours / output).read_text() == (papermill_dir / output).read_text() == (dvc / output).read_text(), (
                step
            )

        # 1. the no-op re-run
        ours_noop = [timed(mlops_lab, ours, env) for _ in range(args.repeats)]
        dvc_noop = [timed([*dvc_command, "repro", "-q"], dvc, env) for _ in range(args.repeats)]
        os.environ.update({k: env[k] for k in ("MLOPS_LAB_DB_URL", "MLOPS_LAB_ARTIFACTS")})
        import mlops_lab as ml

        pipeline = ml.pipeline(ours / "pipeline.yaml")
        pipeline.progress = lambda text: None
        in_process = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            result = pipeline.run()
            in_process.append(time.perf_counter() - started)
            assert result.ran == [], result.ran
    finally:
        shutil.rmtree(work, ignore_errors=True)

    steps = len(STEPS)
    noop, dvc_median, inside = statistics.median(ours_noop), statistics.median(dvc_noop), statistics.median(in_process)
    print(f"pipeline of {steps} notebook steps (s1 → s2 → s3, s1 → s4, s3 + s4 → s5 → s6), one step at a time")
    print(f"{'':58}{'mlops_lab':>11}{'anchor':>11}  ratio")
    print(f"{'no-op re-run: mlops-lab pipeline run vs dvc repro':58}{noop:>10.3f}s{dvc_median:>10.3f}s  "
          f"dvc/ours {dvc_median / noop:.2f}x  (goal <= 0.5 s: {'met' if noop <= 0.5 else 'NOT met'})")  # fmt: skip
    print(f"{'  the same from Python (ml.pipeline(...).run())':58}{inside:>10.3f}s")
    print(f"{'first run, every step: mlops_lab vs papermill in-process':58}{ours_first:>10.2f}s{papermill_first:>10.2f}s  "
          f"{(ours_first - papermill_first) / steps * 1000:+.0f} ms a step")  # fmt: skip
    print(f"{'  dvc repro (papermill as a command per stage)':58}{'':>11}{dvc_first:>10.2f}s  "
          f"{(dvc_first - papermill_first) / steps * 1000:+.0f} ms a step")  # fmt: skip


if __name__ == "__main__":
    main()
