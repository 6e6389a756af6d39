"""VAVA: Kantorovich OT with a virtual frame and Gaussian-mixture priors (Liu et al., CVPR 2022).

``docs/methods.md#vava``, with the released ``vava.py``'s term definitions.  Per pair
(x, y) with n and m real frames, on the (n+1) x (m+1) problem whose virtual frame is index 0:

* cost ``D_ij = ||x_i - y_j||^2`` (squared, as coded), virtual row and column ``zeta`` (0.5);
* positions ``u/(n+1)`` for augmented 1-based index u (the virtual frame is u = 1, real frame k (0-based) is
  u = k + 2); ``mid = sqrt(1/(n+1)^2 + 1/(m+1)^2)``; ``g(l) = N(l; 0, sigma)`` with sigma 2;
* consistency distance ``s_c = |i/(n+1) - j/(m+1)|``; optimality distance ``s_o = |j/(m+1) - j*(i)/(m+1)|`` to
  the nearest neighbour ``j*(i) = argmin_j D_ij`` of frame i (the virtual row's is the virtual column);
* prior ``P = psi g(s_c/mid) + (1 - psi) g(s_o/mid)``, IDM bonus
  ``S = lambda1 [psi / (s_c^2 + 1) + (1 - psi) / (s_o^2 + 1)]``; on the virtual row/column (not [0, 0])
  both are constants of ``s_v = 1.5 * 2 * 5 / (n + m + 2)``: ``P = g(s_v/mid)``, ``S = lambda1 / (s_v^2 + 1)``;
* ``lambda1 = 1.0 (n + m)``, ``lambda2 = 0.1 n m / 4``;
  ``psi = clip(0.999^floor(sqrt(step + 1)), 0.001, 0.999)`` (:func:`vava_psi`);
* plan ``T = argmin <T, D - S> + lambda2 KL(T || P)`` over uniform marginals ``1/(n+1)``, ``1/(m+1)``, i.e.
  ``ot.sinkhorn(a, b, D - S - lambda2 log P, reg=lambda2)``: log-domain Sinkhorn here (the code runs 20 plain
  iterations with clipping; we keep 20 by default), under no_grad.

Loss (paper Eq. 17 with the code's terms):

    L = <T, D> / (n m) + gamma (C(X) + C(Y) + C(X, Y)),     gamma 0.5

* ``<T, D>`` includes the virtual entries (constant zeta); with T held constant its gradient is ``T * dD``,
  which is also the exact (envelope-theorem) gradient of the regularised OT value
  ``min_T <T, D - S> + lambda2 KL(T || P)`` with respect to D.  Divided once by the real ``n m``
  (the code divides twice).
* ``C(X)`` (Eq. 14 as coded): ``mean_{i,j} [ |i-j| <= delta: Dx_ij / ((i-j)^2 + 1) ; else max(0, lambda3 - Dx_ij) ]``
  with ``Dx_ij = mean_d (x_id - x_jd)^2`` (mean over the feature axis, as coded), delta 15 frames,
  lambda3 2, over the n^2 real pairs.
* ``C(X, Y)`` (Eq. 15 as coded, :func:`.common.plan_contrastive`): best/worst matches of the plan T (the
  code wrongly uses ``K * D``), ``softplus((d_best - d_worst) / 0.5)`` with d the mean-over-features squared
  difference.  For n != m the code's ``mean((X - Y[best])^2 + (Y - X[best'])^2)`` does not broadcast; we
  average the x rows and the y columns separately and add them (the same value when n = m).

Deviation from the code, on purpose: the code's optimality prior compares j with ``(argmin + 1)/(M+1)``, one
augmented index before the nearest neighbour itself; we use the nearest neighbour's own position.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vasot_dist.config.methods import VAVAConfig
from vasot_dist.ot import sinkhorn

from .base import LossOutput, MethodLoss, method_loss
from .common import check_batch, float32_math, frame_ranks, plan_contrastive, split_pairs, squared_distances


def vava_psi(step: int) -> float:
    """Mixture weight of the consistency prior: ``clip(0.999^floor(sqrt(step + 1)), 0.001, 0.999)``."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return min(max(0.999 ** math.floor(math.sqrt(step + 1)), 0.001), 0.999)


