"""Desktop Assembly (Kumar et al. 2022, TOT) in the ASOT features layout.

``groundTruth/2020-04-19_14-03-25`` (label per frame), features ``features/<video>.npy`` (512-d),
``mapping/mapping.txt`` with 22 steps + ``Background`` (id 22). One activity (``desktop_assembly``).
"""

from __future__ import annotations

import os

from . import features_layout


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *, split: str = "train",
                   background: str | None = None, fps: float | None = None) -> int:
    return features_layout.write_manifest(root, out_manifest, activity_of="desktop_assembly", split=split,
                                          background=background, fps=fps)
