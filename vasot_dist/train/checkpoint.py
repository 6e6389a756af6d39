"""Atomic, verifiable checkpoints that load with ``torch.load(weights_only=True)``.

Layout: ``<run>/checkpoints/step_00001200.pt`` (DDP / single process: one file written by rank 0, holding
every rank's RNG state and data position) or ``<run>/checkpoints/step_00001200/`` (DeepSpeed's own
``save_checkpoint`` folder, with our extra state in ``client_state``). A checkpoint is complete when its
file (or the folder's ``complete`` marker) exists; partial writes live under a temporary name.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import torch

from vasot_dist.runtime.files import AtomicFile, write_text_atomic
from vasot_dist.runtime.ranklog import get_logger

log = get_logger(__name__)
_STEP_RE = re.compile(r"^step_(\d{8})(\.pt)?$")


def checkpoint_name(step: int, folder: bool = False) -> str:
    return f"step_{step:08d}" + ("" if folder else ".pt")


def is_checkpoint_name(name: str) -> bool:
    return _STEP_RE.match(name) is not None


def step_of(path: Path) -> int | None:
    """The step a checkpoint's name says (``step_00001200.pt`` or DeepSpeed's ``step_00001200/``), else None."""
    m = _STEP_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def save_file_checkpoint(ckpt_dir: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    """Write ``state`` to ``step_XXXXXXXX.pt`` atomically (:mod:`vasot_dist.runtime.files`); prune to
    ``keep_last``."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / checkpoint_name(step)
    with AtomicFile(final, binary=True) as f:
        torch.save(state, f)
    prune(ckpt_dir, keep_last, step)
    return final


def mark_folder_complete(folder: Path) -> None:
    write_text_atomic(folder / "complete", "ok\n")


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    out = []
    for p in ckpt_dir.iterdir():
        m = _STEP_RE.match(p.name)
        if not m:
            continue
        if p.is_dir() and not (p / "complete").exists():
            continue
        out.append((int(m.group(1)), p))
    return sorted(out)


def prune(ckpt_dir: Path, keep_last: int, newest: int) -> None:
    """Keep the ``keep_last`` highest steps up to ``newest`` (the step just written, so never that one).

    Checkpoints of later steps are not this run's continuation (the run directory refuses to mix runs,
    :mod:`vasot_dist.train.rundir`); they are left alone rather than taken for newer ones.
    """
    ours = [p for step, p in list_checkpoints(ckpt_dir) if step <= newest]
    for p in ours[:-keep_last]:
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def load_model_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], checkpoint: Path) -> None:
    """``model.load_state_dict(weights)``, or a ConfigError naming the parameters that differ (missing,
    unexpected, other shapes) instead of PyTorch's ``Error(s) in loading state_dict``."""
    from vasot_dist.config import ConfigError

    own = model.state_dict()
    missing = sorted(own.keys() - weights.keys())
    unexpected = sorted(weights.keys() - own.keys())
    shapes = [f"{k} {tuple(weights[k].shape)} in the checkpoint, {tuple(own[k].shape)} here"
              for k in sorted(own.keys() & weights.keys()) if own[k].shape != weights[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{what}: {', '.join(items[:5])}{', ...' if len(items) > 5 else ''}"
                 for what, items in (("other shapes", shapes), ("not in the checkpoint", missing),
                                     ("only in the checkpoint", unexpected)) if items]
        raise ConfigError(f"the weights of {checkpoint} do not fit the model of this config ({'; '.join(parts)}); "
                          "evaluate it with the config it was trained with (--config <run>/config.yaml)")
    model.load_state_dict(weights)


def load_file_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def latest_loadable(ckpt_dir: Path) -> tuple[Path, dict[str, Any] | None] | None:
    """The newest checkpoint that loads; a corrupt one is skipped with a warning naming it.

    Returns ``(path, state)`` for file checkpoints, ``(folder, None)`` for DeepSpeed folders, or None.
    """
    for step, p in reversed(list_checkpoints(ckpt_dir)):
        if p.is_dir():
            return p, None
        try:
            return p, load_file_checkpoint(p)
        except Exception as e:  # truncated / corrupt file: fall back to the previous one
            log.warning("checkpoint %s (step %d) is unreadable (%s: %s); trying the previous one",
                        p, step, type(e).__name__, str(e)[:200])
    return None
