"""A pipeline compiled for Kubeflow Pipelines (and Vertex AI Pipelines) with the ``kfp`` SDK.

Each step becomes a container task that runs ``mlops-lab pipeline run FILE --step STEP`` against
the team store given as the pipeline's ``tracking_uri`` parameter (its token: MLOPS_LAB_TOKEN in
the container, from a Kubernetes secret).  The tasks keep the DAG; caching stays with mlops_lab
(KFP's own is turned off): a step whose key is recorded restores its outs from the store instead
of running, which is also how a task gets the outs of the tasks before it.

    mlops-lab pipeline export --kfp churn.yaml --image registry.example/churn:1.4
"""

# no `from __future__ import annotations` here: kfp reads the pipeline function's annotations as types

from pathlib import Path

from .spec import Pipeline, PipelineError


def export_kfp(pipeline: Pipeline, out: str | Path, *, image: str, pipeline_file: str | None = None) -> Path:
    """Write the KFP v2 IR YAML of ``pipeline`` to ``out``."""
    try:
        from kfp import compiler, components, dsl
    except ImportError:
        raise PipelineError("exporting to Kubeflow Pipelines needs the kfp SDK: pip install 'mlops_lab[kfp]'") from None
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        raise PipelineError(f"--image must name a container image, got {image!r}")
    file = pipeline_file or (str(pipeline.file) if pipeline.file else "pipeline.yaml")
    made = {}
    for name in pipeline.order():
        spec = {
            "name": name,
            "inputs": [{"name": "tracking_uri", "type": "String"}],
            "implementation": {
                "container": {
                    "image": image,
                    "command": [
                        "mlops-lab",
                        "--db-url",
                        {"inputValue": "tracking_uri"},
                        "pipeline",
                        "run",
                        file,
                        "--step",
                        name,
                    ],
                }
            },
        }
        made[name] = components.load_component_from_text(_yaml(spec))

    @dsl.pipeline(name=pipeline.name, description=f"mlops_lab pipeline {pipeline.name} ({len(pipeline.steps)} steps)")
    def flow(tracking_uri: str):
        tasks = {}
        for name in pipeline.order():
            task = made[name](tracking_uri=tracking_uri)
            task.set_display_name(name)
            task.set_caching_options(False)  # mlops_lab's run cache decides, by content
            for parent in sorted(pipeline.upstream[name]):
                task.after(tasks[parent])
            tasks[name] = task

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(flow, str(out))
    return out


def _yaml(value) -> str:
    import yaml

    return yaml.safe_dump(value, sort_keys=False)
