"""Structural and temporal priors applied without building N x N matrices.

ASOT/VAOT (``docs/methods.md``, section "Structural priors"; ASOT paper Eq. 5):

* ``Cv_ik = 1/r`` if ``1 <= |i - k| <= floor(n r)`` else 0 (frames of x; ``n`` = valid frames of the
  problem, counting a virtual frame when there is one).  ``Cv @ T`` is a box sum along time,
  computed from prefix sums in O(N M) whatever the radius.
* ``Ca = 1 - I`` (distinct actions): ``T @ Ca = rowsum(T) - T``.
* ``Cy_jl = 0`` if ``1 <= |j - l| <= floor(m r)`` else 1, *including* ``j = l`` (VAOT as coded):
  ``T @ Cy = rowsum(T) - band(T)`` along the last axis.
* Temporal prior ``R_ij = |i/N - j/M|``.

REALIGN (``docs/methods.md``, section REALIGN; our design): Laplace structure kernel ``C_ik = exp(-|i - k| / (n r))``
applied along time by FFT convolution in O(N log N) per column.

Masks are ``(B, L)`` booleans.  The box sums use raw positions with masked entries zeroed, and the
widths use each problem's own number of valid entries, so a problem whose valid entries form one
contiguous block (padding at either end) gives exactly the result of that problem alone.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor


def band_width(lengths: Tensor, radius: float) -> Tensor:
    """``floor(n * radius)`` per problem, computed in float64 exactly like Python's ``int(n * r)``.

    lengths: (B,) integer tensor of valid lengths.  Returns (B,) int64.
    """
    return torch.floor(lengths.to(torch.float64) * float(radius)).to(torch.int64)


class Band(NamedTuple):
    """The band ``1 <= |i - k| <= width_b`` along ``dim`` (1 or 2) of a (B, N, M) tensor, prepared once per solve.

    ``width >= 0``: one host-known width for the whole batch (shifted slices).  ``width = -1``: per-problem
    widths on the device, as gather indices ``hi``, ``lo``, ``lo_ok`` of shape (B, L, 1) or (B, 1, L).
    A plain tuple of ints and tensors, so a compiled iteration takes it as an argument.
    """

    dim: int
    width: int
    hi: Tensor | None = None
    lo: Tensor | None = None
    lo_ok: Tensor | None = None


def make_band(width: Tensor | int, length: int, dim: int, device: torch.device | str | None = None) -> Band:
    """Prepare :func:`apply_band` for widths from :func:`band_widths` (a Python int, or a (B,) int64 tensor)."""
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2 for a (B, N, M) tensor, got {dim}")
    if isinstance(width, int):
        return Band(dim, min(max(width, 0), length - 1))
    pos = torch.arange(length, device=device)
    w = width.to(device).view(-1, 1)
    # box_i = cs[min(i + w, L - 1)] - cs[i - w - 1] (second term only for i > w)
    hi = torch.clamp(pos + w, max=length - 1)
    lo = pos - w - 1
    shape = (-1, length, 1) if dim == 1 else (-1, 1, length)
    return Band(dim, -1, hi.view(shape), lo.clamp(min=0).view(shape), (lo >= 0).view(shape))


def _shift(x: Tensor, d: int, dim: int) -> Tensor:
    """``y[i] = x[i + d]`` along ``dim`` (1 or 2), zero where ``i + d`` falls outside: one fused load when compiled."""
    length = x.shape[dim]
    if abs(d) >= length:
        return torch.zeros_like(x)
    kept = x.narrow(dim, d, length - d) if d >= 0 else x.narrow(dim, 0, length + d)
    before, after = (0, d) if d >= 0 else (-d, 0)
    return torch.nn.functional.pad(kept, (before, after) if dim == 2 else (0, 0, before, after))


# Widest band summed by shifted reads (2 w loads per entry, fused into the consumer's loop) rather than a prefix sum.
# ASOT (256 frames, r = 0.04: w = 10) and VAOT (257, r = 0.02: w = 5) are below it; long videos are not.
DIRECT_MAX_WIDTH = 16


def _direct(band: Band) -> bool:
    """Sum the band by 2 w shifted reads instead of a prefix sum: inside a compiled graph, for a host-known width
    of at most ``DIRECT_MAX_WIDTH``.  Inductor fuses the reads into the consumer's loop, where a prefix sum is a
    separate sequential scan (an ATen call on CPU); eagerly the prefix sum's few ops are cheaper."""
    return band.hi is None and 0 < band.width <= DIRECT_MAX_WIDTH and torch.compiler.is_compiling()


