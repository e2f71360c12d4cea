"""A job's ``metrics.jsonl``: the fields a line may carry (the worker's callback writes them) and the reader the
Train tab, the CLI and the learning curves draw the loss from."""

from __future__ import annotations

import json
from pathlib import Path

from studio.training.job_folder import JobFolder

# Keys a metrics.jsonl line may carry; step and time are always present.
METRIC_FIELDS = ("step", "total_steps", "epoch", "loss", "eval_loss", "lr", "grad_norm", "samples_per_s",
                 "gpu_mem_gb", "eta_s", "time")


def read_metrics(job_dir: str | Path) -> list[dict]:
    """Every complete line of metrics.jsonl (a line being written right now is skipped), as one run.

    A job resumed from a checkpoint logs again from the step after it; the steps a dead run logged past that
    checkpoint were lost with it, so a line whose step goes back drops the earlier lines from that step on
    (otherwise the loss curve doubles back on itself).
    """
    path = JobFolder(job_dir).metrics
    if not path.exists():
        return []
    rows: list[dict] = []
    latest = float("-inf")
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        step = row.get("step") if isinstance(row, dict) else None
        if not isinstance(step, (int, float)):
            continue
        if step < latest:
            rows = [r for r in rows if r["step"] < step]
        rows.append(row)
        latest = step
    return rows
