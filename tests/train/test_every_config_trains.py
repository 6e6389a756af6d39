"""Every shipped config builds its model exactly as configured and trains: 2 optimiser steps through the trainer
(``run``: prototypes, engine, checkpoint, end-of-training evaluation) on a small stand-in dataset shaped like the
config's data. A config that cannot build its model or run its method fails here, not on a user's cluster.

Only ``model.weights: none`` is forced on the model (nothing downloads here). The stand-in has the config's
modality, feature width (the published features' width for the real datasets, the generator's for the synthetic
presets), label count (``model.num_actions`` steps) and batch layout (``data.batch_size``, pairs for the
alignment methods). ResNet configs run at 32 px on 4 frames of 16-frame videos, with their configured encoder
(head width, embedding, context frames); they are the `slow` part. The stand-ins, and the runs of configs that
resolve to the same run once pointed at them (``coin``, ``penn_action`` and ``alignment_base``), are shared by
every case and every pytest worker of the session.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import yaml

from vasot_dist.config import RunConfig, config_to_dict, find_config, load_config, packaged_configs
from vasot_dist.config.schema import DataConfig, SyntheticConfig
from vasot_dist.train.loop import run
from vasot_dist.train.preflight import fill_from_data

ROOT = Path(__file__).resolve().parents[2]


def _is_video(name: str | Path) -> bool:
    """The config's ``data.modality`` is video, read along its ``extends:`` chain (no schema build: collection
    stays fast)."""
    path = find_config(name)
    raw = yaml.safe_load(path.read_text()) or {}
    if "modality" in raw.get("data", {}):
        return raw["data"]["modality"] == "video"
    if "extends" in raw:
        return _is_video(find_config(raw["extends"], relative_to=path.parent))
    return DataConfig().modality == "video"


# Every run config a user can name (`--config ikea_asm`) and every synthetic preset (by path); the ResNet ones slow.
CONFIGS = [
    pytest.param(n, id=Path(n).stem, marks=[pytest.mark.slow] if _is_video(n) else [])
    for n in packaged_configs() + sorted(str(p) for p in (ROOT / "configs" / "synthetic").glob("*.yaml"))
]
# The width of each real dataset's published features (ASOT's README and run scripts: the MLP's input).
FEATURE_DIM = {"breakfast": 64, "50salads_eval": 64, "50salads_mid": 64, "yti": 3000, "desktop_assembly": 512}
VIDEO_SIZE, VIDEO_FRAMES = 32, 4  # the ResNet configs' stand-in: 32 px, 4 sampled frames per video
STAND_IN_STEPS = 4  # steps of the stand-in activity for a config that leaves model.num_actions to the label map


def _feature_dim(cfg: RunConfig) -> int:
    if cfg.data.name == "synthetic":
        return cfg.data.synthetic.feature_dim
    # a base config names no dataset: its encoder's input width is all it says of the data
    return FEATURE_DIM.get(cfg.data.name, cfg.model.mlp_layers[0])


@pytest.fixture(scope="session")
def shared(tmp_path_factory) -> Path:
    """A folder that every pytest worker of this session sees (the parent of the workers' base folders)."""
    root = tmp_path_factory.getbasetemp()
    folder = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "every_config"
    folder.mkdir(exist_ok=True)
    return folder


@contextmanager
def _only_one_at_a_time(path: Path) -> Iterator[None]:
    """Hold ``path``'s lock: the first worker makes what it guards, the others wait and then read it."""
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def stand_in(cfg: RunConfig, shared: Path) -> Path:
    """Shards for ``cfg``: one activity of ``model.num_actions`` steps (no background), in the config's modality
    and width, 4 train / 2 test feature videos (2 / 2 videos at 32 px); one dataset per shape."""
    from vasot_pipelines.synthetic import generate_synthetic

    video = cfg.data.modality == "video"
    steps = cfg.model.num_actions or STAND_IN_STEPS  # unset: the run takes K from the stand-in's label map
    out = shared / f"stand_in_{cfg.data.modality}_{VIDEO_SIZE if video else _feature_dim(cfg)}_{steps}"
    with _only_one_at_a_time(out):
        if not (out / "dataset.json").is_file():
            syn = SyntheticConfig(
                num_activities=1, steps_per_activity=steps, videos_per_activity=2 if video else 4,
                test_videos_per_activity=2, p_background=0.0, p_redundant=0.0, p_repeat=0.0, size=VIDEO_SIZE,
                # features: more frames than the configs sample (256), so the configured sampling applies
                frames_min=16 if video else 260, frames_max=16 if video else 300, feature_dim=_feature_dim(cfg))
            generate_synthetic(out, syn, modality=cfg.data.modality)
    return out


def _on_stand_in(cfg: RunConfig, shards: Path) -> RunConfig:
    """``cfg`` reading ``shards`` for 2 steps: the model, method, optimiser and evaluation sections stay as
    configured."""
    data = dataclasses.replace(cfg.data, shards=str(shards), num_workers=0)
    if cfg.data.modality == "video":
        data = dataclasses.replace(data, image_size=VIDEO_SIZE, frames_per_video=VIDEO_FRAMES)
    train = dataclasses.replace(cfg.train, run_id="r", max_steps=2, device="cpu")
    # the excluded background is a label of the dataset (YTI's -1): the stand-in's background is id 0
    evaluation = cfg.eval if cfg.eval.exclude_cls is None else dataclasses.replace(cfg.eval, exclude_cls=0)
    return dataclasses.replace(cfg, data=data, train=train, eval=evaluation,
                               log=dataclasses.replace(cfg.log, wandb="disabled"))


def _run_key(cfg: RunConfig) -> str:
    """The resolved run, less what only names it (the dataset name, the experiment folder)."""
    same = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, name=""),
                               train=dataclasses.replace(cfg.train, experiment=""))
    return json.dumps(config_to_dict(same), sort_keys=True)


