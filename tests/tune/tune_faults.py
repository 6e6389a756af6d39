"""Fault injection for the sweep tests, installed in every Ray worker of the tests' cluster
(``runtime_env={"worker_process_setup_hook": "tune_faults.install"}``); the library has no switch for it.

A trial fails once, on rank 0, right after its first report, when its run directory's ``train.output_dir``
holds a ``FAIL_ONCE`` folder; the marker ``FAIL_ONCE/<trial id>.failed`` (holding the step) lets the retry
run through.
"""

from __future__ import annotations

from pathlib import Path

FAIL_ONCE = "FAIL_ONCE"


def install() -> None:
    from vasot_dist.tune import trial

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
