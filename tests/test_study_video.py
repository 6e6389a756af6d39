"""benchmarks/study_synthetic.py's video mode builds the configs it states (config only: no data, no training)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("study_synthetic", ROOT / "benchmarks" / "study_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _value(overrides: list[str], key: str) -> str:
    """The last value ``overrides`` gives ``key`` (a later override wins, as in load_config)."""
    values = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == key]
    assert values, f"{key} not in {overrides}"
    return values[-1]


@pytest.mark.parametrize("table,preset,label,activity", [
    ("alignment", "ikea_like", "vaot", -1),
    ("segmentation", "breakfast_like", "asot", 0),
])
def test_video_mode_config_applies_the_overrides(study, tmp_path, table, preset, label, activity):
    overrides = study.video_overrides(preset)
    cfg = study.make_config(tmp_path, table, preset, label, activity, 2, True, overrides)
    own = yaml.safe_load((ROOT / "configs" / "synthetic" / f"{preset}.yaml").read_text())  # the preset as written
    # what the video mode states, read back from the built config
    assert (cfg.data.modality, cfg.model.encoder, cfg.model.weights) == ("video", "resnet50", "none")
    assert cfg.data.image_size == cfg.data.synthetic.size == int(_value(overrides, "data.image_size"))
    assert cfg.data.frames_per_video == int(_value(overrides, "data.frames_per_video"))
    assert cfg.train.max_steps == int(_value(overrides, "train.max_steps"))
    assert cfg.data.synthetic.videos_per_activity == int(_value(overrides, "data.synthetic.videos_per_activity"))
    assert (cfg.data.context_frames, cfg.model.head_dim) == (1, 128)
    # what it leaves: the method, the study's bookkeeping, the seed, the data location, K, the preset's timelines
    assert cfg.method.name == label and cfg.train.seed == 2 and cfg.train.device == "cpu"
    assert Path(cfg.data.shards) == tmp_path / "data" / preset / ("" if activity < 0 else f"activity{activity}")
    assert cfg.model.num_actions == own["model"]["num_actions"]
    for key in ("steps_per_activity", "p_background", "p_repeat", "p_swap", "duration_sigma"):
        if key in own["data"]["synthetic"]:
            assert getattr(cfg.data.synthetic, key) == own["data"]["synthetic"][key], key


def test_video_mode_guard_only_on_vaot_presets(study):
    for preset in study.VIDEO_PRESETS["alignment"]:
        assert _value(study.video_overrides(preset), "method.vaot.contrastive_weight") == "0.5"
    assert not any(o.startswith("method.vaot.") for o in study.video_overrides("breakfast_like"))
    # every default row is a registered method of the tables its presets belong to
    rows = {lab for t in study.VIDEO_PRESETS for lab in study.TABLES[t][1]}
    assert set(study.VIDEO_ROWS) <= rows
