"""``dataset.json``: the index the sharding tool writes beside the tars; the loader reads sizes from it.

Format (version 1)::

    {"format_version": 1, "name", "modality": "video" | "features", "label_map": {name: id},
     "background_id": int | null, "fps": float | null, "short_side": int | null,
     "shards": [{"path", "split", "num_samples", "num_frames"}],
     "splits": {split: {"num_samples", "num_frames", "activities": {activity: count}}}}

Shard paths are relative to the folder holding ``dataset.json`` (absolute paths, URLs and ``pipe:``
commands are kept as they are).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
INDEX_NAME = "dataset.json"
MODALITIES = ("video", "features")


@dataclass(frozen=True)
class ShardInfo:
    """One tar of the index. ``url`` is the resolved location (absolute path, URL or ``pipe:`` command)."""

    url: str
    split: str
    num_samples: int
    num_frames: int


@dataclass(frozen=True)
class SplitInfo:
    num_samples: int
    num_frames: int
    activities: dict[str, int]


def _is_remote(path: str) -> bool:
    return path.startswith("pipe:") or "://" in path


class DatasetIndex:
    """A validated ``dataset.json``. Build with :meth:`load`; every error names the file and the key."""

    def __init__(self, path: Path, raw: dict[str, Any], shards: list[ShardInfo], splits: dict[str, SplitInfo]):
        self.path = path
        self.raw = raw
        self.format_version: int = raw["format_version"]
        self.name: str = raw["name"]
        self.modality: str = raw["modality"]
        self.label_map: dict[str, int] = dict(raw["label_map"])
        self.background_id: int | None = raw["background_id"]
        self.fps: float | None = raw["fps"]
        self.short_side: int | None = raw["short_side"]
        self.shards = shards
        self.splits = splits

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike) -> DatasetIndex:
        """Read ``path`` (the ``dataset.json`` file or the folder holding it) and validate it.

        Raises ValueError naming the file and the missing or invalid key.
        """
        p = Path(path)
        if p.is_dir():
            p = p / INDEX_NAME
        if not p.is_file():
            raise ValueError(f"dataset index {p} does not exist (expected a folder holding {INDEX_NAME}, "
                             f"or the {INDEX_NAME} path)")
        try:
            with open(p, encoding="utf-8") as f:
                raw = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: not valid JSON ({exc})") from exc
        return cls.from_dict(raw, p)

    @classmethod
    def from_dict(cls, raw: Any, path: str | os.PathLike) -> DatasetIndex:
        """Validate an already parsed index; ``path`` is where it lives (shard paths are relative to its folder)."""
        p = Path(path)

        def bad(key: str, what: str) -> ValueError:
            return ValueError(f"{p}: key {key!r} {what}")

        if not isinstance(raw, dict):
            raise ValueError(f"{p}: top level must be a JSON object, got {type(raw).__name__}")
        for key in ("format_version", "name", "modality", "label_map", "background_id", "fps", "short_side",
                    "shards", "splits"):
            if key not in raw:
                raise bad(key, "is missing")
        if raw["format_version"] != FORMAT_VERSION:
            raise bad("format_version", f"is {raw['format_version']!r}; this loader reads {FORMAT_VERSION}")
        if raw["modality"] not in MODALITIES:
            raise bad("modality", f"is {raw['modality']!r}; expected one of {MODALITIES}")
        lm = raw["label_map"]
        if not isinstance(lm, dict) or not all(isinstance(k, str) and _is_int(v) for k, v in lm.items()):
            raise bad("label_map", "must map label names to int ids")
        bg = raw["background_id"]
        if bg is not None and not _is_int(bg):
            raise bad("background_id", f"must be an int or null, got {bg!r}")
        if raw["fps"] is not None and not (isinstance(raw["fps"], (int, float)) and raw["fps"] > 0):
            raise bad("fps", f"must be a positive number or null, got {raw['fps']!r}")
        if raw["short_side"] is not None and not (_is_int(raw["short_side"]) and raw["short_side"] > 0):
            raise bad("short_side", f"must be a positive int or null, got {raw['short_side']!r}")

        if not isinstance(raw["shards"], list):
            raise bad("shards", "must be a list")
        root = p.parent
        shards: list[ShardInfo] = []
        for i, s in enumerate(raw["shards"]):
            where = f"shards[{i}]"
            if not isinstance(s, dict):
                raise bad(where, "must be an object")
            for k in ("path", "split", "num_samples", "num_frames"):
                if k not in s:
                    raise bad(f"{where}.{k}", "is missing")
            if not isinstance(s["path"], str) or not s["path"]:
                raise bad(f"{where}.path", f"must be a non-empty string, got {s['path']!r}")
            if not isinstance(s["split"], str):
                raise bad(f"{where}.split", f"must be a string, got {s['split']!r}")
            for k in ("num_samples", "num_frames"):
                if not _is_int(s[k]) or s[k] < 0:
                    raise bad(f"{where}.{k}", f"must be a non-negative int, got {s[k]!r}")
            url = s["path"] if _is_remote(s["path"]) or os.path.isabs(s["path"]) else str(root / s["path"])
            shards.append(ShardInfo(url, s["split"], int(s["num_samples"]), int(s["num_frames"])))

        if not isinstance(raw["splits"], dict):
            raise bad("splits", "must be an object {split: stats}")
        splits: dict[str, SplitInfo] = {}
        for name, st in raw["splits"].items():
            where = f"splits.{name}"
            if not isinstance(st, dict):
                raise bad(where, "must be an object")
            for k in ("num_samples", "num_frames", "activities"):
                if k not in st:
                    raise bad(f"{where}.{k}", "is missing")
            for k in ("num_samples", "num_frames"):
                if not _is_int(st[k]) or st[k] < 0:
                    raise bad(f"{where}.{k}", f"must be a non-negative int, got {st[k]!r}")
            acts = st["activities"]
            if not isinstance(acts, dict) or not all(isinstance(k, str) and _is_int(v) for k, v in acts.items()):
                raise bad(f"{where}.activities", "must map activity names to int counts")
            in_shards = [sh for sh in shards if sh.split == name]
            n_shards = sum(sh.num_samples for sh in in_shards)
            if n_shards != st["num_samples"]:
                raise bad(f"{where}.num_samples", f"is {st['num_samples']} but its shards hold {n_shards} samples")
            if sum(acts.values()) != st["num_samples"]:
                raise bad(f"{where}.activities", f"counts add up to {sum(acts.values())}, not num_samples "
                                                 f"{st['num_samples']}")
            splits[name] = SplitInfo(int(st["num_samples"]), int(st["num_frames"]), {k: int(v) for k, v in acts.items()})
        orphans = sorted({sh.split for sh in shards} - set(splits))
        if orphans:
            raise bad("splits", f"has no entry for the split(s) {orphans} that shards belong to")
        return cls(p, raw, shards, splits)

    # ------------------------------------------------------------------------------------ queries
    def _split(self, split: str) -> SplitInfo:
        if split not in self.splits:
            raise ValueError(f"{self.path}: no split {split!r}; available: {sorted(self.splits)}")
        return self.splits[split]

    def urls(self, split: str) -> list[str]:
        """Shard locations of ``split`` in index order."""
        self._split(split)
        return [s.url for s in self.shards if s.split == split]

    def shards_of(self, split: str) -> list[ShardInfo]:
        self._split(split)
        return [s for s in self.shards if s.split == split]

    def num_samples(self, split: str) -> int:
        return self._split(split).num_samples

    def num_frames(self, split: str) -> int:
        return self._split(split).num_frames

    def activities(self, split: str) -> dict[str, int]:
        """``{activity: number of videos}`` of ``split``."""
        return dict(self._split(split).activities)

    @property
    def num_classes(self) -> int:
        return len(self.label_map)

    def __repr__(self) -> str:
        sizes = {k: v.num_samples for k, v in self.splits.items()}
        return f"DatasetIndex({str(self.path)!r}, modality={self.modality!r}, samples={sizes})"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
