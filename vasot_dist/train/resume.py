"""A run directory belongs to one run: starting it, continuing it, or replacing it.

:func:`open_run_dir` decides on rank 0, before anything is written, and every rank gets its answer (or its
error). First rank 0 takes the run directory's lock (:mod:`vasot_dist.train.runlock`: a second run on the
same id stops here, naming the first) and checks that the folder is a run directory or nothing
(:meth:`RunDir.kind`: a folder that is not a run is never written into nor deleted); then it removes the
temporary files a killed run left, and:

- ``resume="none"``: a directory that already holds checkpoints is refused, unless ``overwrite`` (which deletes
  the whole run directory first: only a real run directory inside the experiment folder, never a symbolic link
  or what it points to). Otherwise a rerun would write its checkpoints next to the old run's, pruning
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

import dataclasses
import errno
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
from vasot_dist.train.rundir import MARKER, OLD_LAYOUT, RunDir, RunDirError, RunWriteError
from vasot_dist.train.runlock import RunLock, release_all

log = get_logger(__name__)
T = TypeVar("T")

# Keys whose change gives the model other parameters (names or shapes): a checkpoint cannot load into it.
SHAPE_KEYS = ("data.modality", "method.name", "model.encoder", "model.embed_dim", "model.head_dim",
              "model.mlp_layers", "model.num_actions")
# Keys that change what the model sees, not its shape: evaluating with other values than the training's is
# allowed (a deliberate test), and warned about.
INPUT_KEYS = ("data.image_size", "data.context_frames", "data.context_stride", "data.standardize")
_NO_RESUME = ("none", "", None)


# What a full or read-only disk raises; a run's own writes failing so become RunWriteError (RunDirError at start).
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)
__all__ = ["RunDirError", "RunWriteError", "checkpoint_config", "open_run_dir", "release_run_dirs"]


def open_run_dir(cfg: RunConfig, run_dir: RunDir, resume: str, overwrite: bool, ctx: DistContext) -> Path | None:
    """Claim ``run_dir`` for this run on rank 0 and write its ``config.yaml``, ``versions.json``; returns the
    checkpoint to resume from (None: start at step 0) on every rank.

    The lock stays held (rank 0) until :func:`release_run_dirs`.

    Raises:
        RunDirError: on every rank, for the cases of the module docstring.
    """
    return _on_main(ctx, lambda: _locked_open(cfg, run_dir, resume, overwrite))


def release_run_dirs() -> None:
    """Release the run-directory locks this process holds (the end of a run, however it ends)."""
    release_all()


def write_error(e: OSError, cfg: RunConfig) -> RunWriteError | None:
    """The clear error for a write under the experiment folder of ``cfg`` that failed for want of space or
    permission, or None when ``e`` is something else (not a disk error, or not a file of a run)."""
    name = e.filename if isinstance(e.filename, str) else None
    experiment = os.path.abspath(os.path.join(cfg.train.output_dir, cfg.train.experiment))
    if e.errno not in DISK_ERRNOS or name is None or not os.path.abspath(name).startswith(experiment + os.sep):
        return None
    run = Path(experiment) / Path(os.path.relpath(os.path.abspath(name), experiment)).parts[0]
    kept = ckpt.list_checkpoints(RunDir(run).checkpoints)
    return RunWriteError(
        f"cannot write {name}: {e.strerror} (errno {errno.errorcode.get(e.errno, e.errno)}). The run stopped; "
        f"what it wrote before is intact (newest checkpoint: {kept[-1][1] if kept else 'none yet'}). Free space "
        "or make the run directory writable, then continue with --resume auto")


def _locked_open(cfg: RunConfig, run_dir: RunDir, resume: str, overwrite: bool) -> Path | None:
    try:
        lock = RunLock(run_dir.root).acquire()
    except OSError as e:  # the experiment folder cannot hold even the lock file
        raise RunDirError(f"cannot write the run directory {run_dir.root}: {e.strerror} ({e.filename}); set "
                          "train.output_dir to a writable folder") from None
    try:
        return _open(cfg, run_dir, resume, overwrite)
    except OSError as e:
        lock.release()
        if e.errno in DISK_ERRNOS:
            raise RunDirError(f"cannot write the run directory {run_dir.root}: {e.strerror} ({e.filename}); "
                              "free space or set train.output_dir to a writable folder") from None
        raise
    except BaseException:
        lock.release()
        raise


def _check_kind(run_dir: RunDir, overwrite: bool) -> None:
    """Refuse a folder that is not a run (never written into, never deleted) and, for ``overwrite``, a symbolic
    link or a folder outside the experiment folder."""
    root = run_dir.root
    if run_dir.kind() == "other":
        raise RunDirError(
            f"{root} exists and is not a run directory (it holds no {MARKER}, nor the {OLD_LAYOUT} of a run "
            f"written before the marker): it is left as it is{'; --overwrite deletes only run directories' if overwrite else ''}. "
            "Choose another train.run_id")
    if overwrite and root.is_symlink():
        raise RunDirError(f"--overwrite: {root} is a symbolic link to {root.resolve()}; --overwrite deletes only a "
                          "run directory that is really inside the experiment folder, not what a link points to")
    if overwrite and root.exists() and root.resolve().parent != root.parent.resolve():
        raise RunDirError(f"--overwrite: {root} resolves to {root.resolve()}, outside the experiment folder "
                          f"{root.parent.resolve()}; nothing deleted")




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
    _check_kind(run_dir, overwrite)
    if run_dir.root.is_dir():
        run_dir.remove_temp_files()
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


def checkpoint_config(cfg: RunConfig, state: dict[str, Any], checkpoint: Path) -> RunConfig:
    """``cfg`` checked against the config the checkpoint was trained with (``state["vasot"]["config"]``), for
    evaluating it: a :data:`SHAPE_KEYS` difference (``method.name``, ``model.embed_dim``, ...) is refused, an
    :data:`INPUT_KEYS` one (``data.image_size``, ...) warned about; without ``train.run_id``, the run's
    experiment and id are taken from the checkpoint (the report's title names the run).

    Raises:
        ConfigError: naming every shape key that differs, with both values.
    """
    saved = (state.get("vasot") or {}).get("config")
    if not isinstance(saved, dict):
        log.warning("%s holds no config to compare this one with", checkpoint)
        return cfg
    changes = config_changes(saved, config_to_dict(cfg))
    shape = [c for c in changes if c[0] in SHAPE_KEYS]
    if shape:
        listed = "; ".join(f"{k}: {old!r} in the checkpoint, {new!r} here" for k, old, new in shape)
        raise ConfigError(f"{checkpoint} was trained with another model than this config describes ({listed}); "
                          "evaluate it with the config it was trained with (--config <run>/config.yaml)")
    inputs = [c for c in changes if c[0] in INPUT_KEYS]
    if inputs:
        log.warning("evaluating %s with other inputs than it was trained on: %s", checkpoint,
                    "; ".join(f"{k}: {old!r} in training, {new!r} now" for k, old, new in inputs))
    if cfg.train.run_id is None and isinstance(saved.get("train"), dict):
        train = dataclasses.replace(cfg.train, experiment=saved["train"].get("experiment", cfg.train.experiment),
                                    run_id=saved["train"].get("run_id"))
        cfg = dataclasses.replace(cfg, train=train)
    return cfg


def data_position(extra: dict[str, Any], cfg: RunConfig, world_size: int) -> dict[str, int]:
    """The ``progress`` a resumed run continues from (``{"step", "epoch", "batch_in_epoch"}``).

    ``batch_in_epoch`` counts one rank's batches: on the world size and batch size of the checkpoint it is
    exact (the resumed run sees exactly the batches the interrupted one would have). With others (2 processes
    resumed on 1, a changed ``data.batch_size``) it is converted to the same number of videos of the epoch
    already consumed, ``batch_in_epoch x world size x batch size``, rounded down to whole batches: the epoch
    keeps its length instead of replaying (or skipping) a part of it. Which videos come next is not the
    interrupted run's choice then (the shards are split over ranks anew), only how many.
    """
    progress = dict(extra["progress"])
    saved_world = int(extra.get("world_size", world_size))
    saved_batch = int(((extra.get("config") or {}).get("data") or {}).get("batch_size", cfg.data.batch_size))
    if (saved_world, saved_batch) == (world_size, cfg.data.batch_size):
        return progress
    consumed = progress["batch_in_epoch"] * saved_world * saved_batch
    progress["batch_in_epoch"] = consumed // (world_size * cfg.data.batch_size)
    log.warning("checkpoint of %d rank(s) x %d videos per batch, resumed on %d x %d: %d videos of epoch %d were "
                "consumed, so this run starts at its batch %d", saved_world, saved_batch, world_size,
                cfg.data.batch_size, consumed, progress["epoch"], progress["batch_in_epoch"])
    return progress


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
