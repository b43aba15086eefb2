"""Notebook pipelines: steps that run again only when their code, params or data change.

    mlops-lab pipeline run                     # pipeline.yaml here: run what is stale
    mlops-lab pipeline status                  # what would run, and why
    p = ml.pipeline("demo_notebooks/pipeline") # the same from Python
    p.status(); p.run(force=True)

``spec`` reads and checks a pipeline, ``runner`` decides what is stale and runs steps as runs
(``notebooks``: nbclient, papermill's parameters; ``builtin``: register, gate, promote), ``kfp``
compiles it for Kubeflow Pipelines.
"""

from .spec import Pipeline, PipelineError, Step, build_pipeline, load_pipeline

__all__ = ["Pipeline", "PipelineError", "Step", "build_pipeline", "load_pipeline"]
