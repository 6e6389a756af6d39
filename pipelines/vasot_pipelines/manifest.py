"""The sharding tool's input: a JSONL manifest (one video per line) and a label map.

Manifest line (JSON object)::

    {"path": str,               video file, folder of frame images, or (features) .npy / .txt array
     "activity": str,           activity / task name (part of the sample key)
     "split": str,              e.g. "train", "test"
     "id": str,                 optional; default: the file name without extension
     "fps": float,              optional: the source frame rate (required for image folders)
     and exactly one way to give labels:
     "labels": [name | id],     one per source frame
     "segments": [[start_frame, end_frame, name | id], ...]   inclusive source-frame ranges
     "segments_sec": [[start_s, end_s, name | id], ...]       seconds; frames floor(s*fps)..floor(e*fps)
     "labels_file": str}        a file with one label name per line (groundTruth/<video>) or an int .npy

Frames not covered by any segment get the background label; later segments overwrite earlier ones.
A per-frame list may differ from the video's frame count by up to ``LABEL_TOLERANCE`` (2) frames:
it is trimmed, or padded with its last label. Larger differences, segments that start or end more
than that past the last frame, and ``segments_sec`` more than ``SECONDS_TOLERANCE`` (1 s) past it,
fail the sample. An empty manifest is an error.

Label map: JSON ``{name: id}``, JSON ``{"label_map": {name: id}, "background": name}`` (what the
adapters write), or text with ``id name`` per line (the ``mapping.txt`` of the unsupervised
segmentation datasets). Several names may share one id (50 Salads "eval" granularity).
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vasot_dist.data.format import LABEL_TOLERANCE, check_split, make_key, sanitize

# Names that mean "no step" in the published label maps (Breakfast SIL, YTI background, IKEA ASM NA,
# Desktop Assembly Background); used when no --background is given.
BACKGROUND_NAMES = ("background", "Background", "BG", "bg", "SIL", "NA")
LABEL_FIELDS = ("labels", "segments", "segments_sec", "labels_file")
# segments_sec may end this far past the end of the video (annotations rounded to the second); clipped.
SECONDS_TOLERANCE = 1.0


@dataclass
class ManifestEntry:
    path: str
    activity: str
    split: str
    id: str | None = None
    fps: float | None = None
    labels: list | None = None
    segments: list | None = None
    segments_sec: list | None = None
    labels_file: str | None = None
    line: int = 0

    @property
    def video_id(self) -> str:
        if self.id is not None:
            return str(self.id)
        base = os.path.basename(os.path.normpath(self.path))
        return base if os.path.isdir(self.path) else os.path.splitext(base)[0]

    @property
    def key(self) -> str:
        return make_key(self.activity, self.video_id)

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if v is not None and k != "line"}
        return d


def parse_entry(obj: Any, line: int = 0) -> ManifestEntry:
    """Validate one decoded manifest line; ValueError names the field that is wrong."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"manifest line {line}: expected a JSON object, got {type(obj).__name__}")
    for f in ("path", "activity", "split"):
        if not isinstance(obj.get(f), str) or not obj[f]:
            raise ValueError(f"manifest line {line}: field {f!r} must be a non-empty string")
    check_split(obj["split"])
    sanitize(obj["activity"])
    given = [f for f in LABEL_FIELDS if obj.get(f) is not None]
    if len(given) != 1:
        raise ValueError(f"manifest line {line}: give exactly one of {LABEL_FIELDS}, got {given or 'none'}")
    unknown = set(obj) - {"path", "activity", "split", "id", "fps", *LABEL_FIELDS}
    if unknown:
        raise ValueError(f"manifest line {line}: unknown fields {sorted(unknown)}")
    for f in ("segments", "segments_sec"):
        if obj.get(f) is not None:
            segs = obj[f]
            if not isinstance(segs, list) or not all(isinstance(s, (list, tuple)) and len(s) == 3 for s in segs):
                raise ValueError(f"manifest line {line}: {f} must be a list of [start, end, label]")
            for s in segs:
                if not all(isinstance(v, (int, float)) for v in s[:2]) or s[1] < s[0] or s[0] < 0:
                    raise ValueError(f"manifest line {line}: bad segment {s} (need 0 <= start <= end)")
    if obj.get("labels") is not None and (not isinstance(obj["labels"], list) or not obj["labels"]):
        raise ValueError(f"manifest line {line}: labels must be a non-empty list")
    if obj.get("fps") is not None and not (isinstance(obj["fps"], (int, float)) and obj["fps"] > 0):
        raise ValueError(f"manifest line {line}: fps must be a positive number")
    e = ManifestEntry(**{k: obj.get(k) for k in ("path", "activity", "split", "id", "fps", *LABEL_FIELDS)},
                      line=line)
    if e.id is not None:
        e.id = str(e.id)
    sanitize(e.video_id)
    return e


