"""Method losses behind one interface (:class:`MethodLoss`), chosen by ``method.name`` in the config.

Each loss registers itself against its method's name (``@method_loss("asot")``), whose settings dataclass is
registered in the config (:mod:`vasot_dist.config.registry`): the registry ``vasot_dist.config.METHODS`` lists
every method with its settings, its loss and its evaluation hooks, and :func:`build_loss` builds the chosen
one. Every module of this package is imported here, so a new method's loss module registers itself without a
line in this file. The formulations are in ``docs/methods.md``.
"""

from __future__ import annotations

import importlib
import pkgutil

from vasot_dist.config import ConfigError
from vasot_dist.config.registry import METHODS
from vasot_dist.config.schema import RunConfig

from .asot import ASOTLoss
from .base import LossOutput, MethodLoss, PrototypeLoss, method_loss
from .clot import CLOTLoss
from .kot import KOTLoss
from .realign import REALIGNLoss
from .vaot import VAOTLoss
from .vasot import VASOTLoss
from .vava import VAVALoss, vava_psi

for _module in pkgutil.iter_modules(__path__):  # the losses of methods added later register themselves
    importlib.import_module(f"{__name__}.{_module.name}")


def build_loss(cfg: RunConfig) -> MethodLoss:
    """The loss of ``cfg.method.name``, built from its settings ``cfg.method.<name>``; a loss that owns
    prototypes takes K = ``cfg.model.num_actions``, D = ``cfg.model.embed_dim`` and the run's seed."""
    name = cfg.method.name
    if name not in METHODS:
        raise ValueError(f"unknown method.name {name!r}; valid names: {', '.join(sorted(METHODS))}")
    cls = METHODS[name].loss
    if cls is None:
        raise ValueError(f"method {name!r} has settings but no loss: decorate its MethodLoss subclass with "
                         f"@method_loss({name!r}) (vasot_dist.losses.base) and import its module")
    if issubclass(cls, PrototypeLoss):
        if cfg.model.num_actions is None:
            raise ConfigError(f"method {name!r} learns model.num_actions prototypes, which is not set: run(cfg) "
                              "takes it from dataset.json's label map; set it to build the loss directly")
        return cls(
            cfg.method.settings, num_actions=cfg.model.num_actions, embed_dim=cfg.model.embed_dim, seed=cfg.train.seed
        )
    return cls(cfg.method.settings)


__all__ = [
    "ASOTLoss",
    "CLOTLoss",
    "KOTLoss",
    "LossOutput",
    "MethodLoss",
    "PrototypeLoss",
    "REALIGNLoss",
    "VAOTLoss",
    "VASOTLoss",
    "VAVALoss",
    "build_loss",
    "method_loss",
    "vava_psi",
]
