from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from vasot_dist.data import VideoAugment
from vasot_dist.data.augment import AugmentParams, apply_augment


def _clip(t=6, s=2, h=12, w=16, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, s, h, w, 3), dtype=np.uint8)


def test_same_transform_for_every_frame():
    frame = _clip(1, 1)[0, 0]
    video = np.broadcast_to(frame, (5, 2) + frame.shape).copy()  # (T, S, H, W, 3), all frames equal
    changed = 0
    for seed in range(10):
        out = VideoAugment()(video, np.random.default_rng(seed))
        assert out.shape == video.shape and out.dtype == np.uint8
        flat = out.reshape((-1,) + frame.shape)
        assert all(np.array_equal(flat[0], f) for f in flat[1:])
        changed += not np.array_equal(flat[0], frame)
    assert changed == 10


@pytest.mark.parametrize("hw,tol", [((12, 16), 1), ((96, 128), 2)])  # large frames: subsampled mean grey
@pytest.mark.parametrize("params", [
    AugmentParams(1.1, 0.6, True, False),
    AugmentParams(0.9, 1.4, False, True),
    AugmentParams(1.12, 1.5, True, True),
    AugmentParams(0.88, 0.5, False, False),
])
def test_matches_torchvision(params, hw, tol):
    video = _clip(3, 2, *hw)
    ours = apply_augment(video, params)
    x = torch.from_numpy(video.reshape((-1,) + video.shape[-3:])).permute(0, 3, 1, 2)  # (F, 3, H, W)
    ops = [lambda v: TF.adjust_brightness(v, params.brightness), lambda v: TF.adjust_contrast(v, params.contrast)]
    for op in (ops if params.brightness_first else ops[::-1]):
        x = op(x)
    if params.flip:
        x = TF.hflip(x)
    ref = x.permute(0, 2, 3, 1).reshape(video.shape).numpy()
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= tol and diff.mean() < 0.25


def test_flip_probability_extremes():
    video = _clip()
    flipped = VideoAugment(0.0, 0.0, flip_p=1.0)(video, np.random.default_rng(0))
    np.testing.assert_array_equal(flipped, video[..., ::-1, :])
    same = VideoAugment(0.0, 0.0, flip_p=0.0)(video, np.random.default_rng(0))
    np.testing.assert_array_equal(same, video)


def test_factor_ranges_and_seeding():
    aug = VideoAugment()
    draws = [aug.draw(np.random.default_rng(s)) for s in range(300)]
    b = np.array([d.brightness for d in draws])
    c = np.array([d.contrast for d in draws])
    assert b.min() >= 1 - 32 / 255 and b.max() <= 1 + 32 / 255 and b.std() > 0.05
    assert c.min() >= 0.5 and c.max() <= 1.5 and c.std() > 0.2
    assert 0.35 < np.mean([d.flip for d in draws]) < 0.65
    assert 0.35 < np.mean([d.brightness_first for d in draws]) < 0.65
    assert aug.draw(np.random.default_rng(4)) == aug.draw(np.random.default_rng(4))


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        VideoAugment()(np.zeros((2, 4, 4, 3), np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match="brightness"):
        VideoAugment(brightness=1.5)
