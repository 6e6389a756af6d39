"""CLOT modules against hand-written oracles (loops, explicit multi-head attention), and padding exactness."""

import math

import pytest
import torch
import torch.nn.functional as F

from vasot_dist.models.clot import (
    CLOTHead,
    CrossAttentionRefinement,
    FeatureDispatching,
    ParallelDecoder,
    sinusoidal_positions,
)

torch.set_num_threads(1)
D = 16


def unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def padded_pair(n_long=9, n_short=6, seed=0):
    """Two videos padded to n_long; the padding of the short one is garbage of large norm."""
    x = unit(2, n_long, D, seed=seed)
    x[1, n_short:] = 50.0 * torch.randn(n_long - n_short, D)
    mask = torch.zeros(2, n_long, dtype=torch.bool)
    mask[0] = True
    mask[1, :n_short] = True
    return x, mask


# ---------------------------------------------------------------- feature dispatching
def dispatch_loop(x, a, alpha, beta, n_real):
    """Paper/reference formula, one frame and one cluster at a time, on the first n_real frames."""
    x = x[:n_real]
    s = [[torch.sigmoid(beta + alpha * (a[k] @ x[t])) for t in range(n_real)] for k in range(len(a))]
    winner = [max(range(len(a)), key=lambda k: s[k][t]) for t in range(n_real)]
    out = []
    for k in range(len(a)):
        members = [t for t in range(n_real) if winner[t] == k]
        if not members:  # an empty cluster contributes nothing
            out.append(torch.zeros_like(a[k]))
            continue
        total = a[k].clone()
        for t in members:
            total = total + s[k][t] * x[t]
        out.append(total / (len(members) + 1))
    return torch.stack([x[t] + sum(s[k][t] * out[k] for k in range(len(a))) for t in range(n_real)])


def test_dispatching_matches_loop_formula():
    fd = FeatureDispatching()
    with torch.no_grad():
        fd.alpha.fill_(2.0)
        fd.beta.fill_(-0.3)
    x, a = unit(2, 7, D, seed=1), unit(4, D, seed=2)
    out = fd(x, a)
    for b in range(2):
        torch.testing.assert_close(out[b], dispatch_loop(x[b], a, 2.0, -0.3, 7))


def test_dispatching_empty_cluster_adds_nothing_and_output_is_not_renormalised():
    fd = FeatureDispatching()
    a = unit(3, D, seed=5)
    near = torch.cat([a[0].expand(3, D), a[2].expand(3, D)]) + 0.3 * unit(6, D, seed=6)
    x = F.normalize(near, dim=-1).unsqueeze(0)  # frames around prototypes 0 and 2: prototype 1 wins none
    sim = torch.sigmoid(a @ x[0].T)
    winners = sim.argmax(dim=0)
    assert 1 not in winners.tolist()
    with torch.no_grad():
        out = fd(x, a)[0]
    # hand computation with the empty cluster's term left out
    expected = x[0].clone()
    for k in set(winners.tolist()):
        members = (winners == k).nonzero().flatten()
        out_k = ((sim[k, members, None] * x[0, members]).sum(0) + a[k]) / (len(members) + 1)
        expected += sim[k, :, None] * out_k
    torch.testing.assert_close(out, expected)
    assert (out.norm(dim=-1) - 1).abs().max() > 0.05  # X + update, as the released code returns it


def test_dispatching_padding_exact():
    fd = FeatureDispatching()
    x, mask = padded_pair()
    a = unit(4, D, seed=3)
    out = fd(x, a, mask)
    torch.testing.assert_close(out[1, :6], fd(x[1:2, :6], a)[0])
    torch.testing.assert_close(out[1, :6], dispatch_loop(x[1], a, 1.0, 0.0, 6))
    torch.testing.assert_close(out[1, 6:], x[1, 6:])  # padded frames untouched
    assert not torch.allclose(fd(x, a)[1, :6], out[1, :6])  # without the mask the garbage would leak


def test_dispatching_parameters_learn():
    fd = FeatureDispatching()
    assert fd.alpha.item() == 1.0 and fd.beta.item() == 0.0
    (fd(unit(1, 5, D), unit(3, D, seed=1)) * torch.randn(1, 5, D)).sum().backward()
    assert fd.alpha.grad.abs() > 0 and fd.beta.grad.abs() > 0


# ---------------------------------------------------------------- decoder
def test_sinusoidal_positions_hand_worked():
    pe = sinusoidal_positions(5, 6)
    for t in range(5):
        for i in range(3):
            w = 1.0 / 10000 ** (2 * i / 6)
            assert pe[t, 2 * i].item() == pytest.approx(math.sin(t * w), abs=1e-6)
            assert pe[t, 2 * i + 1].item() == pytest.approx(math.cos(t * w), abs=1e-6)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_positions(3, 5)


