"""COIN (Tang et al., CVPR 2019): 11,827 YouTube videos of 180 tasks, step segments in seconds.

Published annotation ``COIN.json``::

    {"database": {<youtube_id>: {"recipe_type": int, "class": "AssembleBed", "subset": "training"|"testing",
                                 "duration": float, "annotation": [{"id": "<step id>",
                                 "segment": [start_s, end_s], "label": "<step name>"}], ...}}}

Videos are looked up by YouTube id anywhere under ``videos_dir`` (the download script writes
``videos/<recipe_type>/<id>.mp4``); a missing video is still listed (reported by the sharding tool).
The activity is the task ``class``; labels are the step names with their global COIN step ids
(1..778), background (frames outside every step) is id 0. Segments are in seconds: frames
``floor(start * fps) .. floor(end * fps)`` of the source video.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..manifest import LabelMap, ManifestEntry
from ._common import index_videos, require_file, resolve, write_outputs

SPLITS = {"training": "train", "testing": "test"}


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *, annotations: str = "COIN.json",
                   videos_dir: str = "videos", background: str = "background") -> int:
    root = Path(root)
    ann = require_file(resolve(root, annotations), "coin annotations")
    with open(ann) as f:
        db = json.load(f).get("database")
    if not isinstance(db, dict):
        raise ValueError(f"coin: {ann} has no 'database' object")
    videos = index_videos(resolve(root, videos_dir))
    ids: dict[str, int] = {background: 0}
    entries = []
    for vid, rec in sorted(db.items()):
        segs = []
        for a in rec.get("annotation", []):
            name, sid = a["label"], int(a["id"])
            if ids.setdefault(name, sid) != sid:
                raise ValueError(f"coin: step {name!r} has ids {ids[name]} and {sid}")
            segs.append([float(a["segment"][0]), float(a["segment"][1]), name])
        if rec.get("subset") not in SPLITS:
            raise ValueError(f"coin: video {vid} has unknown subset {rec.get('subset')!r}")
        path = videos.get(vid, resolve(root, videos_dir) / str(rec.get("recipe_type", "")) / f"{vid}.mp4")
        entries.append(ManifestEntry(path=os.fspath(path), activity=rec["class"], split=SPLITS[rec["subset"]],
                                     id=vid, segments_sec=segs))
    if 0 in [v for k, v in ids.items() if k != background]:
        raise ValueError("coin: a step uses id 0, which is reserved for the background")
    return write_outputs(out_manifest, entries, LabelMap(ids, background))
