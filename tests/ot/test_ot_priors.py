"""Structured prior products (prefix-sum box filters, FFT Laplace kernels) against dense matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ot_dense import band_matrix, ca_dense, cv_dense, cy_dense, laplace_dense, temporal_prior_dense, to_np

from vasot_dist.ot import (
    band_sum,
    band_width,
    laplace_kernel_apply,
    mult_ca,
    mult_cv,
    mult_cy,
    temporal_prior,
)
from vasot_dist.ot.priors import apply_band, band_sum_and_total, band_total, make_band


@pytest.mark.parametrize(
    ("n", "radius"),
    [(100, 0.29), (100, 0.07), (57, 0.04), (10, 1.0), (1, 0.5), (5, 0.01), (2, 0.5), (33, 0.5)],
)
def test_band_width_matches_python_int(n, radius):
    # 100 * 0.29 = 28.999999999999996 -> 28 in the reference's int(N * r)
    assert int(band_width(torch.tensor([n]), radius)) == int(n * radius)


@pytest.mark.parametrize(("n", "m", "radius"), [(40, 7, 0.1), (16, 3, 1.0), (1, 4, 0.5), (9, 1, 0.3), (30, 5, 0.02)])
def test_mult_cv_and_ca_equal_dense(n, m, radius):
    t = torch.rand(3, n, m, dtype=torch.float64)
    expected = np.stack([cv_dense(n, radius) @ x @ ca_dense(m) for x in to_np(t)])
    np.testing.assert_allclose(to_np(mult_cv(mult_ca(t), radius)), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(mult_ca(t)), to_np(t) @ ca_dense(m), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("n", "m", "radius"), [(12, 20, 0.1), (5, 8, 1.0), (3, 1, 0.5), (7, 33, 0.02)])
def test_mult_cy_equals_dense_including_diagonal(n, m, radius):
    t = torch.rand(2, n, m, dtype=torch.float64)
    expected = np.stack([x @ cy_dense(m, radius) for x in to_np(t)])
    np.testing.assert_allclose(to_np(mult_cy(t, radius)), expected, rtol=1e-10, atol=1e-12)
    assert cy_dense(m, radius)[0, 0] == 1.0  # the diagonal is penalised, as VAOT codes it


def test_masked_products_equal_each_problem_alone():
    radius = 0.2
    lengths = [23, 11, 1, 0]
    n, m = 23, 6
    t = torch.rand(len(lengths), n, m, dtype=torch.float64)
    mask = torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]
    mask_y = torch.ones(len(lengths), m, dtype=torch.bool)
    mask_y[1, 4:] = False
    cv = to_np(mult_cv(t, radius, mask))
    cy = to_np(mult_cy(t, radius, mask_y))
    for b, length in enumerate(lengths):
        alone = to_np(t[b, :length])
        if length:
            np.testing.assert_allclose(cv[b, :length], cv_dense(length, radius) @ alone, rtol=1e-10, atol=1e-12)
        assert np.all(cv[b, length:] == 0)  # masked rows carry nothing
    my = int(mask_y[1].sum())
    np.testing.assert_allclose(cy[1, :, :my], to_np(t[1, :, :my]) @ cy_dense(my, radius), rtol=1e-10, atol=1e-12)
    assert np.all(cy[1, :, my:] == 0)


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("width", [1, 3, 16, 19])
def test_band_sums_by_shifted_reads_equal_dense(monkeypatch, dim, width):
    """Inside a compiled graph a small host-known width is summed by shifted reads of a padded copy (19: clipped to
    the length - 1, above the direct path's limit, by prefix sums); run here eagerly, as if compiling."""
    t = torch.rand(2, 20, 20, dtype=torch.float64)
    band = make_band(width, 20, dim)
    expected = apply_band(t, band)  # prefix sums
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    dense = band_matrix(20, min(width, 19))
    ref = np.stack([dense @ x if dim == 1 else x @ dense for x in to_np(t)])
    np.testing.assert_allclose(to_np(apply_band(t, band)), ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(to_np(expected), ref, rtol=1e-10, atol=1e-12)
    band_part, total = band_sum_and_total(t, band)
    np.testing.assert_allclose(to_np(band_part), ref, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(total, t.sum(dim=dim, keepdim=True))
    torch.testing.assert_close(band_total(t, band), t.sum(dim=dim, keepdim=True))


def test_band_sum_leading_padding_equals_alone():
    t = torch.rand(1, 15, 3, dtype=torch.float64)
    t[:, :4] = 0.0  # padding in front of a contiguous block
    out = band_sum(t, torch.tensor([2]), dim=1)
    np.testing.assert_allclose(to_np(out[0, 4:]), band_matrix(11, 2) @ to_np(t[0, 4:]), atol=1e-12)


def test_band_sum_large_width_and_float32_accuracy():
    t = torch.rand(1, 5000, 4)
    out = band_sum(t, torch.tensor([1234]), dim=1)
    ref = torch.from_numpy(band_matrix(5000, 1234) @ t[0].double().numpy())
    assert torch.allclose(out[0].double(), ref, rtol=1e-5)


def test_temporal_prior_equals_reference_formula_and_masks():
    r = temporal_prior(3, 9, 4)
    assert r.shape == (3, 9, 4)  # without masks: one (9, 4) matrix expanded over the batch
    for b in range(3):
        np.testing.assert_allclose(to_np(r[b]), temporal_prior_dense(9, 4), atol=1e-7)
    mask = torch.tensor([[True] * 6 + [False] * 3])
    r = temporal_prior(1, 9, 4, mask, dtype=torch.float64)
    np.testing.assert_allclose(to_np(r[0, :6]), temporal_prior_dense(6, 4), atol=1e-14)
    assert torch.all(r[0, 6:] == 0)


@pytest.mark.parametrize(("n", "radius"), [(1, 0.3), (2, 0.5), (17, 0.1), (64, 1.0), (100, 0.01)])
def test_laplace_kernel_fft_equals_dense(n, radius):
    x = torch.rand(2, n, 3, dtype=torch.float64)
    scale = torch.full((2,), n * radius, dtype=torch.float64)
    expected = np.stack([laplace_dense(n, radius) @ v for v in to_np(x)])
    np.testing.assert_allclose(to_np(laplace_kernel_apply(x, scale, dim=1)), expected, rtol=1e-9, atol=1e-12)
    # along the last axis: x K^T = x K (symmetric)
    y = torch.rand(2, 3, n, dtype=torch.float64)
    expected = np.stack([v @ laplace_dense(n, radius) for v in to_np(y)])
    np.testing.assert_allclose(to_np(laplace_kernel_apply(y, scale, dim=2)), expected, rtol=1e-9, atol=1e-12)


def test_band_sum_rejects_bad_dim():
    with pytest.raises(ValueError, match="dim"):
        band_sum(torch.rand(1, 3, 3), torch.tensor([1]), dim=0)
