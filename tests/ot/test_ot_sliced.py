"""sliced_wasserstein against POT; CLOT's circular SW cost against a brute-force loop."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch
from ot_dense import to_np

from vasot_dist.ot import circular_sw_cost, sliced_wasserstein


@pytest.mark.parametrize(("n", "m", "p"), [(20, 20, 2), (13, 7, 2), (9, 30, 1), (1, 5, 2)])
def test_sliced_wasserstein_matches_pot(n, m, p):
    g = torch.Generator().manual_seed(n + m)
    x = torch.randn(3, n, 5, generator=g, dtype=torch.float64)
    y = torch.randn(3, m, 5, generator=g, dtype=torch.float64) + 0.5
    proj = torch.randn(5, 40, generator=g, dtype=torch.float64)
    proj = proj / proj.norm(dim=0, keepdim=True)
    sw = sliced_wasserstein(x, y, projections=proj, p=p)
    for i in range(3):
        ref = ot.sliced_wasserstein_distance(to_np(x[i]), to_np(y[i]), projections=to_np(proj), p=p)
        assert float(sw[i]) == pytest.approx(float(ref), rel=1e-10)


def test_sliced_wasserstein_masks_drop_padding_and_random_projections_are_seeded():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 10, 3, generator=g, dtype=torch.float64)
    y = torch.randn(2, 8, 3, generator=g, dtype=torch.float64)
    mask_x = torch.ones(2, 10, dtype=torch.bool)
    mask_x[1, 6:] = False
    proj = torch.nn.functional.normalize(torch.randn(3, 25, generator=g, dtype=torch.float64), dim=0)
    sw = sliced_wasserstein(x, y, p=2, projections=proj, mask_x=mask_x)
    alone = sliced_wasserstein(x[1:, :6], y[1:], p=2, projections=proj)
    assert float(sw[1]) == pytest.approx(float(alone[0]), rel=1e-12)
    a = sliced_wasserstein(x, y, p=2, n_projections=30, generator=torch.Generator().manual_seed(5))
    b = sliced_wasserstein(x, y, p=2, n_projections=30, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert float(sliced_wasserstein(x, x, p=2, n_projections=10)[0]) == pytest.approx(0.0, abs=1e-12)


def test_circular_sw_cost_equals_brute_force_without_sorting():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(2, 11, 6, generator=g, dtype=torch.float64), dim=-1)
    a = torch.nn.functional.normalize(torch.randn(4, 6, generator=g, dtype=torch.float64), dim=-1)
    theta = torch.randn(30, 6, generator=g, dtype=torch.float64)
    cost = circular_sw_cost(x, a, projections=theta, radius=2.0)
    theta_n = to_np(theta) / np.linalg.norm(to_np(theta), axis=1, keepdims=True)
    for b in range(2):
        for i in range(11):
            for j in range(4):
                gx = np.array([np.linalg.norm(to_np(x[b, i]) - 2.0 * t) for t in theta_n])
                ga = np.array([np.linalg.norm(to_np(a[j]) - 2.0 * t) for t in theta_n])
                expected = np.linalg.norm(gx / np.linalg.norm(gx) - ga / np.linalg.norm(ga))
                assert float(cost[b, i, j]) == pytest.approx(expected, rel=1e-9)
    # row i stays frame i: permuting the frames permutes the rows (the released gsw.py sorts and breaks this)
    perm = torch.randperm(11, generator=g)
    torch.testing.assert_close(circular_sw_cost(x[:, perm], a, projections=theta, radius=2.0), cost[:, perm])
    assert circular_sw_cost(x, a.expand(2, 4, 6), n_projections=150, radius=2.0).shape == (2, 11, 4)


def test_validation():
    with pytest.raises(ValueError, match="share B and D"):
        sliced_wasserstein(torch.rand(2, 4, 3), torch.rand(2, 4, 2), p=2, n_projections=5)
    with pytest.raises(ValueError, match="projections"):
        sliced_wasserstein(torch.rand(1, 4, 3), torch.rand(1, 4, 3), p=2, projections=torch.rand(2, 5))
    with pytest.raises(ValueError, match="a must have shape"):
        circular_sw_cost(torch.rand(1, 4, 3), torch.rand(5, 2), radius=2.0, n_projections=5)
    with pytest.raises(ValueError, match="radius"):
        circular_sw_cost(torch.rand(1, 4, 3), torch.rand(5, 3), radius=0.0, n_projections=5)
