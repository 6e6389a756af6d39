"""Per-video feature standardisation (``data.standardize``, ASOT's ``-s``): the transform and the loaders."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from vasot_dist.config.schema import DataConfig
from vasot_dist.data import make_eval_loader, make_train_loader
from vasot_dist.data.stages import standardize_features


def test_standardize_features_by_hand():
    rng = np.random.default_rng(0)
    x = (rng.normal(3.0, 2.0, size=(40, 6)) * np.arange(1, 7)).astype(np.float32)
    x[5] = 0.0  # a missing frame stays zero and does not enter the statistics
    x[:, 4] = 7.0  # a constant dimension becomes 0, not NaN
    x[5, 4] = 0.0
    out = standardize_features(x)
    keep = np.ones(40, bool)
    keep[5] = False
    ref = x[keep][:, :4] - x[keep][:, :4].mean(0)
    ref = ref / ref.std(0) / np.sqrt(6)
    np.testing.assert_allclose(out[keep][:, :4], ref, rtol=1e-4, atol=1e-5)
    assert np.all(out[5] == 0) and np.all(out[:, 4] == 0) and np.isfinite(out).all()
    np.testing.assert_allclose(out[keep].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out[keep][:, [0, 1, 2, 3, 5]].std(0), 1 / np.sqrt(6), rtol=1e-4)
    # a per-video offset and scale are gone: the same video shifted and scaled standardises the same
    np.testing.assert_allclose(standardize_features(x * 3.0 + 5.0 * keep[:, None]), out, rtol=1e-4, atol=1e-5)


def test_loaders_standardise_over_the_whole_video_when_asked(features_ds):
    cfg = DataConfig(modality="features", shards=str(features_ds.root), num_workers=0, batch_size=1,
                     frames_per_video=4, shuffle_buffer=1)
    on = dataclasses.replace(cfg, standardize=True)
    plain = {b.keys[0]: b.features[0][b.mask[0]] for b in make_eval_loader(cfg, "train", rank=0, world_size=1)}
    std = {b.keys[0]: b.features[0][b.mask[0]] for b in make_eval_loader(on, "train", rank=0, world_size=1)}
    assert plain.keys() == std.keys()
    for key, x in plain.items():
        torch.testing.assert_close(std[key], torch.from_numpy(standardize_features(x.numpy())))
    # training batches sample frames of the standardised video (statistics over all its frames)
    batch = next(iter(make_train_loader(on, rank=0, world_size=1, epoch=0, seed=0)))
    full = std[batch.keys[0]]
    idx = batch.frame_idx[0][batch.mask[0]]
    torch.testing.assert_close(batch.features[0][batch.mask[0]], full[idx])
