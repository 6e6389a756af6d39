"""ASOT loss: value and gradient against an independent computation, padding, preferences, decoding."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from loss_helpers import loop_soft_ce, pad_batch, segment_video, unit

from vasot_dist.config.schema import RunConfig
from vasot_dist.losses import ASOTLoss, ASOTSettings
from vasot_dist.ot import segment_asot

D, K = 8, 3


def _settings_kwargs(s: ASOTSettings) -> dict:
    return dataclasses.asdict(s)


def test_value_and_gradients_equal_the_ce_of_a_constant_plan_solved_per_video():
    gen = torch.Generator().manual_seed(0)
    videos = [unit(9, D, gen=gen), unit(6, D, gen=gen), unit(4, D, gen=gen)]
    emb, mask = pad_batch(videos, 11)
    emb.requires_grad_()
    loss_fn = ASOTLoss(K, D)
    with torch.no_grad():
        loss_fn.prototypes.weight.copy_(torch.randn(K, D, generator=gen))
    out = loss_fn(emb, mask)
    out.loss.backward()

    assert torch.isfinite(out.loss) and torch.isfinite(emb.grad).all()
    assert not out.couplings["asot"].requires_grad
    assert emb.grad[~mask].abs().max() == 0  # padded frames get no gradient
    assert loss_fn.prototypes.weight.grad is not None and loss_fn.prototypes.weight.grad.abs().sum() > 0

    # independent: each video solved alone (no padding), plan held constant, CE written row by row
    weight = loss_fn.prototypes.weight.detach().clone().requires_grad_()
    leaves = [v.clone().requires_grad_() for v in videos]
    protos = F.normalize(weight, dim=-1)
    pairs = []
    for v in leaves:
        plan = segment_asot(
            (1 - v @ protos.T).detach().unsqueeze(0), **_settings_kwargs(loss_fn.train_settings)
        )[0]
        pairs.append((plan, v @ protos.T / 0.1))
    ref = loop_soft_ce(pairs)
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-5)
    for b, v in enumerate(leaves):
        assert torch.allclose(emb.grad[b, : v.shape[0]], v.grad, atol=1e-5)
    assert torch.allclose(loss_fn.prototypes.weight.grad, weight.grad, atol=1e-5)
    assert torch.allclose(out.couplings["asot"][0, :9], pairs[0][0], atol=1e-6)


def test_padding_does_not_change_the_loss():
    gen = torch.Generator().manual_seed(1)
    v = unit(10, D, gen=gen)
    loss_fn = ASOTLoss(K, D)
    a = loss_fn(*pad_batch([v])).loss
    b = loss_fn(*pad_batch([v], 17)).loss
    assert a.item() == pytest.approx(b.item(), abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefers_prototypes_that_match_the_segments_in_temporal_order(seed):
    gen = torch.Generator().manual_seed(seed)
    protos = unit(K + 1, 16, gen=gen)
    videos = [segment_video([6, 6, 6, 6], protos, 0.3, gen), segment_video([3, 7, 4, 6], protos, 0.3, gen)]
    emb, mask = pad_batch(videos)
    loss_fn = ASOTLoss(K + 1, 16)

    def loss_with(p: torch.Tensor) -> float:
        with torch.no_grad():
            loss_fn.prototypes.weight.copy_(p)
        return loss_fn(emb, mask).loss.item()

    matched = loss_with(protos)
    permuted = loss_with(protos[torch.tensor([2, 0, 3, 1])])  # same set, order against the temporal prior
    random = loss_with(unit(K + 1, 16, gen=gen))
    assert matched < permuted and matched < random


def test_segment_decodes_with_the_eval_settings_and_marks_padding():
    gen = torch.Generator().manual_seed(3)
    videos = [unit(12, D, gen=gen), unit(7, D, gen=gen)]
    emb, mask = pad_batch(videos)
    loss_fn = ASOTLoss(K, D)
    protos = loss_fn.prototypes().detach()
    labels = loss_fn.segment(emb, mask)
    ev = loss_fn.eval_settings
    assert (ev.eps, ev.alpha, ev.lambda_actions) == (0.04, 0.6, 0.01)
    for b, v in enumerate(videos):
        plan = segment_asot((1 - v @ protos.T).unsqueeze(0), **_settings_kwargs(ev))[0]
        assert labels[b, : v.shape[0]].tolist() == plan.argmax(-1).tolist()
    assert (labels[1, 7:] == -1).all()
    # overrides: no temporal prior at decoding
    labels0 = loss_fn.segment(emb, mask, decode={"temporal_prior": 0.0})
    plan0 = segment_asot(
        (1 - videos[0] @ protos.T).unsqueeze(0), **{**_settings_kwargs(ev), "temporal_prior": 0.0}
    )[0]
    assert labels0[0].tolist() == plan0.argmax(-1).tolist()
    with pytest.raises(ValueError, match="unknown decode setting"):
        loss_fn.segment(emb, mask, decode={"epsilon": 0.1})


def test_settings_from_config():
    cfg = RunConfig()
    cfg.ot.eps, cfg.ot.temporal_prior, cfg.ot.eval_eps, cfg.ot.eval_alpha = 0.05, 0.3, 0.02, 0.7
    cfg.ot.eval_lambda_actions, cfg.ot.lambda_actions, cfg.ot.radius = 0.02, 0.12, 0.03
    cfg.model.num_actions, cfg.model.embed_dim, cfg.method.tau = 5, 12, 0.2
    loss_fn = ASOTLoss.from_config(cfg)
    tr, ev = loss_fn.train_settings, loss_fn.eval_settings
    assert (tr.eps, tr.alpha, tr.radius, tr.lambda_actions, tr.temporal_prior) == (0.05, 0.3, 0.03, 0.12, 0.3)
    assert (ev.eps, ev.alpha, ev.radius, ev.lambda_actions, ev.temporal_prior) == (0.02, 0.7, 0.03, 0.02, 0.3)
    assert loss_fn.prototypes.weight.shape == (5, 12) and loss_fn.tau == 0.2
    cfg.ot.eval_temporal_prior = False
    assert ASOTLoss.from_config(cfg).eval_settings.temporal_prior == 0.0
