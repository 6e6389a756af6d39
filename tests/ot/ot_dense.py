"""Dense oracles for the OT tests: explicit prior matrices and a linear-domain port of the
authors' ASOT/VAOT iteration (``segment_asot`` in ``src/asot.py`` of mingu6/action_seg_ot), written
independently of the library."""

from __future__ import annotations

import numpy as np
import torch


def band_matrix(n: int, width: int) -> np.ndarray:
    idx = np.arange(n)
    d = np.abs(idx[:, None] - idx[None, :])
    return ((d >= 1) & (d <= width)).astype(float)


def cv_dense(n: int, radius: float) -> np.ndarray:
    """Cv_ik = 1/r on 1 <= |i-k| <= int(n r)."""
    return band_matrix(n, int(n * radius)) / radius


def ca_dense(k: int) -> np.ndarray:
    return 1.0 - np.eye(k)


def cy_dense(m: int, radius: float) -> np.ndarray:
    """VAOT's Cy: 0 on the band 1 <= |j-l| <= int(m r), 1 elsewhere including the diagonal."""
    return 1.0 - band_matrix(m, int(m * radius))


def laplace_dense(n: int, radius: float) -> np.ndarray:
    pos = np.arange(n) / n
    return np.exp(-np.abs(pos[:, None] - pos[None, :]) / radius)


def reference_fgw_iteration(
    cost: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    *,
    eps: float,
    alpha: float,
    ub_x: bool,
    ub_y: bool,
    lambda_x: float,
    lambda_y: float,
    n_iters: int,
    inner_iters: int = 1,
) -> np.ndarray:
    """The reference ``segment_asot`` loop for one problem, dense and in the linear domain.

    Returns T on the solver scale (rows sum to 1/N).  Follows src/asot.py: grad with 1e-12 floors,
    step 4/max(grad) at iteration 0, projections per flag, balanced -> Sinkhorn passes on
    exp(-(alpha Cx T Cy + (1-alpha) C)/eps) (no stabilisation; tests keep exponents moderate).
    """
    n, m = cost.shape
    dx = np.full((n, 1), 1.0 / n)
    dy = np.full((1, m), 1.0 / m)
    t = dx * dy
    step = None
    for _ in range(n_iters):
        fgw = alpha * cx @ t @ cy + (1 - alpha) * cost
        grad = fgw + eps * np.log(t + 1e-12)
        if ub_x:
            grad = grad + lambda_x * (np.log(t.sum(1, keepdims=True) / dx + 1e-12) + 1)
        if ub_y:
            grad = grad + lambda_y * (np.log(t.sum(0, keepdims=True) / dy + 1e-12) + 1)
        if step is None:
            step = 4.0 / grad.max()
        t = t * np.exp(-step * grad)
        if not ub_x and not ub_y:
            kern = np.exp(-fgw / eps)
            kern = kern / kern.max()
            b = np.ones((1, m))
            for _ in range(inner_iters):
                a = dx / (kern @ b.T)
                b = dy / (a.T @ kern)
            t = a * kern * b
        elif not ub_x:
            t = t / t.sum(1, keepdims=True) * dx
        elif not ub_y:
            t = t / t.sum(0, keepdims=True) * dy
    return t


def dense_fgw_objective(
    t: np.ndarray, cost: np.ndarray, cx: np.ndarray, cy: np.ndarray, *, eps, alpha, lambda_x, lambda_y, ub_x, ub_y
) -> float:
    """The solvers' objective (alpha/2 GW term, product loss; ``docs/methods.md``, ASOT), evaluated densely."""
    n, m = cost.shape
    obj = 0.5 * alpha * np.sum((cx @ t @ cy) * t) + (1 - alpha) * np.sum(cost * t)
    pos = t > 0
    obj += eps * np.sum(t[pos] * (np.log(t[pos]) - 1))
    if ub_x:
        r = t.sum(1)
        obj += lambda_x * np.sum(r * np.log(r * n))
    if ub_y:
        c = t.sum(0)
        obj += lambda_y * np.sum(c * np.log(c * m))
    return float(obj)


def temporal_prior_dense(n: int, m: int) -> np.ndarray:
    return np.abs(np.arange(n)[:, None] / n - np.arange(m)[None, :] / m)


def to_np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy()
