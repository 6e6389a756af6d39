"""Real data is never replaced by generated data, and what needs the data is checked before anything is
written: the README's "Adding a dataset" config with a mistyped path stops with the key and the path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vasot_dist.cli import ensure_synthetic_data, train_main
from vasot_dist.config import ConfigError, load_config
from vasot_dist.data import DatasetIndex
from vasot_dist.train.preflight import check_data, splits_read

# A few tiny feature videos: enough for dataset.json and its splits, written in about a second.
TINY_FEATURES = ["data.modality=features", "model.encoder=mlp", "data.synthetic.videos_per_activity=2",
                 "data.synthetic.test_videos_per_activity=1", "data.synthetic.frames_min=8",
                 "data.synthetic.frames_max=12", "data.synthetic.feature_dim=8"]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_adding_a_dataset_with_a_mistyped_path_stops_before_writing_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "mine").mkdir(parents=True)  # the shards are here, the config says "mnie"
    (tmp_path / "mine.yaml").write_text("extends: alignment_base.yaml\ndata:\n  shards: data/mnie\n")
    before = _files(tmp_path)
    with pytest.raises(SystemExit) as stop:
        train_main(["--config", "mine.yaml"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "data.shards='data/mnie' does not exist" in err and "data.name=''" in err
    assert _files(tmp_path) == before  # no generated shards, no runs/ folder, no lock file


def test_synthetic_shards_are_written_only_when_the_config_names_them(tmp_path):
    real = load_config(None, [f"data.shards={tmp_path / 'real'}", *TINY_FEATURES])
    ensure_synthetic_data(real)
    assert not (tmp_path / "real").exists()
    with pytest.raises(ConfigError, match=f"data.shards='{tmp_path / 'real'}' does not exist"):
        check_data(real)

    syn = load_config(None, ["data.name=synthetic", f"data.shards={tmp_path / 'syn'}", *TINY_FEATURES])
    ensure_synthetic_data(syn)
    index = DatasetIndex.load(tmp_path / "syn")
    assert index.modality == "features" and index.num_samples("train") == 4 and index.num_samples("test") == 2
    check_data(syn)
    written = (tmp_path / "syn" / "dataset.json").stat().st_mtime_ns
    ensure_synthetic_data(syn)  # present: kept as it is
    assert (tmp_path / "syn" / "dataset.json").stat().st_mtime_ns == written


@pytest.fixture(scope="module")
def feature_shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("features") / "syn"
    ensure_synthetic_data(load_config(None, ["data.name=synthetic", f"data.shards={out}", *TINY_FEATURES]))
    return out


def test_a_modality_the_dataset_does_not_hold_stops_the_run_before_its_directory(feature_shards, tmp_path):
    cfg = load_config(None, [f"data.shards={feature_shards}", "data.modality=video", "model.encoder=resnet50",
                             f"train.output_dir={tmp_path / 'runs'}", "train.run_id=r"])
    with pytest.raises(ConfigError) as err:
        from vasot_dist.train.loop import run

        run(cfg)
    assert str(err.value) == (f"data.modality='video' but {feature_shards / 'dataset.json'} holds 'features' "
                              "shards; set data.modality=features")
    assert not (tmp_path / "runs").exists()


def test_an_encoder_that_cannot_read_the_modality_is_named(feature_shards):
    cfg = load_config(None, [f"data.shards={feature_shards}", "data.modality=features", "model.encoder=resnet50"])
    with pytest.raises(ConfigError, match="^data.modality='features' needs model.encoder='mlp', got 'resnet50'$"):
        check_data(cfg)


def test_a_split_the_dataset_lacks_is_named(feature_shards):
    cfg = load_config(None, [f"data.shards={feature_shards}", *TINY_FEATURES[:2], "data.eval_split=val"])
    with pytest.raises(ConfigError, match=r"no split 'val'; available: \['test', 'train'\]"):
        check_data(cfg)
    raw = json.loads((feature_shards / "dataset.json").read_text())
    assert set(raw["splits"]) == {"train", "test"}


def test_the_splits_a_run_reads():
    lav = load_config(None, ["eval.protocol=lav"])
    assert splits_read(lav, training=True) == ["train", "test"] and splits_read(lav, training=False) == ["test"]
    tcc = load_config(None, ["eval.protocol=tcc"])
    assert splits_read(tcc, training=False) == ["train", "test"]
