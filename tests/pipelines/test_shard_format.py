"""The shard format: keys, shard names, sample/dataset JSON validation, the frame-index overlay."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pl_helpers import decode_all
from vasot_pipelines.video import encode_frames

from vasot_dist.data import format as fmt


def test_keys_have_no_dots_and_keep_safe_characters():
    assert fmt.make_key("pour milk", "P03_cam01.P03-milk.avi") == "pour_milk__P03_cam01_P03-milk_avi"
    assert fmt.make_key("Kallax/Shelf", "0001/dev3") == "Kallax_Shelf__0001_dev3"
    with pytest.raises(ValueError, match="nothing left"):
        fmt.make_key("...", "x")
    with pytest.raises(ValueError, match="no dots"):
        fmt.check_key("a.b")


def test_shard_names_round_trip_and_reject_bad_splits():
    assert fmt.shard_name("train", 7) == "train-000007.tar"
    assert fmt.parse_shard_name("dir/test-000123.tar") == ("test", 123)
    assert fmt.parse_shard_name("train-7.tar") is None
    with pytest.raises(ValueError, match="split"):
        fmt.shard_name("tr-ain", 0)


def _meta(**kw):
    base = dict(key="a__v", dataset="d", activity="a", split="train", labels=[0, 1, 1], fps=15.0,
                source="x.mp4", height=64, width=48)
    base.update(kw)
    return fmt.sample_meta(**base)


def test_sample_meta_counts_frames_and_rejects_inconsistent_fields():
    m = _meta(progress=[0.1, 0.5, 0.9], steps=[0, 1, 1])
    assert m["num_frames"] == 3 and m["height"] == 64 and "feature_dim" not in m
    with pytest.raises(ValueError, match="progress must be a list of num_frames=3"):
        _meta(progress=[0.1])
    with pytest.raises(ValueError, match="not both"):
        _meta(feature_dim=5)
    with pytest.raises(ValueError, match="no dots"):
        _meta(key="a.v")
    f = fmt.sample_meta(key="a__v", dataset="d", activity="a", split="train", labels=[2], fps=None,
                        source="s", feature_dim=7)
    with pytest.raises(ValueError, match="modality 'video'"):
        fmt.validate_sample_meta(f, "video")


def _index(**kw):
    idx = {"format_version": 1, "name": "d", "modality": "video", "label_map": {"bg": 0, "a": 1},
           "background_id": 0, "fps": 15.0, "short_side": 64,
           "shards": [{"path": "train-000000.tar", "split": "train", "num_samples": 2, "num_frames": 30}],
           "splits": {"train": {"num_samples": 2, "num_frames": 30, "activities": {"x": 2}}}}
    idx.update(kw)
    return idx


def test_dataset_index_is_written_atomically_and_validated(tmp_path):
    p = fmt.write_dataset_index(tmp_path, _index())
    assert json.loads(p.read_text()) == _index()
    assert fmt.read_dataset_index(tmp_path) == _index()
    assert [q.name for q in tmp_path.iterdir()] == ["dataset.json"]  # no temp file left behind
    with pytest.raises(ValueError, match=r"'splits.train.num_samples' is 3 but its shards hold 2"):
        fmt.write_dataset_index(tmp_path, _index(splits={"train": {"num_samples": 3, "num_frames": 30,
                                                                    "activities": {"x": 3}}}))
    with pytest.raises(ValueError, match="'background_id' is 5, not an id of label_map"):
        fmt.validate_dataset_index(_index(background_id=5))
    with pytest.raises(ValueError, match="'shards' is missing"):
        fmt.validate_dataset_index({k: v for k, v in _index().items() if k != "shards"})


def test_overlay_reads_back_every_index_exactly_on_raw_frames():
    frames = np.random.default_rng(0).integers(0, 256, size=(8, 64, 64, 3), dtype=np.uint8)
    idx = [0, 1, 2, 5, 100, 1023, 1500, fmt.OVERLAY_MAX_INDEX]
    fmt.draw_frame_index(frames, idx)
    assert [fmt.read_frame_index(f) for f in frames] == idx
    with pytest.raises(ValueError, match="does not fit"):
        fmt.draw_frame_index(frames[:1], [fmt.OVERLAY_MAX_INDEX + 1])


def test_overlay_survives_h264_and_detects_missing_overlay():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(24, 64, 64, 3), dtype=np.uint8)  # worst case: noise around it
    fmt.draw_frame_index(frames)
    decoded = decode_all(encode_frames(frames, 15))
    assert [fmt.read_frame_index(f) for f in decoded] == list(range(24))
    # one flipped block breaks the parity bit
    damaged = decoded[3].copy()
    e = int(round(64 * 0.1))
    damaged[:e, :e] = 255 - damaged[:e, :e]
    with pytest.raises(ValueError, match="parity"):
        fmt.read_frame_index(damaged)
