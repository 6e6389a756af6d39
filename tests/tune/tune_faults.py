"""Fault injection for the sweep tests, installed in every Ray worker of the Ray instance the fault test starts
(``runtime_env={"worker_process_setup_hook": "tune_faults.install"}``); the library has no switch for it.

A trial fails once, on rank 0, right after its first report, when its run directory's ``train.output_dir``
holds a ``FAIL_ONCE`` folder; the marker ``FAIL_ONCE/<trial id>.failed`` (holding the step) lets the retry
run through.

The hook runs in every worker process Ray starts (Tune's and Train's controller actors too), so it patches
``vasot_dist.tune.trial`` when that module is imported, not before: importing it (and torch) in each of them
would cost a trial several seconds of CPU per process on the 2-core machines.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

FAIL_ONCE = "FAIL_ONCE"
TRIAL_MODULE = "vasot_dist.tune.trial"


def _patch(trial) -> None:
    report = trial.RayReporter.__call__

    def report_then_fail_once(self, step, metrics, checkpoint_path):
        report(self, step, metrics, checkpoint_path)
        if self.rank != 0 or checkpoint_path is None:
            return
        # <train.output_dir>/<experiment>/<trial id>/checkpoints/step_XXXXXXXX.pt
        control = Path(checkpoint_path).parents[3] / FAIL_ONCE
        marker = control / f"{self.trial_id}.failed"
        if control.is_dir() and not marker.exists():
            marker.write_text(f"{step}\n")
            raise RuntimeError(f"injected failure of trial {self.trial_id} after step {step}")

    trial.RayReporter.__call__ = report_then_fail_once


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; when the trial module is about to load, wraps its loader to patch it after."""

    def find_spec(self, name, path, target=None):
        if name != TRIAL_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_then_patch(module):
            load(module)
            _patch(module)

        spec.loader.exec_module = exec_then_patch
        return spec


def install() -> None:
    if TRIAL_MODULE in sys.modules:
        _patch(sys.modules[TRIAL_MODULE])
    else:
        sys.meta_path.insert(0, _PatchOnImport())
