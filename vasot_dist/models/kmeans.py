"""Small spherical k-means in torch (CPU or CUDA), several restarts run as one batch.

Used to initialise action prototypes from the untrained encoder's embeddings (ASOT ``fit_clusters``).
Cosine geometry: points and centroids are unit vectors, a point goes to the centroid of highest dot
product, a centroid is the normalised sum of its points (the minimiser of Σ (1 − cos) on the sphere).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class KMeansResult:
    centroids: torch.Tensor  # (k, d), unit norm
    labels: torch.Tensor  # (n,), int64
    objective: float  # Σ_i (1 − cos(x_i, c_{label_i})) of the best restart
    n_iter: int  # Lloyd iterations run by the best restart's batch


def _kmeans_pp(x: torch.Tensor, k: int, n_init: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding, one independent draw per restart: x (n, d) → centroids (n_init, k, d).

    D² sampling with the squared Euclidean distance on the sphere, ‖x − c‖² = 2(1 − cos).
    """
    n = x.shape[0]
    first = torch.randint(n, (n_init,), generator=gen, device=x.device)
    centroids = [x[first]]  # each (R, d)
    best_sim = x @ centroids[0].T  # (n, R)
    for _ in range(1, k):
        dist = (2.0 - 2.0 * best_sim.T).clamp_min(0.0)  # (R, n)
        # All points already chosen (fewer distinct points than k): fall back to uniform draws.
        dist = dist + (dist.sum(dim=1, keepdim=True) <= 0).to(dist.dtype)
        idx = torch.multinomial(dist, 1, generator=gen).squeeze(1)  # (R,)
        centroids.append(x[idx])
        best_sim = torch.maximum(best_sim, x @ centroids[-1].T)
    return torch.stack(centroids, dim=1)


def spherical_kmeans(
    x: torch.Tensor, k: int, *, n_init: int = 4, max_iter: int = 100, seed: int = 0,
    on_iteration: Callable[[int], None] | None = None,
) -> KMeansResult:
    """Cluster the rows of x (n, d) into k groups by cosine similarity; keeps the best of n_init restarts.

    Deterministic for a given seed, device and input. Runs in float32 whatever the input dtype.
    An empty cluster is re-seeded with the point farthest from its own centroid. ``on_iteration(i)`` is called
    after each Lloyd iteration (a progress bar: at most ``max_iter`` calls, fewer when it converges).
    """
    if x.dim() != 2:
        raise ValueError(f"x must have shape (n, d), got {tuple(x.shape)}")
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    if n_init < 1 or max_iter < 1:
        raise ValueError(f"n_init and max_iter must be >= 1, got {n_init}, {max_iter}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or Inf")
    x = F.normalize(x.detach().float(), dim=1)
    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    centroids = _kmeans_pp(x, k, n_init, gen)  # (R, k, d)
    labels = None
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        best, new_labels = torch.einsum("nd,rkd->rnk", x, centroids).max(dim=2)  # (R, n)
        counts = torch.zeros(n_init, k, device=x.device).scatter_add_(1, new_labels, torch.ones_like(best))
        empty = (counts == 0).nonzero().tolist()
        if empty:
            far = best.clone()
            for r, c in empty:  # rare: a Python loop is fine
                i = int(far[r].argmin())
                far[r, i] = float("inf")  # never hand the same point to two empty clusters
                new_labels[r, i] = c
        if on_iteration is not None:
            on_iteration(it)
        if labels is not None and torch.equal(labels, new_labels):
            break  # assignments stable: the centroids are already their normalised means
        labels = new_labels
        sums = torch.zeros_like(centroids).scatter_add_(
            1, labels.unsqueeze(-1).expand(-1, -1, x.shape[1]), x.expand(n_init, -1, -1)
        )
        centroids = F.normalize(sums, dim=2)
    sims = torch.einsum("nd,rkd->rnk", x, centroids)
    best, labels = sims.max(dim=2)
    objective = (1.0 - best).sum(dim=1)  # (R,)
    r = int(objective.argmin())
    return KMeansResult(centroids=centroids[r], labels=labels[r], objective=float(objective[r]), n_iter=it)
