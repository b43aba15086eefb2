"""Per-version statistics: Triton's names in Prometheus text, Triton's statistics extension in JSON.

Request-level counts are updated on the event loop when a response is sent; batch-level counts on
the batcher's thread after each execution.  The two never touch the same field, so no lock.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict

# Latency buckets for percentiles: 25 µs to ~60 s, 25 % apart (a percentile is off by ≤ 25 %).
BUCKETS_US = [25 * 1.25**i for i in range(67)]
PROMETHEUS_BUCKETS_US = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
]


class VersionStats:
    def __init__(self, model: str, version: str):
        self.model, self.version = model, version
        self.success = 0
        self.success_ns = 0
        self.failures: dict[str, int] = defaultdict(int)  # reason -> count
        self.fail_ns = 0
        self.latency = [0] * (len(BUCKETS_US) + 1)
        self.last_inference_ms = 0
        # batcher thread
        self.inference_count = 0
        self.execution_count = 0
        self.queue_count = 0
        self.queue_ns = 0
        self.input_ns = 0
        self.infer_ns = 0
        self.output_ns = 0
        self.batches: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # size -> [count, ns]
        self.retried_batches = 0  # joined batches the model failed on, rerun one request at a time

    def request_done(self, duration_ns: int, reason: str | None) -> None:
        if reason is None:
            self.success += 1
            self.success_ns += duration_ns
        else:
            self.failures[reason] += 1
            self.fail_ns += duration_ns
        self.latency[bisect.bisect_left(BUCKETS_US, duration_ns / 1000)] += 1
        self.last_inference_ms = int(time.time() * 1000)

    def batch_done(self, jobs: int, rows: int, queue_ns: int, input_ns: int, infer_ns: int, output_ns: int) -> None:
        self.inference_count += rows
        self.execution_count += 1
        self.queue_count += jobs
        self.queue_ns += queue_ns
        self.input_ns += input_ns
        self.infer_ns += infer_ns
        self.output_ns += output_ns
        entry = self.batches[rows]
        entry[0] += 1
        entry[1] += infer_ns

    def percentile_us(self, q: float) -> float | None:
        total = sum(self.latency)
        if not total:
            return None
        rank, seen = q * total, 0
        for i, count in enumerate(self.latency):
            seen += count
            if seen >= rank:
                return BUCKETS_US[min(i, len(BUCKETS_US) - 1)]
        return BUCKETS_US[-1]

    def as_triton(self) -> dict:
        """One entry of ``model_stats``, as Triton's statistics extension gives it."""
        n_fail = sum(self.failures.values())
        mean_batch = self.inference_count / self.execution_count if self.execution_count else None
        return {
            "name": self.model,
            "version": self.version,
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": {"count": self.success, "ns": self.success_ns},
                "fail": {"count": n_fail, "ns": self.fail_ns},
                "queue": {"count": self.queue_count, "ns": self.queue_ns},
                "compute_input": {"count": self.execution_count, "ns": self.input_ns},
                "compute_infer": {"count": self.execution_count, "ns": self.infer_ns},
                "compute_output": {"count": self.execution_count, "ns": self.output_ns},
            },
            "batch_stats": [
                {"batch_size": size, "compute_infer": {"count": c, "ns": ns}}
                for size, (c, ns) in sorted(self.batches.items())
            ],
            # ours, for people rather than dashboards
            "failures": dict(self.failures),
            "mean_batch_size": mean_batch,
            "retried_batches": self.retried_batches,
            "latency_us": {
                "p50": self.percentile_us(0.5),
                "p90": self.percentile_us(0.9),
                "p99": self.percentile_us(0.99),
            },
        }


def label(value: str) -> str:
    """A Prometheus label value: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(all_stats: list[VersionStats], pending: dict[tuple[str, str], int], extra: list[str]) -> str:
    counters = [
        ("nv_inference_request_success", "Number of successful inference requests", lambda s: s.success),
        ("nv_inference_count", "Number of inferences performed (rows)", lambda s: s.inference_count),
        ("nv_inference_exec_count", "Number of model executions (batches)", lambda s: s.execution_count),
        (
            "nv_inference_request_duration_us",
            "Cumulative request duration",
            lambda s: (s.success_ns + s.fail_ns) // 1000,
        ),
        ("nv_inference_queue_duration_us", "Cumulative time requests wait in the queue", lambda s: s.queue_ns // 1000),
        ("nv_inference_compute_input_duration_us", "Cumulative time joining inputs", lambda s: s.input_ns // 1000),
        ("nv_inference_compute_infer_duration_us", "Cumulative model execution time", lambda s: s.infer_ns // 1000),
        ("nv_inference_compute_output_duration_us", "Cumulative time splitting outputs", lambda s: s.output_ns // 1000),
    ]
    lines = []
    for name, help_text, value in counters:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        lines += [f'{name}{{model="{label(s.model)}",version="{label(s.version)}"}} {value(s)}' for s in all_stats]
    lines += [
        "# HELP nv_inference_request_failure Number of failed inference requests",
        "# TYPE nv_inference_request_failure counter",
    ]
    for s in all_stats:
        for reason, count in sorted(s.failures.items()):
            lines.append(
                f'nv_inference_request_failure{{model="{label(s.model)}",version="{label(s.version)}",'
                f'reason="{reason}"}} {count}'
            )
    lines += [
        "# HELP nv_inference_pending_request_count Requests waiting in the queue",
        "# TYPE nv_inference_pending_request_count gauge",
    ]
    lines += [
        f'nv_inference_pending_request_count{{model="{label(m)}",version="{label(v)}"}} {n}'
        for (m, v), n in pending.items()
    ]
    lines += [
        "# HELP mlops_lab_request_latency_us Request latency, arrival to response",
        "# TYPE mlops_lab_request_latency_us histogram",
    ]
    for s in all_stats:
        labels = f'model="{label(s.model)}",version="{label(s.version)}"'
        for bound in PROMETHEUS_BUCKETS_US:
            upto = bisect.bisect_right(BUCKETS_US, bound)
            lines.append(f'mlops_lab_request_latency_us_bucket{{{labels},le="{bound}"}} {sum(s.latency[:upto])}')
        total = sum(s.latency)
        lines.append(f'mlops_lab_request_latency_us_bucket{{{labels},le="+Inf"}} {total}')
        lines.append(f"mlops_lab_request_latency_us_sum{{{labels}}} {(s.success_ns + s.fail_ns) // 1000}")
        lines.append(f"mlops_lab_request_latency_us_count{{{labels}}} {total}")
    return "\n".join(lines + extra) + "\n"
