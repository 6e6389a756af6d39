from __future__ import annotations

import json

import pytest

from vasot_dist.data import DatasetIndex, resolve_shards


def _raw(video_ds) -> dict:
    return json.loads((video_ds.root / "dataset.json").read_text())


def test_load_folder_or_file(video_ds):
    for path in (video_ds.root, video_ds.root / "dataset.json", str(video_ds.root)):
        idx = DatasetIndex.load(path)
        assert idx.modality == "video" and idx.num_classes == 4
        assert idx.urls("train") == [str(p) for p in video_ds.shards["train"]]
        assert idx.num_samples("train") == 16 and idx.num_samples("test") == 3
        assert idx.activities("train") == {"pour": 8, "stir": 8}


def test_unknown_split_lists_available(video_ds):
    with pytest.raises(ValueError, match=r"no split 'val'.*\['test', 'train'\]"):
        DatasetIndex.load(video_ds.root).urls("val")


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.pop("label_map"), "'label_map' is missing"),
    (lambda d: d.update(format_version=2), "'format_version' is 2"),
    (lambda d: d.update(modality="audio"), "'modality' is 'audio'"),
    (lambda d: d["shards"][0].pop("num_samples"), r"'shards\[0\].num_samples' is missing"),
    (lambda d: d["shards"][1].update(num_samples=-1), r"'shards\[1\].num_samples' must be"),
    (lambda d: d["splits"]["train"].update(num_samples=15), "'splits.train.num_samples' is 15 but its shards hold 16"),
    (lambda d: d["splits"]["train"]["activities"].update(pour=1), "'splits.train.activities' counts add up"),
    (lambda d: d["splits"].pop("test"), r"no entry for the split\(s\) \['test'\]"),
    (lambda d: d.update(background_id="bg"), "'background_id' must be an int or null"),
])
def test_invalid_index_names_file_and_key(video_ds, tmp_path, mutate, match):
    raw = _raw(video_ds)
    mutate(raw)
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=match) as info:
        DatasetIndex.load(tmp_path)
    assert str(path) in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        DatasetIndex.load(tmp_path / "nope")
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        DatasetIndex.load(tmp_path)


def test_resolve_shards_forms(video_ds, tmp_path):
    src = resolve_shards(str(video_ds.root), "train")
    assert src.num_samples == 16 and len(src.urls) == 8 and src.modality == "video"
    pattern = str(video_ds.root / "train-{000000..000003}.tar")
    src = resolve_shards(pattern, "train")
    assert src.urls == [str(p) for p in video_ds.shards["train"][:4]] and src.num_samples is None
    src = resolve_shards("pipe:cat " + str(video_ds.root / "train-{000000..000001}.tar"), "train")
    assert src.urls[1].startswith("pipe:cat ") and src.urls[1].endswith("train-000001.tar")
    with pytest.raises(ValueError, match="does not exist"):
        resolve_shards(str(tmp_path / "missing"), "train")
    with pytest.raises(ValueError, match="without dataset.json"):
        resolve_shards(str(tmp_path), "train")
    with pytest.raises(ValueError, match="missing, e.g."):
        resolve_shards(str(video_ds.root / "train-{000006..000009}.tar"), "train")
