"""50 Salads (Stein & McKenna 2013) in the features layout of Kukleva et al. / ASOT.

``groundTruth/rgb-01-1`` holds the mid-level labels (17 actions + ``action_start``/``action_end`` =
19 classes), features ``features/<video>.{txt,npy}``. Granularity ``mid`` reads
``mapping/mapping.txt``; ``eval`` reads ``mapping/mappingeval.txt``, which maps several mid-level
names to one id (12 classes, e.g. all ``cut_*`` -> one id) — the label map keeps every name, ids
repeat. One activity (``salad``); no background label.
"""

from __future__ import annotations

import os

from . import features_layout

GRANULARITIES = {"mid": "mapping/mapping.txt", "eval": "mapping/mappingeval.txt"}


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *, granularity: str = "mid",
                   split: str = "train", fps: float | None = None) -> int:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {sorted(GRANULARITIES)}, got {granularity!r}")
    return features_layout.write_manifest(root, out_manifest, activity_of="salad", split=split, fps=fps,
                                          mapping=GRANULARITIES[granularity])


def write_manifest_mid(root: str | os.PathLike, out_manifest: str | os.PathLike, **kw) -> int:
    return write_manifest(root, out_manifest, granularity="mid", **kw)


def write_manifest_eval(root: str | os.PathLike, out_manifest: str | os.PathLike, **kw) -> int:
    return write_manifest(root, out_manifest, granularity="eval", **kw)
