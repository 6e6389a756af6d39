"""What applying a model returns: embeddings, segments, alignments (small dataclasses), and their file forms."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vasot_dist.runtime.files import write_json_atomic, write_text_atomic


@dataclass
class Embeddings:
    """Per-frame embeddings of one video.

    vectors: (T, D) float32, as the encoder returns them (the ResNet head L2-normalises); times: (T,) seconds,
    ``frame / fps``, None for an array given without ``fps``; fps: the container's average rate (or the one
    given), None when unknown; source: the path, or ``"array"``.
    """

    vectors: np.ndarray
    times: np.ndarray | None
    fps: float | None
    source: str

    def __len__(self) -> int:
        return len(self.vectors)

    def index_entry(self) -> dict[str, Any]:
        return {"source": self.source, "num_frames": len(self), "dim": int(self.vectors.shape[1]), "fps": self.fps,
                "times": None if self.times is None else [round(float(t), 6) for t in self.times]}


def _seconds(times: np.ndarray | None, fps: float | None, frame: int, *, end: bool) -> float | None:
    """The start of ``frame`` (``end``: the end of its display, i.e. the next frame's start) in seconds."""
    if times is None:
        return None
    if not end:
        return round(float(times[frame]), 6)
    if frame + 1 < len(times):
        return round(float(times[frame + 1]), 6)
    step = 1.0 / fps if fps else (float(times[-1] - times[-2]) if len(times) > 1 else 0.0)
    return round(float(times[frame]) + step, 6)


@dataclass
class Segment:
    """Frames ``start_frame`` .. ``end_frame`` (both included) doing one action.

    action: the model's action (prototype, or k-means cluster) index; name: the run's label for it when a
    matching is known (:meth:`vasot_dist.infer.InferenceModel.match_actions`), else None; confidence: the mean
    over the segment's frames of the frame's probability of this action (softmax over the K actions of the
    embedding's similarities at the method's temperature, ``docs/inference.md``).
    """

    start_frame: int
    end_frame: int
    start_s: float | None
    end_s: float | None
    action: int
    name: str | None
    confidence: float


@dataclass
class Segmentation:
    """The segments of one video, in order, covering every frame once; ``labels`` (T,) is the same per frame.

    decoder: how the labels were decoded (``docs/inference.md``): ``"<method>: ASOT structured OT"`` (the
    method's own decoder), ``"nearest prototype"`` or ``"k-means over the video's embeddings (k=K)"``.
    """

    segments: list[Segment]
    labels: np.ndarray
    decoder: str
    fps: float | None
    times: np.ndarray | None
    source: str
    names: dict[int, str] = field(default_factory=dict)

    @classmethod
    def from_labels(cls, labels: np.ndarray, probs: np.ndarray, *, decoder: str, fps: float | None,
                    times: np.ndarray | None, source: str, names: dict[int, str]) -> Segmentation:
        """Run-length segments of ``labels`` (T,); ``probs`` (T, K) the per-frame action probabilities."""
        labels = np.asarray(labels, dtype=np.int64)
        change = np.flatnonzero(np.diff(labels)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(labels)]]) - 1
        segs = []
        for s, e in zip(starts.tolist(), ends.tolist()):
            k = int(labels[s])
            segs.append(Segment(s, e, _seconds(times, fps, s, end=False), _seconds(times, fps, e, end=True), k,
                                names.get(k), round(float(probs[s:e + 1, k].mean()), 6)))
        return cls(segs, labels, decoder, fps, times, source, dict(names))

    def label_name(self, action: int) -> str:
        """The per-frame name written to MS-TCN ``groundTruth`` files: the matched label, else ``action_<k>``."""
        return self.names.get(action, f"action_{action}")

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "num_frames": len(self.labels), "fps": self.fps, "decoder": self.decoder,
                "segments": [vars(s) for s in self.segments]}

    def csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start_frame", "end_frame", "start_s", "end_s", "action", "name", "confidence"])
        for s in self.segments:
            w.writerow([s.start_frame, s.end_frame, _fmt(s.start_s), _fmt(s.end_s), s.action, s.name or "",
                        f"{s.confidence:.4f}"])
        return buf.getvalue()

    def groundtruth_text(self) -> str:
        """MS-TCN ``groundTruth/<video>.txt``: one line per frame, the frame's action name."""
        return "".join(self.label_name(int(k)) + "\n" for k in self.labels)


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


@dataclass
class Alignment:
    """The alignment of video A (N frames) with video B (M frames).

    plan: (N, M) float32 transport plan of the run's alignment solve (``docs/inference.md``); a_to_b: (N,) the
    frame of B each frame of A is matched to (the plan's row argmax); b_to_a: (M,) the column argmax;
    retiming: (N,) non-decreasing frames of B shown beside A's frames in the side-by-side video (the least-
    squares non-decreasing fit of ``a_to_b``); a, b: the two videos' embeddings (times, fps, source).
    """

    plan: np.ndarray
    a_to_b: np.ndarray
    b_to_a: np.ndarray
    retiming: np.ndarray
    a: Embeddings
    b: Embeddings

    def _rows(self, src: Embeddings, dst: Embeddings, match: np.ndarray) -> list[dict[str, Any]]:
        return [{"frame": i, "time_s": _seconds(src.times, src.fps, i, end=False), "match": int(j),
                 "match_time_s": _seconds(dst.times, dst.fps, int(j), end=False)} for i, j in enumerate(match)]

    def to_json(self) -> dict[str, Any]:
        side = lambda e: {"source": e.source, "num_frames": len(e), "fps": e.fps}  # noqa: E731
        return {"a": side(self.a), "b": side(self.b), "a_to_b": self._rows(self.a, self.b, self.a_to_b),
                "b_to_a": self._rows(self.b, self.a, self.b_to_a), "retiming": [int(j) for j in self.retiming]}

    def csv_text(self, direction: str) -> str:
        """``"a_to_b"`` or ``"b_to_a"``: frame, time_s, match, match_time_s per row."""
        src, dst, match = (self.a, self.b, self.a_to_b) if direction == "a_to_b" else (self.b, self.a, self.b_to_a)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["frame", "time_s", "match", "match_time_s"])
        for r in self._rows(src, dst, match):
            w.writerow([r["frame"], _fmt(r["time_s"]), r["match"], _fmt(r["match_time_s"])])
        return buf.getvalue()


def write_segmentation(seg: Segmentation, out: Path, name: str) -> list[Path]:
    """``<out>/<name>.json``, ``<out>/<name>.csv`` and ``<out>/groundTruth/<name>.txt``, each written atomically."""
    return [write_json_atomic(out / f"{name}.json", seg.to_json(), indent=1),
            write_text_atomic(out / f"{name}.csv", seg.csv_text()),
            write_text_atomic(out / "groundTruth" / f"{name}.txt", seg.groundtruth_text())]
