"""The one interface every method's loss implements.

A loss module gets the batch's frame embeddings and masks and returns the loss, a dict of scalars to log and
the couplings (detached) for plots. It may own learnable parts (action prototypes, CLOT's decoder): the
trainer wraps encoder + loss in one module so DDP / DeepSpeed see every parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar, differentiable
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # detached scalars to log
    couplings: dict[str, torch.Tensor] = field(default_factory=dict)  # detached (B, N, M) plans for plots


class MethodLoss(nn.Module):
    """Base class. Subclasses set the class attributes and implement :meth:`forward`.

    Attributes:
        needs_pairs: the batch holds pairs of videos of one activity at rows (2i, 2i+1).
        prototypes: ``ActionPrototypes`` or None; initialised by k-means from the untrained encoder.
    """

    needs_pairs: bool = False

    @property
    def prototypes(self) -> nn.Module | None:
        # A property, not a class attribute: nn.Module registers an assigned submodule in _modules, and a
        # class attribute ``prototypes = None`` would shadow it on lookup.
        return self._modules.get("prototypes")

    def forward(self, emb: torch.Tensor, mask: torch.Tensor, *, step: int = 0) -> LossOutput:  # pragma: no cover
        """emb: (B, T, D) L2-normalised frame embeddings; mask: (B, T) bool, True for real frames."""
        raise NotImplementedError

    @torch.no_grad()
    def segment(self, emb: torch.Tensor, mask: torch.Tensor, *, decode: dict | None = None) -> torch.Tensor | None:
        """Hard segmentation labels (B, T) for segmentation methods (evaluation); None for pure alignment."""
        return None
