"""VASOT loss: the batched ASOT solve equals separate solves, the total, gradients, preference, decoding."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from loss_helpers import (
    assert_same_gradients,
    loop_soft_ce,
    ordered_and_shuffled_pair,
    pad_batch,
    padded_step,
    unit,
)

from vasot_dist.config.methods import SegmentSolve, VAOTConfig, VASOTConfig
from vasot_dist.losses import VAOTLoss, VASOTLoss
from vasot_dist.ot import align_fgw, segment_asot

D, K = 8, 3


def test_batched_asot_equals_separate_solves_and_total_and_gradients_match():
    gen = torch.Generator().manual_seed(0)
    lengths = [10, 7, 5, 9]  # pairs (10, 7) and (5, 9), padded to T = 12
    videos = [unit(n, D, gen=gen) for n in lengths]
    settings = VASOTConfig(segment=SegmentSolve(temporal_prior=0.25), beta=0.7)
    loss_fn = VASOTLoss(settings, num_actions=K, embed_dim=D)
    with torch.no_grad():
        loss_fn.prototypes.weight.copy_(torch.randn(K, D, generator=gen))
    out, emb, leaves = padded_step(loss_fn, videos, 12)
    assert loss_fn.prototypes.weight.grad.abs().sum() > 0

    # independent: four separate unpadded ASOT solves, two separate alignment solves, CE by loops
    weight = loss_fn.prototypes.weight.detach().clone().requires_grad_()
    protos = F.normalize(weight, dim=-1)
    seg_kw = dataclasses.asdict(settings.segment)
    seg = []
    for v in leaves:
        plan = segment_asot((1 - v @ protos.T).detach().unsqueeze(0), **seg_kw)[0]
        seg.append((plan, v @ protos.T / 0.1))
    seg_x, seg_y = loop_soft_ce(seg[0::2]), loop_soft_ce(seg[1::2])
    align_kw = dataclasses.asdict(settings.align)
    pairs = []
    for p in range(2):
        x, y = leaves[2 * p], leaves[2 * p + 1]
        pairs.append((align_fgw((1 - x @ y.T).detach().unsqueeze(0), **align_kw)[0], x @ y.T / 0.1))
    align = loop_soft_ce(pairs)
    ref = seg_x + seg_y + 0.7 * align
    ref.backward()
    assert out.metrics["seg/ce_x"].item() == pytest.approx(seg_x.item(), abs=1e-5)
    assert out.metrics["seg/ce_y"].item() == pytest.approx(seg_y.item(), abs=1e-5)
    assert out.metrics["align/loss"].item() == pytest.approx(align.item(), abs=1e-5)
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-5)
    assert_same_gradients(emb, leaves)
    assert torch.allclose(loss_fn.prototypes.weight.grad, weight.grad, atol=1e-5)
    assert torch.allclose(out.couplings["seg"][0, :10], seg[0][0], atol=1e-6)


def test_alignment_term_is_vaot_with_the_virtual_frame_prepended():
    gen = torch.Generator().manual_seed(1)
    x = unit(12, 16, gen=gen)
    emb, mask = pad_batch([x, x])
    out = VASOTLoss(num_actions=K, embed_dim=16)(emb, mask)
    # the reference appends the virtual column and drops column 0: labels would shift by one
    assert out.couplings["align"][0].argmax(-1).tolist() == list(range(12))
    vaot = VAOTLoss(VAOTConfig(align=VASOTConfig().align))
    assert out.metrics["align/loss"].item() == pytest.approx(vaot(emb, mask).loss.item(), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefers_aligned_pairs_to_pairs_with_y_shuffled_in_time(seed):
    x, y, y_shuffled, protos = ordered_and_shuffled_pair(torch.Generator().manual_seed(seed))
    loss_fn = VASOTLoss(num_actions=4, embed_dim=16)
    with torch.no_grad():
        loss_fn.prototypes.weight.copy_(protos)
    assert loss_fn(*pad_batch([x, y])).loss < loss_fn(*pad_batch([x, y_shuffled])).loss


def test_segment_decodes_each_video_with_asot_at_the_decode_settings():
    gen = torch.Generator().manual_seed(3)
    videos = [unit(10, D, gen=gen), unit(6, D, gen=gen), unit(8, D, gen=gen)]  # any count: no pairing needed
    emb, mask = pad_batch(videos)
    loss_fn = VASOTLoss(num_actions=K, embed_dim=D)
    protos = loss_fn.prototypes().detach()
    labels = loss_fn.segment(emb, mask)
    for b, v in enumerate(videos):
        plan = segment_asot((1 - v @ protos.T).unsqueeze(0), **dataclasses.asdict(loss_fn.settings.decode))[0]
        assert labels[b, : v.shape[0]].tolist() == plan.argmax(-1).tolist()
        assert (labels[b, v.shape[0] :] == -1).all()


def test_odd_batch_is_refused_before_any_solve():
    loss_fn = VASOTLoss(num_actions=6, embed_dim=16)
    with pytest.raises(ValueError, match="even batch"):
        loss_fn(torch.zeros(3, 4, 16), torch.ones(3, 4, dtype=torch.bool))
