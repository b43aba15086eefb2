"""One onnxruntime session per model version, set up for serving.

CUDA first when this onnxruntime has it, CPU otherwise — and the provider *actually* in use is
what we report, because onnxruntime falls back to CPU silently when CUDA cannot start.  On the GPU
inputs and outputs go through IO binding.  Thread settings are deliberate: one session runs one
batch at a time (the batcher's thread), so inter-op parallelism is off; intra-op threads default to
half the cores, leaving the rest to the HTTP front; spinning is off so idle worker threads do not
burn the cores the front needs.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ..errors import UnavailableError
from .protocol import DTYPES, TensorSpec

log = logging.getLogger("mlops_lab.serving")

ORT_DATATYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}
GPU = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class ModelLoadError(UnavailableError):
    """A model that cannot be served; the message says why."""


def _spec(arg) -> TensorSpec:
    datatype = ORT_DATATYPES.get(arg.type)
    if datatype is None:
        raise ModelLoadError(f"{arg.name}: onnxruntime type {arg.type} cannot be served over the v2 protocol")
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, datatype, shape)


def default_threads() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


class ModelRuntime:
    """An onnxruntime session for one version, with its signature and batching limit."""

    def __init__(
        self,
        name: str,
        version: str,
        onnx_bytes: bytes,
        *,
        providers: list[str] | None = None,
        intra_op_threads: int | None = None,
        max_batch_size: int = 64,
        input_columns: list[str] | None = None,
        warm_up: bool = True,
    ):
        import onnxruntime as ort

        self.name, self.version = name, str(version)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        from ..registry import onnx_providers

        wanted = onnx_providers(providers)
        try:
            self.session = ort.InferenceSession(onnx_bytes, options, providers=wanted)
        except Exception as exc:
            raise ModelLoadError(f"onnxruntime cannot load {name}/{version}: {exc}") from exc
        self.provider = self.session.get_providers()[0]
        if wanted[0] == GPU and self.provider != GPU:
            log.warning("%s/%s: CUDA was asked for but onnxruntime runs it on %s", name, version, self.provider)
        self.inputs = [_spec(a) for a in self.session.get_inputs()]
        self.outputs = [_spec(a) for a in self.session.get_outputs()]
        self.output_names = [o.name for o in self.outputs]
        self.input_columns = input_columns
        # Batching joins requests along the first axis: every input must let it vary.
        batchable = all(s.shape and s.shape[0] == -1 for s in self.inputs)
        self.max_batch_size = max_batch_size if batchable else 0
        self.io_binding = self.provider == GPU
        if warm_up:
            self.warm_up()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.io_binding:
            binding = self.session.io_binding()
            for name, array in feeds.items():
                binding.bind_cpu_input(name, np.ascontiguousarray(array))
            for name in self.output_names:
                binding.bind_output(name, "cuda")
            self.session.run_with_iobinding(binding)
            return dict(zip(self.output_names, binding.copy_outputs_to_cpu()))
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))

    def example(self, rows: int = 1) -> dict[str, np.ndarray]:
        """Zeros of the right types and shapes (free dimensions: ``rows`` first, 1 elsewhere)."""
        feeds = {}
        for spec in self.inputs:
            shape = [rows if i == 0 and d == -1 else (1 if d == -1 else d) for i, d in enumerate(spec.shape)]
            if spec.datatype == "BYTES":
                feeds[spec.name] = np.full(shape, "", dtype=object)
            else:
                feeds[spec.name] = np.zeros(shape, dtype=DTYPES[spec.datatype])
        return feeds

    def warm_up(self) -> None:
        """First runs allocate memory and pick kernels: do that before the first client waits."""
        for rows in sorted({1, max(1, self.max_batch_size)}):
            self.run(self.example(rows))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "provider": self.provider,
            "providers": self.session.get_providers(),
            "max_batch_size": self.max_batch_size,
            "inputs": [s.as_dict() for s in self.inputs],
            "outputs": [s.as_dict() for s in self.outputs],
        }
