"""Neural network models: video encoders, action prototypes, CLOT's decoder modules."""

from __future__ import annotations

from typing import Any

from torch import nn

from vasot_dist.models.clot import (
    CLOTHead,
    CLOTOutput,
    CrossAttentionRefinement,
    FeatureDispatching,
    ParallelDecoder,
)
from vasot_dist.models.kmeans import KMeansResult, spherical_kmeans
from vasot_dist.models.mlp_encoder import MLPEncoder
from vasot_dist.models.prototypes import ActionPrototypes
from vasot_dist.models.resnet_encoder import (
    AlignmentEncoder,
    ResNet50Conv4c,
    context_frame_indices,
    load_backbone_weights,
    normalize_frames,
)

ENCODERS: dict[str, type[nn.Module]] = {"resnet50": AlignmentEncoder, "mlp": MLPEncoder}


def build_encoder(name: str, **kwargs: Any) -> nn.Module:
    """Encoder by config name: 'resnet50' → :class:`AlignmentEncoder` (kwargs: embed_dim, dropout, weights,
    freeze_stem, freeze_bn, channels_last, chunk_size, hidden_dim); 'mlp' → :class:`MLPEncoder`
    (kwargs: layer_sizes)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; valid names: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name](**kwargs)


__all__ = [
    "ENCODERS",
    "ActionPrototypes",
    "AlignmentEncoder",
    "CLOTHead",
    "CLOTOutput",
    "CrossAttentionRefinement",
    "FeatureDispatching",
    "KMeansResult",
    "MLPEncoder",
    "ParallelDecoder",
    "ResNet50Conv4c",
    "build_encoder",
    "context_frame_indices",
    "load_backbone_weights",
    "normalize_frames",
    "spherical_kmeans",
]
