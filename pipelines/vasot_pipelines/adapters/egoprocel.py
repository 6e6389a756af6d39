"""EgoProceL (Bansal et al., ECCV 2022) key-step annotations, and datasets shipped in its format.

Published layout (EgoProceL download README)::

    annotations/<dataset>/<category>/[<sub-folder>/]<video>.csv   multi-category datasets (CMU-MMAC, EGTEA Gaze+)
    annotations/<dataset>/<video>.csv                             single-category (MECCANO, EPIC-Tents, pc_assembly)

Each csv row: ``start_s, end_s, "<key-step id> <key-step name>"`` (no header); frames
``floor(start * fps) .. floor(end * fps)`` get the key step (EgoProceL ``gen_labels``), others are
background (id 0). The key-step id is the first token of the third column (a trailing ``.`` as in
EGTEA is dropped). Labels are named ``<category>:<id>`` (ids repeat across categories). Videos are
looked up by file stem (the annotation name equals the video name) anywhere under ``videos_dir``.
All videos go to one split (procedure learning is evaluated on the videos it learns from).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ..manifest import LabelMap, ManifestEntry
from ._common import index_videos, require_dir, resolve, write_outputs


def read_keystep_csv(path: Path) -> list[tuple[float, float, str]]:
    """[(start_s, end_s, key-step id)] of one annotation file."""
    out = []
    for row in csv.reader(open(path)):
        if not row or not row[0].strip():
            continue
        try:
            s, e = float(row[0]), float(row[1])
        except ValueError:
            if not out:  # tolerate a header line
                continue
            raise ValueError(f"{path}: bad row {row}") from None
        step = ",".join(row[2:]).strip().split()[0].rstrip(".")
        out.append((s, e, step))
    return out


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *, annotations: str = "annotations",
                   videos_dir: str = "videos", dataset: str | None = None, split: str = "train",
                   background: str = "background", dataset_in_video_path: bool = True) -> int:
    """``dataset``: only this sub-folder of ``annotations`` (e.g. ``CMU-MMAC``); default all of them.
    A video not found by name is listed at ``videos/[<dataset>/]<annotation path>.mp4``."""
    root = Path(root)
    ann_root = require_dir(resolve(root, annotations), "egoprocel annotations")
    datasets = [ann_root / dataset] if dataset else sorted(d for d in ann_root.iterdir() if d.is_dir())
    videos = index_videos(resolve(root, videos_dir))
    names: set[str] = set()
    entries = []
    for ds in datasets:
        require_dir(ds, "egoprocel dataset")
        for p in sorted(ds.rglob("*.csv")):
            rel = p.relative_to(ds).parts
            category = rel[0] if len(rel) > 1 else ds.name
            segs = []
            for s, e, step in read_keystep_csv(p):
                name = f"{category}:{step}"
                names.add(name)
                segs.append([s, e, name])
            fallback = resolve(root, videos_dir) / (ds.name if dataset_in_video_path else "")
            path = videos.get(p.stem, fallback / Path(*rel).with_suffix(".mp4"))
            entries.append(ManifestEntry(path=os.fspath(path), activity=category, split=split, id=p.stem,
                                         segments_sec=segs))
    if not entries:
        raise ValueError(f"egoprocel: no annotation csv under {ann_root}")

    def order(n: str):
        cat, _, step = n.rpartition(":")
        return (cat, int(step) if step.isdigit() else 10**9, step)

    ids = {background: 0}
    for n in sorted(names, key=order):
        ids[n] = len(ids)
    return write_outputs(out_manifest, entries, LabelMap(ids, background))