def mha_by_hand(m, q, k, v, key_padding=None):
    """Multi-head attention from the module's raw projection weights."""
    d, h = m.embed_dim, m.num_heads
    w, bias = m.in_proj_weight, m.in_proj_bias
    qp, kp, vp = (z @ w[i * d : (i + 1) * d].T + bias[i * d : (i + 1) * d] for i, z in enumerate((q, k, v)))

    def heads(z):
        return z.reshape(z.shape[0], z.shape[1], h, d // h).transpose(1, 2)

    scores = heads(qp) @ heads(kp).transpose(-1, -2) / math.sqrt(d // h)
    if key_padding is not None:
        scores = scores.masked_fill(key_padding[:, None, None, :], float("-inf"))
    out = (scores.softmax(-1) @ heads(vp)).transpose(1, 2).reshape(q.shape[0], q.shape[1], d)
    return out @ m.out_proj.weight.T + m.out_proj.bias


def decoder_by_hand(dec, memory, mask):
    """CLOT transformer.py forward_post (DETR post-norm), with FUTR's zero targets and query embeddings."""
    b, n, d = memory.shape
    pos = sinusoidal_positions(n, d)
    qpos = dec.query_embed.expand(b, -1, -1)
    tgt = torch.zeros_like(qpos)
    pad = None if mask is None else ~mask
    for L in dec.layers:
        q = tgt + qpos
        tgt = F.layer_norm(tgt + mha_by_hand(L.self_attn, q, q, q), (d,), L.norm1.weight, L.norm1.bias)
        mem = memory + pos
        cross = mha_by_hand(L.cross_attn, tgt + qpos, mem, mem, pad)
        tgt = F.layer_norm(tgt + cross, (d,), L.norm2.weight, L.norm2.bias)
        ffn = F.relu(tgt @ L.linear1.weight.T + L.linear1.bias) @ L.linear2.weight.T + L.linear2.bias
        tgt = F.layer_norm(tgt + ffn, (d,), L.norm3.weight, L.norm3.bias)
    tgt = F.layer_norm(tgt, (d,), dec.norm.weight, dec.norm.bias)
    return F.normalize(tgt, dim=-1)


def test_decoder_matches_hand_written_detr_post_norm():
    torch.manual_seed(0)
    dec = ParallelDecoder(D, num_queries=5, num_layers=2, num_heads=8, dropout=0.3).eval()
    x, mask = padded_pair()
    with torch.no_grad():
        out = dec(x, mask)
        ref = decoder_by_hand(dec, x, mask)
    assert out.shape == (2, 5, D)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2, 5))


def test_decoder_padding_exact_and_position_aware():
    torch.manual_seed(1)
    dec = ParallelDecoder(D, num_queries=4, num_layers=2).eval()
    x, mask = padded_pair()
    with torch.no_grad():
        out = dec(x, mask)
        torch.testing.assert_close(out[1], dec(x[1:2, :6])[0], rtol=1e-5, atol=1e-6)
        assert not torch.allclose(dec(x)[1], out[1], atol=1e-4)  # the mask matters
        # sinusoidal positions: reversing time changes the segments
        assert not torch.allclose(dec(x[:1].flip(1))[0], out[0], atol=1e-4)
        empty = dec(x, torch.zeros_like(mask))
    assert torch.isfinite(empty).all()


def test_decoder_argument_checks():
    with pytest.raises(ValueError, match="num_heads=8"):
        ParallelDecoder(20, num_queries=3)
    with pytest.raises(ValueError, match="num_queries"):
        ParallelDecoder(D, num_queries=0)
    with pytest.raises(ValueError, match="last dimension 16"):
        ParallelDecoder(D, num_queries=2)(torch.zeros(1, 3, 8))
    with pytest.raises(ValueError, match="mask"):
        ParallelDecoder(D, num_queries=2)(torch.zeros(1, 3, D), torch.ones(1, 3))


# ---------------------------------------------------------------- refinement
def test_refinement_matches_formula_and_padding():
    ref_mod = CrossAttentionRefinement(temperature=0.2)
    x, mask = padded_pair()
    s = unit(2, 4, D, seed=5)
    out, attn = ref_mod(x, s, mask)
    for b in range(2):
        for t in range(int(mask[b].sum())):
            w = torch.softmax((s[b] @ x[b, t]) / math.sqrt(D) / 0.2, dim=0)
            expected = x[b, t] + w @ s[b]
            torch.testing.assert_close(out[b, t], expected / expected.norm())
            torch.testing.assert_close(attn[b, t], w)
    assert torch.equal(out[1, 6:], torch.zeros(3, D)) and torch.equal(attn[1, 6:], torch.zeros(3, 4))
    with pytest.raises(ValueError, match="temperature"):
        CrossAttentionRefinement(0.0)
    with pytest.raises(ValueError, match="segments"):
        ref_mod(x, s[:, :, :8])


