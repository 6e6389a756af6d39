"""Learnable action prototypes A ∈ R^{K×D} (ASOT ``clusters``; ``docs/methods.md#asot``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vasot_dist.models.kmeans import spherical_kmeans


class ActionPrototypes(nn.Module):
    """K unit-norm action prototypes of dimension ``dim``.

    The raw parameter ``weight`` (K, dim) is L2-normalised on every forward, so gradients see unit
    vectors; :meth:`renormalize_` also writes the normalisation back in place after an optimiser step,
    as the reference does (``self.clusters.data = normalize(self.clusters.data)``).
    """

    def __init__(self, num_actions: int, dim: int) -> None:
        super().__init__()
        if num_actions < 1 or dim < 1:
            raise ValueError(f"num_actions and dim must be >= 1, got {num_actions}, {dim}")
        self.num_actions = num_actions
        self.dim = dim
        self.weight = nn.Parameter(torch.empty(num_actions, dim))
        self.init_random_(seed=0)

    def forward(self) -> torch.Tensor:
        """→ (K, dim) unit-norm prototypes (differentiable w.r.t. ``weight``)."""
        return F.normalize(self.weight, dim=-1)

    @torch.no_grad()
    def renormalize_(self) -> None:
        """Project ``weight`` back onto the unit sphere in place (call after ``optimizer.step()``).

        Rows already within 1e-6 of unit norm are left bit for bit as they are: a step the trainer skipped (non-
        finite loss) must change nothing, and dividing a unit vector by its norm rounds. Decided on the device.
        """
        norm = self.weight.norm(dim=-1, keepdim=True)
        off = (norm - 1).abs() > 1e-6
        self.weight.copy_(torch.where(off, self.weight / norm.clamp_min(1e-12), self.weight))

    @torch.no_grad()
    def init_random_(self, seed: int) -> None:
        """Gaussian directions, normalised (VASOT's released code initialises randomly)."""
        gen = torch.Generator().manual_seed(int(seed))
        w = torch.randn(self.num_actions, self.dim, generator=gen)
        self.weight.copy_(F.normalize(w, dim=-1).to(self.weight))

    @torch.no_grad()
    def init_kmeans_(
        self, embeddings: torch.Tensor, seed: int, n_init: int = 4, max_iter: int = 100,
        on_iteration: Callable[[int], None] | None = None,
    ) -> float:
        """Set the prototypes to the spherical k-means centroids of ``embeddings`` (n, dim); returns the
        k-means objective Σ (1 − cos). ``on_iteration``: see :func:`~vasot_dist.models.kmeans.spherical_kmeans`.

        ASOT ``fit_clusters``: embeddings of the *untrained* encoder on the first batches. Runs on the
        embeddings' device (CPU or CUDA).

        Distributed training: every rank must end with the same prototypes. Either all-gather the
        embeddings and call this on every rank with the same seed, or call it on rank 0 only and then
        :meth:`broadcast_` (GPU float arithmetic is not guaranteed bit-identical across ranks, so the
        broadcast is the safe choice). DistributedDataParallel syncs parameters only when it wraps the
        module, not afterwards.
        """
        if embeddings.dim() != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"embeddings must have shape (n, {self.dim}), got {tuple(embeddings.shape)}")
        if embeddings.shape[0] < self.num_actions:
            raise ValueError(
                f"k-means needs at least num_actions={self.num_actions} embeddings, got {embeddings.shape[0]}"
            )
        result = spherical_kmeans(embeddings, self.num_actions, n_init=n_init, max_iter=max_iter, seed=seed,
                                  on_iteration=on_iteration)
        self.weight.copy_(result.centroids.to(self.weight))
        return result.objective

    @torch.no_grad()
    def broadcast_(self, src: int = 0) -> None:
        """Copy rank ``src``'s prototypes to every rank (no-op outside an initialised process group)."""
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(self.weight.data, src=src)

    def logits(self, x: torch.Tensor, tau: float) -> torch.Tensor:
        """x: (B, N, dim) unit-norm embeddings → (B, N, K) = x Aᵀ / τ (ASOT Eq. 6; τ = 0.1)."""
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension {self.dim}, got shape {tuple(x.shape)}")
        return x @ self().T.to(x.dtype) / tau
