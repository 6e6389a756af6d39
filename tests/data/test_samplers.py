from __future__ import annotations

import numpy as np
import pytest

from vasot_dist.data import AllFramesSampler, BinSampler, RandomSampler, context_indices, make_sampler


def _linspace_bins(num_frames: int, n: int) -> list[tuple[int, int]]:
    """Independent bin edges: floor of np.linspace(0, N, n + 1) (ASOT's partition)."""
    e = np.floor(np.linspace(0, num_frames, n + 1) + 1e-9).astype(int)
    return list(zip(e[:-1], e[1:]))


@pytest.mark.parametrize("num_frames,n", [(8, 8), (9, 8), (37, 8), (100, 7), (256, 32), (1000, 1)])
def test_bins_one_index_per_bin(num_frames, n):
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx, valid = BinSampler(n)(num_frames, rng)
        assert idx.dtype == np.int64 and idx.shape == (n,) and valid.all()
        assert np.all(np.diff(idx) > 0)
        for lo, hi in _linspace_bins(num_frames, n):
            assert ((idx >= lo) & (idx < hi)).sum() == 1


def test_bins_reach_every_frame_of_a_bin():
    rng = np.random.default_rng(1)
    draws = np.stack([BinSampler(3)(10, rng)[0] for _ in range(400)])
    for b, (lo, hi) in enumerate(_linspace_bins(10, 3)):
        assert set(draws[:, b].tolist()) == set(range(lo, hi))


@pytest.mark.parametrize("sampler", [BinSampler(8), RandomSampler(8)])
def test_short_video_padded_and_masked(sampler):
    idx, valid = sampler(5, np.random.default_rng(0))
    assert idx.tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    assert valid.tolist() == [True] * 5 + [False] * 3


def test_random_sampler_distinct_sorted_in_range():
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(50):
        idx, valid = RandomSampler(6)(20, rng)
        assert valid.all() and np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < 20
        seen.update(idx.tolist())
    assert seen == set(range(20))


@pytest.mark.parametrize("sampler", [BinSampler(16), RandomSampler(16)])
def test_reproducible_per_seed(sampler):
    a = [sampler(300, np.random.default_rng(7))[0] for _ in range(2)]
    b = sampler(300, np.random.default_rng(8))[0]
    np.testing.assert_array_equal(a[0], a[1])
    assert not np.array_equal(a[0], b)


def test_all_frames_sampler():
    idx, valid = AllFramesSampler()(7)
    assert idx.tolist() == list(range(7)) and valid.all()
    assert AllFramesSampler(stride=3)(10)[0].tolist() == [0, 3, 6, 9]
    thin = AllFramesSampler(max_frames=5)(101)[0]
    assert thin.tolist() == [0, 25, 50, 75, 100]
    assert AllFramesSampler(max_frames=50)(10)[0].tolist() == list(range(10))


def test_context_indices_formula():
    idx = np.array([0, 3, 14, 15, 40])
    for s_count, stride in [(1, 15), (2, 15), (3, 4), (4, 0)]:
        out = context_indices(idx, s_count, stride)
        assert out.shape == (5, s_count) and out.dtype == np.int64
        for t in range(5):
            for s in range(s_count):
                assert out[t, s] == max(0, idx[t] - stride * (s_count - 1 - s))
        np.testing.assert_array_equal(out[:, -1], idx)


@pytest.mark.parametrize("call,match", [
    (lambda: BinSampler(0), "n >= 1"),
    (lambda: BinSampler(4)(0, np.random.default_rng()), "num_frames"),
    (lambda: make_sampler("uniform", 4), "data.sampler"),
    (lambda: context_indices(np.zeros((2, 2)), 2, 1), "1-D"),
    (lambda: context_indices(np.zeros(2), 0, 1), "num_context"),
    (lambda: AllFramesSampler(stride=0), "stride"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_make_sampler():
    assert isinstance(make_sampler("bins", 4), BinSampler)
    assert isinstance(make_sampler("tcc", 4), RandomSampler)