def _gauss(dist: Tensor, sigma: float) -> Tensor:
    return torch.exp(-(dist * dist) / (2.0 * sigma * sigma)) / (sigma * math.sqrt(2.0 * math.pi))


def vava_prior(
    d: Tensor,
    mask_x: Tensor,
    mask_y: Tensor,
    psi: float,
    *,
    sigma: float = 2.0,
    lambda1: float = 1.0,
    virtual_distance: float = 5.0,
) -> tuple[Tensor, Tensor]:
    """Prior P and IDM bonus S on the augmented problem (module docstring), both (B, N+1, M+1).

    d: (B, N, M) real-frame distances (only the nearest neighbour ``argmin_j`` is used); masks (B, N) / (B, M).
    Index 0 is the virtual frame; entries at padded frames are filler (1 for P, 0 for S).
    """
    dtype = d.dtype
    n = mask_x.sum(dim=1).to(dtype)
    m = mask_y.sum(dim=1).to(dtype)
    n_aug, m_aug = (n + 1).view(-1, 1), (m + 1).view(-1, 1)
    ones = torch.ones(d.shape[0], 1, dtype=torch.bool, device=d.device)
    mx = torch.cat([ones, mask_x], dim=1)
    my = torch.cat([ones, mask_y], dim=1)
    pos_x = (frame_ranks(mx).to(dtype) + 1.0) / n_aug  # (B, N+1): 1-based augmented index / (n+1)
    rank_y = frame_ranks(my)
    pos_y = (rank_y.to(dtype) + 1.0) / m_aug
    big = torch.finfo(dtype).max
    nn_col = torch.where(mask_y.unsqueeze(1), d, torch.full_like(d, big)).argmin(dim=2)  # (B, N) column index
    nn_pos = pos_y[:, 1:].gather(1, nn_col)  # position of the nearest neighbour
    nn_pos = torch.cat([1.0 / m_aug, nn_pos], dim=1)  # the virtual row's optimal match is the virtual column
    s_c = (pos_x.unsqueeze(2) - pos_y.unsqueeze(1)).abs()
    s_o = (pos_y.unsqueeze(1) - nn_pos.unsqueeze(2)).abs()
    mid = torch.sqrt(1.0 / n_aug**2 + 1.0 / m_aug**2).unsqueeze(2)  # (B, 1, 1)
    lam1 = (lambda1 * (n + m)).view(-1, 1, 1)
    prior = psi * _gauss(s_c / mid, sigma) + (1.0 - psi) * _gauss(s_o / mid, sigma)
    bonus = lam1 * (psi / (s_c * s_c + 1.0) + (1.0 - psi) / (s_o * s_o + 1.0))
    s_v = (1.5 * 2.0 * virtual_distance / (n_aug + m_aug)).unsqueeze(2)  # (B, 1, 1)
    idx_x = torch.arange(mx.shape[1], device=d.device).view(1, -1, 1)
    idx_y = torch.arange(my.shape[1], device=d.device).view(1, 1, -1)
    edge = (idx_x == 0) ^ (idx_y == 0)  # virtual row or column, not the corner
    prior = torch.where(edge, _gauss(s_v / mid, sigma).expand_as(prior), prior)
    bonus = torch.where(edge, (lam1 / (s_v * s_v + 1.0)).expand_as(bonus), bonus)
    valid = mx.unsqueeze(2) & my.unsqueeze(1)
    return torch.where(valid, prior, torch.ones_like(prior)), torch.where(
        valid, bonus, torch.zeros_like(bonus)
    )


def vava_intra_contrastive(emb: Tensor, mask: Tensor, *, window: int = 15, margin: float = 2.0) -> Tensor:
    """VAVA's C(X) as coded, per video (B,): mean over real pairs of the windowed pull / hinge push.

    ``Dx = mean_d (x_i - x_j)^2``; ``|i-j| <= window``: ``Dx / ((i-j)^2 + 1)``; else ``max(0, margin - Dx)``.
    """
    dx = squared_distances(emb, emb) / emb.shape[-1]
    r = frame_ranks(mask).to(dx.dtype)
    gap = (r.unsqueeze(2) - r.unsqueeze(1)).abs()
    term = torch.where(gap > window, torch.relu(margin - dx), dx / (gap * gap + 1.0))
    pair = (mask.unsqueeze(2) & mask.unsqueeze(1)).to(dx.dtype)
    n = mask.sum(dim=1).to(dx.dtype)
    return (term * pair).sum(dim=(1, 2)) / (n * n)