def _padded(x: Tensor, band: Band) -> Tensor:
    """``x`` with ``band.width`` zeros on both sides of ``band.dim``, materialised: without the forced layout
    inductor inlines the padding into each shifted read, a masked load per lane."""
    w = band.width
    xp = torch.nn.functional.pad(x, (w, w) if band.dim == 2 else (0, 0, w, w))
    force_layout = getattr(torch.ops.prims, "inductor_force_stride_order", None)  # registered by torch.compile
    return xp if force_layout is None else force_layout(xp, xp.stride())


def _direct_band_sum(xp: Tensor, band: Band, length: int) -> Tensor:
    """The band sum from the padded ``xp`` (``_padded``): offsets 0..2w of the window, the centre w left out."""
    w, dim = band.width, band.dim
    out = xp.narrow(dim, 0, length)
    for d in range(1, 2 * w + 1):
        if d != w:
            out = out + xp.narrow(dim, d, length)
    return out


def apply_band(x: Tensor, band: Band) -> Tensor:
    """Sum of ``x: (B, N, M)`` over the band of ``band`` (zero-padded box filter, as the reference conv1d).

    Prefix-sum differences, O(B N M) for any width: a cumsum, two shifted reads and two subtractions.  Inside a
    compiled graph, a host-known width of at most ``DIRECT_MAX_WIDTH`` is summed directly (``_direct``).
    """
    dim = band.dim
    length = x.shape[dim]
    if band.width == 0:
        return torch.zeros_like(x)
    if _direct(band):
        return _direct_band_sum(_padded(x, band), band, length)
    cs = torch.cumsum(x, dim=dim)  # cs[k] = sum_{<=k}
    if band.hi is None or band.lo is None or band.lo_ok is None:
        w = band.width
        total = cs.narrow(dim, length - 1, 1)
        inside = torch.arange(length, device=x.device) < length - w  # cs[i + w] exists
        hi = torch.where(inside.view(-1, 1) if dim == 1 else inside, _shift(cs, w, dim), total)
        return hi - _shift(cs, -(w + 1), dim) - x
    hi = torch.gather(cs, dim, band.hi.expand_as(x))
    lo = torch.gather(cs, dim, band.lo.expand_as(x))
    return hi - torch.where(band.lo_ok, lo, 0.0) - x  # the band excludes the centre |i - k| = 0


def band_sum_and_total(x: Tensor, band: Band) -> tuple[Tensor, Tensor]:
    """``(apply_band(x, band), x.sum(band.dim, keepdim=True))``; compiled, both come from one read of ``x``."""
    if _direct(band):
        xp = _padded(x, band)  # zeros in the margins: its sum is x's, and the padding loop also sums
        return _direct_band_sum(xp, band, x.shape[band.dim]), xp.sum(dim=band.dim, keepdim=True)
    return apply_band(x, band), x.sum(dim=band.dim, keepdim=True)


def band_total(x: Tensor, band: Band) -> Tensor:
    """``x.sum(band.dim, keepdim=True)``, compiled from the same padded buffer as the band sum of ``x`` (one loop)."""
    return (_padded(x, band) if _direct(band) else x).sum(dim=band.dim, keepdim=True)


def band_sum(x: Tensor, width: Tensor | int, dim: int) -> Tensor:
    """Band sum of ``x: (B, N, M)`` along ``dim`` with widths as :func:`band_widths` returns them."""
    return apply_band(x, make_band(width, x.shape[dim] if dim in (1, 2) else 0, dim, x.device))


def band_widths(mask: Tensor | None, length: int, radius: float) -> Tensor | int:
    """The band widths ``floor(n r)`` of a batch, in the form :func:`band_sum` takes.

    Without a mask every problem has ``n = length``: the width is a Python int known on the host (contiguous
    slices).  With a mask it is the (B,) tensor of per-problem widths (gather path); the widths are never
    read back, because on an accelerator that read makes the host wait for the device.
    """
    if mask is None:
        return math.floor(float(length) * float(radius))  # float64, like band_width
    return band_width(mask.sum(dim=1), radius)


def _zero_masked(x: Tensor, mask_x: Tensor | None, mask_y: Tensor | None) -> Tensor:
    if mask_x is not None:
        x = x * mask_x.unsqueeze(2).to(x.dtype)
    if mask_y is not None:
        x = x * mask_y.unsqueeze(1).to(x.dtype)
    return x


