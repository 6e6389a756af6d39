"""Shared builders for the loss tests: synthetic segment videos, padded batches, a loop-based soft CE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def unit(*shape: int, gen: torch.Generator) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=gen), dim=-1)


def segment_video(
    lengths: list[int], protos: torch.Tensor, noise: float, gen: torch.Generator
) -> torch.Tensor:
    """Piecewise-constant segments: frame = normalize(protos[segment] + noise * N(0, I)), shape (sum(lengths), D)."""
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(lengths)])
    return F.normalize(
        protos[labels] + noise * torch.randn(len(labels), protos.shape[1], generator=gen), dim=-1
    )


def pad_batch(videos: list[torch.Tensor], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack videos (n_b, D) into (B, T, D) with zero padding at the end and the (B, T) mask of real frames."""
    length = length or max(v.shape[0] for v in videos)
    emb = torch.zeros(len(videos), length, videos[0].shape[1])
    mask = torch.zeros(len(videos), length, dtype=torch.bool)
    for b, v in enumerate(videos):
        emb[b, : v.shape[0]] = v
        mask[b, : v.shape[0]] = True
    return emb, mask


def loop_soft_ce(
    pairs: list[tuple[torch.Tensor, torch.Tensor]], weights: list[torch.Tensor] | None = None
) -> torch.Tensor:
    """sum over videos and rows of w_i * (-sum_j T_ij log softmax(z_i)_j), divided by sum w (default w = 1).

    pairs: (target (n, k) constant, logits (n, k)) per video, unpadded; written row by row on purpose.
    """
    total = torch.zeros(())
    count = torch.zeros(())
    for b, (target, logits) in enumerate(pairs):
        for i in range(target.shape[0]):
            w = torch.ones(()) if weights is None else weights[b][i]
            total = total - w * (target[i] * torch.log_softmax(logits[i], dim=0)).sum()
            count = count + w
    return total / count


def loop_idm(v: torch.Tensor, window: float, margin: float) -> torch.Tensor:
    """LAV's contrastive-IDM of one video (n, D), written pair by pair: pull within ``window`` (a fraction of n),
    push the others beyond ``margin`` with weight ``1 + gap^2``; mean over the n^2 pairs."""
    n = v.shape[0]
    total = torch.zeros(())
    for i in range(n):
        for j in range(n):
            d = ((v[i] - v[j]) ** 2).sum()
            gap = abs(i - j) / n
            total = total + (d if gap <= window + 1e-9 else (1 + gap**2) * torch.relu(margin - d))
    return total / n**2


def ordered_and_shuffled_pair(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two videos of the same 4 steps in the same order with other durations, D = 16: ``(x, y, y shuffled in
    time, the 4 step prototypes)``."""
    protos = unit(4, 16, gen=gen)
    x = segment_video([6, 6, 6, 6], protos, 0.3, gen)
    y = segment_video([3, 7, 4, 6], protos, 0.3, gen)
    return x, y, y[torch.randperm(y.shape[0], generator=gen)], protos


def padding_effect(loss_fn, videos: list[torch.Tensor], length: int, **kwargs) -> float:
    """|loss of the videos padded to their longest - loss of the same videos padded to ``length``|."""
    return abs(loss_fn(*pad_batch(videos), **kwargs).loss.item() - loss_fn(*pad_batch(videos, length), **kwargs).loss.item())


def padded_step(loss_fn, videos: list[torch.Tensor], length: int, **kwargs):
    """``loss_fn`` on ``videos`` padded to ``length`` and backpropagated, with what every loss keeps checked: a
    finite loss and gradient, detached couplings, no gradient on padded frames. Returns the output, the padded
    batch (its ``.grad`` set) and per-video copies that require grad, for an independent computation."""
    emb, mask = pad_batch(videos, length)
    emb.requires_grad_()
    out = loss_fn(emb, mask, **kwargs)
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(emb.grad).all()
    assert not any(c.requires_grad for c in out.couplings.values())
    assert emb.grad[~mask].abs().max() == 0  # padded frames get no gradient
    return out, emb, [v.clone().requires_grad_() for v in videos]


def assert_same_gradients(emb: torch.Tensor, leaves: list[torch.Tensor], atol: float = 1e-5) -> None:
    """Each video's gradient in the padded batch ``emb`` equals its gradient computed alone (``leaves``)."""
    for b, v in enumerate(leaves):
        assert torch.allclose(emb.grad[b, : v.shape[0]], v.grad, atol=atol), f"video {b}"