@method_loss("vava")
class VAVALoss(MethodLoss):
    """VAVA loss (module docstring); a pair method without learnable parts."""

    settings: VAVAConfig

    def augmented_cost(
        self, x: Tensor, mask_x: Tensor, y: Tensor, mask_y: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(D_aug (B, N+1, M+1), mask_x_aug, mask_y_aug)``: squared distances, virtual row/column zeta at 0."""
        d = squared_distances(x, y)
        d_aug = torch.nn.functional.pad(d, (1, 0, 1, 0), value=self.settings.virtual_cost)
        ones = torch.ones(x.shape[0], 1, dtype=torch.bool, device=x.device)
        return d_aug, torch.cat([ones, mask_x], dim=1), torch.cat([ones, mask_y], dim=1)

    @torch.no_grad()
    def plan(self, d_aug: Tensor, mask_x: Tensor, mask_y: Tensor, psi: float) -> Tensor:
        """T (B, N+1, M+1) on the solver scale (sums to 1): Sinkhorn on ``D - S - lambda2 log P`` at reg lambda2.

        mask_x / mask_y are the real-frame masks (B, N) / (B, M).  lambda2 differs per pair (it scales with
        n m), so the cost is divided by it and the solve runs at eps = 1 (the same plan).
        """
        s = self.settings
        d_aug = d_aug.detach().float()
        prior, bonus = vava_prior(
            d_aug[:, 1:, 1:], mask_x, mask_y, psi, sigma=s.sigma, lambda1=s.lambda1,
            virtual_distance=s.virtual_distance,
        )  # fmt: skip
        n = mask_x.sum(dim=1).to(d_aug.dtype)
        m = mask_y.sum(dim=1).to(d_aug.dtype)
        lam2 = (s.lambda2 * n * m / 4.0).view(-1, 1, 1)
        cost = (d_aug - bonus) / lam2 - torch.log(prior)
        ones = torch.ones(d_aug.shape[0], 1, dtype=torch.bool, device=d_aug.device)
        mx, my = torch.cat([ones, mask_x], dim=1), torch.cat([ones, mask_y], dim=1)
        return sinkhorn(cost, eps=1.0, n_iters=s.n_iters, tol=s.tol, mask_x=mx, mask_y=my, validate=False)

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        s = self.settings
        psi = vava_psi(step)
        with float32_math(emb.device):
            emb = emb.float()
            x, mx, y, my = split_pairs(emb, mask)
            d_aug, mx_aug, my_aug = self.augmented_cost(x, mx, y, my)
            plan = self.plan(d_aug, mx, my, psi)
            n = mx.sum(dim=1).to(emb.dtype)
            m = my.sum(dim=1).to(emb.dtype)
            valid = mx_aug.unsqueeze(2) & my_aug.unsqueeze(1)
            ot_term = (torch.where(valid, plan * d_aug, torch.zeros_like(d_aug))).sum(dim=(1, 2)) / (n * m)
            intra = vava_intra_contrastive(emb, mask, window=s.window, margin=s.margin)
            inter = plan_contrastive(
                squared_distances(x, y) / emb.shape[-1], plan[:, 1:, 1:], mx, my, temperature=s.temperature
            )
            per_pair = ot_term + s.gamma * (intra[0::2] + intra[1::2] + inter)
            loss = per_pair.mean()
        metrics = {
            "vava/ot": ot_term.mean().detach(),
            "vava/intra": (intra[0::2] + intra[1::2]).mean().detach(),
            "vava/inter": inter.mean().detach(),
            "vava/psi": torch.tensor(psi, device=emb.device),
            "vava/virtual_mass": (plan[:, 0, :].sum(dim=1) + plan[:, 1:, 0].sum(dim=1)).mean(),
        }
        return LossOutput(
            loss=loss, metrics=metrics, couplings={"align": plan[:1, 1:, 1:] * (n[:1] + 1).view(-1, 1, 1)}
        )
