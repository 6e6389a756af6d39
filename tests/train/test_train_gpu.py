"""CUDA: a training step never waits on the GPU, and compiled losses (CUDA graphs included) match eager."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vasot_dist.config import METHODS, load_config
from vasot_dist.losses import build_loss
from vasot_dist.runtime.distributed import DistContext
from vasot_dist.train.engine import build_engine
from vasot_dist.train.log_window import LogWindow
from vasot_dist.train.model import build_train_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

SMALL = ["model.embed_dim=16", "model.num_actions=4", "model.head_dim=16", "train.bf16=true"]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_training_step_has_no_host_device_synchronisation(method):
    """``set_sync_debug_mode('error')`` raises on any synchronising call, torch's own included."""
    cfg = load_config("configs/demo.yaml", [f"method.name={method}", *SMALL])
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cuda"), owns_group=False)
    model = build_train_model(cfg).cuda()
    engine = build_engine(cfg, model, ctx)
    frames = torch.randint(0, 256, (2, 6, 1, 32, 32, 3), dtype=torch.uint8, device="cuda")
    window = LogWindow()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    for step in range(3):
        if step == 2:  # after lazy initialisation (cuDNN plans, optimizer state)
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
        try:
            with autocast:
                out = engine(frames, None, step)
            engine.backward(out.loss)
            engine.step()
            window.add({"loss": out.loss, **out.metrics}, frames=12)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert math.isfinite(window.reduce(ctx)["loss"])


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
@pytest.mark.parametrize("method", ["asot", "vasot", "vaot"])
def test_compiled_loss_matches_eager_on_cuda(method, mode):
    cfg = load_config("configs/demo.yaml", [f"method.name={method}", *SMALL])
    torch.manual_seed(0)
    loss = build_loss(cfg).cuda().eval()
    gen = torch.Generator(device="cuda").manual_seed(1)
    emb = F.normalize(torch.randn(4, 20, 16, generator=gen, device="cuda"), dim=-1)
    mask = torch.ones(4, 20, dtype=torch.bool, device="cuda")
    ref = loss(emb, mask, step=1).loss
    torch._dynamo.reset()
    compiled = torch.compile(loss, mode=mode)
    for _ in range(3):  # reduce-overhead records its CUDA graph on a later call than the first
        got = compiled(emb, mask, step=1).loss
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
