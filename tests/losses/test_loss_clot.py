"""CLOT loss: three ASOT levels against independent per-video solves; gradients to encoder, head, prototypes."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from loss_helpers import assert_same_gradients, loop_soft_ce, pad_batch, padded_step, unit

from vasot_dist.config.methods import CLOTConfig
from vasot_dist.losses import CLOTLoss
from vasot_dist.ot import circular_sw_cost, segment_asot

D, K = 16, 3


def _make(seed: int = 0, **kw) -> CLOTLoss:
    torch.manual_seed(seed)
    settings = CLOTConfig(decoder_dropout=0.0, decoder_layers=1, sw_projections=20, **kw)
    return CLOTLoss(settings, num_actions=K, embed_dim=D, seed=5)


def test_three_levels_equal_independent_solves_and_gradients_reach_every_part():
    gen = torch.Generator().manual_seed(0)
    videos = [unit(9, D, gen=gen), unit(6, D, gen=gen)]
    loss_fn = _make(queries_delta=1)
    ref_fn = copy.deepcopy(loss_fn)
    step = 4
    out, emb, leaves = padded_step(loss_fn, videos, 11, step=step)
    assert loss_fn.prototypes.weight.grad.abs().sum() > 0
    assert loss_fn.head.decoder.query_embed.grad.abs().sum() > 0
    assert loss_fn.head.dispatching.alpha.grad is not None

    kw = dataclasses.asdict(loss_fn.settings.segment)
    kw_unordered = {**kw, "temporal_prior": 0.0}  # decoder queries have no temporal order: no rho R
    frames, segs, refined = [], [], []
    for v in leaves:
        protos = ref_fn.prototypes()
        o = ref_fn.head(v.unsqueeze(0), protos)
        gen_sw = torch.Generator().manual_seed(5 * 1_000_003 + step)
        sw = circular_sw_cost(
            o.frames.detach(), protos.detach(), n_projections=20, radius=2.0, generator=gen_sw
        )
        plan_f = segment_asot((1 - o.frames @ protos.T).detach() + sw, **kw)[0]
        plan_s = segment_asot((1 - o.segments @ protos.T).detach(), **kw_unordered)[0]
        plan_r = segment_asot((1 - o.refined @ protos.T).detach(), **kw)[0]
        frames.append((plan_f, (o.frames @ protos.T / 0.1)[0]))
        segs.append((plan_s, (o.segments @ protos.T / 0.1)[0]))
        refined.append((plan_r, (o.refined @ protos.T / 0.1)[0]))
    assert segs[0][0].shape == (K + 1, K)  # n_seg = K + delta queries
    ref = loop_soft_ce(frames) + loop_soft_ce(segs) + loop_soft_ce(refined)
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-5)
    assert out.metrics["clot/ce_segments"].item() == pytest.approx(loop_soft_ce(segs).item(), abs=1e-5)
    assert_same_gradients(emb, leaves)
    assert torch.allclose(loss_fn.prototypes.weight.grad, ref_fn.prototypes.weight.grad, atol=1e-5)
    for (name, p), p_ref in zip(loss_fn.head.named_parameters(), ref_fn.head.parameters()):
        if p.grad is not None:
            assert torch.allclose(p.grad, p_ref.grad, atol=1e-5), name
    assert torch.allclose(out.couplings["frames"][0, :9], frames[0][0], atol=1e-5)


def test_sw_term_enters_level_one_and_its_projections_follow_the_step():
    gen = torch.Generator().manual_seed(1)
    x = unit(2, 8, D, gen=gen)
    a = unit(K, D, gen=gen)
    loss_fn = _make()
    theta = {step: loss_fn.projections(D, x.device, step) for step in (1, 2)}
    c1, c1_again, c2 = (loss_fn.sw_cost(x, a, theta[1]), loss_fn.sw_cost(x, a, loss_fn.projections(D, x.device, 1)),
                        loss_fn.sw_cost(x, a, theta[2]))
    assert torch.equal(c1, c1_again) and not torch.allclose(c1, c2)
    gen_ref = torch.Generator().manual_seed(5 * 1_000_003 + 1)
    assert torch.allclose(c1, circular_sw_cost(x, a, n_projections=20, radius=2.0, generator=gen_ref))
    assert torch.equal(_make(sw_weight=0.0).sw_cost(x, a, theta[1]), torch.zeros(2, 8, K))


def test_segment_decodes_the_refined_frames_with_asot_at_the_decode_settings():
    gen = torch.Generator().manual_seed(3)
    videos = [unit(9, D, gen=gen), unit(5, D, gen=gen)]
    emb, mask = pad_batch(videos)
    loss_fn = _make().eval()
    labels = loss_fn.segment(emb, mask)
    protos = loss_fn.prototypes().detach()
    for b, v in enumerate(videos):
        refined = loss_fn.head(v.unsqueeze(0), protos).refined
        plan = segment_asot(1 - refined @ protos.T, **dataclasses.asdict(loss_fn.settings.decode))[0]
        assert labels[b, : v.shape[0]].tolist() == plan.argmax(-1).tolist()
        assert (labels[b, v.shape[0] :] == -1).all()


def test_settings_shape_the_head():
    loss_fn = CLOTLoss(CLOTConfig(queries_delta=2, decoder_layers=3), num_actions=4, embed_dim=16)
    assert loss_fn.head.decoder.num_queries == 6 and len(loss_fn.head.decoder.layers) == 3
    assert not loss_fn.needs_pairs
