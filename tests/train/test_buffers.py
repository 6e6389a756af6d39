"""``broadcast_buffers``: after it every rank holds rank 0's buffers, whatever their dtype (BatchNorm's float
statistics and int64 step counters; bf16 ones under DeepSpeed's bf16 mode), and parameters are left alone."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from vasot_dist.runtime.distributed import DistContext
from vasot_dist.train.buffers import broadcast_buffers


def _model(rank: int) -> nn.Module:
    """BatchNorm layers whose statistics and counters differ per rank, plus a bf16 buffer."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.BatchNorm1d(4))
    m.register_buffer("bf16_buffer", torch.full((5,), float(rank), dtype=torch.bfloat16))
    m.train()
    for _ in range(rank + 1):  # each rank its own batches, a different number of them
        m(torch.randn(8, 3) + rank)
    return m


def _rank(rank: int, world: int, init: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        m = _model(rank)
        params = [p.detach().clone() for p in m.parameters()]
        broadcast_buffers(m, DistContext(rank, world, rank, torch.device("cpu"), owns_group=True))
        want = _model(0)
        for (name, got), ref in zip(m.named_buffers(), want.buffers()):
            assert got.dtype == ref.dtype and torch.equal(got, ref), (rank, name)
        assert all(torch.equal(p, q) for p, q in zip(m.parameters(), params))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_every_rank_ends_with_rank_zeros_buffers(tmp_path):
    assert not torch.equal(_model(0)[1].running_mean, _model(1)[1].running_mean)  # they differ to begin with
    mp.spawn(_rank, args=(2, f"file://{tmp_path / 'store'}"), nprocs=2, join=True)


def test_one_process_is_left_as_it_is():
    m = _model(1)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    broadcast_buffers(m, DistContext(0, 1, 0, torch.device("cpu"), owns_group=False))
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