def read_manifest(path: str | os.PathLike) -> tuple[list[ManifestEntry], list[dict[str, Any]]]:
    """Parse a JSONL manifest. Returns (entries, failures); a bad line becomes a failure record
    ``{"path": "<manifest>:<line>", "reason": ...}`` instead of stopping the run. Relative paths are
    resolved against the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"manifest {path} does not exist")
    entries, failures = [], []
    base = path.parent
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                e = parse_entry(json.loads(raw), n)
            except (json.JSONDecodeError, ValueError, TypeError) as err:
                failures.append({"path": f"{path}:{n}", "reason": f"bad manifest line: {err}"})
                continue
            e.path = os.fspath(base / e.path) if not os.path.isabs(e.path) else e.path
            if e.labels_file is not None and not os.path.isabs(e.labels_file):
                e.labels_file = os.fspath(base / e.labels_file)
            entries.append(e)
    if not entries and not failures:
        raise ValueError(f"manifest {path} lists no videos (it is empty); write one JSON line per video")
    return entries, failures


def write_manifest(entries: Iterable[ManifestEntry | Mapping[str, Any]], path: str | os.PathLike) -> int:
    """Write entries as JSONL (validating each); returns the number of lines."""
    n = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for e in entries:
            if not isinstance(e, ManifestEntry):
                e = parse_entry(e, n + 1)
            f.write(json.dumps(e.to_json()) + "\n")
            n += 1
    return n


# ------------------------------------------------------------------------------------ label maps
@dataclass
class LabelMap:
    ids: dict[str, int]
    background: str | None = None

    @property
    def background_id(self) -> int | None:
        return None if self.background is None else self.ids[self.background]

    def to_json(self) -> dict[str, Any]:
        return {"label_map": self.ids, "background": self.background}


def read_label_map(path: str | os.PathLike, background: str | None = None) -> LabelMap:
    """Read a label map (JSON, or ``id name`` text lines). ``background`` names the background
    label; default: the one stored in the file, else the first of ``BACKGROUND_NAMES`` present."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"label map {path} does not exist")
    text = path.read_text()
    stored_bg = None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, Mapping):
        if "label_map" in obj:
            stored_bg = obj.get("background")
            obj = obj["label_map"]
        ids = {}
        for k, v in obj.items():
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"label map {path}: id of {k!r} must be an int, got {v!r}")
            ids[str(k)] = v
    else:
        ids = {}
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            parts = line.strip().split(maxsplit=1)
            if len(parts) != 2:
                raise ValueError(f"label map {path}:{n}: expected 'id name', got {line!r}")
            try:
                ids[parts[1].strip()] = int(parts[0])
            except ValueError:
                raise ValueError(f"label map {path}:{n}: id {parts[0]!r} is not an int") from None
    if not ids:
        raise ValueError(f"label map {path} is empty")
    bg = background or stored_bg
    if bg is None:
        bg = next((b for b in BACKGROUND_NAMES if b in ids), None)
    elif bg not in ids:
        raise ValueError(f"background label {bg!r} is not in the label map {path}")
    return LabelMap(ids, bg)


def write_label_map(label_map: LabelMap, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(label_map.to_json(), indent=1) + "\n")
    return path


def label_map_path(manifest_path: str | os.PathLike) -> Path:
    """Where adapters put the label map of a manifest: ``<manifest>.labels.json`` beside it."""
    p = Path(manifest_path)
    return p.with_name(p.name.rsplit(".", 1)[0] + ".labels.json")


# --------------------------------------------------------------------------- per-frame labels
def _to_id(value: Any, label_map: LabelMap, valid: set[int], video: str) -> int:
    if isinstance(value, str):
        if value not in label_map.ids:
            raise ValueError(f"{video}: label {value!r} is not in the label map (names: {sorted(label_map.ids)[:12]}"
                             f"{' ...' if len(label_map.ids) > 12 else ''})")
        return label_map.ids[value]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if int(value) not in valid:
            raise ValueError(f"{video}: label id {value} is not an id of the label map (ids: {sorted(valid)[:12]}"
                             f"{' ...' if len(valid) > 12 else ''})")
        return int(value)
    raise ValueError(f"{video}: label {value!r} must be a name or an int id")


