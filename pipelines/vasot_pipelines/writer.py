"""The one shard writer: samples -> ``{split}-{index:06d}.tar`` + ``dataset.json``, resumable.

A shard is written under a temporary name (:class:`~vasot_dist.runtime.files.AtomicFile`) and renamed
when it is full (or at the end); its record (keys, counts) then goes into ``progress.json`` (rewritten
atomically). A writer opened on a folder with a ``progress.json`` keeps the shards listed there, removes
every other shard of the format and every temporary file of one, and reports the keys already written (:attr:`DatasetWriter.done_keys`) so that the caller
skips them. Shard numbering continues after the kept shards, so a run that is interrupted after shard
k and resumed writes the same shards as an uninterrupted run when samples arrive in the same order.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vasot_dist.data import format as fmt
from vasot_dist.runtime.files import AtomicFile, temp_target, write_json_atomic

PROGRESS_JSON = "progress.json"
DEFAULT_MAX_SHARD_BYTES = 256 * 2**20
DEFAULT_MAX_SHARD_SAMPLES = 32
_TAR_BLOCK = 512


_TAR_RECORD = tarfile.RECORDSIZE  # tarfile pads the archive to a multiple of this on close


def _tar_member_size(n: int) -> int:
    return _TAR_BLOCK + (n + _TAR_BLOCK - 1) // _TAR_BLOCK * _TAR_BLOCK


def _tar_file_size(content: int) -> int:
    """Size on disk of an archive whose members + end blocks take ``content`` bytes."""
    return (content + _TAR_RECORD - 1) // _TAR_RECORD * _TAR_RECORD


@dataclass
class Sample:
    """One encoded sample: its ``<key>.json`` and the payload member (``mp4`` or ``npy``)."""

    meta: dict[str, Any]
    payload: bytes
    ext: str

    @property
    def key(self) -> str:
        return self.meta["key"]

    @property
    def tar_bytes(self) -> int:
        return _tar_member_size(len(self.payload)) + _tar_member_size(len(fmt.encode_meta(self.meta)))


@dataclass
class _OpenShard:
    split: str
    index: int
    file: AtomicFile
    tar: tarfile.TarFile
    keys: list[str] = field(default_factory=list)
    num_frames: int = 0
    nbytes: int = 2 * _TAR_BLOCK  # the end-of-archive blocks
    activities: Counter = field(default_factory=Counter)
    fps: set = field(default_factory=set)


def changed_settings(stored: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    """The settings that differ, ``key stored -> now`` (``max_shard_samples 32 -> 2``); a label map or other
    mapping by its changed entries, not whole."""
    out = []
    for key in sorted(set(stored) | set(now)):
        a, b = stored.get(key), now.get(key)
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            sub = [k for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k)]
            out.append(f"{key} ({', '.join(f'{k} {a.get(k)!r} -> {b.get(k)!r}' for k in sub[:5])}"
                       f"{', ...' if len(sub) > 5 else ''})")
        else:
            out.append(f"{key} {a!r} -> {b!r}")
    return "; ".join(out)


class DatasetWriter:
    """Write samples into capped shards of one dataset folder.

    ``settings`` (modality, label map, fps, ...) are stored in ``progress.json``; resuming with
    different settings raises ValueError instead of mixing two datasets, and so does a folder that
    holds shards without a ``progress.json``. ``resume=False`` discards what the folder holds.
    """

    def __init__(self, out_dir: str | os.PathLike, *, name: str, modality: str, label_map: Mapping[str, int],
                 background_id: int | None, fps: float | None, short_side: int | None,
                 max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
                 max_shard_samples: int = DEFAULT_MAX_SHARD_SAMPLES, resume: bool = True,
                 settings: Mapping[str, Any] | None = None):
        if modality not in fmt.MODALITIES:
            raise ValueError(f"modality must be one of {fmt.MODALITIES}, got {modality!r}")
        if max_shard_samples < 1 or max_shard_bytes < 1:
            raise ValueError("max_shard_samples and max_shard_bytes must be >= 1")
        if background_id is not None and background_id not in set(label_map.values()):
            raise ValueError(f"background_id {background_id} is not an id of the label map")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.name, self.modality = name, modality
        self.label_map = {str(k): int(v) for k, v in label_map.items()}
        self.background_id = background_id
        self.fps, self.short_side = fps, short_side
        self.max_shard_bytes, self.max_shard_samples = int(max_shard_bytes), int(max_shard_samples)
        self.settings = {
            "name": name, "modality": modality, "label_map": self.label_map, "background_id": background_id,
            "fps": fps, "short_side": short_side, "max_shard_bytes": self.max_shard_bytes,
            "max_shard_samples": self.max_shard_samples, **(dict(settings) if settings else {}),
        }
        self.completed: list[dict[str, Any]] = []
        self._open: dict[str, _OpenShard] = {}
        self._keys_seen: set[str] = set()
        self._load_progress(resume)

    # ---------------------------------------------------------------------------------- resume
    def _load_progress(self, resume: bool) -> None:
        prog = self.out_dir / PROGRESS_JSON
        kept: set[str] = set()
        if resume and prog.is_file():
            with open(prog) as f:
                state = json.load(f)
            stored, now = state.get("settings") or {}, json.loads(json.dumps(self.settings))
            if stored != now:
                raise ValueError(f"{prog} was written with other settings: {changed_settings(stored, now)}; use a "
                                 "new --out folder, or delete this one to start over")
            for rec in state.get("shards", []):
                p = self.out_dir / rec["path"]
                if p.is_file() and p.stat().st_size == rec["bytes"]:
                    self.completed.append(rec)
                    kept.add(rec["path"])
        elif resume and any(fmt.parse_shard_name(p.name) for p in self.out_dir.iterdir()):
            # shards without a progress record: not ours to delete
            raise ValueError(f"{self.out_dir} holds shards but no {PROGRESS_JSON}; write into an empty folder "
                             "(or delete the old shards)")
        # anything else of our naming scheme is a leftover of an interrupted run
        for p in self.out_dir.iterdir():
            n = p.name
            if fmt.parse_shard_name(temp_target(n) or "") or (fmt.parse_shard_name(n) and n not in kept):
                p.unlink()
        for rec in self.completed:
            self._keys_seen.update(rec["keys"])
        self._save_progress()

    @property
    def done_keys(self) -> frozenset[str]:
        """Keys of samples in completed shards (skip them when resuming)."""
        return frozenset(k for rec in self.completed for k in rec["keys"])

    def _save_progress(self) -> None:
        write_json_atomic(self.out_dir / PROGRESS_JSON, {"settings": self.settings, "shards": self.completed})

    # ----------------------------------------------------------------------------------- write
    def _next_index(self, split: str) -> int:
        used = [fmt.parse_shard_name(r["path"])[1] for r in self.completed if r["split"] == split]
        return max(used) + 1 if used else 0

    def _open_shard(self, split: str) -> _OpenShard:
        index = self._next_index(split)
        file = AtomicFile(self.out_dir / fmt.shard_name(split, index), binary=True)
        return _OpenShard(split, index, file, tarfile.open(fileobj=file.file, mode="w", format=tarfile.GNU_FORMAT))

    def add(self, sample: Sample, split: str | None = None) -> None:
        """Append one sample to the open shard of its split, closing the shard first if it would overflow.

        A shard never exceeds ``max_shard_bytes`` on disk unless it holds a single larger sample."""
        meta = sample.meta
        fmt.validate_sample_meta(meta, self.modality)
        split = split or meta["split"]
        if sample.ext != (fmt.VIDEO_EXT if self.modality == "video" else fmt.FEATURES_EXT):
            raise ValueError(f"sample {sample.key}: payload .{sample.ext} does not fit modality {self.modality}")
        if sample.key in self._keys_seen:
            raise ValueError(f"duplicate sample key {sample.key!r}")
        outside = sorted(set(meta["labels"]) - set(self.label_map.values()))
        if outside:  # the loader would skip it as corrupt; refuse it here, where the source is known
            raise ValueError(f"sample {sample.key} ({meta['source']}): label ids {outside[:5]} are not ids of the "
                             f"label map {self.label_map}")
        sh = self._open.get(split)
        size = sample.tar_bytes
        if sh is not None and sh.keys and (len(sh.keys) >= self.max_shard_samples
                                           or _tar_file_size(sh.nbytes + size) > self.max_shard_bytes):
            self._close(split)
            sh = None
        if sh is None:
            sh = self._open[split] = self._open_shard(split)
        for ext, data in ((fmt.META_EXT, fmt.encode_meta(meta)), (sample.ext, sample.payload)):
            info = tarfile.TarInfo(f"{sample.key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            sh.tar.addfile(info, io.BytesIO(data))
        self._keys_seen.add(sample.key)
        sh.keys.append(sample.key)
        sh.num_frames += meta["num_frames"]
        sh.nbytes += size
        sh.activities[meta["activity"]] += 1
        sh.fps.add(meta["fps"])

    def _close(self, split: str) -> dict[str, Any]:
        sh = self._open.pop(split)
        sh.tar.close()  # writes the end-of-archive blocks; the file itself stays open (fileobj)
        final = sh.file.commit()
        rec = {"path": final.name, "split": split, "num_samples": len(sh.keys), "num_frames": sh.num_frames,
               "bytes": final.stat().st_size, "keys": sh.keys, "activities": dict(sorted(sh.activities.items())),
               "fps": sorted(sh.fps, key=lambda v: (v is None, v or 0))}
        self.completed.append(rec)
        self._save_progress()
        return rec

    @property
    def num_completed_shards(self) -> int:
        return len(self.completed)

    def abandon(self) -> None:
        """Close open shards without completing them (their temporary files stay, as after a crash)."""
        for sh in self._open.values():
            sh.tar.close()
            sh.file.file.close()
        self._open.clear()

    # ---------------------------------------------------------------------------------- finish
    def index(self) -> dict[str, Any]:
        shards = sorted(self.completed, key=lambda r: (r["split"], r["path"]))
        splits: dict[str, dict[str, Any]] = {}
        for r in shards:
            st = splits.setdefault(r["split"], {"num_samples": 0, "num_frames": 0, "activities": Counter()})
            st["num_samples"] += r["num_samples"]
            st["num_frames"] += r["num_frames"]
            st["activities"].update(r["activities"])
        for st in splits.values():
            st["activities"] = dict(sorted(st["activities"].items()))
        # without a fixed output rate, report the samples' common rate when they share one
        rates = {v for r in shards for v in r.get("fps", [])}
        fps = self.fps if self.fps is not None else (rates.pop() if len(rates) == 1 else None)
        return {
            "format_version": fmt.FORMAT_VERSION, "name": self.name, "modality": self.modality,
            "label_map": self.label_map, "background_id": self.background_id, "fps": fps,
            "short_side": self.short_side,
            "shards": [{k: r[k] for k in ("path", "split", "num_samples", "num_frames")} for r in shards],
            "splits": dict(sorted(splits.items())),
        }

    def finish(self) -> Path:
        """Close every open shard and atomically write ``dataset.json``; returns its path."""
        for split in list(self._open):
            self._close(split)
        return fmt.write_dataset_index(self.out_dir, self.index())
