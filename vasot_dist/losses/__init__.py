"""Method losses behind one interface (:class:`MethodLoss`), chosen by ``method.name`` in the config.

=========  ====================================================================  ===========
name       loss                                                                  batch
=========  ====================================================================  ===========
asot       ASOT pseudo-label CE (frames -> actions), :class:`ASOTLoss`            videos
vaot       VAOT fused-GW alignment pseudo-label CE, :class:`VAOTLoss`             pairs
vasot      VAOT on the pair + ASOT on each video, :class:`VASOTLoss`              pairs
vava       VAVA Sinkhorn distance with priors + contrastive terms, :class:`VAVALoss`  pairs
clot       CLOT's three ASOT levels, :class:`CLOTLoss`                            videos
realign    fused partial GW pseudo-labels + contrastive terms, :class:`REALIGNLoss`  pairs
kot        plain entropic Kantorovich baseline, :class:`KOTLoss`                  pairs
=========  ====================================================================  ===========
"""

from __future__ import annotations

from typing import Any

from .asot import ASOTLoss, ASOTSettings
from .base import LossOutput, MethodLoss
from .clot import CLOTLoss
from .kot import KOTLoss
from .realign import PartialAlignSettings, REALIGNLoss
from .vaot import AlignSettings, VAOTLoss
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


def build_loss(cfg: Any) -> MethodLoss:
    """The loss module of ``cfg.method.name`` built from a :class:`~vasot_dist.config.schema.RunConfig`."""
    name = cfg.method.name
    if name not in LOSSES:
        raise ValueError(f"unknown method.name {name!r}; valid names: {', '.join(sorted(LOSSES))}")
    return LOSSES[name].from_config(cfg)


__all__ = [
    "LOSSES",
    "ASOTLoss",
    "ASOTSettings",
    "AlignSettings",
    "CLOTLoss",
    "KOTLoss",
    "LossOutput",
    "MethodLoss",
    "PartialAlignSettings",
    "REALIGNLoss",
    "VAOTLoss",
    "VASOTLoss",
    "VAVALoss",
    "build_loss",
    "vava_psi",
]
