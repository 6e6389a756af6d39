"""CrossTask (Zhukov et al., CVPR 2019), primary tasks, as released in ``crosstask_release/``::

    tasks_primary.txt         blocks of 6 lines: task id, name, url, number of steps, comma-separated
                              step names, blank line
    annotations/<task>_<youtube id>.csv   "step,start_s,end_s" per line, steps 1-based
    videos.csv, videos_val.csv            "task,youtube id,url"; the val list is written as split test
    videos/<task>/<youtube id>.<ext>      downloaded videos (looked up by id anywhere under videos/)

Labels are named ``<task id>:<step name>`` (step names repeat across tasks), ids in task order
after the background (id 0, frames outside every step). The activity is the task name. Only
annotated videos are listed; a missing video file is listed anyway (reported by the sharding tool).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ..manifest import LabelMap, ManifestEntry
from ._common import index_videos, require_dir, require_file, resolve, write_outputs


def read_tasks(path: Path) -> dict[str, dict]:
    """{task id: {"name", "steps": [names]}} from ``tasks_primary.txt``."""
    lines = [ln.rstrip("\n") for ln in open(path)]
    tasks, i = {}, 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        if i + 4 >= len(lines):
            raise ValueError(f"crosstask: {path}: truncated task block at line {i + 1}")
        tid, name, n_steps, steps = lines[i].strip(), lines[i + 1].strip(), int(lines[i + 3]), lines[i + 4]
        names = [s.strip() for s in steps.split(",")]
        if len(names) != n_steps:
            raise ValueError(f"crosstask: {path}: task {tid} says {n_steps} steps, lists {len(names)}")
        tasks[tid] = {"name": name, "steps": names}
        i += 5
    return tasks


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *,
                   release: str = "crosstask_release", videos_dir: str = "videos",
                   background: str = "background") -> int:
    root = Path(root)
    rel = resolve(root, release)
    tasks = read_tasks(require_file(rel / "tasks_primary.txt", "crosstask tasks"))
    ann_dir = require_dir(rel / "annotations", "crosstask annotations")
    val = set()
    if (rel / "videos_val.csv").is_file():
        val = {(r[0], r[1]) for r in csv.reader(open(rel / "videos_val.csv")) if len(r) >= 2}
    ids = {background: 0}
    for tid, t in tasks.items():
        for s in t["steps"]:
            ids.setdefault(f"{tid}:{s}", len(ids))
    videos = index_videos(resolve(root, videos_dir))
    entries = []
    for p in sorted(ann_dir.glob("*.csv")):
        tid, _, vid = p.stem.partition("_")  # task ids are numeric; YouTube ids may contain "_"
        if tid not in tasks:
            continue  # related (non-primary) task
        segs = []
        for row in csv.reader(open(p)):
            if not row:
                continue
            step, s, e = int(row[0]), float(row[1]), float(row[2])
            if not 1 <= step <= len(tasks[tid]["steps"]):
                raise ValueError(f"crosstask: {p}: step {step} outside 1..{len(tasks[tid]['steps'])}")
            segs.append([s, e, f"{tid}:{tasks[tid]['steps'][step - 1]}"])
        path = videos.get(vid, resolve(root, videos_dir) / tid / f"{vid}.mp4")
        entries.append(ManifestEntry(path=os.fspath(path), activity=tasks[tid]["name"],
                                     split="test" if (tid, vid) in val else "train", id=vid, segments_sec=segs))
    if not entries:
        raise ValueError(f"crosstask: no annotations of primary tasks in {ann_dir}")
    return write_outputs(out_manifest, entries, LabelMap(ids, background))
