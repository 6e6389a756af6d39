"""Ray Tune sweeps whose trials are Ray Train distributed runs: ``run_sweep`` (``launchers/tune.py``)."""

from .space import SweepError, SweepSpec, load_sweep, parse_sweep

__all__ = ["SweepError", "SweepSpec", "load_sweep", "parse_sweep", "run_sweep"]


def __getattr__(name: str):
    if name == "run_sweep":  # imports Ray; keep ``import vasot_dist.tune`` light
        from .sweep import run_sweep

        return run_sweep
    raise AttributeError(name)
