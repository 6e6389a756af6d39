"""CI guard against regressions in learning: a short training of every method beats its untrained baseline.

Every registered method (``vasot_dist.config.METHODS``) is guarded: one without its row in ``STEPS`` and
``MARGIN`` fails here, naming what to add.

Each method trains its MLP encoder on the features of a small fixed synthetic set (one activity, 4 steps in
order, per-video offsets, slow drift and distractors, time warps) through ``vasot_dist.train.loop.run``, and is
scored against the same model before its first optimiser step (same seed; prototypes by k-means on the
untrained embeddings): segmentation methods on MoF over the training videos (ASOT's transductive protocol),
alignment methods on nearest-neighbour alignment accuracy over held-out videos.

``MARGIN`` is about half the smallest gain over training seeds 0-9 of each method and metric
(docs/benchmark.md#the-learning-guard), so that no seed closes it. A loss whose gradient no longer reaches the
encoder fails: detached logits leave nothing to differentiate (the run raises), detached embeddings leave the
encoder as it was (alignment accuracy gains exactly 0): the last test checks the second on ASOT.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from vasot_dist.config import METHODS, load_config
from vasot_dist.config.schema import SyntheticConfig

GUARD_DATA = SyntheticConfig(
    num_activities=1, steps_per_activity=4, videos_per_activity=8, test_videos_per_activity=4, frames_min=60,
    frames_max=100, feature_dim=32, duration_sigma=0.4, p_time_warp=1.0, p_background=0.0, p_redundant=0.0,
    p_repeat=0.0, step_scale=1.0, noise_scale=0.7, offset_scale=0.8, drift_scale=0.5, distractor_scale=0.5, seed=0)

# method -> training steps; every method: MLP [32, 64, 16], 32 frames per video, batch 2, Adam lr 3e-3
STEPS = {"asot": 60, "vasot": 60, "clot": 60, "vaot": 60, "vava": 60, "kot": 120, "realign": 60}
# method -> {metric: margin in points}: MoF for the segmentation methods, and for every method the nearest-neighbour
# alignment accuracy, which only the encoder moves (prototypes alone raise MoF on a frozen encoder). Each margin is
# about half the smallest gain over training seeds 0-9 (in brackets: that smallest gain, measured 2026-11-30).
MARGIN: dict[str, dict[str, float]] = {
    "asot": {"seg/MoF": 5.0, "align_acc": 8.0},  # [9.5, 17.3]
    "vasot": {"seg/MoF": 5.0, "align_acc": 20.0},  # [10.4, 39.6]
    "clot": {"seg/MoF": 7.0, "align_acc": 13.0},  # [14.4, 26.3]
    "vaot": {"align_acc": 12.0},  # [25.8]
    "vava": {"align_acc": 11.0},  # [23.3]
    "kot": {"align_acc": 2.0},  # [4.4] plain Kantorovich pseudo-labels learn slowly: 120 steps
    "realign": {"align_acc": 10.0},  # [20.2]
}

# The solver values the margins were measured with, where they are not the methods' defaults: ASOT's decoding
# for VASOT (eps 0.04, alpha 0.6, lambda 0.01, rho 0.2), rho 0.2 on its segmentation solve, radius 0.04 and rho
# 0.35 on every alignment solve, REALIGN's Laplace scale 0.04; a one-layer CLOT decoder without dropout.
SOLVER_VALUES = [
    "method.clot.decoder_layers=1", "method.clot.decoder_dropout=0.0",
    "method.vasot.segment.temporal_prior=0.2", "method.vasot.decode.eps=0.04", "method.vasot.decode.alpha=0.6",
    "method.vasot.decode.lambda_actions=0.01", "method.vasot.decode.temporal_prior=0.2",
    "method.vasot.align.radius=0.04", "method.vasot.align.temporal_prior=0.35", "method.vaot.align.radius=0.04",
    "method.realign.align.radius=0.04", "method.realign.align.inner_iters=20",
]


def guard_row(method: str) -> tuple[int, dict[str, float]]:
    """The method's training steps and margins; a registered method without them fails the guard."""
    if method not in STEPS or method not in MARGIN:
        pytest.fail(f"method {method!r} is not in the learning guard: add its training steps to STEPS and its "
                    f"margins to MARGIN in {Path(__file__).name} (docs/benchmark.md#the-learning-guard)")
    return STEPS[method], MARGIN[method]


