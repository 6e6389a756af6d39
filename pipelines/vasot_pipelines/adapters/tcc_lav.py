"""Pouring and Penn Action as prepared for TCC (Dwibedi et al. 2019) / LAV (Haresh et al. 2021).

Assumed layout (LAV's README + ``evaluations.py``; the TCC tfrecords converted to "npyrecords")::

    <root>/[<activity>/]{train,val}/<video>/000001.jpg ...     frame folders (or <video>.mp4 files)
    <root>/npyrecords/<activity>_{train,val}.npy               pickled dict {video: {"labels": [int]}}
      or <root>/[<activity>/]labels/{train,val}/<video>.npy    int array, one phase id per frame

Pouring is one activity (``pouring``, 5 phases); Penn Action has one sub-folder per action
(baseball_pitch, bench_press, ...; 2-6 phases each). Phase ids are per activity and named
``phase<i>``; there is no background. ``val`` is written as split ``test``. Frame folders carry no
frame rate: the images are taken as consecutive frames at the sharding tool's ``--fps`` (or the
``fps`` given here). Note: npyrecords are pickles (``allow_pickle``): only read files you trust.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..manifest import LabelMap, ManifestEntry
from ..video import IMAGE_EXTS
from ._common import VIDEO_EXTS, require_dir, write_outputs

SPLITS = {"train": "train", "val": "test", "test": "test"}


def _load_records(bases: tuple[Path, ...], activity: str, split_dir: str) -> dict:
    for base in bases:
        p = base / "npyrecords" / f"{activity}_{split_dir}.npy"
        if p.is_file():
            obj = np.load(p, allow_pickle=True)
            return obj.item() if obj.dtype == object and obj.shape == () else {}
    return {}


def _labels_for(act_root: Path, activity: str, split_dir: str, video: str, records: dict):
    rec = records.get(video)
    if rec is not None:
        return [int(v) for v in np.asarray(rec["labels"] if isinstance(rec, dict) else rec).reshape(-1)]
    p = act_root / "labels" / split_dir / f"{video}.npy"
    if p.is_file():
        return [int(v) for v in np.load(p, allow_pickle=False).reshape(-1)]
    return None


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *, activity: str | None = None,
                   fps: float | None = None) -> int:
    """``activity``: the name when ``root`` itself holds train/val (default: the folder name)."""
    root = require_dir(root, "tcc_lav")
    if any((root / s).is_dir() for s in SPLITS):
        act_roots = [(activity or root.name, root)]
    else:
        act_roots = [(d.name, d) for d in sorted(root.iterdir())
                     if d.is_dir() and any((d / s).is_dir() for s in SPLITS)]
    if not act_roots:
        raise ValueError(f"tcc_lav: no {{train,val}} folders in {root} or its sub-folders")
    entries, missing, max_id = [], [], 0
    for act, ar in act_roots:
        for split_dir, split in SPLITS.items():
            d = ar / split_dir
            if not d.is_dir():
                continue
            records = _load_records((ar, root, root.parent), act, split_dir)
            for item in sorted(d.iterdir()):
                is_frames = item.is_dir() and any(f.suffix.lower() in IMAGE_EXTS for f in item.iterdir())
                if not is_frames and item.suffix.lower() not in VIDEO_EXTS:
                    continue
                name = item.name if item.is_dir() else item.stem
                labels = _labels_for(ar, act, split_dir, name, records)
                if labels is None:
                    missing.append(f"{act}/{split_dir}/{name}")
                    continue
                max_id = max(max_id, max(labels))
                entries.append(ManifestEntry(path=os.fspath(item), activity=act, split=split, id=name,
                                             labels=labels, fps=fps if is_frames else None))
    if missing:
        raise ValueError(f"tcc_lav: no phase labels for {len(missing)} videos, e.g. {missing[:3]} "
                         "(expected npyrecords/<activity>_<split>.npy or labels/<split>/<video>.npy)")
    if not entries:
        raise ValueError(f"tcc_lav: no videos under {root}")
    return write_outputs(out_manifest, entries, LabelMap({f"phase{i}": i for i in range(max_id + 1)}, None))


def write_manifest_pouring(root: str | os.PathLike, out_manifest: str | os.PathLike, **kw) -> int:
    kw.setdefault("activity", "pouring")
    return write_manifest(root, out_manifest, **kw)


def write_manifest_penn_action(root: str | os.PathLike, out_manifest: str | os.PathLike, **kw) -> int:
    return write_manifest(root, out_manifest, **kw)
