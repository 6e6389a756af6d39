"""Learnable action prototypes: normalisation, logits, k-means / random initialisation, DDP broadcast."""

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from sklearn.metrics import adjusted_rand_score

from vasot_dist.models.prototypes import ActionPrototypes


def test_forward_is_unit_norm_and_renormalize_writes_back():
    protos = ActionPrototypes(4, 8)
    with torch.no_grad():
        protos.weight.mul_(torch.arange(1.0, 5.0)[:, None])
    out = protos()
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))
    assert not torch.allclose(protos.weight.norm(dim=1), torch.ones(4))
    protos.renormalize_()
    torch.testing.assert_close(protos.weight.data, out.detach())


def test_logits_equal_cosine_over_tau_and_carry_gradients():
    protos = ActionPrototypes(3, 5)
    with torch.no_grad():
        protos.weight.mul_(2.5)
    x = F.normalize(torch.randn(2, 7, 5), dim=-1)
    logits = protos.logits(x, tau=0.1)
    a = protos.weight.detach()
    expected = torch.einsum("bnd,kd->bnk", x, a / a.norm(dim=1, keepdim=True)) / 0.1
    assert logits.shape == (2, 7, 3)
    torch.testing.assert_close(logits, expected)
    logits.logsumexp(-1).sum().backward()
    assert protos.weight.grad is not None and protos.weight.grad.abs().sum() > 0


def test_init_kmeans_recovers_clusters():
    g = torch.Generator().manual_seed(3)
    centers = F.normalize(torch.randn(6, 12, generator=g), dim=1)
    truth = torch.randint(6, (300,), generator=g)
    emb = F.normalize(centers[truth] + 0.05 * torch.randn(300, 12, generator=g), dim=1)
    protos = ActionPrototypes(6, 12)
    objective = protos.init_kmeans_(emb, seed=0)
    labels = protos.logits(emb[None], tau=1.0)[0].argmax(-1)
    assert adjusted_rand_score(truth.numpy(), labels.numpy()) == 1.0
    torch.testing.assert_close(protos.weight.norm(dim=1), torch.ones(6))
    cos = (emb * protos()[labels]).sum(1)
    assert objective == pytest.approx(float((1 - cos).sum().detach()), rel=1e-4)


def test_init_random_is_seeded():
    a, b = ActionPrototypes(4, 8), ActionPrototypes(4, 8)
    a.init_random_(seed=5)
    b.init_random_(seed=5)
    assert torch.equal(a.weight, b.weight)
    b.init_random_(seed=6)
    assert not torch.equal(a.weight, b.weight)
    torch.testing.assert_close(a.weight.norm(dim=1), torch.ones(4))


def test_bad_arguments_raise():
    protos = ActionPrototypes(4, 8)
    with pytest.raises(ValueError, match=r"\(n, 8\)"):
        protos.init_kmeans_(torch.randn(10, 7), seed=0)
    with pytest.raises(ValueError, match="at least num_actions=4"):
        protos.init_kmeans_(torch.randn(3, 8), seed=0)
    with pytest.raises(ValueError, match="tau"):
        protos.logits(torch.randn(1, 2, 8), tau=0.0)
    with pytest.raises(ValueError, match="last dimension 8"):
        protos.logits(torch.randn(1, 2, 7), tau=0.1)
    with pytest.raises(ValueError, match="num_actions"):
        ActionPrototypes(0, 8)


def test_broadcast_writes_the_source_ranks_values_in_place(monkeypatch):
    """DDP path without spawning processes: dist.broadcast fills the tensor it is given with rank src's
    values; the prototypes must hand over their live parameter storage, not a copy."""
    rank0 = F.normalize(torch.randn(3, 4), dim=1)
    calls = []

    def fake_broadcast(tensor, src):
        calls.append(src)
        tensor.copy_(rank0)

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "broadcast", fake_broadcast)
    protos = ActionPrototypes(3, 4)
    param = protos.weight
    protos.broadcast_(src=0)
    assert calls == [0] and protos.weight is param
    assert torch.equal(protos.weight.detach(), rank0)


def test_broadcast_is_a_noop_without_process_group():
    protos = ActionPrototypes(2, 3)
    before = protos.weight.detach().clone()
    protos.broadcast_()
    assert torch.equal(protos.weight, before)
