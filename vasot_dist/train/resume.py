"""A run directory belongs to one run: starting it, continuing it, or replacing it.

:func:`open_run_dir` decides on rank 0, before anything is written, and every rank gets its answer (or its
error):

- ``resume="none"``: a directory that already holds checkpoints is refused, unless ``overwrite`` (which deletes
  the whole run directory first). Otherwise a rerun would write its checkpoints next to the old run's, pruning
  would keep the old run's higher steps, and ``--resume auto`` would later continue the wrong run.
- ``resume="auto"``: the newest readable checkpoint (an unreadable one is skipped with a warning); none at all
  starts from step 0; checkpoints that are all unreadable are an error naming them, never a silent restart.
- ``resume=<path>``: that checkpoint; later checkpoints in the run directory are refused (two runs would mix).

When a run continues, its config is compared with the one it was saved with (``config.yaml`` of the
checkpoint's run directory): a change of a key that shapes the weights (:data:`SHAPE_KEYS`) is refused, any other
change is listed key by key in a warning and the earlier file is kept as ``config.step_XXXXXXXX.yaml``. Rows of
``metrics.jsonl`` past the starting step are dropped: those steps are trained again and logged again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vasot_dist.config import ConfigError, RunConfig, config_to_dict
from vasot_dist.config.dotted import flatten
from vasot_dist.runtime.distributed import DistContext, broadcast_object
from vasot_dist.runtime.files import write_text_atomic
from vasot_dist.runtime.ranklog import get_logger
from vasot_dist.train import checkpoint as ckpt
from vasot_dist.train.rundir import RunDir

log = get_logger(__name__)
T = TypeVar("T")

# Keys whose change gives the model other parameters (names or shapes): a checkpoint cannot load into it.
SHAPE_KEYS = ("data.modality", "method.name", "model.encoder", "model.embed_dim", "model.head_dim",
              "model.mlp_layers", "model.num_actions")
_NO_RESUME = ("none", "", None)


class RunDirError(ConfigError):
    """The run directory cannot be used as asked (an earlier run's checkpoints, unreadable checkpoints, a
    resumed config that changes the model's shape); raised before anything is written."""


def open_run_dir(cfg: RunConfig, run_dir: RunDir, resume: str, overwrite: bool, ctx: DistContext) -> Path | None:
    """Claim ``run_dir`` for this run on rank 0 and write its ``config.yaml``, ``versions.json``; returns the
    checkpoint to resume from (None: start at step 0) on every rank.

    Raises:
        RunDirError: on every rank, for the cases of the module docstring.
    """
    return _on_main(ctx, lambda: _open(cfg, run_dir, resume, overwrite))


def _on_main(ctx: DistContext, fn: Callable[[], T]) -> T:
    """``fn()`` on rank 0; its result, or its exception, on every rank (no rank is left waiting)."""
    outcome: tuple[bool, Any] | None = None
    if ctx.is_main:
        try:
            outcome = (True, fn())
        except Exception as e:  # re-raised below, on every rank
            outcome = (False, e)
    ok, value = broadcast_object(ctx, outcome)
    if not ok:
        raise value
    return value


def _open(cfg: RunConfig, run_dir: RunDir, resume: str, overwrite: bool) -> Path | None:
    path = choose_checkpoint(run_dir, resume, overwrite)
    step = 0
    if path is not None:
        step = ckpt.step_of(path)
        saved = next((c for c in (path.parent.parent / "config.yaml", run_dir.config) if c.is_file()), None)
        if saved is None:
            log.warning("resuming from %s: no config.yaml beside it to compare this config with", path)
        elif check_config_changes(cfg, saved, path) and saved == run_dir.config:
            kept = run_dir.root / f"config.step_{step:08d}.yaml"
            os.replace(saved, kept)
            log.warning("the config the run had up to step %d is kept as %s", step, kept)
    truncate_metrics(run_dir.metrics, step)
    run_dir.create(cfg)
    return path


def choose_checkpoint(run_dir: RunDir, resume: str, overwrite: bool) -> Path | None:
    """The checkpoint a run starts from (None: step 0), after the checks of the module docstring; with
    ``overwrite``, the run directory is deleted first."""
    found = ckpt.list_checkpoints(run_dir.checkpoints)
    if overwrite:
        if resume not in _NO_RESUME:
            raise RunDirError(f"--overwrite starts {run_dir.root} over; it cannot be combined with --resume {resume}")
        if run_dir.root.exists():
            log.warning("--overwrite: deleting %s (%d checkpoint(s)) and starting over", run_dir.root, len(found))
            shutil.rmtree(run_dir.root)
        return None
    if resume in _NO_RESUME:
        if found:
            raise RunDirError(
                f"{run_dir.root} already holds checkpoints of a run (steps {_steps(found)}): continue it with "
                "--resume auto, replace it with --overwrite (deletes that run directory), or choose another "
                "train.run_id")
        return None
    if resume == "auto":
        if not found:
            return None
        loadable = ckpt.latest_loadable(run_dir.checkpoints)
        if loadable is None:
            names = ", ".join(p.name for _, p in found)
            raise RunDirError(
                f"--resume auto: every checkpoint in {run_dir.checkpoints} is unreadable ({names}; the warnings "
                "above say why); move them away to start over in this directory, or start over with --overwrite")
        return loadable[0]
    path = Path(resume)
    if not path.exists():
        raise RunDirError(f"--resume {resume}: no such checkpoint")
    step = ckpt.step_of(path)
    if step is None:
        raise RunDirError(f"--resume {resume}: not a checkpoint (expected step_XXXXXXXX.pt, or a DeepSpeed "
                          "step_XXXXXXXX folder)")
    later = [(s, p) for s, p in found if s > step]
    if later:
        raise RunDirError(
            f"--resume {resume} (step {step}): {run_dir.checkpoints} holds later checkpoints (steps "
            f"{_steps(later)}) of this run, which the continuation would mix with; resume the newest with "
            "--resume auto, or continue from this one under another train.run_id (the checkpoint is read from "
            "its path)")
    return path


def _steps(found: list[tuple[int, Path]]) -> str:
    return ", ".join(str(s) for s, _ in found)


_ABSENT = "<absent>"


def config_changes(saved: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, saved value, new value)`` for every dotted key whose value differs, in key order."""
    a, b = flatten(saved), flatten(now)
    return [(k, a.get(k, _ABSENT), b.get(k, _ABSENT)) for k in sorted(a.keys() | b.keys())
            if a.get(k, _ABSENT) != b.get(k, _ABSENT)]


def check_config_changes(cfg: RunConfig, saved: Path, checkpoint: Path) -> list[tuple[str, Any, Any]]:
    """Compare ``cfg`` with the config file ``saved`` of the run being resumed; returns the changes.

    Raises:
        RunDirError: a change of a :data:`SHAPE_KEYS` key (the checkpoint's weights would not load).
    """
    changes = config_changes(yaml.safe_load(saved.read_text()) or {}, config_to_dict(cfg))
    shape = [c for c in changes if c[0] in SHAPE_KEYS]
    if shape:
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in shape)
        raise RunDirError(
            f"--resume {checkpoint}: this config changes the model's shape against {saved} ({listed}); the "
            "checkpoint's weights cannot load into it. Resume with the saved values, or start a new run (another "
            "train.run_id, or --overwrite)")
    if changes:
        log.warning("resuming %s with a config that differs from %s:\n%s", checkpoint, saved,
                    "\n".join(f"  {k}: {old!r} -> {new!r}" for k, old, new in changes))
    return changes


def truncate_metrics(path: Path, step: int) -> int:
    """Drop the rows of ``metrics.jsonl`` logged after ``step`` (they are logged again when those steps are
    trained again), and a partial last line left by a crash; returns the number of rows dropped.

    The other lines are kept byte for byte; the file is rewritten atomically, and only when a row goes.
    """
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines(keepends=True)
    kept: list[str] = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
            row_step = row.get("step") if isinstance(row, dict) else None
        except ValueError:
            if i == len(lines) - 1:  # an append cut short by the crash we resume from
                continue
            row_step = None  # unreadable in the middle: not ours to judge, keep it
        if row_step is None or row_step <= step:
            kept.append(line)
    dropped = len(lines) - len(kept)
    if dropped:
        write_text_atomic(path, "".join(kept))
        log.info("%s: dropped %d row(s) past step %d", path, dropped, step)
    return dropped