# ---------------------------------------------------------------- head
def test_head_outputs_and_padding_exact():
    torch.manual_seed(2)
    head = CLOTHead(D, num_actions=4, delta=2, num_layers=2).eval()
    x, mask = padded_pair()
    a = unit(4, D, seed=4)
    with torch.no_grad():
        out = head(x, a, mask)
        alone = head(x[1:2, :6], a)
    assert out.frames.shape == (2, 9, D) and out.refined.shape == (2, 9, D)
    assert out.segments.shape == (2, 6, D) and out.attention.shape == (2, 9, 6)
    for name in ("frames", "refined"):
        value = getattr(out, name)
        torch.testing.assert_close(value[mask].norm(dim=-1), torch.ones(int(mask.sum())))
        assert torch.equal(value[~mask], torch.zeros_like(value[~mask]))
        torch.testing.assert_close(value[1, :6], getattr(alone, name)[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.segments[1], alone.segments[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.attention[1, :6], alone.attention[0], rtol=1e-5, atol=1e-6)


def test_head_gradients_reach_everything():
    torch.manual_seed(3)
    head = CLOTHead(D, num_actions=3, delta=-1, num_layers=1, dropout=0.1).train()
    x = unit(2, 8, D).requires_grad_(True)
    a = unit(3, D, seed=1).requires_grad_(True)
    out = head(x, a, torch.ones(2, 8, dtype=torch.bool))
    loss = sum(
        (getattr(out, k) * torch.randn_like(getattr(out, k))).sum() for k in ("frames", "segments", "refined")
    )
    loss.backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0 and a.grad.abs().sum() > 0


def test_head_without_dispatching_and_checks():
    head = CLOTHead(D, num_actions=3, dispatch="none").eval()
    x = unit(1, 5, D)
    with torch.no_grad():
        out = head(x, unit(3, D))
    assert torch.equal(out.frames, x)  # the "w/o FD" ablation passes the encoder output through
    with pytest.raises(ValueError, match="n_seg"):
        CLOTHead(D, num_actions=3, delta=-3)
    with pytest.raises(ValueError, match="prototypes"):
        head.dispatching = FeatureDispatching()
        head(x, unit(3, 8))


def test_head_dispatch_modes_route_the_dispatched_frames():
    torch.manual_seed(5)
    x, a = unit(1, 7, D, seed=6), unit(3, D, seed=7)
    heads = {mode: CLOTHead(D, num_actions=3, dispatch=mode).eval() for mode in ("all", "memory", "none")}
    heads["memory"].load_state_dict(heads["all"].state_dict())
    heads["none"].load_state_dict({k: v for k, v in heads["all"].state_dict().items() if "dispatching" not in k})
    with torch.no_grad():
        dispatched = heads["all"].dispatching(x, a)
        out = {mode: h(x, a) for mode, h in heads.items()}
        segs_from = {m: heads["all"].decoder(src) for m, src in (("disp", dispatched), ("raw", x))}
    torch.testing.assert_close(out["all"].frames, F.normalize(dispatched, dim=-1))
    torch.testing.assert_close(out["all"].segments, segs_from["disp"])
    torch.testing.assert_close(out["all"].refined, heads["all"].refinement(dispatched, segs_from["disp"])[0])
    torch.testing.assert_close(out["memory"].frames, x)
    torch.testing.assert_close(out["memory"].segments, segs_from["disp"])
    torch.testing.assert_close(out["memory"].refined, heads["all"].refinement(x, segs_from["disp"])[0])
    torch.testing.assert_close(out["none"].segments, segs_from["raw"])
    with pytest.raises(ValueError, match="dispatch"):
        CLOTHead(D, num_actions=3, dispatch="frames")


def test_head_bf16_autocast_on_cpu():
    torch.manual_seed(4)
    head = CLOTHead(D, num_actions=4).eval()
    x, mask = padded_pair()
    a = unit(4, D, seed=1)
    with torch.no_grad():
        ref = head(x, a, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = head(x, a, mask)
    for name in ("frames", "segments", "refined"):
        value, expected = getattr(out, name), getattr(ref, name)
        assert torch.isfinite(value).all(), name
        assert (value.float() - expected).abs().max() < 0.1, name
