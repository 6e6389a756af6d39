"""Sliced Wasserstein distance (batched) and CLOT's circular generalised-SW cost matrix.

``sliced_wasserstein`` is ``ot.sliced_wasserstein_distance``: the p-Wasserstein distance between
the 1-D projections of two weighted point clouds, averaged over projections, to the power 1/p.

``circular_sw_cost`` is the per-pair cost of CLOT (Bueno-Benito & Dimiccoli, ICCV 2025), ``docs/methods.md``
section CLOT: circular projections ``g(x, theta_m) = ||x - radius theta_m||`` (Kolouri et al. 2019) with
theta uniform on the sphere, each point's vector of projections L2-normalised, and
``SW_ij = ||g(x_i) - g(a_j)||``.  Unlike the released ``gsw.py`` nothing is sorted along the frame
axis, so row i is still frame i.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import check_count, check_finite_cost, check_mask, check_positive, full_precision, solve_dtype


def _points(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 3 or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor of shape (B, L, D), got {getattr(x, 'shape', x)}")
    return x.to(solve_dtype(x.dtype))


def _one_of(n_projections: int | None, projections: Tensor | None) -> None:
    if (n_projections is None) == (projections is None):
        raise ValueError("pass exactly one of n_projections (random directions) and projections (given directions)")


def random_directions(dim: int, n_projections: int, *, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
    """``(dim, n_projections)`` unit vectors, uniform on the sphere (normalised Gaussians)."""
    theta = torch.randn(dim, n_projections, generator=generator, device=device, dtype=dtype)
    return theta / theta.norm(dim=0, keepdim=True)


def _wasserstein_1d_pp(u: Tensor, v: Tensor, wu: Tensor, wv: Tensor, p: float) -> Tensor:
    """``W_p^p`` between 1-D weighted samples, batched: u (B, P, N), v (B, P, M), wu (B, N), wv (B, M)."""
    u_sorted, u_idx = torch.sort(u, dim=-1)
    v_sorted, v_idx = torch.sort(v, dim=-1)
    cw_u = torch.cumsum(torch.gather(wu.unsqueeze(1).expand_as(u), -1, u_idx), dim=-1)
    cw_v = torch.cumsum(torch.gather(wv.unsqueeze(1).expand_as(v), -1, v_idx), dim=-1)
    qs, _ = torch.sort(torch.cat([cw_u, cw_v], dim=-1), dim=-1)
    iu = torch.searchsorted(cw_u.contiguous(), qs.contiguous()).clamp(max=u.shape[-1] - 1)
    iv = torch.searchsorted(cw_v.contiguous(), qs.contiguous()).clamp(max=v.shape[-1] - 1)
    diff = (torch.gather(u_sorted, -1, iu) - torch.gather(v_sorted, -1, iv)).abs()
    delta = torch.diff(qs, dim=-1, prepend=torch.zeros_like(qs[..., :1]))
    return (delta * diff.pow(p)).sum(dim=-1)


def sliced_wasserstein(
    x: Tensor,
    y: Tensor,
    *,
    p: float,
    n_projections: int | None = None,
    projections: Tensor | None = None,
    generator: torch.Generator | None = None,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    validate: bool | None = None,
) -> Tensor:
    """Sliced p-Wasserstein distance between uniform point clouds, shape (B,).

    x: (B, N, D), y: (B, M, D); masks (B, N)/(B, M) drop padded points (uniform weights over the
    rest).  Exactly one of ``projections``: (D, P) directions as POT's ``projections`` argument, and
    ``n_projections`` random unit directions from ``generator`` (POT's default is 50).  Same value as
    ``ot.sliced_wasserstein_distance(x_b, y_b, projections=projections, p=p)``.  Non-finite points
    (unmasked) raise ValueError naming the batch index (accelerator tensors only with ``validate=True``).
    """
    check_positive(p, "p")
    _one_of(n_projections, projections)
    with full_precision(x, "x"):
        x = _points(x, "x")
        y = _points(y, "y").to(x.dtype)
        if x.shape[0] != y.shape[0] or x.shape[2] != y.shape[2]:
            raise ValueError(f"x (B, N, D) and y (B, M, D) must share B and D, got {tuple(x.shape)} and {tuple(y.shape)}")
        bsz, n, d = x.shape
        m = y.shape[1]
        if projections is None:
            n_projections = check_count(n_projections, "n_projections")
            projections = random_directions(d, n_projections, generator=generator, device=x.device, dtype=x.dtype)
        elif not isinstance(projections, Tensor) or projections.dim() != 2 or projections.shape[0] != d:
            raise ValueError(f"projections must have shape (D={d}, P), got {tuple(projections.shape)}")
        projections = projections.to(device=x.device, dtype=x.dtype)
        mask_x = check_mask(mask_x, bsz, n, x.device, "mask_x")
        mask_y = check_mask(mask_y, bsz, m, x.device, "mask_y")
        check_finite_cost(x, mask_x.unsqueeze(2), "x", validate=validate)
        check_finite_cost(y, mask_y.unsqueeze(2), "y", validate=validate)
        wx = mask_x.to(x.dtype) / mask_x.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)
        wy = mask_y.to(x.dtype) / mask_y.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)
        # masked points get weight 0 and a finite value (0) so they never enter a quantile
        xp = torch.where(mask_x.unsqueeze(2), x, 0.0) @ projections  # (B, N, P)
        yp = torch.where(mask_y.unsqueeze(2), y, 0.0) @ projections
        wpp = _wasserstein_1d_pp(xp.transpose(1, 2), yp.transpose(1, 2), wx, wy, float(p))  # (B, P)
        sw = wpp.mean(dim=1).clamp(min=0).pow(1.0 / float(p))
        empty = (mask_x.sum(dim=1) == 0) | (mask_y.sum(dim=1) == 0)
    return torch.where(empty, 0.0, sw)


def circular_projections(x: Tensor, theta: Tensor, radius: float) -> Tensor:
    """``g(x, theta_m) = ||x - radius theta_m||`` for x (..., L, D), theta (P, D): (..., L, P)."""
    sq = (x * x).sum(dim=-1, keepdim=True) + radius**2 * (theta * theta).sum(dim=-1) - 2 * radius * (x @ theta.T)
    return sq.clamp(min=0).sqrt()


def circular_sw_cost(
    x: Tensor,
    a: Tensor,
    *,
    radius: float,
    n_projections: int | None = None,
    projections: Tensor | None = None,
    generator: torch.Generator | None = None,
    validate: bool | None = None,
) -> Tensor:
    """CLOT's circular generalised-SW cost between frames and actions, shape (B, N, K).

    x: (B, N, D) frame embeddings; a: (K, D) or (B, K, D) action prototypes; exactly one of
    ``projections``: (P, D) directions (normalised here) and ``n_projections`` random ones from
    ``generator`` (CLOT uses 150, radius 2: ``docs/methods.md``, section CLOT).
    ``cost_ij = || normalize(g(x_i)) - normalize(g(a_j)) ||`` with ``g`` the circular projections.
    Non-finite inputs raise ValueError naming the batch index (accelerator tensors only with ``validate=True``).
    """
    radius = check_positive(radius, "radius")
    _one_of(n_projections, projections)
    with full_precision(x, "x"):
        x = _points(x, "x")
        check_finite_cost(x, None, "x", validate=validate)
        if not isinstance(a, Tensor) or a.dim() not in (2, 3) or a.shape[-1] != x.shape[-1]:
            raise ValueError(f"a must have shape (K, D) or (B, K, D) with D={x.shape[-1]}")
        check_finite_cost(a if a.dim() == 3 else a.unsqueeze(0), None, "a", validate=validate)
        a = a.to(device=x.device, dtype=x.dtype)
        if a.dim() == 3 and a.shape[0] != x.shape[0]:
            raise ValueError(f"a (B, K, D) must have B={x.shape[0]}, got {a.shape[0]}")
        d = x.shape[-1]
        if projections is None:
            n_projections = check_count(n_projections, "n_projections")
            theta = random_directions(d, n_projections, generator=generator, device=x.device, dtype=x.dtype).T
        else:
            if not isinstance(projections, Tensor) or projections.dim() != 2 or projections.shape[1] != d:
                raise ValueError(f"projections must have shape (P, D={d}), got {tuple(projections.shape)}")
            theta = projections.to(device=x.device, dtype=x.dtype)
            theta = theta / theta.norm(dim=1, keepdim=True)
        gx = torch.nn.functional.normalize(circular_projections(x, theta, radius), dim=-1)
        ga = torch.nn.functional.normalize(circular_projections(a, theta, radius), dim=-1)
        if ga.dim() == 2:
            ga = ga.unsqueeze(0).expand(x.shape[0], -1, -1)
        return torch.cdist(gx, ga, p=2)
