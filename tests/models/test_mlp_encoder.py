"""ASOT's per-frame MLP encoder."""

import pytest
import torch
import torch.nn.functional as F

from vasot_dist.models.mlp_encoder import MLPEncoder


def test_matches_hand_computed_chain_and_is_unit_norm():
    torch.manual_seed(0)
    enc = MLPEncoder([64, 128, 40])
    linears = [m for m in enc.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 128), (128, 40)]
    x = torch.randn(2, 7, 64)
    h = torch.clamp(x @ linears[0].weight.T + linears[0].bias, min=0)
    y = h @ linears[1].weight.T + linears[1].bias
    expected = y / y.norm(dim=-1, keepdim=True)
    out = enc(x)
    assert out.shape == (2, 7, 40) and enc.embed_dim == 40
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2, 7))


def test_two_sizes_is_a_single_linear_and_deeper_stacks_relu():
    assert [type(m).__name__ for m in MLPEncoder([5, 3]).net] == ["Linear"]
    assert [type(m).__name__ for m in MLPEncoder([3000, 32, 32]).net] == ["Linear", "ReLU", "Linear"]
    assert [type(m).__name__ for m in MLPEncoder([4, 8, 8, 2]).net] == ["Linear", "ReLU"] * 2 + ["Linear"]


def test_frames_are_independent_so_padding_cannot_leak():
    torch.manual_seed(1)
    enc = MLPEncoder([6, 8, 4])
    x = torch.randn(1, 5, 6)
    x2 = x.clone()
    x2[:, 3:] = 1e3 * torch.randn(1, 2, 6)
    torch.testing.assert_close(enc(x)[:, :3], enc(x2)[:, :3])


def test_gradients_reach_all_parameters():
    enc = MLPEncoder([6, 8, 4])
    (enc(torch.randn(2, 3, 6)) * torch.randn(2, 3, 4)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_bf16_autocast_returns_float32_unit_vectors():
    enc = MLPEncoder([6, 8, 4])
    x = torch.randn(2, 3, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x)
    assert out.dtype == torch.float32
    assert F.cosine_similarity(out, enc(x), dim=-1).min() > 0.99


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="layer_sizes"):
        MLPEncoder([64])
    with pytest.raises(ValueError, match="layer_sizes"):
        MLPEncoder([64, 0, 40])
    with pytest.raises(ValueError, match="last dimension 64"):
        MLPEncoder([64, 40])(torch.zeros(1, 2, 63))
