"""ASOT's prototype handling in the training loop: k-means on every training video, unit norm after each step."""

from __future__ import annotations

import torch
from trainutil import feature_overrides

from vasot_dist.cli import ensure_synthetic_data
from vasot_dist.config import load_config
from vasot_dist.models.prototypes import ActionPrototypes
from vasot_dist.train.loop import run


def test_kmeans_sees_every_training_video_and_prototypes_stay_unit_norm(tmp_path, monkeypatch):
    seen = []
    original = ActionPrototypes.init_kmeans_

    def spy(self, embeddings, seed, **kw):
        seen.append(embeddings.shape[0])
        return original(self, embeddings, seed, **kw)

    monkeypatch.setattr(ActionPrototypes, "init_kmeans_", spy)
    # 2 activities x 6 videos in batches of 2: 6 batches, more than the 4 that k-means used to see
    cfg = load_config(None, feature_overrides(tmp_path, **{
        "train.max_steps": 3, "train.ckpt_every": 0, "optim.lr": 0.05, "optim.weight_decay": 0.0}))
    ensure_synthetic_data(cfg)
    norms = []
    out = run(cfg, on_step=lambda step, model, _: norms.append(model.loss.prototypes.weight.norm(dim=1).clone()))
    assert out["status"] == "completed"
    assert seen == [12 * cfg.data.frames_per_video]  # every video of the epoch, 16 sampled frames each
    assert len(norms) == 3
    for n in norms:  # the raw parameter itself is back on the sphere after every optimiser step
        torch.testing.assert_close(n, torch.ones_like(n), atol=1e-6, rtol=0)
