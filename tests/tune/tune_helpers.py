"""Helpers shared by the sweep tests (imported by name: the tests folder is not a package)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.yaml"


def tiny_overrides(features: Path, output_dir: Path) -> list[str]:
    """A few seconds of ASOT training + evaluation on CPU: features, MLP encoder, short synthetic videos."""
    return [
        "method.name=asot", "data.modality=features", f"data.shards={features}", "data.frames_per_video=16",
        "data.context_frames=1", "data.num_workers=0", "data.synthetic.frames_min=24",
        "data.synthetic.frames_max=32", "model.encoder=mlp", "model.mlp_layers=[64,32,16]", "model.embed_dim=16",
        "optim.warmup_steps=0", f"train.output_dir={output_dir}", "train.max_steps=4", "train.eval_every=2",
        "train.ckpt_every=0", "train.log_every=1", "train.device=cpu", "train.experiment=tune_test", "eval.protocol=lav",
        "log.wandb=disabled", "tune.workers_per_trial=1", "tune.cpus_per_worker=1", "tune.max_failures=1",
    ]