def _expected_weight_shapes(cfg: RunConfig) -> dict[str, tuple[int, ...]]:
    """The configured structure, written from the config alone: the MLP's layers, the ResNet head's widths and
    the prototypes (methods that have them)."""
    m = cfg.model
    if m.encoder == "mlp":
        # net = Linear, ReLU, Linear, ..., Linear: layer k at index 2k
        shapes = {f"encoder.net.{2 * k}.weight": (m.mlp_layers[k + 1], m.mlp_layers[k])
                  for k in range(len(m.mlp_layers) - 1)}
    else:
        shapes = {"encoder.conv1.weight": (m.head_dim, 1024, 3, 3, 3), "encoder.fc2.weight": (m.head_dim, m.head_dim),
                  "encoder.embedding_layer.weight": (m.embed_dim, m.head_dim)}
    if cfg.method.name in ("asot", "vasot", "clot"):
        shapes["loss.prototypes.weight"] = (m.num_actions, m.embed_dim)
    return shapes


def _trained(cfg: RunConfig, shared: Path) -> dict:
    """What ``run(cfg)`` gave (result, loss rows, the checkpoint's weight shapes), once per distinct run."""
    key = hashlib.sha1(_run_key(cfg).encode()).hexdigest()[:16]
    summary = shared / f"run_{key}.json"
    with _only_one_at_a_time(summary):
        if not summary.is_file():
            result = run(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, output_dir=str(shared / key))))
            run_dir = Path(result["run_dir"])
            rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            state = torch.load(run_dir / "checkpoints" / "step_00000002.pt", weights_only=True)["model"]
            summary.write_text(json.dumps({"result": result, "losses": [r["loss"] for r in rows if "loss" in r],
                                           "shapes": {k: list(v.shape) for k, v in state.items()}}))
    return json.loads(summary.read_text())


@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds_its_model_and_trains_two_steps(name, shared):
    cfg = load_config(name, ["model.weights=none"])
    cfg = _on_stand_in(cfg, stand_in(cfg, shared))
    done = _trained(cfg, shared)
    cfg = fill_from_data(cfg, training=False, report=False)  # model.num_actions as the run took it
    assert done["result"]["status"] == "completed" and done["result"]["step"] == 2
    assert done["losses"] and all(math.isfinite(v) for v in done["losses"])
    assert done["result"]["metrics"]["videos_scored"] == done["result"]["metrics"]["videos_expected"] > 0
    for key, shape in _expected_weight_shapes(cfg).items():
        assert tuple(done["shapes"].get(key, ())) == shape, (key, done["shapes"].get(key), shape)
