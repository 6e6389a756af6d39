"""The run directory convention: ``runs/<experiment>/<run-id>/`` with ``config.yaml``, ``checkpoints/``,
``metrics.jsonl``, ``plots/``, ``versions.json`` and ``weights_source.json``. Which run a directory holds (start,
continue, replace) is :mod:`vasot_dist.train.resume`'s decision."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vasot_dist.config import RunConfig, save_config
from vasot_dist.runtime.files import write_json_atomic
from vasot_dist.runtime.ranklog import get_logger

if TYPE_CHECKING:
    from torch import nn

log = get_logger(__name__)


class RunDir:
    """The paths of one run directory (nothing is created until :meth:`create`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "config.yaml"
        self.checkpoints = root / "checkpoints"
        self.metrics = root / "metrics.jsonl"
        self.plots = root / "plots"
        self.versions = root / "versions.json"
        self.weights_source = root / "weights_source.json"

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    def create(self, cfg: RunConfig) -> RunDir:
        """Make the folders and write the resolved config and library versions (rank 0 only)."""
        for d in (self.root, self.checkpoints, self.plots):
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
        with open(self.metrics, "a") as f:
            f.write(json.dumps(row) + "\n")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def run_dir_for(cfg: RunConfig) -> RunDir:
    """The run directory of ``cfg``; ``train.run_id`` must be set (the launcher fills it in)."""
    if not cfg.train.run_id:
        raise ValueError("train.run_id is not set; the launcher assigns one before the run starts")
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
