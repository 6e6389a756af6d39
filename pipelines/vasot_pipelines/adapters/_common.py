"""Helpers shared by the dataset adapters (manifest + label map writing, file lookup)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..manifest import LabelMap, ManifestEntry, label_map_path, parse_entry, write_label_map, write_manifest

VIDEO_EXTS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg")


def require_dir(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{what}: folder {p} does not exist")
    return p


def require_file(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what}: file {p} does not exist")
    return p


def resolve(root: Path, path: str | os.PathLike) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def index_videos(folder: str | os.PathLike) -> dict[str, Path]:
    """Video files under ``folder`` (recursive) by file stem; the first in sorted order wins."""
    out: dict[str, Path] = {}
    folder = Path(folder)
    if not folder.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTS:
                out.setdefault(stem, Path(dirpath) / name)
    return out


def write_outputs(out_manifest: str | os.PathLike, entries: Iterable[ManifestEntry | Mapping[str, Any]],
                  label_map: LabelMap) -> int:
    """Write the manifest and its label map (``<manifest>.labels.json``); returns the number of videos."""
    checked = []
    for i, e in enumerate(entries, 1):
        e = e if isinstance(e, ManifestEntry) else parse_entry(e, i)
        # absolute paths: the manifest resolves relative ones against its own folder, not the cwd
        e.path = os.path.abspath(e.path)
        if e.labels_file is not None:
            e.labels_file = os.path.abspath(e.labels_file)
        checked.append(e)
    n = write_manifest(checked, out_manifest)
    write_label_map(label_map, label_map_path(out_manifest))
    return n


def ids_from_names(names: Iterable[str], background: str | None = "background") -> LabelMap:
    """Label map with the background (if any) at id 0 and the other names in the given order."""
    ids: dict[str, int] = {}
    if background is not None:
        ids[background] = 0
    for n in names:
        if n not in ids:
            ids[n] = len(ids)
    return LabelMap(ids, background)
