"""What the checks before a run decide from the data and the launch: a split too small for the world size is
refused before anything is written, a split with fewer shards than readers is accepted (shared by samples), and
model.num_actions comes from the label map when the config leaves it open."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from vasot_dist.cli import ensure_synthetic_data
from vasot_dist.config import ConfigError, load_config
from vasot_dist.data import DatasetIndex
from vasot_dist.train.preflight import check_data, fill_from_data, num_actions_in

ROOT = Path(__file__).resolve().parents[2]
# 5 training videos of one activity with 3 steps, 2 test videos: features, written in about a second.
FIVE = ["data.name=synthetic", "data.modality=features", "model.encoder=mlp", "method.name=asot",
        "data.synthetic.num_activities=1", "data.synthetic.steps_per_activity=3",
        "data.synthetic.videos_per_activity=5", "data.synthetic.test_videos_per_activity=2",
        "data.synthetic.frames_min=12", "data.synthetic.frames_max=16", "data.synthetic.feature_dim=8",
        "eval.retrieval_ks=[5]"]  # AP@K within the 2 short test videos' frames


@pytest.fixture(scope="module")
def five_videos(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("five") / "syn"
    ensure_synthetic_data(load_config(None, [*FIVE, f"data.shards={out}"]))
    return out


@pytest.fixture
def vasot_log(caplog):
    """Records of the vasot_dist logger (which does not propagate once a run has set it up)."""
    logger = logging.getLogger("vasot_dist")
    old = logger.level, logger.propagate
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # each record once, whether or not a run has set the logger up before
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(old[0])
    logger.propagate = old[1]


def test_a_split_too_small_for_the_world_size_is_refused_before_the_run(five_videos, tmp_path):
    cfg = load_config(None, [*FIVE, f"data.shards={five_videos}", "data.batch_size=2", "data.num_workers=2",
                             f"train.output_dir={tmp_path / 'runs'}"])
    check_data(cfg, world_size=2)  # 5 videos in 5 shards, 4 readers; 1 batch of 2 per rank
    with pytest.raises(ConfigError) as err:
        check_data(cfg, world_size=4)
    assert str(err.value) == (f"split 'train' of data.shards='{five_videos}' has 5 videos, fewer than one batch of "
                              "data.batch_size=2 on each of 4 ranks (8 videos); lower data.batch_size or the number "
                              "of processes")
    # the same check in front of a launch: torchrun's WORLD_SIZE, nothing written
    proc = subprocess.run([sys.executable, str(ROOT / "launchers" / "train.py"), *cfg_overrides(cfg)],
                          env={"WORLD_SIZE": "4", "RANK": "0", "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {err.value}"
    assert not (tmp_path / "runs").exists()


def cfg_overrides(cfg) -> list[str]:
    d = cfg.data
    return ["--config", "demo", "method.name=asot", "data.modality=features", "model.encoder=mlp",
            f"data.name={d.name}", f"data.shards={d.shards}", f"data.batch_size={d.batch_size}",
            f"data.num_workers={d.num_workers}", f"train.output_dir={cfg.train.output_dir}"]


def test_pairs_need_an_even_batch_and_two_videos_of_an_activity(five_videos):
    with pytest.raises(ConfigError, match=r"method.name=vaot aligns pairs of videos of one activity, two videos per pair, so data.batch_size "
                       r"\(videos per rank\) must be even"):
        check_data(load_config(None, [*FIVE, f"data.shards={five_videos}", "method.name=vaot",
                                      "data.batch_size=3"]), world_size=1)


def test_num_actions_comes_from_the_label_map_when_the_config_leaves_it_open(five_videos, vasot_log):
    index = DatasetIndex.load(five_videos)
    assert index.background_id == 0 and len(index.label_map) == 4 and num_actions_in(index) == 3
    cfg = load_config(None, [*FIVE, f"data.shards={five_videos}"])
    assert cfg.model.num_actions is None
    filled = fill_from_data(cfg)
    assert filled.model.num_actions == 3
    assert any("model.num_actions = 3 (from the label map" in r.getMessage() and r.levelno == logging.INFO
               for r in vasot_log.records)

    vasot_log.clear()
    per_activity = fill_from_data(load_config(None, [*FIVE, f"data.shards={five_videos}", "model.num_actions=2"]))
    assert per_activity.model.num_actions == 2  # the config's choice stands (a per-activity K, key steps)
    assert [r.levelno for r in vasot_log.records if "model.num_actions = 2 (config" in r.getMessage()] == [
        logging.INFO]

    vasot_log.clear()
    too_many = fill_from_data(load_config(None, [*FIVE, f"data.shards={five_videos}", "model.num_actions=7"]))
    assert too_many.model.num_actions == 7
    (warning,) = [r for r in vasot_log.records if r.levelno == logging.WARNING]
    assert "model.num_actions = 7 (config) but the label map" in warning.getMessage()
    assert "4 prototypes can match no ground-truth action" in warning.getMessage()


def test_fewer_shards_than_readers_is_logged_not_refused(tmp_path, vasot_log):
    from vasot_pipelines.synthetic import generate_synthetic

    cfg = load_config(None, [*FIVE, f"data.shards={tmp_path / 'one'}", "data.num_workers=1"])
    generate_synthetic(tmp_path / "one", cfg.data.synthetic, modality="features", max_shard_samples=64)
    check_data(cfg, world_size=2)  # 1 shard, 2 readers
    fill_from_data(cfg, world_size=2)
    assert any("split 'train' has 1 shard(s) for 2 readers (world_size 2 x data.num_workers 1): every reader "
               "reads every shard" in r.getMessage() for r in vasot_log.records)
