"""The run directory convention: ``runs/<experiment>/<run-id>/`` with ``vasot_run.json`` (the marker that says
it is a run), ``config.yaml``, ``checkpoints/``, ``metrics.jsonl``, ``plots/``, ``versions.json`` and
``weights_source.json``. Which run a directory holds (start, continue, replace) is
:mod:`vasot_dist.train.resume`'s decision; its lock is :mod:`vasot_dist.train.runlock`'s.

A folder is a run directory when it holds the marker, or (runs written before the marker existed) the layout
every run has had: ``config.yaml``, ``versions.json`` and ``checkpoints/``; such a run gets its marker when it is
resumed. Nothing else is ever written into, or deleted as, a run directory.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vasot_dist.config import ConfigError, RunConfig, save_config
from vasot_dist.config.rules import name_violation
from vasot_dist.runtime.files import named_os_error, temp_target, write_json_atomic
from vasot_dist.runtime.ranklog import get_logger

if TYPE_CHECKING:
    from torch import nn

log = get_logger(__name__)
MARKER = "vasot_run.json"
# what every run directory held before the marker: how a run of an earlier version is recognised
OLD_LAYOUT = "config.yaml, versions.json and checkpoints/"
# Temporary folders of ``vasot_dist.tune.trial.staged_checkpoint`` (hard links of a checkpoint for Ray).
_TEMP_DIR_PREFIX = ".ray_report_"


class RunDirError(ConfigError):
    """The run directory cannot be used as asked (a run id that is a path, a folder that is not a run, another
    run holding it, an earlier run's checkpoints, unreadable checkpoints, a resumed config that changes the
    model's shape, an unwritable disk); raised before anything is written."""


class RunWriteError(RuntimeError):
    """A running run could not write into its run directory (disk full, read-only, quota): what was written
    before is intact (every file is written under a temporary name first) and the run can be resumed."""


class RunDir:
    """The paths of one run directory (nothing is created until :meth:`create`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.marker = root / MARKER
        self.config = root / "config.yaml"
        self.checkpoints = root / "checkpoints"
        self.metrics = root / "metrics.jsonl"
        self.plots = root / "plots"
        self.versions = root / "versions.json"
        self.weights_source = root / "weights_source.json"

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    def create(self, cfg: RunConfig) -> RunDir:
        """Make the folders and write the marker, the resolved config and library versions (rank 0 only)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.marker.is_file():  # first, so that a folder of ours is never left unrecognisable
            write_json_atomic(self.marker, {
                "format": 1, "experiment": cfg.train.experiment, "run_id": cfg.train.run_id,
                "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}, indent=2)
        for d in (self.checkpoints, self.plots):
            d.mkdir(parents=True, exist_ok=True)
        save_config(cfg, self.config)
        write_json_atomic(self.versions, library_versions(), indent=2)
        return self

    def save_weights_source(self, cfg: RunConfig, encoder: nn.Module) -> dict[str, Any]:
        """Write and log where the encoder's initial weights came from (a run that starts from step 0):
        ``{"encoder": "resnet50", "weights": "imagenet", "name", "url", "file", "sha256"}``, ``{..., "weights":
        "file", "file", "sha256"}`` or ``{..., "weights": "none"}`` (the MLP encoder always starts random)."""
        source = {"encoder": cfg.model.encoder, **getattr(encoder, "weights_source", {"weights": "none"})}
        write_json_atomic(self.weights_source, source, indent=2)
        log.info("encoder weights: %s (%s)", json.dumps(source), self.weights_source)
        return source

    def append_metrics(self, row: dict[str, Any]) -> None:
        try:
            with open(self.metrics, "a") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            raise named_os_error(e, self.metrics) from e

    def kind(self) -> str:
        """``"missing"``, ``"empty"`` (nothing but temporary files), ``"run"`` (the marker, or the layout of a run
        written before it) or ``"other"`` (a folder that is not ours)."""
        if not self.root.exists() and not self.root.is_symlink():
            return "missing"
        if not self.root.is_dir():
            return "other"
        if self.marker.is_file() or (self.config.is_file() and self.versions.is_file() and self.checkpoints.is_dir()):
            return "run"
        if all(temp_target(p.name) is not None for p in self.root.iterdir()):
            return "empty"
        return "other"

    def remove_temp_files(self) -> int:
        """Delete what killed writers left: temporary files of :mod:`vasot_dist.runtime.files` (checkpoints
        ``.step_XXXXXXXX.pt.<hex>.tmp`` included) and staged Ray checkpoint folders; returns the bytes freed.
        Only while this run holds the lock: then no writer is alive."""
        freed, count = 0, 0
        for folder, dirs, files in os.walk(self.root):
            for d in [d for d in dirs if d.startswith(_TEMP_DIR_PREFIX)]:
                dirs.remove(d)
                shutil.rmtree(os.path.join(folder, d), ignore_errors=True)
                count += 1
            for name in files:
                if temp_target(name) is not None:
                    path = os.path.join(folder, name)
                    freed += os.lstat(path).st_size
                    os.unlink(path)
                    count += 1
        if count:
            log.warning("%s: removed %d temporary file(s) (%.1f MB) left by a run that was killed while writing",
                        self.root, count, freed / 2**20)
        return freed


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def run_dir_for(cfg: RunConfig) -> RunDir:
    """The run directory of ``cfg``; ``train.run_id`` must be set (the launcher fills it in).

    Raises:
        RunDirError: ``train.run_id`` or ``train.experiment`` is not a folder name (``..``, ``.``, a path),
            also for a config built in code without the loader's checks.
    """
    if not cfg.train.run_id:
        raise ValueError("train.run_id is not set; the launcher assigns one before the run starts")
    for key, value in (("train.experiment", cfg.train.experiment), ("train.run_id", cfg.train.run_id)):
        expected = name_violation(value)
        if expected is not None:
            raise RunDirError(f"invalid value {value!r} for '{key}': {expected}")
    return RunDir(Path(cfg.train.output_dir) / cfg.train.experiment / cfg.train.run_id)


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that decide results, for reproducibility."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("vasot_dist", "torch", "torchvision", "numpy", "webdataset", "decord", "deepspeed", "ray", "wandb"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        import torch

        out["cuda"] = str(torch.version.cuda)
    except ImportError:  # pragma: no cover
        pass
    return out