def guard_config(tmp: Path, method: str, seed: int = 0, tag: str = "", steps: int | None = None):
    """The guard's run of ``method`` (``steps``: its row's unless given)."""
    steps = steps or guard_row(method)[0]
    seg = "seg/MoF" in MARGIN.get(method, {})  # segmentation methods are scored on the training videos
    overrides = [
        "data.name=synthetic", "data.modality=features", f"data.shards={tmp / 'data'}", "data.frames_per_video=32",
        "data.batch_size=2", "data.num_workers=0", "data.shuffle_buffer=8", "data.context_frames=1",
        "model.encoder=mlp", "model.mlp_layers=[32,64,16]", "model.embed_dim=16", "model.num_actions=4",
        "model.prototype_init=kmeans", f"method.name={method}", *SOLVER_VALUES,
        "optim.name=adam", "optim.lr=3e-3", "optim.weight_decay=0.0",
        "optim.schedule=constant", "optim.warmup_steps=0", f"train.max_steps={steps}", f"train.seed={seed}",
        f"train.output_dir={tmp / 'runs'}", "train.experiment=guard", f"train.run_id={method}{tag}-{seed}",
        "train.ckpt_every=0", f"train.log_every={steps}", "train.device=cpu", "train.bf16=false",
        "log.wandb=disabled", "eval.protocol=lav",
        f"data.eval_split={'train' if seg else 'test'}",
    ]
    cfg = load_config(None, overrides)
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, synthetic=GUARD_DATA))


def untrained_metrics(cfg) -> dict[str, float]:
    """The model as ``loop.run`` builds it before its first step, scored by the same evaluation."""
    from vasot_dist.cli import ensure_synthetic_data
    from vasot_dist.eval.runner import evaluate_model
    from vasot_dist.runtime.distributed import init_distributed
    from vasot_dist.runtime.seeding import seed_everything
    from vasot_dist.train.loop import _prepare_config, init_prototypes
    from vasot_dist.train.model import build_train_model

    ensure_synthetic_data(cfg)  # as vasot-train does before loop.run
    ctx = init_distributed("cpu", "auto")
    cfg = _prepare_config(cfg, ctx)
    seed_everything(cfg.train.seed)
    model = build_train_model(cfg)
    init_prototypes(cfg, model, ctx)
    return evaluate_model(cfg, model, ctx)


def gains(tmp: Path, method: str, seed: int = 0, tag: str = "") -> dict[str, tuple[float, float]]:
    """{metric: (untrained, trained)} of ``method`` on the guard set, for the metrics it is guarded on."""
    from vasot_dist.train.loop import run

    torch.set_num_threads(1)
    cfg = guard_config(tmp, method, seed, tag)
    before = untrained_metrics(cfg)
    out = run(cfg)
    assert out["status"] == "completed"
    return {m: (before[m], out["metrics"][m]) for m in guard_row(method)[1]}


@pytest.fixture(scope="module")
def guard_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("guard")  # the data are written once, by the first run


def test_the_guard_lists_only_registered_methods():
    assert set(STEPS) <= set(METHODS) and set(MARGIN) <= set(METHODS), "a row of a method that is not registered"


@pytest.mark.parametrize("method", list(METHODS))
def test_short_training_beats_the_untrained_model(guard_dir, method):
    for metric, (before, after) in gains(guard_dir, method).items():
        assert after - before > MARGIN[method][metric], f"{method}: {metric} {before:.1f} untrained -> {after:.1f}"


def test_the_guard_fails_when_the_gradient_no_longer_reaches_the_encoder(guard_dir, monkeypatch):
    """The guard can fail: ASOT with its frame embeddings detached before the loss still moves its prototypes
    (and MoF with them), but its encoder does not learn, and the alignment accuracy of its embeddings says so."""
    from vasot_dist.train.model import TrainModel

    embed = TrainModel.embed
    monkeypatch.setattr(TrainModel, "forward", lambda self, inputs, mask, step=0: self.loss(
        embed(self, inputs, mask).detach(), torch.ones(inputs.shape[:2], dtype=torch.bool) if mask is None else mask,
        step=step))
    before, after = gains(guard_dir, "asot", tag="-detached")["align_acc"]  # a run directory of its own
    assert after - before <= MARGIN["asot"]["align_acc"]
