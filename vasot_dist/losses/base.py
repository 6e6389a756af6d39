"""The one interface every method's loss implements, and the decorator that registers a loss for its method.

A loss module gets the batch's frame embeddings and masks and returns the loss, a dict of scalars to log and
the couplings (detached) for plots and the collapse monitor (:meth:`MethodLoss.main_plan`). It is built from its method's settings (``vasot_dist/config/methods.py``),
the single source of its hyper-parameters, and may own learnable parts (action prototypes, CLOT's decoder):
the trainer wraps encoder + loss in one module so DDP / DeepSpeed see every parameter. ``@method_loss(name)``
registers it as the loss of the method ``name``, whose settings were registered in the config
(:mod:`vasot_dist.config.registry`).

The losses call the OT solvers with ``validate=False``: a non-finite cost (NaN embeddings) is left to the
trainer's non-finite guard, which skips the step on the device on CPU and GPU alike, rather than raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from vasot_dist.config.registry import METHODS
from vasot_dist.models import ActionPrototypes


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar, differentiable
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # detached scalars to log
    # detached plans of the batch's first video or pair, for plots; the FIRST entry is the method's main plan:
    # (1, N, M) frames of video 0 -> frames of video 1 for a pair method, (1, N, K) frames -> actions otherwise
    couplings: dict[str, torch.Tensor] = field(default_factory=dict)


class MethodLoss(nn.Module):
    """Base class: ``Loss(settings)``, settings of type ``Settings`` (its defaults when None).

    Attributes:
        method: the method's name (class attribute, set by :func:`method_loss`).
        Settings: the method's settings dataclass (class attribute, set by :func:`method_loss`).
        settings: this loss's settings; every hyper-parameter is read from here.
        needs_pairs: the batch holds pairs of videos of one activity at rows (2i, 2i+1) (from ``Settings``).
        prototypes: ``ActionPrototypes`` or None; initialised by k-means from the untrained encoder.
    """

    method: ClassVar[str]
    Settings: ClassVar[type]

    def __init__(self, settings: Any = None) -> None:
        super().__init__()
        if settings is None:
            settings = self.Settings()
        elif not isinstance(settings, self.Settings):
            raise TypeError(f"{type(self).__name__} takes {self.Settings.__name__}, got {type(settings).__name__}")
        self.settings = settings

    @property
    def needs_pairs(self) -> bool:
        return self.Settings.needs_pairs

    @property
    def prototypes(self) -> nn.Module | None:
        # A property, not a class attribute: nn.Module registers an assigned submodule in _modules, and a
        # class attribute ``prototypes = None`` would shadow it on lookup.
        return self._modules.get("prototypes")

    def forward(self, emb: torch.Tensor, mask: torch.Tensor, *, step: int = 0) -> LossOutput:  # pragma: no cover
        """emb: (B, T, D) L2-normalised frame embeddings; mask: (B, T) bool, True for real frames."""
        raise NotImplementedError

    def main_plan(self, out: LossOutput, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """``(plan (1, N, M), row_mask (1, N), col_mask (1, M))`` of ``out``'s main plan (its first coupling) for
        the batch ``mask`` (B, T), or None when the loss returned no coupling.

        A pair method's plan aligns the frames of video 0 (rows) with those of video 1 (columns, real where
        ``mask[1]`` is); any other method's plan maps the frames of video 0 to actions, every column real.
        """
        if not out.couplings:
            return None
        plan = next(iter(out.couplings.values()))
        rows = mask[:1, : plan.shape[1]]
        if self.needs_pairs:
            cols = mask[1:2, : plan.shape[2]]
        else:
            cols = torch.ones(1, plan.shape[2], dtype=torch.bool, device=plan.device)
        return plan, rows, cols

    @torch.no_grad()
    def segment(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """Hard segmentation labels (B, T) for segmentation methods (evaluation); None for pure alignment."""
        return None

    @classmethod
    def segments(cls) -> bool:
        """The loss decodes segmentations (it overrides :meth:`segment`): a segmentation method."""
        return cls.segment is not MethodLoss.segment


class PrototypeLoss(MethodLoss):
    """A loss that owns K learnable action prototypes (ASOT, VASOT, CLOT).

    Args:
        settings: the method's settings.
        num_actions: K; embed_dim: D of the encoder's embeddings.
        seed: the run's seed, for any random draw the loss makes (CLOT's sliced-Wasserstein projections).
    """

    def __init__(self, settings: Any = None, *, num_actions: int, embed_dim: int, seed: int = 0) -> None:
        super().__init__(settings)
        self.prototypes = ActionPrototypes(num_actions, embed_dim)
        self.seed = seed


T = TypeVar("T", bound=MethodLoss)


def method_loss(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: ``cls`` is the loss of the registered method ``name``; sets ``cls.method`` and
    ``cls.Settings`` (the method's settings class) and records ``cls`` in ``METHODS[name].loss``.

    Raises:
        ValueError: no method ``name`` is registered, or it has another loss already.
    """

    def register(cls: type[T]) -> type[T]:
        method = METHODS.get(name)
        if method is None:
            raise ValueError(f"@method_loss({name!r}) on {cls.__qualname__}: no method {name!r} is registered "
                             f"(registered: {', '.join(METHODS)}); register its settings first with "
                             "vasot_dist.config.register_method")
        if method.loss is not None and method.loss.__qualname__ != cls.__qualname__:
            raise ValueError(f"@method_loss({name!r}) on {cls.__qualname__}: method {name!r} already has the "
                             f"loss {method.loss.__qualname__}")
        cls.method, cls.Settings = name, method.settings
        method.loss = cls
        return cls

    return register
