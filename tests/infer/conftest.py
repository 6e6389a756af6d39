"""Tiny trained runs for the tests of ``vasot_dist.infer`` (session fixtures: each trains once, in process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vasot_dist.cli import ensure_synthetic_data
from vasot_dist.config import load_config
from vasot_dist.train.loop import run


def video_overrides(tmp: Path, method: str) -> list[str]:
    """A 2-step run of the demo's ResNet-50 at 64 px; 2 context frames 3 apart and 16 frames per encoder call,
    so that the 24-32 frame test videos are embedded in two chunks that need the previous chunk's frames."""
    return [f"data.shards={tmp / 'syn'}", f"train.output_dir={tmp / 'runs'}", "train.experiment=e",
            f"train.run_id={method}", "train.max_steps=2", "train.ckpt_every=0", "log.wandb=disabled",
            "data.num_workers=0", "model.head_dim=32", "data.frames_per_video=4", "data.context_frames=2",
            "data.context_stride=3", "data.synthetic.videos_per_activity=3", "data.synthetic.test_videos_per_activity=2",
            "data.synthetic.frames_min=24", "data.synthetic.frames_max=32", "eval.batch_frames=16",
            f"method.name={method}", "model.num_actions=3"]


@pytest.fixture(scope="session")
def video_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("infer_video")


def _train(config: str | None, overrides: list[str]) -> Path:
    cfg = load_config(config, overrides)
    ensure_synthetic_data(cfg)
    run(cfg)
    return Path(cfg.train.output_dir) / cfg.train.experiment / cfg.train.run_id


@pytest.fixture(scope="session")
def vasot_run(video_root) -> Path:
    """VASOT on video: prototypes with ASOT's decoder, and an alignment solve of its own."""
    return _train("demo", video_overrides(video_root, "vasot"))


@pytest.fixture(scope="session")
def vaot_video_run(video_root) -> Path:
    """VAOT on video: no prototypes (segments by k-means)."""
    return _train("demo", video_overrides(video_root, "vaot"))


@pytest.fixture(scope="session")
def feature_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("infer_features")


def feature_overrides(tmp: Path, method: str, steps: int) -> list[str]:
    """``method`` with the MLP encoder on the synthetic features: 12 train and 4 test videos of 24-40 frames."""
    return [f"data.shards={tmp / 'syn'}", "data.name=synthetic", "data.modality=features", "model.encoder=mlp",
            "model.mlp_layers=[32,32,16]", "model.embed_dim=16", "model.num_actions=4", "data.frames_per_video=16",
            "data.num_workers=0", "data.shuffle_buffer=4", "data.synthetic.feature_dim=32",
            "data.synthetic.videos_per_activity=6", "data.synthetic.frames_min=24", "data.synthetic.frames_max=40",
            f"method.name={method}", f"train.max_steps={steps}", "train.ckpt_every=0", "optim.lr=1e-2",
            f"train.output_dir={tmp / 'runs'}", "train.experiment=e", f"train.run_id={method}", "log.wandb=disabled",
            "eval.protocol=lav"]


@pytest.fixture(scope="session")
def asot_feature_run(feature_root) -> Path:
    """ASOT with the MLP encoder on synthetic features (8 steps, seconds)."""
    return _train(None, feature_overrides(feature_root, "asot", 8))


@pytest.fixture(scope="session")
def vaot_feature_run(feature_root) -> Path:
    return _train(None, feature_overrides(feature_root, "vaot", 2))
