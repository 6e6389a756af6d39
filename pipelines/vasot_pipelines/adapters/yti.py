"""YouTube Instructions (Alayrac et al. 2016) in the features layout of Kukleva et al. / ASOT.

``groundTruth/changing_tire_0001`` (label per frame; background frames ``background``, id -1 in
``mapping/mapping.txt``), features ``features/<activity>/<video>.txt`` (3000-d). The activity is the
name without its last ``_`` token (ASOT ``parse_action_name``). The ``*_idt`` ground-truth variants
shipped beside the videos are skipped. Background frames are excluded from the metrics (ASOT ``-x -1``).
"""

from __future__ import annotations

import os

from . import features_layout


def activity_of(video: str) -> str:
    return "_".join(video.split("_")[:-1])


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *, split: str = "train",
                   background: str | None = None, fps: float | None = None) -> int:
    return features_layout.write_manifest(root, out_manifest, activity_of=activity_of, split=split,
                                          background=background, fps=fps, skip=lambda v: v.endswith("_idt"))
