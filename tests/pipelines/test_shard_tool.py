"""vasot-shard end to end: manifest -> shards -> read back with webdataset + decord."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
from pathlib import Path

import av
import decord
import numpy as np
import pytest
from pl_helpers import REAL_VIDEOS, decode_all, read_shards, set_display_matrix, smooth_frames, write_video
from vasot_pipelines.manifest import read_label_map
from vasot_pipelines.shard import EXIT_FATAL, EXIT_INTERRUPTED, main, verify_dataset
from vasot_pipelines.video import encode_frames

from vasot_dist.data import format as fmt


def write_jsonl(path: Path, lines) -> Path:
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return path


@pytest.fixture
def labels_file(tmp_path) -> Path:
    p = tmp_path / "mapping.txt"
    p.write_text("0 SIL\n1 open\n2 pour\n3 close\n")
    return p


def test_label_map_formats(tmp_path, labels_file):
    lm = read_label_map(labels_file)
    assert lm.ids == {"SIL": 0, "open": 1, "pour": 2, "close": 3} and lm.background_id == 0
    j = tmp_path / "l.json"
    j.write_text(json.dumps({"label_map": {"x": 3, "NA": 7}, "background": "NA"}))
    assert read_label_map(j).background_id == 7
    j.write_text(json.dumps({"a": 1, "b": 2}))
    assert read_label_map(j).background is None
    with pytest.raises(ValueError, match="background label 'zz'"):
        read_label_map(j, background="zz")
    bad = tmp_path / "bad.txt"
    bad.write_text("0 a\nx b\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        read_label_map(bad)


def test_round_trip_resamples_frames_and_labels_exactly(tmp_path, labels_file):
    # source: 30 fps, each frame carries its own index in the overlay
    n = 31
    frames = smooth_frames(n, 64, 96)
    fmt.draw_frame_index(frames)
    src = write_video(tmp_path / "src" / "clip one.mp4", frames, fps=30)
    labels = ["SIL"] * 5 + ["open"] * 10 + ["pour"] * 10 + ["close"] * 6
    segs = [[3, 9, "open"], [20, 30, "close"]]  # frames 0-2 and 10-19: background
    m = write_jsonl(tmp_path / "m.jsonl", [
        {"path": str(src), "activity": "pour.milk", "split": "train", "labels": labels},
        {"path": str(src), "activity": "pour.milk", "split": "test", "id": "seg", "segments": segs},
    ])
    out = tmp_path / "out"
    rc = main(["--manifest", str(m), "--labels", str(labels_file), "--out", str(out), "--fps", "15",
               "--short-side", "64", "--no-progress", "--verify"])
    assert rc == 0
    assert (out / "failures.jsonl").read_text() == ""
    samples = read_shards(out)
    assert set(samples) == {"pour_milk__clip_one", "pour_milk__seg"}
    ids = {"SIL": 0, "open": 1, "pour": 2, "close": 3}
    # nearest source frame of output frame j (time j/15 s) at 30 fps is 2j; 31 frames -> 16 outputs
    src_of = [2 * j for j in range(16)]
    a = samples["pour_milk__clip_one"]
    meta = a["json"]
    assert meta["num_frames"] == 16 and meta["fps"] == 15 and (meta["height"], meta["width"]) == (64, 96)
    assert meta["labels"] == [ids[labels[i]] for i in src_of]
    assert meta["source"] == str(src) and meta["progress"] is None and meta["dataset"] == "out"
    got = decode_all(a["mp4"])
    assert got.shape == (16, 64, 96, 3)
    assert [fmt.read_frame_index(f) for f in got] == src_of  # the right source frames, in order
    err = np.abs(got[5].astype(int) - frames[10]).mean()  # two lossy encodes, same size
    assert err < 6, err
    seg_labels = [0] * 3 + [1] * 7 + [0] * 10 + [3] * 11
    assert samples["pour_milk__seg"]["json"]["labels"] == [seg_labels[i] for i in src_of]
    index = json.loads((out / "dataset.json").read_text())
    assert index["label_map"] == ids and index["background_id"] == 0 and index["fps"] == 15
    assert index["splits"]["test"] == {"num_samples": 1, "num_frames": 16, "activities": {"pour.milk": 1}}


def test_keep_source_rate_by_default_and_label_tolerance(tmp_path, labels_file):
    src = write_video(tmp_path / "v.mp4", smooth_frames(12, 32, 32), fps=25)
    m = write_jsonl(tmp_path / "m.jsonl", [
        {"path": str(src), "activity": "a", "split": "train", "id": "short2", "labels": ["open"] * 9 + ["pour"]},
        {"path": str(src), "activity": "a", "split": "train", "id": "long2", "labels": ["open"] * 14},
        {"path": str(src), "activity": "a", "split": "train", "id": "short3", "labels": ["open"] * 9},
    ])
    out = tmp_path / "out"
    assert main(["--manifest", str(m), "--labels", str(labels_file), "--out", str(out), "--short-side", "32",
                 "--no-progress"]) == 1
    s = read_shards(out)
    assert s["a__short2"]["json"]["labels"] == [1] * 9 + [2] * 3  # padded with the last label
    assert s["a__long2"]["json"]["labels"] == [1] * 12 and s["a__long2"]["json"]["fps"] == 25
    assert json.loads((out / "dataset.json").read_text())["fps"] == 25  # the sources' common rate
    fails = [json.loads(ln) for ln in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["key"] for f in fails] == ["a__short3"] and "more than 2 apart" in fails[0]["reason"]


def test_fuzz_inputs_are_listed_and_the_rest_is_sharded(tmp_path, labels_file):
    good = write_video(tmp_path / "good.mp4", smooth_frames(10, 32, 32), fps=10)
    data = good.read_bytes()
    (tmp_path / "trunc.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    (tmp_path / "empty.mp4").write_bytes(b"")
    write_video(tmp_path / "noframes.mp4", np.zeros((0, 32, 32, 3), np.uint8), fps=10)
    ok = {"activity": "a", "split": "train", "labels": ["open"] * 10}
    lines = [
        {**ok, "path": str(good)},
        {**ok, "path": str(tmp_path / "trunc.mp4")},
        {**ok, "path": str(tmp_path / "random.mp4")},
        "{not json",
        {**ok, "path": str(tmp_path / "missing.mp4")},
        {**ok, "path": str(tmp_path / "empty.mp4")},
        {**ok, "path": str(tmp_path / "noframes.mp4")},
        {**ok, "path": str(good), "id": "mismatch", "labels": ["open"] * 20},
        {**ok, "path": str(good), "id": "badname", "labels": ["open"] * 9 + ["dance"]},
        {"path": str(good), "activity": "a", "split": "train"},  # no labels at all
        {**ok, "path": str(good)},  # duplicate key
        {**ok, "path": str(good), "id": "good2"},
    ]
    m = write_jsonl(tmp_path / "m.jsonl", lines)
    out = tmp_path / "out"
    rc = main(["--manifest", str(m), "--labels", str(labels_file), "--out", str(out), "--short-side", "32",
               "--no-progress", "--verify"])
    fails = [json.loads(ln) for ln in (out / "failures.jsonl").read_text().splitlines()]
    assert rc == len(fails) == 10
    by_path = {Path(f["path"]).name: f["reason"] for f in fails}
    assert "FileNotFoundError" in by_path["missing.mp4"]
    assert "more than 2 apart" in [f["reason"] for f in fails if f.get("key") == "a__mismatch"][0]
    assert "'dance' is not in the label map" in [f["reason"] for f in fails if f.get("key") == "a__badname"][0]
    assert re.search("no video stream|no decodable frames", by_path["noframes.mp4"])
    assert {"trunc.mp4", "random.mp4", "empty.mp4", "m.jsonl:4", "m.jsonl:10"} <= set(by_path)
    assert any("duplicate key 'a__good'" in f["reason"] for f in fails)
    assert set(read_shards(out)) == {"a__good", "a__good2"}
    assert verify_dataset(out) == []


def test_verify_finds_a_corrupted_sample(tmp_path, labels_file):
    src = write_video(tmp_path / "v.mp4", smooth_frames(8, 32, 32), fps=8)
    m = write_jsonl(tmp_path / "m.jsonl", [{"path": str(src), "activity": "a", "split": "train",
                                            "labels": ["open"] * 8}])
    out = tmp_path / "out"
    assert main(["--manifest", str(m), "--labels", str(labels_file), "--out", str(out), "--no-progress",
                 "--short-side", "32"]) == 0
    # rewrite the shard with a json that claims more frames than the mp4 has
    import tarfile

    shard = out / "train-000000.tar"
    with tarfile.open(shard) as t:
        members = {mm.name: t.extractfile(mm).read() for mm in t}
    meta = json.loads(members["a__v.json"])
    meta["num_frames"], meta["labels"] = 9, meta["labels"] + [1]
    with tarfile.open(shard, "w") as t:
        for name, data in (("a__v.json", json.dumps(meta).encode()), ("a__v.mp4", members["a__v.mp4"])):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    fails = verify_dataset(out)
    assert len(fails) == 1 and "decord reads 8 frames, json says 9" in fails[0]["reason"]


def _small_videos(tmp_path: Path, n: int) -> Path:
    lines = []
    for i in range(n):
        src = write_video(tmp_path / "src" / f"v{i}.mp4", smooth_frames(6 + i, 32, 32, seed=i), fps=10)
        lines.append({"path": str(src), "activity": f"act{i % 2}", "split": "train" if i % 3 else "test",
                      "labels": ["open"] * (6 + i)})
    return write_jsonl(tmp_path / "m.jsonl", lines)


def test_resume_after_interruption_gives_the_same_dataset(tmp_path, labels_file):
    m = _small_videos(tmp_path, 7)
    common = ["--manifest", str(m), "--labels", str(labels_file), "--short-side", "32", "--no-progress", "--name", "d",
              "--max-shard-samples", "2"]
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert main([*common, "--out", str(ref)]) == 0
    # "kill" after the first completed shard: a temporary shard (.<name>.tar.<hex>.tmp) is left half written
    assert main([*common, "--out", str(out), "--stop-after-shards", "1"]) == EXIT_INTERRUPTED
    assert not (out / "dataset.json").exists()
    assert len(list(out.glob("*.tar"))) == 1 and len(list(out.glob(".*.tar.*.tmp"))) >= 1
    (out / "train-000007.tar").write_bytes(b"stale shard of an older run")
    assert main([*common, "--out", str(out)]) == 0
    assert (out / "dataset.json").read_text() == (ref / "dataset.json").read_text()
    assert sorted(p.name for p in out.glob("*.tar*")) == sorted(p.name for p in ref.glob("*.tar*"))
    for p in ref.glob("*.tar"):
        assert p.read_bytes() == (out / p.name).read_bytes()
    assert len(read_shards(out)) == 7  # read_shards asserts no duplicate keys
    # a completed shard that disappeared is redone; the others are kept
    index = json.loads((ref / "dataset.json").read_text())
    last = out / index["shards"][-1]["path"]
    last.unlink()
    assert main([*common, "--out", str(out)]) == 0
    assert (out / "dataset.json").read_text() == (ref / "dataset.json").read_text()
    assert last.read_bytes() == (ref / last.name).read_bytes()
    # other settings: refuse instead of mixing two datasets
    assert main([*common, "--out", str(out), "--fps", "5"]) == EXIT_FATAL


def test_shard_caps_by_count_and_bytes(tmp_path, labels_file):
    m = _small_videos(tmp_path, 5)
    out = tmp_path / "out"
    assert main(["--manifest", str(m), "--labels", str(labels_file), "--out", str(out), "--short-side", "32",
                 "--no-progress", "--max-shard-bytes", "1"]) == 0  # one sample per shard
    index = json.loads((out / "dataset.json").read_text())
    assert [s["num_samples"] for s in index["shards"]] == [1] * 5
    sizes = [len(s["mp4"]) for s in read_shards(out).values()]
    out2 = tmp_path / "out2"
    cap = 2 * max(sizes) + 6 * 512 + 1024 + 4000
    assert main(["--manifest", str(m), "--labels", str(labels_file), "--out", str(out2), "--short-side", "32",
                 "--no-progress", "--max-shard-bytes", str(cap)]) == 0
    for s in json.loads((out2 / "dataset.json").read_text())["shards"]:
        assert (out2 / s["path"]).stat().st_size <= cap
    assert len(json.loads((out2 / "dataset.json").read_text())["shards"]) < 5


def test_features_round_trip_is_bit_exact_and_detects_transposed_txt(tmp_path, labels_file):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 6)).astype(np.float32)
    b = rng.standard_normal((15, 6)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.savetxt(tmp_path / "b.txt", b.T, fmt="%.9g")  # stored (D, N)
    gt = tmp_path / "gt_b"
    gt.write_text("\n".join(["SIL"] * 5 + ["pour"] * 10) + "\n")
    m = write_jsonl(tmp_path / "m.jsonl", [
        {"path": "a.npy", "activity": "x", "split": "train", "labels": [1] * 20},
        {"path": "b.txt", "activity": "x", "split": "train", "labels_file": "gt_b", "fps": 15},
        {"path": "a.npy", "activity": "x", "split": "train", "id": "a2", "labels": [1] * 30},
    ])
    out = tmp_path / "out"
    assert main(["--manifest", str(m), "--labels", str(labels_file), "--out", str(out), "--modality", "features",
                 "--no-progress", "--verify"]) == 1
    s = read_shards(out)
    xa = np.load(io.BytesIO(s["x__a"]["npy"]))
    xb = np.load(io.BytesIO(s["x__b"]["npy"]))
    assert xa.dtype == np.float32 and np.array_equal(xa, a)
    assert np.array_equal(xb, b)  # transposed back to (N, D), values bit-exact
    assert s["x__b"]["json"]["labels"] == [0] * 5 + [2] * 10 and s["x__b"]["json"]["feature_dim"] == 6
    assert s["x__b"]["json"]["fps"] == 15
    index = json.loads((out / "dataset.json").read_text())
    assert index["modality"] == "features" and index["short_side"] is None
    assert index["fps"] is None  # samples disagree (unknown vs 15): no dataset-wide rate


def test_workers_and_real_clips(tmp_path):
    if not REAL_VIDEOS.is_dir():
        pytest.skip(f"real test clips not found at {REAL_VIDEOS} (a checkout without ../shared/data)")
    clips = sorted(p for p in REAL_VIDEOS.iterdir() if p.suffix in (".mp4", ".avi"))
    assert clips
    lines, expected = [], {}
    for p in clips:
        vr = decord.VideoReader(str(p), num_threads=1)
        n, fps = len(vr), vr.get_avg_fps()
        lines.append({"path": str(p), "activity": "real", "split": "test",
                      "segments": [[0, n // 2, "a"], [n // 2 + 1, n - 1, "b"]]})
        # independent count: output frames j with j / 10 s before the middle of the last source frame
        m = math.ceil((n - 0.5) * 10 / fps - 1e-9)
        src = [min(n - 1, math.floor(j * fps / 10 + 0.5)) for j in range(m)]
        # shown as a player shows it: arm_wrestling.mp4 has non-square pixels (SAR 64:51, 340x256 -> 5:3)
        with av.open(str(p)) as c:
            sar = c.streams.video[0].sample_aspect_ratio or 1
        h0, w0 = vr[0].shape[:2]
        expected["real__" + p.stem] = (m, [1 if i <= n // 2 else 2 for i in src], (h0, w0 * sar))
    manifest = write_jsonl(tmp_path / "m.jsonl", lines)
    labels = tmp_path / "l.json"
    labels.write_text(json.dumps({"bg": 0, "a": 1, "b": 2}))
    out = tmp_path / "out"
    rc = main(["--manifest", str(manifest), "--labels", str(labels), "--out", str(out), "--fps", "10",
               "--short-side", "64", "--workers", "2", "--verify", "--no-progress", "--max-shard-samples", "2"])
    assert rc == 0, (out / "failures.jsonl").read_text()
    samples = read_shards(out)
    assert set(samples) == set(expected)
    for key, (m, labs, (h0, w0)) in expected.items():
        meta = samples[key]["json"]
        assert meta["num_frames"] == m and meta["labels"] == labs
        assert min(meta["height"], meta["width"]) == 64
        assert abs(meta["width"] / meta["height"] - w0 / h0) < 0.05
        vr = decord.VideoReader(io.BytesIO(samples[key]["mp4"]), num_threads=1)
        assert len(vr) == m and max(np.diff(vr.get_key_indices(), append=m)) <= 8  # short GOP


def test_cli_errors_are_fatal_not_failure_counts(tmp_path, labels_file, capsys):
    assert main(["--out", str(tmp_path / "o")]) == EXIT_FATAL
    assert "--manifest and --labels" in capsys.readouterr().err
    assert main(["--manifest", str(tmp_path / "nope.jsonl"), "--labels", str(labels_file),
                 "--out", str(tmp_path / "o")]) == EXIT_FATAL
    with pytest.raises(SystemExit) as e:
        main(["--bogus"])
    assert e.value.code == EXIT_FATAL


def test_encoded_synthetic_clip_copied_through_shard_tool_keeps_size(tmp_path):
    # a clip already at the short side and rate is re-encoded once, same geometry and count
    frames = smooth_frames(9, 32, 48)
    p = tmp_path / "c.mp4"
    p.write_bytes(encode_frames(frames, 12))
    lm = tmp_path / "l.json"
    lm.write_text(json.dumps({"x": 0}))
    m = write_jsonl(tmp_path / "m.jsonl", [{"path": str(p), "activity": "a", "split": "s1", "labels": [0] * 9}])
    out = tmp_path / "o"
    assert main(["--manifest", str(m), "--labels", str(lm), "--out", str(out), "--short-side", "32",
                 "--no-progress"]) == 0
    meta = read_shards(out)["a__c"]["json"]
    assert (meta["num_frames"], meta["height"], meta["width"], meta["fps"]) == (9, 32, 48, 12)
    shutil.rmtree(out)


def test_writer_refuses_foreign_shards_duplicates_and_wrong_payloads(tmp_path):
    from vasot_pipelines.writer import DatasetWriter, Sample

    (tmp_path / "train-000000.tar").write_bytes(b"someone else's shard")
    kw = dict(name="n", modality="features", label_map={"a": 0}, background_id=None, fps=None, short_side=None)
    with pytest.raises(ValueError, match="no progress.json"):
        DatasetWriter(tmp_path, **kw)
    assert (tmp_path / "train-000000.tar").exists()
    w = DatasetWriter(tmp_path / "new", **kw)
    meta = fmt.sample_meta(key="a__v", dataset="n", activity="a", split="train", labels=[0, 0], fps=None,
                           source="s", feature_dim=3)
    w.add(Sample(meta, fmt.features_to_bytes(np.zeros((2, 3))), "npy"))
    with pytest.raises(ValueError, match="duplicate sample key"):
        w.add(Sample(meta, fmt.features_to_bytes(np.zeros((2, 3))), "npy"))
    with pytest.raises(ValueError, match="does not fit modality"):
        w.add(Sample({**meta, "key": "a__w"}, b"", "mp4"))
    index = json.loads(w.finish().read_text())
    assert index["shards"] == [{"path": "train-000000.tar", "split": "train", "num_samples": 1, "num_frames": 2}]


def test_phone_video_is_sharded_upright_and_verify_compares_with_the_source_as_shown(tmp_path, labels_file):
    # a phone held upright records landscape pixels and "rotation -90": the display matrix (0, 1, -1, 0)
    tall, square = smooth_frames(4, 32, 48, seed=1), smooth_frames(4, 32, 32, seed=2)
    for name, frames in (("tall", tall), ("square", square)):
        set_display_matrix(write_video(tmp_path / f"{name}.mp4", frames, fps=10), (0, 1, -1, 0))
    m = write_jsonl(tmp_path / "m.jsonl", [{"path": f"{n}.mp4", "activity": "a", "split": "train",
                                            "labels": ["open"] * 4} for n in ("tall", "square")])
    out = tmp_path / "out"
    assert main(["--manifest", str(m), "--labels", str(labels_file), "--out", str(out), "--short-side", "32",
                 "--no-progress", "--verify"]) == 0
    samples = read_shards(out)
    for key, frames in (("a__tall", tall), ("a__square", square)):
        meta = samples[key]["json"]
        upright = np.rot90(frames[0], k=-1)  # what a player shows: turned a quarter clockwise
        assert (meta["height"], meta["width"]) == upright.shape[:2]
        assert np.abs(decode_all(samples[key]["mp4"])[0].astype(int) - upright).mean() < 6
    # the sources re-encoded without their rotation: the shards no longer show what a player shows
    for name, frames in (("tall", tall), ("square", square)):
        write_video(tmp_path / f"{name}.mp4", frames, fps=10)
    reasons = {f["key"]: f["reason"] for f in verify_dataset(out)}
    assert "frames are 48x32, but" in reasons["a__tall"] and "as a player shows it is 32x48" in reasons["a__tall"]
    assert re.search(r"frame 0 differs from .*square.mp4 as a player shows it: mean absolute difference",
                     reasons["a__square"])


def test_segments_in_seconds_past_the_end_of_the_video_are_rejected(tmp_path, labels_file):
    src = write_video(tmp_path / "clip.mp4", smooth_frames(20, 32, 32), fps=10)  # 2.0 s
    ok = {"path": str(src), "activity": "a", "split": "train"}
    m = write_jsonl(tmp_path / "m.jsonl", [
        {**ok, "id": "rounded", "segments_sec": [[0.0, 1.0, "open"], [1.0, 2.9, "pour"]]},  # 0.9 s over: clipped
        {**ok, "id": "longer", "segments_sec": [[0.0, 1.0, "open"], [1.0, 5.5, "pour"]]},
        {**ok, "id": "later", "segments_sec": [[4.0, 5.0, "open"]]},
    ])
    out = tmp_path / "out"
    assert main(["--manifest", str(m), "--labels", str(labels_file), "--out", str(out), "--short-side", "32",
                 "--no-progress"]) == 2
    assert read_shards(out)["a__rounded"]["json"]["labels"] == [1] * 10 + [2] * 10
    fails = {f["key"]: f for f in map(json.loads, (out / "failures.jsonl").read_text().splitlines())}
    assert set(fails) == {"a__longer", "a__later"} and fails["a__longer"]["path"] == str(src)
    assert fails["a__longer"]["reason"] == (
        "segments_sec entry [1.0, 5.5, 'pour'] (frames 10..55 at 10 fps) ends after the last frame 19 of "
        "clip.mp4 (2.00 s) (more than 1 s)")
    assert fails["a__later"]["reason"].startswith("segments_sec entry [4.0, 5.0, 'open'] (frames 40..50 at 10 fps) "
                                                  "starts after the last frame 19 of clip.mp4")


def test_empty_manifest_is_a_fatal_error(tmp_path, labels_file, capsys):
    m = tmp_path / "m.jsonl"
    m.write_text("\n  \n")
    assert main(["--manifest", str(m), "--labels", str(labels_file), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == EXIT_FATAL
    assert f"vasot-shard: error: manifest {m} lists no videos" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
