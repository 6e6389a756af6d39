"""vasot_dist: distributed self-supervised video alignment and action segmentation with optimal transport."""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, device=None):
    """A trained model from a run directory or a checkpoint file: ``model.embed / segment / align(video)``.

    See :func:`vasot_dist.infer.load` (imported here on first use: ``import vasot_dist.ot`` stays light).
    """
    from vasot_dist.infer import load as _load

    return _load(path, device)
