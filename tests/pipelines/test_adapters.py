"""Every dataset adapter on a small fixture in the dataset's published layout."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pl_helpers import read_shards, smooth_frames, write_video
from vasot_pipelines.adapters import ADAPTERS
from vasot_pipelines.manifest import label_map_path, read_label_map, read_manifest
from vasot_pipelines.shard import main as shard_main


def manifest_of(out: Path):
    entries, fails = read_manifest(out)
    assert fails == []
    return {e.key: e for e in entries}, read_label_map(label_map_path(out))


def shard_manifest(manifest: Path, out: Path, *options: str) -> int:
    """``vasot-shard`` on an adapter's manifest and label map, into ``out`` (no progress bar); its exit code."""
    return shard_main(["--manifest", str(manifest), "--labels", str(label_map_path(manifest)), "--out", str(out),
                       "--no-progress", *options])


def gt_lines(path: Path, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(labels) + "\n")


def features_layout(root: Path, mapping: str, truth: dict[str, list[str]], features: dict[str, np.ndarray]) -> Path:
    """The ASOT-style folder the feature adapters read: ``mapping/mapping.txt`` (``mapping``), one
    ``groundTruth/<video>`` per ``truth`` item (a label per line), and ``features/<path>`` per ``features`` item
    (``.txt``: ``np.savetxt``, else ``np.save``)."""
    (root / "mapping").mkdir(parents=True)
    (root / "mapping" / "mapping.txt").write_text(mapping)
    for video, labels in truth.items():
        gt_lines(root / "groundTruth" / video, labels)
    for rel, array in features.items():
        path = root / "features" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".txt":
            np.savetxt(path, array, fmt="%.6f")
        else:
            np.save(path, array)
    return root


