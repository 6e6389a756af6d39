"""What sharding must not do silently: read a variable-frame-rate clip as constant rate, write a label outside the
label map, or give two non-Latin names one key (or none)."""

from __future__ import annotations

import json
import unicodedata
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from pl_helpers import decode_all, read_shards
from vasot_pipelines.manifest import ManifestEntry
from vasot_pipelines.shard import main
from vasot_pipelines.writer import DatasetWriter, Sample

from vasot_dist.data import format as fmt

# A clip of 24 frames over 2.1 s whose container claims 30 fps: gaps of 40, 80 and 160 ms, frame i carrying
# its index as a bar code (fmt.draw_frame_index), so a shard's frame can be traced back to its source frame.
GAPS_MS = [40, 160, 80, 40, 160, 160, 40, 80, 40, 80, 160, 40, 40, 80, 160, 40, 80, 80, 160, 40, 80, 40, 160]


def write_vfr_clip(path: Path) -> list[Fraction]:
    """Encode the clip with the given presentation times (ms); returns each frame's time in seconds."""
    pts = np.concatenate([[0], np.cumsum(GAPS_MS)]).astype(int)
    frames = np.full((len(pts), 64, 64, 3), 128, np.uint8)
    fmt.draw_frame_index(frames)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for f, p in zip(frames, pts):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = int(p), Fraction(1, 1000)
            for packet in s.encode(vf):
                out.mux(packet)
        for packet in s.encode(None):
            out.mux(packet)
    return [Fraction(int(p), 1000) for p in pts]


def nearest_by_time(times: list[Fraction], fps: int) -> list[int]:
    """Independent reference: output frame j (time j / fps, while inside the last frame, which lasts as long
    as the interval before it) shows the source frame nearest in time, ties to the later one."""
    end = times[-1] + (times[-1] - times[-2]) / 2
    out, j = [], 0
    while Fraction(j, fps) < end:
        t = Fraction(j, fps)
        out.append(min(range(len(times)), key=lambda i: (abs(times[i] - t), -i)))
        j += 1
    return out


def test_a_variable_frame_rate_clip_is_resampled_by_its_timestamps(tmp_path):
    times = write_vfr_clip(tmp_path / "vfr.mp4")
    (tmp_path / "labels.txt").write_text("0 early\n1 late\n")
    (tmp_path / "m.jsonl").write_text(json.dumps(
        {"path": "vfr.mp4", "activity": "a", "split": "train",
         "segments_sec": [[0, 1.0, "early"], [1.0, 2.2, "late"]]}) + "\n")
    code = main(["--manifest", str(tmp_path / "m.jsonl"), "--labels", str(tmp_path / "labels.txt"),
                 "--out", str(tmp_path / "out"), "--fps", "10", "--short-side", "64", "--no-progress"])
    assert code == 0
    (sample,) = read_shards(tmp_path / "out").values()
    shown = [fmt.read_frame_index(f) for f in decode_all(sample["mp4"])]
    expected = nearest_by_time(times, 10)
    # 2.1 s (+ half of the last 160 ms frame) at 10 fps: 22 frames, each the source frame nearest in time. Timed by
    # index at a constant rate (the mean rate this mp4 states; other containers state the encoder's 30 fps and gave
    # 8 frames) the count came out right here but the frames did not: source frame i taken to be at i / 11.15 s.
    assert len(expected) == 22 and shown == expected
    assert sample["json"]["num_frames"] == 22 and sample["json"]["fps"] == 10
    # segments_sec follow the timestamps too: "late" from the frame shown at 1.0 s on
    first_late = max(i for i, t in enumerate(times) if t <= 1)
    assert sample["json"]["labels"] == [int(i >= first_late) for i in expected]


def test_a_constant_rate_clip_keeps_the_index_plan(tmp_path):
    # The same times at a regular 100 ms: constant rate, timed by index at the stated rate, as before.
    from vasot_pipelines.video import VideoSource, resample_plan, timestamp_plan

    frames = np.full((12, 64, 64, 3), 128, np.uint8)
    fmt.draw_frame_index(frames)
    from pl_helpers import write_video

    path = write_video(tmp_path / "cfr.mp4", frames, fps=10)
    with VideoSource(path) as src:
        assert not src.info.variable_rate and src.info.fps == 10
    times = [Fraction(i, 10) for i in range(12)]
    assert timestamp_plan(times, 4).tolist() == resample_plan(12, Fraction(10), Fraction(4)).tolist()


def test_a_label_outside_the_map_is_refused_when_sharding(tmp_path):
    w = DatasetWriter(tmp_path / "out", name="d", modality="features", label_map={"a": 0, "b": 1},
                      background_id=None, fps=None, short_side=None)
    meta = fmt.sample_meta(key="act__v1", dataset="d", activity="act", split="train", labels=[0, 1, 9, 9],
                           fps=None, feature_dim=2, source="/data/v1.npy")
    with pytest.raises(ValueError, match=r"^sample act__v1 \(/data/v1.npy\): label ids \[9\] are not ids of the "
                                         r"label map \{'a': 0, 'b': 1\}$"):
        w.add(Sample(meta, fmt.features_to_bytes(np.zeros((4, 2))), fmt.FEATURES_EXT))


def test_a_manifest_label_outside_the_map_fails_the_video_by_name(tmp_path):
    np.save(tmp_path / "v1.npy", np.zeros((4, 2), np.float32))
    (tmp_path / "labels.txt").write_text("0 a\n1 b\n")
    (tmp_path / "m.jsonl").write_text(json.dumps(
        {"path": "v1.npy", "activity": "act", "split": "train", "labels": [0, 1, 9, 9]}) + "\n")
    code = main(["--manifest", str(tmp_path / "m.jsonl"), "--labels", str(tmp_path / "labels.txt"),
                 "--out", str(tmp_path / "out"), "--modality", "features", "--no-progress"])
    assert code == 1
    (fail,) = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert fail["key"] == "act__v1"
    assert fail["reason"] == "v1.npy: label id 9 is not an id of the label map (ids: [0, 1])"


@pytest.mark.parametrize("a,b", [("café", "cafè"), ("视频一", "视频二"), ("Москва", "Минск")])
def test_non_latin_names_get_distinct_keys_automatically(a, b):
    ka, kb = (ManifestEntry(path=f"/v/{n}.mp4", activity="act", split="train").key for n in (a, b))
    assert ka != kb
    assert all(fmt.check_key(k) for k in (ka, kb))
    # the same name in another normal form (macOS file names are NFD) keeps its key
    assert ManifestEntry(path=f"/v/{unicodedata.normalize('NFD', a)}.mp4", activity="act", split="train").key == ka


def test_latin_keys_are_transliterated_and_ascii_keys_unchanged():
    assert fmt.sanitize("café").startswith("cafe_") and fmt.sanitize("P03 cereals.v2") == "P03_cereals_v2"
