"""``dataset.json`` as an object: the loader reads shard locations and split sizes from it.

The file's schema and its validation live in :mod:`.format` (shared with the writer); this module turns a
valid index into :class:`ShardInfo` / :class:`SplitInfo` and answers the loader's questions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .format import index_path, read_dataset_index, validate_dataset_index


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

    def __init__(self, path: Path, raw: dict[str, Any]):
        self.path = path
        self.raw = raw
        self.format_version: int = raw["format_version"]
        self.name: str = raw["name"]
        self.modality: str = raw["modality"]
        self.label_map: dict[str, int] = dict(raw["label_map"])
        self.background_id: int | None = raw["background_id"]
        self.fps: float | None = raw["fps"]
        self.short_side: int | None = raw["short_side"]
        root = path.parent
        self.shards = [
            ShardInfo(s["path"] if _is_remote(s["path"]) or os.path.isabs(s["path"]) else str(root / s["path"]),
                      s["split"], int(s["num_samples"]), int(s["num_frames"]))
            for s in raw["shards"]
        ]
        self.splits = {
            name: SplitInfo(int(st["num_samples"]), int(st["num_frames"]),
                            {k: int(v) for k, v in st["activities"].items()})
            for name, st in raw["splits"].items()
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> DatasetIndex:
        """Read ``path`` (the ``dataset.json`` file or the folder holding it) and validate it.

        Raises ValueError naming the file and the missing or invalid key.
        """
        p = index_path(path)
        return cls(p, read_dataset_index(p))

    @classmethod
    def from_dict(cls, raw: Any, path: str | os.PathLike) -> DatasetIndex:
        """Validate an already parsed index; ``path`` is where it lives (shard paths are relative to its folder)."""
        validate_dataset_index(raw, path)
        return cls(Path(path), raw)

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