# ------------------------------------------------------------------------------- features layout
@pytest.fixture
def breakfast_root(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    truth = {"P03_cam01_P03_cereals": ["SIL"] * 3 + ["pour_cereals"] * 4 + ["pour_milk"] * 3,
             "P16_webcam01_P16_cereals": ["SIL"] * 2 + ["pour_milk"] * 6,
             "P03_cam02_P03_coffee": ["take_cup"] * 5}
    features = {f"{name.split('_')[-1]}/{name}.txt": rng.standard_normal((len(labs), 4)) for name, labs in truth.items()}
    return features_layout(tmp_path / "Breakfast", "0 SIL\n1 pour_cereals\n2 pour_milk\n3 take_cup\n", truth, features)


def test_breakfast_manifest_and_shards(tmp_path, breakfast_root):
    out = tmp_path / "m.jsonl"
    n = ADAPTERS["breakfast"].write_manifest(breakfast_root, out, test_persons="P03")
    assert n == 3
    entries, lm = manifest_of(out)
    assert lm.background == "SIL" and lm.ids["pour_milk"] == 2
    e = entries["cereals__P03_cam01_P03_cereals"]
    assert e.activity == "cereals" and e.split == "test" and e.fps == 15.0
    assert e.path.endswith("features/cereals/P03_cam01_P03_cereals.txt") and e.labels_file.endswith(
        "groundTruth/P03_cam01_P03_cereals")
    assert entries["cereals__P16_webcam01_P16_cereals"].split == "train"
    # end to end through the CLI adapter path
    rc = shard_main(["--adapter", "breakfast", "--root", str(breakfast_root), "--out", str(tmp_path / "bf"),
                     "--no-progress", "--verify"])
    assert rc == 0
    s = read_shards(tmp_path / "bf")
    assert s["cereals__P03_cam01_P03_cereals"]["json"]["labels"] == [0] * 3 + [1] * 4 + [2] * 3
    ref = np.loadtxt(breakfast_root / "features" / "coffee" / "P03_cam02_P03_coffee.txt").astype(np.float32)
    got = np.load(__import__("io").BytesIO(s["coffee__P03_cam02_P03_coffee"]["npy"]))
    assert np.array_equal(got, ref)
    index = json.loads((tmp_path / "bf" / "dataset.json").read_text())
    assert index["background_id"] == 0 and index["fps"] == 15 and index["modality"] == "features"


def test_yti_skips_idt_and_keeps_negative_background(tmp_path):
    root = features_layout(tmp_path / "YTI", "-1 background\n0 remove_wheel\n1 put_wheel\n",
                           {"changing_tire_0001": ["background", "remove_wheel", "put_wheel"],
                            "changing_tire_0001_idt": ["background"] * 3},
                           {"changing_tire/changing_tire_0001.txt": np.ones((3, 5))})
    out = tmp_path / "m.jsonl"
    assert ADAPTERS["yti"].write_manifest(root, out) == 1
    entries, lm = manifest_of(out)
    assert list(entries) == ["changing_tire__changing_tire_0001"] and lm.background_id == -1
    assert shard_manifest(out, tmp_path / "o", "--modality", "features") == 0
    assert read_shards(tmp_path / "o")["changing_tire__changing_tire_0001"]["json"]["labels"] == [-1, 0, 1]


@pytest.mark.parametrize("granularity", ["mid", "eval"])
def test_fifty_salads_granularities(tmp_path, granularity):
    root = features_layout(tmp_path / "FS", "0 action_start\n1 cut_tomato\n2 cut_cheese\n3 action_end\n",
                           {"rgb-01-1": ["action_start", "cut_tomato", "cut_cheese", "action_end"]},
                           {"rgb-01-1.npy": np.arange(8, dtype=np.float32).reshape(4, 2)})
    (root / "mapping" / "mappingeval.txt").write_text("0 action_start\n4 cut_tomato\n4 cut_cheese\n11 action_end\n")
    out = tmp_path / "m.jsonl"
    assert ADAPTERS[f"50salads_{granularity}"].write_manifest(root, out) == 1
    entries, lm = manifest_of(out)
    e = entries["salad__rgb-01-1"]
    assert e.activity == "salad" and e.path.endswith("features/rgb-01-1.npy") and lm.background is None
    assert shard_manifest(out, tmp_path / "o", "--modality", "features") == 0
    labels = read_shards(tmp_path / "o")["salad__rgb-01-1"]["json"]["labels"]
    assert labels == ([0, 1, 2, 3] if granularity == "mid" else [0, 4, 4, 11])


def test_desktop_assembly_and_missing_features_are_reported(tmp_path):
    root = features_layout(tmp_path / "DA", "0 Pick_up_chip\n1 Close_cover\n22 Background\n",
                           {"2020-04-19_14-03-25": ["Background", "Pick_up_chip", "Close_cover"],
                            "2020-04-20_10-00-00": ["Background"] * 2},  # its features are missing
                           {"2020-04-19_14-03-25.npy": np.zeros((3, 4), np.float32)})
    out = tmp_path / "m.jsonl"
    assert ADAPTERS["desktop_assembly"].write_manifest(root, out) == 2
    entries, lm = manifest_of(out)
    assert lm.background_id == 22 and {e.activity for e in entries.values()} == {"desktop_assembly"}
    rc = shard_manifest(out, tmp_path / "o", "--modality", "features")
    assert rc == 1
    fail = json.loads((tmp_path / "o" / "failures.jsonl").read_text())
    assert fail["key"] == "desktop_assembly__2020-04-20_10-00-00" and "no such file" in fail["reason"]


# ---------------------------------------------------------------------------------- video sets
def test_ikea_asm_segments_splits_and_background(tmp_path):
    root = tmp_path / "ikea"
    vids = {"Kallax_Shelf_Drawer/0001_black_table_02_01_2019_08_16_14_00": "training",
            "Lack_TV_Bench/0007_white_floor_08_04_2019_08_28_10_47": "testing"}
    db = {}
    for i, (vid, subset) in enumerate(vids.items()):
        write_video(root / vid / "dev3" / "images" / "scan_video.avi", smooth_frames(12, 32, 40, seed=i),
                    fps=24, codec="mpeg4")
        db[vid] = {"subset": subset, "annotation": [{"segment": [2, 5], "label": "pick up leg"},
                                                    {"segment": [6, 11], "label": "spin leg"}]}
    (root / "gt_segments.json").write_text(json.dumps({"version": "2.0.1", "database": db}))
    out = tmp_path / "m.jsonl"
    assert ADAPTERS["ikea_asm"].write_manifest(root, out) == 2
    entries, lm = manifest_of(out)
    assert lm.background == "NA" and lm.ids == {"NA": 0, "pick up leg": 1, "spin leg": 2}
    e = entries["Kallax_Shelf_Drawer__Kallax_Shelf_Drawer_0001_black_table_02_01_2019_08_16_14_00"]
    assert e.split == "train" and e.activity == "Kallax_Shelf_Drawer"
    assert e.segments == [[2, 5, "pick up leg"], [6, 11, "spin leg"]]
    rc = shard_manifest(out, tmp_path / "o", "--short-side", "32")
    assert rc == 0
    s = read_shards(tmp_path / "o")
    assert s[e.key]["json"]["labels"] == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    assert s[e.key]["json"]["width"] == 40 and s[e.key]["json"]["fps"] == 24
    assert json.loads((tmp_path / "o" / "dataset.json").read_text())["splits"]["test"]["num_samples"] == 1


def _frame_folder(folder: Path, n: int, seed: int = 0):
    from PIL import Image

    folder.mkdir(parents=True)
    for i, f in enumerate(smooth_frames(n, 32, 32, seed=seed), 1):
        Image.fromarray(f).save(folder / f"{i:06d}.jpg")


def test_pouring_lav_layout_with_npyrecords(tmp_path):
    root = tmp_path / "pouring"
    _frame_folder(root / "train" / "vid1", 6)
    _frame_folder(root / "val" / "vid2", 5, seed=1)
    (root / "npyrecords").mkdir()
    np.save(root / "npyrecords" / "pouring_train.npy", {"vid1": {"labels": np.array([0, 0, 1, 2, 3, 4])}})
    np.save(root / "npyrecords" / "pouring_val.npy", {"vid2": {"labels": np.array([0, 1, 2, 3, 4])}})
    out = tmp_path / "m.jsonl"
    assert ADAPTERS["pouring"].write_manifest(root, out) == 2
    entries, lm = manifest_of(out)
    assert lm.ids == {f"phase{i}": i for i in range(5)} and lm.background is None
    assert entries["pouring__vid2"].split == "test" and entries["pouring__vid1"].labels == [0, 0, 1, 2, 3, 4]
    # frame folders have no rate: the images become consecutive frames at --fps
    rc = shard_manifest(out, tmp_path / "o", "--short-side", "32", "--fps", "20", "--verify")
    assert rc == 0
    meta = read_shards(tmp_path / "o")["pouring__vid1"]["json"]
    assert meta["num_frames"] == 6 and meta["labels"] == [0, 0, 1, 2, 3, 4] and meta["fps"] == 20
    rc = shard_manifest(out, tmp_path / "p", "--short-side", "32")
    assert rc == 2  # without --fps the frame folders cannot be encoded: both listed as failures
    assert "needs an fps" in (tmp_path / "p" / "failures.jsonl").read_text()


def test_penn_action_per_action_folders_with_label_files(tmp_path):
    root = tmp_path / "penn"
    for act in ("baseball_pitch", "squats"):
        _frame_folder(root / act / "train" / "0001", 4)
        (root / act / "labels" / "train").mkdir(parents=True)
        np.save(root / act / "labels" / "train" / "0001.npy", np.array([0, 1, 1, 2]))
    out = tmp_path / "m.jsonl"
    assert ADAPTERS["penn_action"].write_manifest(root, out) == 2
    entries, lm = manifest_of(out)
    assert set(entries) == {"baseball_pitch__0001", "squats__0001"}
    assert entries["squats__0001"].labels == [0, 1, 1, 2] and len(lm.ids) == 3
    (root / "squats" / "labels" / "train" / "0001.npy").unlink()
    with pytest.raises(ValueError, match="no phase labels for 1 videos"):
        ADAPTERS["penn_action"].write_manifest(root, out)


def test_coin_seconds_to_frames(tmp_path):
    root = tmp_path / "coin"
    write_video(root / "videos" / "12" / "abc_XYZ-1.mp4", smooth_frames(20, 32, 32), fps=10)
    db = {"abc_XYZ-1": {"recipe_type": 12, "class": "AssembleBed", "subset": "training", "duration": 2.0,
                        "annotation": [{"id": "45", "segment": [0.25, 0.8], "label": "fix the frame"},
                                       {"id": "46", "segment": [1.0, 1.95], "label": "tighten screws"}]},
          "nofile": {"recipe_type": 3, "class": "MakeTea", "subset": "testing", "duration": 1.0,
                     "annotation": [{"id": "7", "segment": [0.0, 0.5], "label": "boil water"}]}}
    (root / "COIN.json").write_text(json.dumps({"database": db}))
    out = tmp_path / "m.jsonl"
    assert ADAPTERS["coin"].write_manifest(root, out) == 2
    entries, lm = manifest_of(out)
    assert lm.ids == {"background": 0, "fix the frame": 45, "tighten screws": 46, "boil water": 7}
    assert entries["MakeTea__nofile"].path.endswith("videos/3/nofile.mp4")
    rc = shard_manifest(out, tmp_path / "o", "--short-side", "32")
    assert rc == 1  # the missing video
    labels = read_shards(tmp_path / "o")["AssembleBed__abc_XYZ-1"]["json"]["labels"]
    expect = [0] * 20
    for s, e, lab in ((0.25, 0.8, 45), (1.0, 1.95, 46)):
        for i in range(math.floor(s * 10), math.floor(e * 10) + 1):
            expect[i] = lab
    assert labels == expect


def test_crosstask_tasks_annotations_and_val_split(tmp_path):
    rel = tmp_path / "ct" / "crosstask_release"
    (rel / "annotations").mkdir(parents=True)
    (rel / "tasks_primary.txt").write_text(
        "16815\nJack Up a Car\nhttps://x\n3\nbrake on,raise jack,lower jack\n\n"
        "23521\nMake Jello Shots\nhttps://y\n2\npour water,stir mixture\n\n")
    (rel / "annotations" / "16815_a_b-c.csv").write_text("1,0.0,0.5\n3,1.0,1.4\n")
    (rel / "annotations" / "23521_zz.csv").write_text("2,0.2,0.3\n")
    (rel / "annotations" / "99999_other.csv").write_text("1,0,1\n")  # related task: not primary
    (rel / "videos_val.csv").write_text("23521,zz,https://youtube\n")
    out = tmp_path / "m.jsonl"
    assert ADAPTERS["crosstask"].write_manifest(tmp_path / "ct", out) == 2
    entries, lm = manifest_of(out)
    assert lm.ids == {"background": 0, "16815:brake on": 1, "16815:raise jack": 2, "16815:lower jack": 3,
                      "23521:pour water": 4, "23521:stir mixture": 5}
    e = entries["Jack_Up_a_Car__a_b-c"]
    assert e.split == "train" and e.segments_sec == [[0.0, 0.5, "16815:brake on"], [1.0, 1.4, "16815:lower jack"]]
    assert entries["Make_Jello_Shots__zz"].split == "test"


def test_egoprocel_and_procel(tmp_path):
    root = tmp_path / "ego"
    a = root / "annotations" / "CMU-MMAC" / "Brownie" / "S07_Brownie_Video"
    a.mkdir(parents=True)
    (a / "S07_Brownie_7150991-1431.csv").write_text("0.1,0.3,1 open box\n0.5,0.9,2 stir\n")
    (root / "annotations" / "EGTEA_Gaze+" / "Pizza").mkdir(parents=True)
    (root / "annotations" / "EGTEA_Gaze+" / "Pizza" / "OP01-R03-Pizza.csv").write_text("0.0,0.2,3. add cheese\n")
    write_video(root / "videos" / "anywhere" / "S07_Brownie_7150991-1431.mp4", smooth_frames(10, 32, 32), fps=10)
    out = tmp_path / "m.jsonl"
    assert ADAPTERS["egoprocel"].write_manifest(root, out) == 2
    entries, lm = manifest_of(out)
    assert lm.ids == {"background": 0, "Brownie:1": 1, "Brownie:2": 2, "Pizza:3": 3}
    e = entries["Brownie__S07_Brownie_7150991-1431"]
    assert e.path.endswith("anywhere/S07_Brownie_7150991-1431.mp4")
    assert e.segments_sec == [[0.1, 0.3, "Brownie:1"], [0.5, 0.9, "Brownie:2"]]
    assert shard_manifest(out, tmp_path / "o", "--short-side", "32") == 1  # the Pizza video is missing
    assert read_shards(tmp_path / "o")[e.key]["json"]["labels"] == [0, 1, 1, 1, 0, 2, 2, 2, 2, 2]

    proc = tmp_path / "procel"
    (proc / "annotations" / "make_coffee").mkdir(parents=True)
    (proc / "annotations" / "make_coffee" / "make_coffee_0001.csv").write_text("1.0,2.0,4 grind beans\n")
    out2 = tmp_path / "p.jsonl"
    assert ADAPTERS["procel"].write_manifest(proc, out2) == 1
    entries, lm = manifest_of(out2)
    e = entries["make_coffee__make_coffee_0001"]
    assert e.path.endswith("videos/make_coffee/make_coffee_0001.mp4") and lm.ids["make_coffee:4"] == 1


def test_every_registered_adapter_is_tested_and_listed(capsys):
    tested = {"breakfast", "yti", "50salads_mid", "50salads_eval", "desktop_assembly", "ikea_asm", "pouring",
              "penn_action", "coin", "crosstask", "egoprocel", "procel", "features"}
    assert set(ADAPTERS) == tested
    assert shard_main(["--list-adapters"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ADAPTERS)


def test_generic_features_layout_uses_feature_subfolder_as_activity(tmp_path, monkeypatch):
    root = tmp_path / "x"
    (root / "mapping").mkdir(parents=True)
    (root / "mapping" / "mapping.txt").write_text("0 a\n1 b\n")
    gt_lines(root / "groundTruth" / "vid1", ["a", "b"])
    (root / "features" / "taskA").mkdir(parents=True)
    np.save(root / "features" / "taskA" / "vid1.npy", np.zeros((2, 3), np.float32))
    out = tmp_path / "m.jsonl"
    monkeypatch.chdir(tmp_path)  # a relative --root must work although the manifest lives in --out
    rc = shard_main(["--layout", "features", "--root", "x", "--out", "o", "--no-progress"])
    assert rc == 0
    assert list(read_shards(tmp_path / "o")) == ["taskA__vid1"]
    assert ADAPTERS["features"].write_manifest(root, out) == 1
