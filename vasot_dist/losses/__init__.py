"""Method losses behind one interface (:class:`MethodLoss`), chosen by ``method.name`` in the config.

Each loss is built from its method's settings (``vasot_dist/config/methods.py``), which also say whether it
trains on pairs of videos.

=========  ===========================================================================
name       loss
=========  ===========================================================================
asot       ASOT pseudo-label CE (frames -> actions), :class:`ASOTLoss`
vaot       VAOT fused-GW alignment pseudo-label CE, :class:`VAOTLoss`
vasot      VAOT on the pair + ASOT on each video, :class:`VASOTLoss`
vava       VAVA Sinkhorn distance with priors + contrastive terms, :class:`VAVALoss`
clot       CLOT's three ASOT levels, :class:`CLOTLoss`
realign    fused partial GW pseudo-labels + contrastive terms, :class:`REALIGNLoss`
kot        plain entropic Kantorovich baseline, :class:`KOTLoss`
=========  ===========================================================================
"""

from __future__ import annotations

from vasot_dist.config.schema import RunConfig

from .asot import ASOTLoss
from .base import LossOutput, MethodLoss, PrototypeLoss
from .clot import CLOTLoss
from .kot import KOTLoss
from .realign import REALIGNLoss
from .vaot import VAOTLoss
from .vasot import VASOTLoss
from .vava import VAVALoss, vava_psi

LOSSES: dict[str, type[MethodLoss]] = {
    "asot": ASOTLoss,
    "vaot": VAOTLoss,
    "vasot": VASOTLoss,
    "vava": VAVALoss,
    "clot": CLOTLoss,
    "realign": REALIGNLoss,
    "kot": KOTLoss,
}


def build_loss(cfg: RunConfig) -> MethodLoss:
    """The loss of ``cfg.method.name``, built from its settings ``cfg.method.<name>``; a loss that owns
    prototypes takes K = ``cfg.model.num_actions``, D = ``cfg.model.embed_dim`` and the run's seed."""
    name = cfg.method.name
    if name not in LOSSES:
        raise ValueError(f"unknown method.name {name!r}; valid names: {', '.join(sorted(LOSSES))}")
    cls = LOSSES[name]
    if issubclass(cls, PrototypeLoss):
        return cls(
            cfg.method.settings, num_actions=cfg.model.num_actions, embed_dim=cfg.model.embed_dim, seed=cfg.train.seed
        )
    return cls(cfg.method.settings)


__all__ = [
    "LOSSES",
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
    "vava_psi",
]
