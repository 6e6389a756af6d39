"""Dotted keys (``vasot_dist.config.dotted``) and ``load_config`` on a config in memory (a mapping or a RunConfig)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
import yaml

from vasot_dist.config import ConfigError, RunConfig, config_to_dict, load_config
from vasot_dist.config.dotted import SCHEMA_KEYS, flatten, is_section, set_dotted

ROOT = Path(__file__).resolve().parents[1]


def test_flatten_descends_into_sections_only_and_set_dotted_builds_the_mapping_back():
    cfg = load_config(ROOT / "configs" / "demo.yaml", ["dist.ds_config={zero_optimization: {stage: 2}}"])
    nested = config_to_dict(cfg)
    flat = flatten(nested)
    assert flat["method.vaot.align.radius"] == cfg.method.vaot.align.radius
    assert flat["dist.ds_config"] == {"zero_optimization": {"stage": 2}}  # a dict-valued field is one key
    assert set(flat) == {k for k in SCHEMA_KEYS if not is_section(k)}
    assert functools.reduce(lambda d, kv: set_dotted(d, *kv), flat.items(), {}) == nested
    assert flatten({"optimm": {"lr": 1}, "optim": {"lr": 2}}) == {"optimm": {"lr": 1}, "optim.lr": 2}


def test_set_dotted_returns_a_copy():
    d = {"optim": {"lr": 1.0}, "train": {"seed": 0}}
    out = set_dotted(d, "optim.lr", 2.0)
    assert out == {"optim": {"lr": 2.0}, "train": {"seed": 0}} and d == {"optim": {"lr": 1.0}, "train": {"seed": 0}}
    assert set_dotted({}, "method.asot.segment.eps", 0.05) == {"method": {"asot": {"segment": {"eps": 0.05}}}}


def test_a_mapping_loads_as_the_same_yaml_file_would(tmp_path):
    mapping = {"method": {"name": "asot", "asot": {"segment": {"eps": 0.05}}}, "optim": {"lr": 3e-3}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(mapping))
    overrides = ["train.seed=3", "method.asot.tau=0.2"]
    assert load_config(mapping, overrides) == load_config(path, overrides)
    assert load_config(mapping).method.asot.segment.eps == 0.05 and load_config(mapping).train.seed == 0


def test_a_run_config_with_overrides_is_a_new_config_and_the_given_one_is_untouched():
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    before = config_to_dict(cfg)
    out = load_config(cfg, ["optim.lr=2e-3", "method.vaot.align.eps=0.05"])
    assert config_to_dict(cfg) == before
    expected = copy.deepcopy(cfg)
    expected.optim.lr, expected.method.vaot.align.eps = 2e-3, 0.05
    assert out == expected and isinstance(out, RunConfig) and out != cfg
    assert load_config(cfg) == cfg and config_to_dict(cfg) == before


def test_a_mapping_is_checked_like_a_file():
    with pytest.raises(ConfigError, match=r"^unknown key 'optim.lrr' in config dict; did you mean 'optim.lr'\?$"):
        load_config({"optim": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"^invalid value -1.0 for 'optim.lr' in config dict: expected a value in"):
        load_config({"optim": {"lr": -1.0}})
    with pytest.raises(ConfigError, match="invalid value 0 for 'data.frames_per_video' in override "
                                          "'data.frames_per_video=0'"):
        load_config(RunConfig(), ["data.frames_per_video=0"])
