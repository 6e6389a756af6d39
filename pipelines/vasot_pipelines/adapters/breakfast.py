"""Breakfast Actions (Kuehne et al. 2014) in the features layout of Kukleva et al. / ASOT.

``groundTruth/P03_cam01_P03_cereals`` (one label per frame, background ``SIL``), features in
``features/<activity>/<video>.txt`` (64-d reduced IDT, (N, D); 15 fps), ``mapping/mapping.txt`` with
48 labels. The activity is the last ``_`` token of the video name (ASOT ``parse_action_name``).
Breakfast's four supervised splits hold out persons P03-P15 / P16-P28 / P29-P41 / P42-P54;
``test_persons`` (e.g. ``"P03,P04"``) sends those persons' videos to ``test``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from . import features_layout


def activity_of(video: str) -> str:
    return video.split("_")[-1]


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *, split: str = "train",
                   test_persons: Sequence[str] | str = (), background: str = "SIL", fps: float | None = 15.0) -> int:
    persons = set(test_persons.split(",") if isinstance(test_persons, str) else test_persons) - {""}
    return features_layout.write_manifest(
        root, out_manifest, activity_of=activity_of, background=background, fps=fps,
        split=lambda v: "test" if v.split("_")[0] in persons else split)
