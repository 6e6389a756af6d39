"""Shared validation and dtype/mask plumbing for the OT solvers (internal).

Every public solver goes through these helpers so that shapes, masks, dtypes and scalar
hyper-parameters are checked the same way and produce the same error messages.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import Tensor

# Floor used by the reference ASOT solver inside its logarithms (``log(T + 1e-12)``); kept so
# that the mirror-descent iteration is a faithful copy and so that gradients stay bounded below.
LOG_FLOOR = math.log(1e-12)


def solve_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half and bfloat16 inputs are solved in float32; float32/float64 keep their precision."""
    return torch.float64 if dtype == torch.float64 else torch.float32


@contextlib.contextmanager
def full_precision(x: object, name: str = "cost") -> Iterator[None]:
    """Disable autocast on ``x``'s device for the solve: entropic OT in half precision under/overflows."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    dev_type = x.device.type if x.device.type in ("cuda", "cpu", "xpu", "mps") else "cpu"
    with torch.autocast(device_type=dev_type, enabled=False):
        yield


def check_cost(cost: Tensor, name: str = "cost") -> Tensor:
    """Validate a batched cost ``(B, N, M)`` and return it in the solve dtype."""
    if not isinstance(cost, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, N, M), got {type(cost).__name__}")
    if cost.dim() != 3:
        raise ValueError(f"{name} must have shape (B, N, M), got shape {tuple(cost.shape)}")
    if not cost.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {cost.dtype}")
    if min(cost.shape) < 1:
        raise ValueError(f"{name} must have B, N, M >= 1, got shape {tuple(cost.shape)}")
    return cost.to(solve_dtype(cost.dtype))


def check_finite_cost(cost: Tensor, valid: Tensor | None, name: str = "cost", *, validate: bool | None = None) -> None:
    """Reject NaN/inf in the valid entries of ``cost: (B, ...)``, naming the first problem that has one.

    valid: boolean, broadcastable to ``cost`` (None: every entry); masked entries may hold anything.  The test
    reads a flag back, which on an accelerator makes the host wait for the device: ``validate=None`` (the
    solvers' default) checks CPU tensors only, ``True`` checks any tensor, ``False`` none (the training losses:
    the trainer's non-finite guard skips such a step on the device, on every backend alike); nothing is
    checked while ``torch.compile`` traces (a data-dependent ``raise`` would split the graph).
    """
    if torch.compiler.is_compiling() or validate is False or (validate is None and cost.device.type != "cpu"):
        return
    # Torch-function modes (the trainer's HostSyncRecorder, which predicts from a CPU run where a GPU step would
    # wait) do not see this read: on an accelerator it only runs when the caller asked for it.
    with torch._C.DisableTorchFunction():
        # One summing pass first: a NaN or inf entry makes its problem's sum non-finite, so a finite sum clears the
        # batch (masked entries zeroed first).  Only a non-finite sum, or one that overflowed, takes the exact test.
        kept = cost if valid is None else torch.where(valid, cost, 0.0)
        if bool(torch.isfinite(kept.sum())):
            return
        bad = ~torch.isfinite(kept).flatten(1).all(dim=1)
        if not bool(bad.any()):
            return
        idx = bad.nonzero().flatten().tolist()
    raise ValueError(
        f"{name} has NaN or inf entries in batch index {idx[0]}"
        + (f" (and {len(idx) - 1} more of {cost.shape[0]} problems)" if len(idx) > 1 else "")
        + "; an OT cost must be finite on its unmasked entries"
    )


def check_mask(mask: Tensor | None, batch: int, length: int, device: torch.device, name: str) -> Tensor:
    """Validate a boolean padding mask ``(B, L)``; ``None`` means every entry is valid."""
    if mask is None:
        return torch.ones(batch, length, dtype=torch.bool, device=device)
    if not isinstance(mask, Tensor):
        raise ValueError(f"{name} must be a boolean torch.Tensor of shape ({batch}, {length})")
    if mask.dtype != torch.bool:
        raise ValueError(f"{name} must have dtype torch.bool, got {mask.dtype}")
    if tuple(mask.shape) != (batch, length):
        raise ValueError(f"{name} must have shape ({batch}, {length}) to match the cost, got {tuple(mask.shape)}")
    return mask.to(device)


def pair_mask(mask_x: Tensor | None, mask_y: Tensor | None) -> Tensor | None:
    """The valid entries of a (B, N, M) pair cost from masks (B, N) and (B, M), broadcastable; None: every entry."""
    if mask_x is None:
        return None if mask_y is None else mask_y.unsqueeze(1)
    return mask_x.unsqueeze(2) if mask_y is None else mask_x.unsqueeze(2) & mask_y.unsqueeze(1)


def check_positive(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_nonnegative(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_finite(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_alpha(alpha: float) -> float:
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    return float(alpha)


def check_fgw_settings(eps: float, alpha: float, radius: float, temporal_prior: float, virtual_cost: float | None = None,
                       *, eps_may_be_zero: bool = False) -> tuple[float, float, float, float, float | None]:
    """The fused-GW solvers' and objectives' regularisation: ``eps > 0`` (``>= 0`` with ``eps_may_be_zero``),
    ``alpha`` in [0, 1], ``radius`` in (0, 1], ``temporal_prior`` (returned as rho) and ``virtual_cost`` (None: no
    virtual frame) finite."""
    eps = check_nonnegative(eps, "eps") if eps_may_be_zero else check_positive(eps, "eps")
    rho = check_finite(temporal_prior, "temporal_prior")
    if virtual_cost is not None:
        virtual_cost = check_finite(virtual_cost, "virtual_cost")
    return eps, check_alpha(alpha), check_unit_open_closed(radius, "radius"), rho, virtual_cost


def check_unit_open_closed(value: float, name: str) -> float:
    """Check ``value`` in (0, 1] (radius, mass)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def check_count(value: int, name: str, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_tol(tol: float | None) -> float | None:
    if tol is None:
        return None
    return check_nonnegative(tol, "tol")


def log_uniform_marginal(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``log(1 / nnz)`` on valid entries and ``-inf`` on masked ones; ``mask: (B, L)``."""
    nnz = mask.sum(dim=1, keepdim=True).to(dtype)
    logp = -torch.log(nnz).expand_as(mask)
    return torch.where(mask, logp, -math.inf)


def log_marginal(weights: Tensor | None, mask: Tensor, dtype: torch.dtype, name: str) -> Tensor:
    """Log of user marginal weights ``(B, L)`` (``None``: uniform over valid entries).

    Masked entries are forced to zero mass; negative weights are rejected.
    """
    if weights is None:
        return log_uniform_marginal(mask, dtype)
    if not isinstance(weights, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {tuple(mask.shape)} or None")
    if tuple(weights.shape) != tuple(mask.shape):
        raise ValueError(f"{name} must have shape {tuple(mask.shape)}, got {tuple(weights.shape)}")
    weights = weights.to(device=mask.device, dtype=dtype)
    if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
        raise ValueError(f"{name} must hold finite non-negative weights")
    weights = torch.where(mask, weights, 0.0)
    return torch.log(weights)  # log(0) = -inf marks an entry that carries no mass


def neg_inf_where(valid: Tensor, x: Tensor) -> Tensor:
    """``x`` where ``valid`` else ``-inf`` (log-domain zero)."""
    return torch.where(valid, x, -math.inf)


def finite_or_zero(x: Tensor) -> Tensor:
    """Replace non-finite entries (from ``-inf - -inf`` on empty rows) by 0."""
    return torch.where(torch.isfinite(x), x, 0.0)


def safe_exp(log_x: Tensor) -> Tensor:
    """``exp`` that maps ``-inf``/NaN to exactly 0."""
    return torch.where(torch.isnan(log_x), 0.0, torch.exp(log_x))


def plogp_minus_p(x: Tensor, log_x: Tensor) -> Tensor:
    """Elementwise ``x (log x - 1)`` with ``0 log 0 = 0`` (the negative entropy density)."""
    return torch.where(x > 0, x * (log_x - 1.0), 0.0)


def kl_div(marg: Tensor, log_ref: Tensor, dim: int) -> Tensor:
    """``KL(marg || ref) = sum marg log(marg / ref)`` (no linear terms, as ``docs/methods.md`` notation), summed over ``dim``."""
    log_marg = torch.log(marg)
    val = torch.where(marg > 0, marg * (log_marg - log_ref), 0.0)
    return val.sum(dim=dim)


CPU_CHUNK_ELEMENTS = 1 << 19  # (B, N, M) entries per thread in one chunk of a CPU solve (2 MiB of float32: L2)


def cpu_chunks(batch: int, entries: int, device: torch.device) -> list[slice]:
    """The batch split so that each chunk's (N, M) state is about ``CPU_CHUNK_ELEMENTS`` entries per thread.

    On CPU a solver then runs all its iterations on one chunk while its tensors stay in cache, instead of
    streaming the whole batch from memory once per pass; chunk sizes differ by at most one problem.  Elsewhere
    (an accelerator), or inside an outer ``torch.compile`` graph, one chunk: the whole batch.  entries: N * M of
    one problem.
    """
    if device.type != "cpu" or batch <= 1 or torch.compiler.is_compiling():
        return [slice(0, batch)]
    per_chunk = max(1, CPU_CHUNK_ELEMENTS * torch.get_num_threads() // max(entries, 1))
    count = -(-batch // per_chunk)
    bounds = [round(i * batch / count) for i in range(count + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
