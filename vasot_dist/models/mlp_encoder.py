"""Per-frame MLP encoder for precomputed features (ASOT ``MLP``, mingu6/action_seg_ot; ``docs/methods.md#video-encoder``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class MLPEncoder(nn.Module):
    """``layer_sizes = [in, hidden..., out]``: Linear+ReLU per hidden layer, a final Linear, L2-normalise.

    ASOT's sizes: Breakfast / 50 Salads [64, 128, 40], YTI [3000, 32, 32], Desktop Assembly [512, 128, 40].
    Frames are encoded independently, so padded frames cannot affect real ones.
    """

    def __init__(self, layer_sizes: Sequence[int]) -> None:
        super().__init__()
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(
                f"layer_sizes must list >= 2 positive sizes [in, ..., out], got {list(layer_sizes)}"
            )
        self.layer_sizes = sizes
        layers: list[nn.Module] = []
        for d_in, d_out in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(d_in, d_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.net = nn.Sequential(*layers)

    @property
    def embed_dim(self) -> int:
        return self.layer_sizes[-1]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: (B, N, D) or any (..., D) with D = layer_sizes[0] → (..., layer_sizes[-1]), unit norm."""
        if features.shape[-1] != self.layer_sizes[0]:
            raise ValueError(
                f"features must have last dimension {self.layer_sizes[0]}, got shape {tuple(features.shape)}"
            )
        return F.normalize(self.net(features).float(), dim=-1)