def mult_cv(t: Tensor, radius: float, mask: Tensor | None = None) -> Tensor:
    """``Cv @ t`` for ``t: (B, N, M)``, ``Cv_ik = 1/r`` on ``1 <= |i-k| <= floor(n r)``, n = valid rows.

    mask: (B, N) valid rows (None: all).  Masked rows of the input are ignored and of the output zeroed.
    """
    width = band_widths(mask, t.shape[1], radius)
    t = _zero_masked(t, mask, None)
    return _zero_masked(band_sum(t, width, dim=1) / radius, mask, None)


def mult_ca(t: Tensor, mask_y: Tensor | None = None) -> Tensor:
    """``t @ Ca`` with ``Ca = 1 - I`` over the valid columns: ``rowsum(t) - t``.  t: (B, N, M)."""
    t = _zero_masked(t, None, mask_y)
    return _zero_masked(t.sum(dim=2, keepdim=True) - t, None, mask_y)


def mult_cy(t: Tensor, radius: float, mask_y: Tensor | None = None) -> Tensor:
    """``t @ Cy`` with ``Cy_jl = 0`` on ``1 <= |j-l| <= floor(m r)``, else 1 (diagonal included).

    ``t @ Cy = rowsum(t) - band(t)`` along the last axis; m = valid columns.  t: (B, N, M).
    """
    width = band_widths(mask_y, t.shape[2], radius)
    t = _zero_masked(t, None, mask_y)
    return _zero_masked(t.sum(dim=2, keepdim=True) - band_sum(t, width, dim=2), None, mask_y)


