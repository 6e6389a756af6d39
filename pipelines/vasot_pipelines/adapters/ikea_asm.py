"""IKEA ASM (Ben-Shabat et al., WACV 2021): atomic-action segments of furniture assembly videos.

Published layout (assumed from the dataset's toolbox, ``action/`` code)::

    <root>/gt_segments.json      {"version", "database": {<video-id>: {"subset": "training"|"testing",
                                  "annotation": [{"segment": [start_frame, end_frame], "label": name}]}}}
    <root>/<video-id>/<camera>/images/scan_video.avi      e.g. Kallax_Shelf_Drawer/0001_.../dev3/...
    <root>/indexing_files/atomic_action_list.txt          optional: one action name per line (id = line)

Segments are frame indices (inclusive), ``NA`` is the background label (33 labels with ``NA``).
The activity is the furniture type (first component of the video id); splits: training -> train,
testing -> test. ``camera`` (dev1/dev2/dev3, default the front view dev3) picks the view when the
video id does not name one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..manifest import LabelMap, ManifestEntry
from ._common import ids_from_names, require_file, resolve, write_outputs

SPLITS = {"training": "train", "testing": "test", "validation": "val"}


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *,
                   annotations: str = "gt_segments.json", camera: str = "dev3",
                   video_file: str = "images/scan_video.avi",
                   action_list: str = "indexing_files/atomic_action_list.txt", background: str = "NA") -> int:
    root = Path(root)
    ann_path = require_file(resolve(root, annotations), "ikea_asm annotations")
    with open(ann_path) as f:
        db = json.load(f)
    if "database" not in db:
        raise ValueError(f"ikea_asm: {ann_path} has no 'database' key")
    names: list[str] = []
    al = resolve(root, action_list)
    if al.is_file():
        names = [ln.strip() for ln in open(al) if ln.strip()]
    entries = []
    for vid, rec in sorted(db["database"].items()):
        parts = Path(vid).parts
        base = root / vid if parts[-1].startswith("dev") else root / vid / camera
        subset = rec.get("subset", "training")
        if subset not in SPLITS:
            raise ValueError(f"ikea_asm: video {vid} has unknown subset {subset!r}")
        segs = []
        for a in rec.get("annotation", []):
            s, e = a["segment"]
            segs.append([int(round(s)), int(round(e)), a["label"]])
            if a["label"] not in names:
                names.append(a["label"])
        entries.append(ManifestEntry(path=os.fspath(base / video_file), activity=parts[0], split=SPLITS[subset],
                                     id=vid, segments=segs))
    if not entries:
        raise ValueError(f"ikea_asm: {ann_path} lists no videos")
    if background in names:
        ids = {n: i for i, n in enumerate(names)}
        lm = LabelMap(ids, background)
    else:
        lm = ids_from_names(names, background)
    return write_outputs(out_manifest, entries, lm)
