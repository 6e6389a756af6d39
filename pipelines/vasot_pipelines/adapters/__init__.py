"""Dataset adapters: each writes a sharding manifest (+ ``<manifest>.labels.json``) from a dataset's
published annotation format. ``write_manifest(root, out_manifest, **options) -> number of videos``.

``vasot-shard --adapter <name> --root <dataset root> --out <folder> [--adapter-arg key=value]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import (
    breakfast,
    coin,
    crosstask,
    desktop_assembly,
    egoprocel,
    features_layout,
    fifty_salads,
    ikea_asm,
    procel,
    tcc_lav,
    yti,
)


@dataclass(frozen=True)
class Adapter:
    write_manifest: Callable[..., int]
    modality: str  # what the manifest's paths are: video | features
    summary: str


ADAPTERS: dict[str, Adapter] = {
    "ikea_asm": Adapter(ikea_asm.write_manifest, "video", "IKEA ASM gt_segments.json + scan videos"),
    "pouring": Adapter(tcc_lav.write_manifest_pouring, "video", "Pouring, TCC/LAV frame folders + phase labels"),
    "penn_action": Adapter(tcc_lav.write_manifest_penn_action, "video", "Penn Action, TCC/LAV layout per action"),
    "coin": Adapter(coin.write_manifest, "video", "COIN.json step segments (seconds)"),
    "crosstask": Adapter(crosstask.write_manifest, "video", "CrossTask primary tasks"),
    "egoprocel": Adapter(egoprocel.write_manifest, "video", "EgoProceL key-step csv files"),
    "procel": Adapter(procel.write_manifest, "video", "ProceL in the EgoProceL csv layout"),
    "breakfast": Adapter(breakfast.write_manifest, "features", "Breakfast features layout (SIL background)"),
    "yti": Adapter(yti.write_manifest, "features", "YouTube Instructions features layout"),
    "50salads_mid": Adapter(fifty_salads.write_manifest_mid, "features", "50 Salads, mid granularity (19)"),
    "50salads_eval": Adapter(fifty_salads.write_manifest_eval, "features", "50 Salads, eval granularity (12)"),
    "desktop_assembly": Adapter(desktop_assembly.write_manifest, "features", "Desktop Assembly features layout"),
    "features": Adapter(features_layout.write_manifest, "features", "generic features/groundTruth/mapping layout"),
}

__all__ = ["ADAPTERS", "Adapter"]
