"""vasot_dist: distributed self-supervised video alignment and action segmentation with optimal transport."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vasot_dist.infer import InferenceModel

__version__ = "0.1.0"


def load(path: str | os.PathLike, device: str | None = None) -> InferenceModel:
    """A trained model from a run directory (its newest loadable checkpoint) or a checkpoint file, on ``device``
    (default: CUDA when present): ``model.embed / segment / align(video)`` (``docs/inference.md``).

    :func:`vasot_dist.infer.load`, imported on first use so that ``import vasot_dist.ot`` stays light.
    """
    from vasot_dist.infer import load as _load

    return _load(path, device)