def read_labels_file(path: str | os.PathLike) -> list:
    """A per-frame label file: ``.npy`` of ints, else text with one label per line (names, or ints)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"labels file {path} does not exist")
    if path.endswith(".npy"):
        return [int(v) for v in np.load(path, allow_pickle=False).reshape(-1)]
    return [ln.strip() for ln in open(path) if ln.strip()]


def fit_length(values: Sequence, n: int, tolerance: int = LABEL_TOLERANCE) -> list:
    """Trim or pad (with the last value) a per-frame list to ``n``; ValueError beyond ``tolerance``."""
    if abs(len(values) - n) > tolerance:
        raise ValueError(f"labels have {len(values)} entries, the source has {n} frames "
                         f"(more than {tolerance} apart)")
    values = list(values[:n])
    return values + [values[-1]] * (n - len(values))


def frame_labels(entry: ManifestEntry, num_frames: int, fps: float | None, label_map: LabelMap,
                 tolerance: int = LABEL_TOLERANCE, times: Sequence[float] | None = None) -> np.ndarray:
    """Label ids (int64, (num_frames,)) of the source frames of ``entry``; ValueError when they do not fit.

    ``times``: each source frame's time in seconds from the first (a variable-rate source); ``segments_sec``
    then label the frames shown from start to end (the frame shown at ``s`` is the last one with time <= s),
    which for a constant rate is ``floor(s * fps)``."""
    valid = set(label_map.ids.values())
    bg = label_map.background_id
    video = os.path.basename(os.path.normpath(entry.path))
    if entry.labels is not None or entry.labels_file is not None:
        raw = entry.labels if entry.labels is not None else read_labels_file(entry.labels_file)
        if not raw:
            raise ValueError("labels are empty")
        ids = [_to_id(int(v) if isinstance(v, str) and v.lstrip("-").isdigit() and v not in label_map.ids
                      else v, label_map, valid, video) for v in raw]
        return np.asarray(fit_length(ids, num_frames, tolerance), dtype=np.int64)
    # A segment a little past the end is rounding in the annotation (clipped); more means the annotation
    # is of a longer video (another cut, a truncated download) and its labels cannot be trusted.
    if entry.segments is not None:
        segs = [(int(s), int(e), lab, f"segment {[s, e, lab]}") for s, e, lab in entry.segments]
        slack, slack_text = tolerance, f"{tolerance} frames"
    else:
        if fps is None:
            raise ValueError("segments_sec need the source fps")
        if times is not None:
            at = [float(t) for t in times]

            def shown(sec: float) -> int:  # past the last frame: frames counted on at the mean rate
                if sec <= at[-1]:
                    return max(0, bisect.bisect_right(at, sec) - 1)
                return len(at) - 1 + math.floor((sec - at[-1]) * fps)

            segs = [(shown(s), shown(e), lab, f"segments_sec entry {[s, e, lab]} (frames {shown(s)}..{shown(e)} "
                     "by the source's timestamps)") for s, e, lab in entry.segments_sec]
        else:
            segs = [(math.floor(s * fps), math.floor(e * fps), lab, f"segments_sec entry {[s, e, lab]} (frames "
                     f"{math.floor(s * fps)}..{math.floor(e * fps)} at {fps:g} fps)") for s, e, lab in entry.segments_sec]
        slack, slack_text = max(tolerance, math.ceil(SECONDS_TOLERANCE * fps)), f"{SECONDS_TOLERANCE:g} s"
    where = f"of {video}" + (f" ({num_frames / fps:.2f} s)" if fps else "")
    out = np.full(num_frames, -(10**9), dtype=np.int64)
    for s, e, lab, name in segs:
        if s > num_frames - 1 + slack:
            raise ValueError(f"{name} starts after the last frame {num_frames - 1} {where}")
        if e > num_frames - 1 + slack:
            raise ValueError(f"{name} ends after the last frame {num_frames - 1} {where} (more than {slack_text})")
        out[s:min(e, num_frames - 1) + 1] = _to_id(lab, label_map, valid, video)
    if (out == -(10**9)).any():
        if bg is None:
            first = int(np.flatnonzero(out == -(10**9))[0])
            raise ValueError(f"frame {first} is in no segment and the label map has no background label")
        out[out == -(10**9)] = bg
    return out
