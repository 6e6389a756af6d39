"""ASOT loss: value and gradient against an independent computation, padding, preferences, decoding."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from loss_helpers import (
    assert_same_gradients,
    loop_soft_ce,
    pad_batch,
    padded_step,
    segment_video,
    unit,
)

from vasot_dist.config.methods import ASOTConfig, SegmentSolve
from vasot_dist.losses import ASOTLoss
from vasot_dist.ot import segment_asot

D, K = 8, 3


def _settings_kwargs(s: SegmentSolve) -> dict:
    return dataclasses.asdict(s)


def test_value_and_gradients_equal_the_ce_of_a_constant_plan_solved_per_video():
    gen = torch.Generator().manual_seed(0)
    videos = [unit(9, D, gen=gen), unit(6, D, gen=gen), unit(4, D, gen=gen)]
    loss_fn = ASOTLoss(num_actions=K, embed_dim=D)
    with torch.no_grad():
        loss_fn.prototypes.weight.copy_(torch.randn(K, D, generator=gen))
    out, emb, leaves = padded_step(loss_fn, videos, 11)
    assert loss_fn.prototypes.weight.grad is not None and loss_fn.prototypes.weight.grad.abs().sum() > 0

    # independent: each video solved alone (no padding), plan held constant, CE written row by row
    weight = loss_fn.prototypes.weight.detach().clone().requires_grad_()
    protos = F.normalize(weight, dim=-1)
    pairs = []
    for v in leaves:
        plan = segment_asot(
            (1 - v @ protos.T).detach().unsqueeze(0), **_settings_kwargs(loss_fn.settings.segment)
        )[0]
        pairs.append((plan, v @ protos.T / 0.1))
    ref = loop_soft_ce(pairs)
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-5)
    assert_same_gradients(emb, leaves)
    assert torch.allclose(loss_fn.prototypes.weight.grad, weight.grad, atol=1e-5)
    assert torch.allclose(out.couplings["asot"][0, :9], pairs[0][0], atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefers_prototypes_that_match_the_segments_in_temporal_order(seed):
    gen = torch.Generator().manual_seed(seed)
    protos = unit(K + 1, 16, gen=gen)
    videos = [segment_video([6, 6, 6, 6], protos, 0.3, gen), segment_video([3, 7, 4, 6], protos, 0.3, gen)]
    emb, mask = pad_batch(videos)
    loss_fn = ASOTLoss(num_actions=K + 1, embed_dim=16)

    def loss_with(p: torch.Tensor) -> float:
        with torch.no_grad():
            loss_fn.prototypes.weight.copy_(p)
        return loss_fn(emb, mask).loss.item()

    matched = loss_with(protos)
    permuted = loss_with(protos[torch.tensor([2, 0, 3, 1])])  # same set, order against the temporal prior
    random = loss_with(unit(K + 1, 16, gen=gen))
    assert matched < permuted and matched < random


def test_segment_decodes_with_the_decode_settings_and_marks_padding():
    gen = torch.Generator().manual_seed(3)
    videos = [unit(12, D, gen=gen), unit(7, D, gen=gen)]
    emb, mask = pad_batch(videos)
    loss_fn = ASOTLoss(num_actions=K, embed_dim=D)
    protos = loss_fn.prototypes().detach()
    labels = loss_fn.segment(emb, mask)
    ev = loss_fn.settings.decode
    assert (ev.eps, ev.alpha, ev.lambda_actions) == (0.04, 0.6, 0.01)
    for b, v in enumerate(videos):
        plan = segment_asot((1 - v @ protos.T).unsqueeze(0), **_settings_kwargs(ev))[0]
        assert labels[b, : v.shape[0]].tolist() == plan.argmax(-1).tolist()
    assert (labels[1, 7:] == -1).all()


def test_training_and_decoding_solves_are_independent():
    """The paper's "balanced (train)" ablation decodes unbalanced: only ``segment`` turns balanced.

    Frames near two of three prototypes: the unbalanced decoding leaves the third action unused, a balanced
    decoding (the flag copied from training) would have to give it frames.
    """
    gen = torch.Generator().manual_seed(4)
    protos = unit(3, D, gen=gen)
    videos = [segment_video([6, 6], protos[:2], 0.2, gen), segment_video([5, 7], protos[:2], 0.2, gen)]
    emb, mask = pad_batch(videos)
    settings = ASOTConfig(segment=SegmentSolve(unbalanced_actions=False, alpha=0.0))
    loss_fn = ASOTLoss(settings, num_actions=3, embed_dim=D)
    with torch.no_grad():
        loss_fn.prototypes.weight.copy_(protos)
    assert settings.decode == ASOTConfig().decode
    out = loss_fn(emb, mask)
    plan = segment_asot((1 - videos[0] @ protos.T).unsqueeze(0), **_settings_kwargs(settings.segment))[0]
    assert torch.allclose(out.couplings["asot"][0], plan, atol=1e-6)
    labels = loss_fn.segment(emb, mask)
    assert labels.max() == 1  # decoded unbalanced: the unused action stays unused
    balanced = dataclasses.replace(settings.decode, unbalanced_actions=False, alpha=0.0)
    plans = [segment_asot((1 - v @ protos.T).unsqueeze(0), **_settings_kwargs(balanced))[0] for v in videos]
    assert max(p.argmax(-1).max().item() for p in plans) == 2  # what copying the training flags would decode
