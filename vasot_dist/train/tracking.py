"""Rank-0 experiment tracking: ``metrics.jsonl`` always, W&B when enabled, images of plans and segmentations.

W&B is on when ``log.wandb`` says online/offline, or, with ``auto``, when ``WANDB_API_KEY`` or ``WANDB_MODE``
is set. The W&B run id is kept in checkpoints so a resumed run continues the same W&B run. Each evaluation
goes to W&B as what a person looks at: its metrics as scalars and as one table, and the report's figures
(transport plans, segmentation bars, retrieval strips) as images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vasot_dist.config import RunConfig, config_to_dict
from vasot_dist.runtime.ranklog import get_logger
from vasot_dist.train.rundir import RunDir

log = get_logger(__name__)


def wandb_mode(cfg: RunConfig) -> str:
    """'online', 'offline' or 'disabled'."""
    mode = cfg.log.wandb
    if mode == "auto":
        env = os.environ.get("WANDB_MODE")
        if env:
            return "disabled" if env in ("disabled", "dryrun") else env
        return "online" if os.environ.get("WANDB_API_KEY") else "disabled"
    return mode


class Tracker:
    def __init__(self, cfg: RunConfig, run_dir: RunDir, *, enabled: bool, wandb_id: str | None = None) -> None:
        self.run_dir = run_dir
        self.enabled = enabled  # False on ranks != 0: every call is a no-op
        self.wandb = None
        self.wandb_id = wandb_id
        if not enabled:
            return
        mode = wandb_mode(cfg)
        if mode == "disabled":
            return
        import wandb

        self.wandb = wandb.init(
            project=cfg.log.project, entity=cfg.log.entity, group=cfg.log.group, tags=list(cfg.log.tags),
            name=f"{cfg.train.experiment}/{cfg.train.run_id}", id=wandb_id, resume="allow", mode=mode,
            config=config_to_dict(cfg), dir=str(run_dir.root),
        )
        self.wandb_id = self.wandb.id
        log.info("W&B run %s (%s)", self.wandb.id, mode)

    def log(self, row: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        self.run_dir.append_metrics({"step": step, **row})
        if self.wandb is not None:
            self.wandb.log(row, step=step)

    def log_images(self, images: dict[str, Path], step: int) -> None:
        if not self.enabled or self.wandb is None or not images:
            return
        import wandb

        self.wandb.log({k: wandb.Image(str(p)) for k, p in images.items()}, step=step)

    def log_evaluation(self, metrics: dict[str, Any], out_dir: Path, step: int) -> None:
        """An evaluation's metrics (``eval/<key>`` in metrics.jsonl and W&B) and, in W&B, the table of them
        (``eval/metrics``) and the figures of its report (``eval/<figure file name>``, captioned)."""
        if not self.enabled:
            return
        scalars = {f"eval/{k}": v for k, v in metrics.items()}
        self.run_dir.append_metrics({"step": step, **scalars})
        if self.wandb is None:
            return
        import wandb

        from vasot_dist.eval.report import report_figures

        table = wandb.Table(columns=["metric", "value"], data=[[k, v] for k, v in metrics.items()])
        images = {f"eval/{Path(p).stem}": wandb.Image(p, caption=c) for c, p in report_figures(out_dir).items()}
        self.wandb.log({**scalars, "eval/metrics": table, **images}, step=step)

    def finish(self) -> None:
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None
