"""CUDA: every loss gives the CPU value on the GPU and stays finite in a bf16 autocast step."""

from __future__ import annotations

import copy

import pytest
import torch
from loss_helpers import pad_batch, unit

from vasot_dist.config.schema import METHODS, RunConfig
from vasot_dist.losses import build_loss

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("name", METHODS)
def test_cuda_matches_cpu_and_bf16_autocast_is_finite(name):
    cfg = RunConfig()
    cfg.method.name = name
    cfg.model.embed_dim, cfg.model.num_actions = 32, 4
    cfg.method.clot.sw_weight = 0.0  # CPU and CUDA draw different SW projections; the rest must agree
    cfg.method.clot.decoder_dropout = 0.0
    cfg.method.realign.align.n_iters, cfg.method.realign.align.inner_iters = 5, 30
    loss_cpu = build_loss(cfg)
    loss_gpu = copy.deepcopy(loss_cpu).cuda()
    gen = torch.Generator().manual_seed(0)
    emb, mask = pad_batch([unit(n, 32, gen=gen) for n in (24, 20, 17, 24)], 24)
    ref = loss_cpu(emb, mask, step=5).loss
    got = loss_gpu(emb.cuda(), mask.cuda(), step=5).loss
    assert got.item() == pytest.approx(ref.item(), rel=1e-4, abs=1e-4)
    x = emb.cuda().to(torch.bfloat16).requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = loss_gpu(x, mask.cuda(), step=5)
    out.loss.backward()
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    assert torch.isfinite(x.grad.float()).all()
    assert all(v.device.type == "cuda" for v in out.metrics.values())
