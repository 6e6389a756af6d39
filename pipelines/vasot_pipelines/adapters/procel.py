"""ProceL (Elhamifar & Huynh, ICCV 2019) in the EgoProceL repository's layout::

    <root>/annotations/<category>/<video>.csv     "start_s,end_s,<key-step id> <name>" rows
    <root>/videos/<category>/<video>.mp4

(the EgoProceL code's ``datasets/ProceL.py`` pairs them by name; ProceL's own release ships MATLAB
annotations, converted to these csv files by the EgoProceL authors). Parsing is the same as
:mod:`egoprocel`; the category folder is the activity.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import egoprocel


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *, annotations: str = "annotations",
                   videos_dir: str = "videos", split: str = "train") -> int:
    # egoprocel expects annotations/<dataset>/<category>/...: treat the annotations folder itself as
    # the dataset, so that its sub-folders are the categories
    root = Path(root)
    ann = Path(annotations)
    return egoprocel.write_manifest(root, out_manifest, annotations=os.fspath(ann.parent),
                                    dataset=ann.name, videos_dir=videos_dir, split=split,
                                    dataset_in_video_path=False)
