"""The standard layout of the unsupervised action segmentation datasets (Kukleva et al. 2019, used by
CTE, TOT, UFSA, ASOT, VASOT, CLOT)::

    <root>/features/[<activity>/]<video>.npy|.txt   per-frame features, (N, D) (a few re-exports (D, N))
    <root>/groundTruth/<video>                      one label name per line, one line per frame
    <root>/mapping/mapping.txt                      "id name" per line

Feature files are looked up as ``features/<activity>/<video>.{npy,txt}`` first (Breakfast, YTI), then
``features/<video>.{npy,txt}`` (50 Salads, Desktop Assembly), as ASOT's ``video_dataset.py`` does.
A video whose feature file is missing is still listed, so that the sharding tool reports it in
``failures.jsonl``. All videos go to one split (default ``train``): these benchmarks are transductive
(the same videos are clustered and scored), so evaluate with ``data.eval_split=train``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..manifest import ManifestEntry, read_label_map
from ._common import require_dir, require_file, write_outputs

FEATURE_EXTS = (".npy", ".txt")


def find_features(root: Path, activity: str, video: str) -> Path:
    candidates = [root / "features" / activity / (video + ext) for ext in FEATURE_EXTS] if activity else []
    candidates += [root / "features" / (video + ext) for ext in FEATURE_EXTS]
    return next((c for c in candidates if c.is_file()), candidates[0])


def write_manifest(root: str | os.PathLike, out_manifest: str | os.PathLike, *,
                   activity_of: Callable[[str], str] | str | None = None, mapping: str = "mapping/mapping.txt",
                   split: str | Callable[[str], str] = "train", background: str | None = None,
                   skip: Callable[[str], bool] | None = None, fps: float | None = None) -> int:
    """List every ``groundTruth/<video>`` of ``root`` with its feature file; returns the number of videos.

    activity_of: the activity of a video name (callable), one fixed name (str), or None = the
    sub-folder of ``features/`` that holds the video (else ``"all"``). split: a split name or a callable
    of the video name. skip: video names to leave out. fps: the features' frame rate, if known.
    """
    root = Path(root)
    gt_dir = require_dir(root / "groundTruth", "features layout")
    label_map = read_label_map(require_file(root / mapping, "features layout mapping"), background=background)
    entries = []
    for name in sorted(os.listdir(gt_dir)):
        p = gt_dir / name
        if not p.is_file() or name.startswith(".") or (skip is not None and skip(name)):
            continue
        if callable(activity_of):
            act = activity_of(name)
        elif isinstance(activity_of, str):
            act = activity_of
        else:
            hits = sorted((root / "features").glob(f"*/{name}.*"))
            act = hits[0].parent.name if hits else "all"
        feat = find_features(root, act, name)
        entries.append(ManifestEntry(path=os.fspath(feat), activity=act,
                                     split=split(name) if callable(split) else split, id=name,
                                     labels_file=os.fspath(p), fps=fps))
    if not entries:
        raise ValueError(f"features layout: no ground-truth files in {gt_dir}")
    return write_outputs(out_manifest, entries, label_map)