def frame_positions(mask: Tensor | None, batch: int, length: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Normalised positions ``rank_i / n`` of valid entries (rank among valid entries), 0 elsewhere.

    Returns (B, L).  Without a mask this is ``arange(L) / L`` as in the reference ``temporal_prior``.
    """
    if mask is None:
        pos = torch.arange(length, device=device, dtype=dtype) / length
        return pos.unsqueeze(0).expand(batch, length)
    rank = torch.cumsum(mask.to(torch.int64), dim=1) - 1
    nnz = mask.sum(dim=1, keepdim=True).clamp(min=1)
    pos = rank.to(dtype) / nnz.to(dtype)
    return torch.where(mask, pos, 0.0)


def temporal_prior(
    batch: int,
    n: int,
    m: int,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Global temporal prior ``R_ij = |i/N - j/M|`` (ASOT paper section 5), shape (B, N, M).

    N and M are each problem's numbers of valid entries; positions are ranks among valid entries.
    Masked entries are 0.  Add ``rho * R`` to the cost.  Without masks every problem has the same prior: the
    (N, M) matrix is expanded over the batch, not copied.
    """
    device = torch.device(device)
    shared = mask_x is None and mask_y is None
    px = frame_positions(mask_x, 1 if shared else batch, n, device, dtype)
    py = frame_positions(mask_y, 1 if shared else batch, m, device, dtype)
    r = (px.unsqueeze(2) - py.unsqueeze(1)).abs()
    return r.expand(batch, n, m) if shared else _zero_masked(r, mask_x, mask_y)


def laplace_spectrum(scale: Tensor, length: int, dtype: torch.dtype) -> Tensor:
    """rFFT of the zero-padded Laplace kernel ``exp(-|lag| / scale_b)``, ``|lag| < length``: (B, n_fft//2+1).

    ``n_fft`` (``_fft_size``) is >= 2 length - 1, so the circular convolution is the linear one.
    """
    n_fft = _fft_size(length)
    d = torch.arange(n_fft, device=scale.device, dtype=dtype)
    circ = torch.minimum(d, n_fft - d)  # circular lag: k and n_fft - k are lags +k and -k
    kern = torch.exp(-circ.unsqueeze(0) / scale.to(dtype).view(-1, 1))  # (B, n_fft)
    kern = torch.where(circ.unsqueeze(0) < length, kern, 0.0)  # only |lag| < L
    return torch.fft.rfft(kern, n=n_fft, dim=1)


def _fft_size(length: int) -> int:
    """The smallest 5-smooth size (2^a 3^b 5^c, fast for pocketfft and cuFFT) >= 2 length - 1: linear convolution."""
    need = max(2 * length - 1, 1)
    best = need << 1
    p3 = 1
    while p3 < best:
        p35 = p3
        while p35 < best:
            best = min(best, p35 << ((need - 1) // p35).bit_length())  # smallest p35 * 2^k >= need
            p35 *= 5
        p3 *= 3
    return best


def apply_spectrum(x: Tensor, spectrum: Tensor, dim: int) -> Tensor:
    """Convolve ``x: (B, N, M)`` along ``dim`` with a kernel given by ``laplace_spectrum`` for that length."""
    length = x.shape[dim]
    if length == 1:
        return x.clone()
    n_fft = _fft_size(length)
    kf = spectrum.unsqueeze(2) if dim == 1 else spectrum.unsqueeze(1)
    y = torch.fft.irfft(torch.fft.rfft(x, n=n_fft, dim=dim) * kf, n=n_fft, dim=dim)
    return y.narrow(dim, 0, length)


DENSE_LAPLACE_MAX = 512  # axes up to this length use a dense (B, L, L) kernel: one GEMM beats two FFTs there


class LaplaceKernel(NamedTuple):
    """``K_ik = exp(-|i - k| / scale_b)`` along ``dim`` (1 or 2) of a (B, N, M) tensor, prepared once per solve.

    ``dense``: the (B, L, L) kernel, for axes of at most ``DENSE_LAPLACE_MAX`` entries, applied by one batched GEMM
    (measured faster than the FFT there); ``spectrum``: its zero-padded rFFT (``laplace_spectrum``) for longer
    axes, O(B M L log L) time and O(B M L) memory.  A plain tuple, so a compiled iteration takes it as an argument.
    """

    dim: int
    dense: Tensor | None
    spectrum: Tensor | None


def laplace_kernel(scale: Tensor, length: int, dim: int, dtype: torch.dtype) -> LaplaceKernel:
    """Prepare :func:`apply_laplace` for (B,) positive length scales in index units."""
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2 for a (B, N, M) tensor, got {dim}")
    if length > DENSE_LAPLACE_MAX:
        return LaplaceKernel(dim, None, laplace_spectrum(scale, length, dtype))
    pos = torch.arange(length, device=scale.device, dtype=dtype)
    lag = (pos.unsqueeze(1) - pos.unsqueeze(0)).abs()
    return LaplaceKernel(dim, torch.exp(-lag / scale.to(dtype).view(-1, 1, 1)), None)  # (B, L, L), symmetric


def apply_laplace(x: Tensor, kernel: LaplaceKernel) -> Tensor:
    """``K x`` along the kernel's dim for ``x: (B, N, M)`` (a (B, N, 1) or (B, 1, M) vector too)."""
    if kernel.dense is None:
        assert kernel.spectrum is not None
        return apply_spectrum(x, kernel.spectrum, kernel.dim)
    k = kernel.dense
    if kernel.dim == 2:
        return torch.bmm(x, k)  # x K^T = x K
    if x.shape[2] == 1:  # a column vector: (x^T K)^T, the fast orientation of a batched GEMV on CPU
        return torch.bmm(x.transpose(1, 2), k).transpose(1, 2)
    return torch.bmm(k, x)


def laplace_kernel_apply(x: Tensor, scale: Tensor, dim: int) -> Tensor:
    """``K @ x`` along ``dim`` (1 or 2) with ``K_ik = exp(-|i - k| / scale_b)``, x: (B, N, M).

    scale: (B,) positive length scale in index units (REALIGN uses ``n * radius``).  One-shot
    :func:`laplace_kernel`: a dense kernel for short axes, an exact linear (not circular) FFT convolution
    for long ones.
    """
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2 for a (B, N, M) tensor, got {dim}")
    return apply_laplace(x, laplace_kernel(scale, x.shape[dim], dim, x.dtype))


def prepare_pair_cost(
    cost: Tensor, mask_x: Tensor | None, mask_y: Tensor | None, *, rho: float, virtual_cost: float | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Frames-to-frames cost with the global prior and the optional virtual frame (VAOT, REALIGN).

    cost: (B, N, M); masks (B, N), (B, M) (None: every frame valid) → cost + ρR, and with ``virtual_cost`` a row and
    a column of that value PREPENDED (index 0, same uniform mass as a real frame) with the masks extended to match:
    shapes (B, N+1, M+1), (B, N+1), (B, M+1).  The masks come back as tensors.
    """
    bsz, n, m = cost.shape
    if rho != 0.0:
        cost = cost + rho * temporal_prior(bsz, n, m, mask_x, mask_y, device=cost.device, dtype=cost.dtype)
    if mask_x is None:
        mask_x = torch.ones(bsz, n, dtype=torch.bool, device=cost.device)
    if mask_y is None:
        mask_y = torch.ones(bsz, m, dtype=torch.bool, device=cost.device)
    if virtual_cost is not None:
        cost = torch.nn.functional.pad(cost, (1, 0, 1, 0), value=virtual_cost)
        ones = torch.ones(bsz, 1, dtype=torch.bool, device=cost.device)
        mask_x = torch.cat([ones, mask_x], dim=1)
        mask_y = torch.cat([ones, mask_y], dim=1)
    return cost, mask_x, mask_y
