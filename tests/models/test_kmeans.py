"""Spherical k-means used for prototype initialisation, against scikit-learn."""

import pytest
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from vasot_dist.models.kmeans import spherical_kmeans


def separated_clusters(k=5, d=16, per=40, noise=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = F.normalize(torch.randn(k, d, generator=g), dim=1)
    labels = torch.arange(k).repeat_interleave(per)
    x = F.normalize(centers[labels] + noise * torch.randn(k * per, d, generator=g), dim=1)
    perm = torch.randperm(k * per, generator=g)
    return x[perm], labels[perm], centers


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_separated_clusters_like_sklearn(seed):
    x, truth, centers = separated_clusters(seed=seed)
    ours = spherical_kmeans(x, 5, seed=seed)
    ref = KMeans(n_clusters=5, n_init=10, random_state=seed).fit(x.numpy())
    assert adjusted_rand_score(ref.labels_, ours.labels.numpy()) == 1.0
    assert adjusted_rand_score(truth.numpy(), ours.labels.numpy()) == 1.0
    torch.testing.assert_close(ours.centroids.norm(dim=1), torch.ones(5))
    # each centroid sits on one true centre
    assert (ours.centroids @ centers.T).max(dim=1).values.min() > 0.99
    cos = (x * ours.centroids[ours.labels]).sum(1)
    assert ours.objective == pytest.approx(float((1 - cos).sum()), rel=1e-5)


def test_deterministic_for_a_seed_and_scale_invariant():
    x, _, _ = separated_clusters(k=4, noise=0.3)
    a = spherical_kmeans(x, 4, seed=7)
    b = spherical_kmeans(3.0 * x.double(), 4, seed=7)  # cosine: scale and dtype do not matter
    assert torch.equal(a.labels, b.labels)
    torch.testing.assert_close(a.centroids, b.centroids)


def test_duplicates_and_empty_clusters_stay_finite():
    x = torch.tensor([[1.0, 0.0]] * 5 + [[0.0, 1.0]] * 5)
    res = spherical_kmeans(x, 3, seed=0)
    assert torch.isfinite(res.centroids).all()
    assert res.labels.unique().numel() >= 2
    res = spherical_kmeans(x[:3], 3, seed=0)  # k = n, all points identical
    assert torch.isfinite(res.centroids).all()


def test_bad_arguments_raise():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="k must be"):
        spherical_kmeans(x, 5)
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        spherical_kmeans(x[None], 2)
    with pytest.raises(ValueError, match="NaN"):
        spherical_kmeans(torch.full((4, 3), float("nan")), 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_recovers_clusters():
    x, truth, _ = separated_clusters()
    res = spherical_kmeans(x.cuda(), 5, seed=0)
    assert res.centroids.is_cuda
    assert adjusted_rand_score(truth.numpy(), res.labels.cpu().numpy()) == 1.0
