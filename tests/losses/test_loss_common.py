"""Shared loss pieces against loop / dense / hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from loss_helpers import loop_soft_ce, pad_batch, unit

from vasot_dist.losses import ASOTLoss
from vasot_dist.losses.common import (
    check_batch,
    contrastive_idm,
    cosine_cost,
    masked_argmax_labels,
    pair_targets,
    plan_contrastive,
    soft_cross_entropy,
    split_pairs,
    squared_distances,
)
from vasot_dist.ot import sinkhorn


def test_soft_cross_entropy_matches_row_loop_with_row_and_column_masks():
    gen = torch.Generator().manual_seed(0)
    n, k = [5, 3], [4, 2]  # real rows and real columns per problem
    targets = [torch.rand(n[b], k[b], generator=gen) for b in range(2)]
    logits = [torch.randn(n[b], k[b], generator=gen) for b in range(2)]
    t = torch.zeros(2, 5, 4)
    z = torch.full((2, 5, 4), 7.0)  # padding holds large values that must not leak into the softmax
    for b in range(2):
        t[b, : n[b], : k[b]] = targets[b]
        z[b, : n[b], : k[b]] = logits[b]
    row = torch.arange(5).unsqueeze(0) < torch.tensor(n).unsqueeze(1)
    col = torch.arange(4).unsqueeze(0) < torch.tensor(k).unsqueeze(1)
    got = soft_cross_entropy(t, z, row, col)
    assert torch.allclose(got, loop_soft_ce(list(zip(targets, logits))), atol=1e-6)
    weights = [torch.rand(n[b], generator=gen) for b in range(2)]
    w = torch.zeros(2, 5)
    for b in range(2):
        w[b, : n[b]] = weights[b]
    got_w = soft_cross_entropy(t, z, row, col, row_weights=w)
    assert torch.allclose(got_w, loop_soft_ce(list(zip(targets, logits)), weights), atol=1e-6)


def test_soft_cross_entropy_holds_the_target_constant():
    gen = torch.Generator().manual_seed(1)
    target = torch.rand(1, 3, 4, generator=gen).requires_grad_()
    logits = torch.randn(1, 3, 4, generator=gen).requires_grad_()
    soft_cross_entropy(target, logits, torch.ones(1, 3, dtype=torch.bool)).backward()
    assert target.grad is None
    # d/dz of -sum t log softmax(z) = softmax(z) * sum(t) - t, divided by the 3 rows
    expected = (torch.softmax(logits, -1) * target.sum(-1, keepdim=True) - target) / 3
    assert torch.allclose(logits.grad, expected.detach(), atol=1e-6)


def test_soft_cross_entropy_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        soft_cross_entropy(torch.zeros(1, 2, 3), torch.zeros(1, 2, 4), torch.ones(1, 2, dtype=torch.bool))


def test_cosine_cost_and_squared_distances_against_dense_formulas():
    gen = torch.Generator().manual_seed(2)
    x, y = unit(2, 4, 3, gen=gen), unit(2, 5, 3, gen=gen)
    assert torch.allclose(cosine_cost(x, y), 1 - torch.einsum("bnd,bmd->bnm", x, y), atol=1e-6)
    a = torch.randn(2, 4, 3, generator=gen)
    c = torch.randn(2, 5, 3, generator=gen)
    assert torch.allclose(squared_distances(a, c), torch.cdist(a, c) ** 2, atol=1e-5)


def test_split_pairs_layout_and_odd_batch_error():
    emb = torch.arange(4.0).view(4, 1, 1)
    mask = torch.ones(4, 1, dtype=torch.bool)
    x, _, y, _ = split_pairs(emb, mask)
    assert x.flatten().tolist() == [0.0, 2.0] and y.flatten().tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="even batch"):
        split_pairs(emb[:3], mask[:3])


def test_check_batch_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"emb must be .*\(B, T, D\)"):
        check_batch(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be a bool"):
        check_batch(torch.zeros(2, 3, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match="mask must be a bool"):
        check_batch(torch.zeros(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))


def test_pair_targets_rescale_the_transpose_to_unit_rows():
    gen = torch.Generator().manual_seed(3)
    x, y = unit(1, 6, 4, gen=gen), unit(1, 9, 4, gen=gen)
    raw = sinkhorn(cosine_cost(x, y), eps=0.1, n_iters=2000, tol=1e-10)  # marginals 1/6 and 1/9
    mx, my = torch.ones(1, 6, dtype=torch.bool), torch.ones(1, 9, dtype=torch.bool)
    t_xy, t_yx = pair_targets(raw * 6, mx, my, virtual=False)
    assert torch.allclose(t_xy.sum(-1), torch.ones(1, 6), atol=1e-5)
    assert torch.allclose(t_yx.sum(-1), torch.ones(1, 9), atol=1e-5)
    # with a virtual frame the solver scale is n + 1: columns of the raw plan carry 1/(m+1)
    raw_v = sinkhorn(
        torch.nn.functional.pad(cosine_cost(x, y), (1, 0, 1, 0), value=0.5), eps=0.1, n_iters=2000, tol=1e-10
    )
    plan = raw_v[:, 1:, 1:] * 7
    _, t_yx_v = pair_targets(plan, mx, my, virtual=True)
    assert torch.allclose(t_yx_v, raw_v[:, 1:, 1:].transpose(1, 2) * 10, atol=1e-6)


def _idm_loop(v: torch.Tensor, window: float, margin: float) -> float:
    n = v.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            d = float(((v[i] - v[j]) ** 2).sum())
            gap = abs(i - j) / n
            if gap <= window + 1e-9:
                total += d
            else:
                total += (1 + gap**2) * max(0.0, margin - d)
    return total / n**2


def test_contrastive_idm_matches_lav_formula_by_loop_and_ignores_padding():
    gen = torch.Generator().manual_seed(4)
    videos = [unit(7, 3, gen=gen), unit(4, 3, gen=gen)]
    emb, mask = pad_batch(videos, 9)
    got = contrastive_idm(emb, mask, window=0.2, margin=2.0)
    for b, v in enumerate(videos):
        assert got[b].item() == pytest.approx(_idm_loop(v, 0.2, 2.0), abs=1e-5)


def test_contrastive_idm_hand_case():
    # three frames at positions 0, 1/3, 2/3 with window 1/3: pairs (0,1), (1,2) pull, (0,2) pushes with weight 1 + 4/9
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    d01, d02 = 2.0, 0.0
    expected = (2 * d01 + 2 * d01 + 2 * (1 + 4 / 9) * (2.0 - d02)) / 9
    got = contrastive_idm(v.unsqueeze(0), torch.ones(1, 3, dtype=torch.bool), window=1 / 3, margin=2.0)
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_plan_contrastive_hand_case():
    # plan rows: x0 best y1 worst y0; x1 best y0 worst y1; columns: y0 best x1 worst x0; y1 best x0 worst x1
    plan = torch.tensor([[[0.1, 0.4], [0.3, 0.2]]])
    dist = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    ones = torch.ones(1, 2, dtype=torch.bool)
    d_best = (2.0 + 3.0) / 2 + (3.0 + 2.0) / 2
    d_worst = (1.0 + 4.0) / 2 + (1.0 + 4.0) / 2
    got = plan_contrastive(dist, plan, ones, ones, temperature=0.5)
    assert got.item() == pytest.approx(math.log1p(math.exp((d_best - d_worst) / 0.5)), abs=1e-6)
    # row weights (0, 1) keep x1 only; column weights (1, 0) keep y0 only
    got_w = plan_contrastive(
        dist,
        plan,
        ones,
        ones,
        temperature=0.5,
        row_weights=torch.tensor([[0.0, 1.0]]),
        col_weights=torch.tensor([[1.0, 0.0]]),
    )
    assert got_w.item() == pytest.approx(math.log1p(math.exp(((3.0 + 3.0) - (4.0 + 1.0)) / 0.5)), abs=1e-6)


def test_plan_contrastive_ignores_padded_columns():
    plan = torch.tensor([[[0.1, 0.4, 0.0], [0.3, 0.2, 0.0]]])  # the padded column holds the global minimum
    dist = torch.tensor([[[1.0, 2.0, 100.0], [3.0, 4.0, 100.0]]])
    mx = torch.ones(1, 2, dtype=torch.bool)
    my = torch.tensor([[True, True, False]])
    ones = torch.ones(1, 2, dtype=torch.bool)
    ref = plan_contrastive(dist[:, :, :2], plan[:, :, :2], ones, ones, temperature=0.5)
    assert torch.allclose(plan_contrastive(dist, plan, mx, my, temperature=0.5), ref)


def test_masked_argmax_labels_marks_padding():
    plan = torch.tensor([[[0.2, 0.8], [0.9, 0.1], [0.5, 0.6]]])
    mask = torch.tensor([[True, True, False]])
    assert masked_argmax_labels(plan, mask).tolist() == [[1, 0, -1]]


def test_owned_prototypes_are_reachable_and_registered():
    loss = ASOTLoss(num_actions=3, embed_dim=8)
    assert loss.prototypes is not None and loss.prototypes.weight.shape == (3, 8)
    assert "prototypes.weight" in dict(loss.named_parameters())
