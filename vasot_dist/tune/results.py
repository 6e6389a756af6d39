"""The end of a sweep: a table of trials sorted by the metric, and the best trial's config as a YAML that
``vasot-train --config`` accepts as is."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vasot_dist.config import RunConfig, save_config
from vasot_dist.tune.trial import trial_config


@dataclass(frozen=True)
class TrialRow:
    """One trial's outcome: its last reported ``value`` of the metric (None when it reported none)."""

    trial_id: str
    # completed | stopped (by the scheduler, before train.max_steps) | error | unfinished (interrupted sweep)
    status: str
    step: int | None
    value: float | None
    params: dict[str, Any]
    checkpoint: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class SweepResult:
    experiment_path: str
    rows: list[TrialRow]  # best first
    best: TrialRow | None
    best_config_path: Path | None
    table: str = field(repr=False, default="")


def rows_from_results(results, metric: str, max_steps: int, tune_status: dict[str, str]) -> list[TrialRow]:
    """``TrialRow``s from a Ray Tune ``ResultGrid`` (each result's last reported metrics); ``tune_status``:
    Tune's status of each trial id (TERMINATED, ERROR, RUNNING, PENDING, PAUSED)."""
    rows = []
    for r in results:
        m = r.metrics or {}
        trial_id = m.get("trial_id") or Path(r.path).name.removeprefix("trial_")
        step = m.get("step")
        value = m.get(metric)
        value = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
        if r.error is not None or tune_status.get(trial_id) == "ERROR":
            status = "error"
        elif tune_status.get(trial_id, "TERMINATED") != "TERMINATED":
            status = "unfinished"
        else:
            status = "completed" if step is not None and step >= max_steps else "stopped"
        err = None if r.error is None else (str(r.error).strip().splitlines() or [type(r.error).__name__])[-1]
        rows.append(TrialRow(trial_id, status, step, value, dict(r.config or {}), m.get("checkpoint_path"), err))
    return rows


def sort_rows(rows: list[TrialRow], mode: str) -> list[TrialRow]:
    """Best first by ``value`` (``mode`` max or min); trials without a value last, in their order."""
    scored = [r for r in rows if r.value is not None]
    scored.sort(key=lambda r: r.value, reverse=mode == "max")  # type: ignore[arg-type,return-value]
    return scored + [r for r in rows if r.value is None]


def pick_best(rows: list[TrialRow], mode: str) -> TrialRow | None:
    """The best trial that ended without failing (sorted as :func:`sort_rows`), or None."""
    ok = [r for r in sort_rows(rows, mode) if r.value is not None and r.status in ("completed", "stopped")]
    return ok[0] if ok else None


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_table(rows: list[TrialRow], metric: str, keys: list[str]) -> str:
    """A plain-text table: rank, trial, status, step, the metric, then one column per swept key."""
    header = ["#", "trial", "status", "step", metric, *keys]
    body = [[str(i + 1), r.trial_id, r.status, _fmt(r.step), _fmt(r.value), *(_fmt(r.params.get(k)) for k in keys)]
            for i, r in enumerate(rows)]
    widths = [max(len(row[c]) for row in [header, *body]) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rows_to_csv(rows: list[TrialRow], metric: str, keys: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["trial", "status", "step", metric, *keys, "checkpoint", "error"])
    for r in rows:
        w.writerow([r.trial_id, r.status, r.step, r.value, *(r.params.get(k) for k in keys), r.checkpoint, r.error])
    return buf.getvalue()


def write_best_config(base: RunConfig, best: TrialRow, path: Path) -> Path:
    """The best trial's full config (``base`` + its sampled values) with ``train.run_id`` cleared, so that
    ``vasot-train --config <path>`` starts a fresh run with it."""
    return save_config(trial_config(base, best.params, None), path)
