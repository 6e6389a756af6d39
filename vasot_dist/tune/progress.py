"""What a sweep prints while it runs: one line when a trial starts (its sampled values) and one when it ends
(trials done of the total, the best so far, time elapsed and an estimate of the time left), in place of Ray
Tune's status tables and result boxes (``verbose=0``).

The estimate assumes the remaining trials take as long as the finished ones did on average, at the current
concurrency; early stops by ASHA make it pessimistic.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ray.tune import Callback

from vasot_dist.runtime.ranklog import get_logger
from vasot_dist.tune.space import SweepSpec

log = get_logger(__name__)
_DONE = ("TERMINATED", "ERROR")


def sweep_size(spec: SweepSpec) -> int:
    """The number of trials a sweep runs: ``num_samples`` times the size of the grid (grid dimensions, and
    choice dimensions under ``search: grid``)."""
    size = spec.num_samples
    for d in spec.space:
        if d.dist == "grid" or (d.dist == "choice" and spec.search == "grid"):
            size *= len(d.args["values"])
    return size


def format_duration(seconds: float) -> str:
    """``83`` -> ``1:23``, ``3723`` -> ``1:02:03``."""
    s = int(round(seconds))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class SweepProgress(Callback):
    """Tune callback (driver process) that logs the sweep's progress; ``spec``: the sweep, ``max_steps``: the
    trials' ``train.max_steps`` (a trial that ended before it was stopped by the scheduler)."""

    def __init__(self, spec: SweepSpec, max_steps: int) -> None:
        self.spec, self.max_steps = spec, max_steps
        self.total = sweep_size(spec)
        self.start = time.time()  # wall clock: Tune pickles its callbacks, and --resume restores them
        self.finished_here = 0  # trials that ended in this session (a resumed sweep has others)

    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        values = " ".join(f"{k}={_fmt(v)}" for k, v in (trial.config or {}).items())
        log.info("trial %s started: %s", trial.trial_id, values)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._ended(trials, trial, "error" if trial.status == "ERROR" else None)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._ended(trials, trial, "error")

    def _ended(self, trials: list, trial, outcome: str | None) -> None:
        self.finished_here += 1
        result = trial.last_result or {}
        step, value = result.get("step"), result.get(self.spec.metric)
        if outcome is None:
            outcome = ("completed" if step is not None and step >= self.max_steps
                       else f"stopped by the scheduler (last report at step {step})")
        own = f"{self.spec.metric} {_fmt(value)}" if isinstance(value, (int, float)) else "no metric"
        log.info("trial %s %s: %s. %s", trial.trial_id, outcome, own,
                 self.summary(trials, ended=trial.trial_id, failed=outcome == "error"))

    def summary(self, trials: list, ended: str | None = None, failed: bool = False) -> str:
        """``sweep NAME: 2/4 trials done (1 failed), best METRIC 61.4 (trial ID), 1:20 elapsed, ETA ~1:20``;
        ``ended``: the trial whose end is being reported (Tune updates its status after the callbacks)."""
        done = [t for t in trials if t.status in _DONE or t.trial_id == ended]
        failed = sum(t.status == "ERROR" or (failed and t.trial_id == ended) for t in done)
        best = self.best(trials)
        elapsed = time.time() - self.start
        remaining = max(0, self.total - len(done))
        eta = "-" if remaining == 0 else (
            f"~{format_duration(elapsed / self.finished_here * remaining)}" if self.finished_here else "unknown")
        return (f"sweep {self.spec.name}: {len(done)}/{self.total} trials done"
                + (f" ({failed} failed)" if failed else "")
                + (f", best {self.spec.metric} {_fmt(best[1])} (trial {best[0]})" if best else "")
                + f", {format_duration(elapsed)} elapsed, ETA {eta}")

    def best(self, trials: list) -> tuple[str, float] | None:
        """(trial id, value) of the best last-reported metric over the trials, or None."""
        scored = [(t.trial_id, float(v)) for t in trials
                  if isinstance(v := (t.last_result or {}).get(self.spec.metric), (int, float)) and math.isfinite(v)]
        if not scored:
            return None
        return (max if self.spec.mode == "max" else min)(scored, key=lambda x: x[1])
