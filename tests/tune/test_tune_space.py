"""Sweep files are checked completely before Ray starts; every error names the file and the key."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import ray

from vasot_dist.tune.space import SweepError, apply_params, load_sweep, parse_sweep, sweep_from_dict
from vasot_dist.tune.sweep import run_sweep

VALID = {
    "metric": "seg/MoF",
    "mode": "max",
    "num_samples": 2,
    "space": {
        "method.asot.segment.eps": {"dist": "loguniform", "lower": 0.03, "upper": 0.15},
        "method.asot.segment.alpha": {"dist": "uniform", "lower": 0.1, "upper": 0.6},
        "method.asot.tau": {"dist": "choice", "values": [0.07, 0.1]},
    },
}


def _with(**changes) -> dict:
    out = {**VALID, "space": dict(VALID["space"])}
    for k, v in changes.items():
        if k.startswith("space__"):
            key = k[len("space__"):].replace("__", ".")
            if v is None:
                out["space"].pop(key)
            else:
                out["space"][key] = v
        elif v is None:
            out.pop(k)
        else:
            out[k] = v
    return out


# (sweep mapping, fragments the message must hold)
BAD = {
    "unknown key": (_with(space__method__asot__segment__epss={"dist": "uniform", "lower": 0.1, "upper": 0.2}),
                    ["'method.asot.segment.epss'", "did you mean 'method.asot.segment.eps'"]),
    "section typo": (_with(space__opt__lr={"dist": "loguniform", "lower": 1e-4, "upper": 1e-3}),
                     ["'opt.lr'", "did you mean 'optim.lr'"]),
    "section, not key": (_with(space__method__asot={"dist": "choice", "values": [1]}),
                         ["'method.asot'", "a config section"]),
    "empty space": (_with(space={}), ["'space' is empty"]),
    "no space": (_with(space=None), ["missing required key 'space'"]),
    "bad distribution": (_with(space__method__asot__segment__eps={"dist": "normal", "lower": 0.1, "upper": 0.2}),
                         ["'method.asot.segment.eps'", "'dist' must be one of", "'normal'"]),
    "missing arg": (_with(space__method__asot__segment__eps={"dist": "uniform", "lower": 0.1}), ["'method.asot.segment.eps'", "missing ['upper']"]),
    "extra arg": (_with(space__method__asot__segment__eps={"dist": "uniform", "lower": 0.1, "upper": 0.2, "q": 0.01}),
                  ["'method.asot.segment.eps'", "unknown ['q']"]),
    "lower >= upper": (_with(space__method__asot__segment__eps={"dist": "uniform", "lower": 0.2, "upper": 0.1}),
                       ["'method.asot.segment.eps'", "lower < upper"]),
    "loguniform at 0": (_with(space__optim__lr={"dist": "loguniform", "lower": 0.0, "upper": 1e-3}),
                        ["'optim.lr'", "lower > 0"]),
    "randint floats": (_with(space__model__num_actions={"dist": "randint", "lower": 2.5, "upper": 6}),
                       ["'model.num_actions'", "integer bounds"]),
    "empty choice": (_with(space__method__asot__tau={"dist": "choice", "values": []}), ["'method.asot.tau'", "non-empty list"]),
    "string bounds": (_with(space__method__asot__segment__eps={"dist": "uniform", "lower": "a", "upper": 0.2}),
                      ["'method.asot.segment.eps'", "finite numbers"]),
    "bad mode": (_with(mode="maximize"), ["'mode' must be 'max' or 'min'", "'maximize'"]),
    "no metric": (_with(metric=None), ["missing required key 'metric'"]),
    "unknown top key": (_with(metrik="x"), ["unknown key 'metrik'", "did you mean 'metric'"]),
    "bad scheduler": (_with(scheduler={"name": "pbt"}), ["'scheduler.name'", "'pbt'"]),
    "bad scheduler arg": (_with(scheduler={"name": "asha", "grace": 2}), ["'scheduler.grace'",
                                                                          "did you mean 'grace_period'"]),
    "grace > max_t": (_with(scheduler={"name": "asha", "max_t": 2, "grace_period": 4}), ["grace_period"]),
    "bad search": (_with(search="bayes"), ["'search' must be one of", "'bayes'"]),
    "grid with continuous": (_with(search="grid"), ["'search: grid'", "method.asot.segment.eps"]),
    "reserved key": (_with(space__train__run_id={"dist": "choice", "values": ["a"]}),
                     ["'train.run_id'", "cannot be swept"]),
    "swept and overridden": (_with(overrides=["method.asot.segment.eps=0.1"]), ["'method.asot.segment.eps'", "both swept"]),
    # values the config's own range / type checks reject
    "out of range upper": (_with(space__method__asot__segment__alpha={"dist": "uniform", "lower": 0.5, "upper": 1.5}),
                           ["'method.asot.segment.alpha'", "upper", "expected a value in [0, 1]"]),
    "out of range lower": (_with(space__method__asot__segment__eps={"dist": "uniform", "lower": 0.0, "upper": 0.1}),
                           ["'method.asot.segment.eps'", "lower = 0.0", "(0, inf]"]),
    "bad choice value": (_with(space__optim__name={"dist": "choice", "values": ["adam", "sgd"]}),
                         ["'optim.name'", "values[1] = 'sgd'", "expected one of"]),
    "float for int key": (_with(space__model__num_actions={"dist": "uniform", "lower": 2, "upper": 8}),
                          ["'model.num_actions'", "expected int"]),
    "bad override": (_with(overrides=["train.max_stepz=3"]), ["'overrides'", "train.max_stepz",
                                                             "did you mean 'train.max_steps'"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_sweep_fails_before_ray_starts(case, write_sweep, tiny_cfg, tmp_path):
    mapping, fragments = BAD[case]
    path = write_sweep(mapping)
    with pytest.raises(SweepError) as err:
        run_sweep(tiny_cfg, path, storage_path=str(tmp_path / "store"))
    msg = str(err.value)
    assert str(path) in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)
    assert not ray.is_initialized()
    assert not (tmp_path / "store").exists()


def test_missing_sweep_file(tiny_cfg, tmp_path):
    with pytest.raises(SweepError, match="sweep file not found"):
        run_sweep(tiny_cfg, tmp_path / "nope.yaml")
    assert not ray.is_initialized()


@pytest.mark.skipif(importlib.util.find_spec("optuna") is not None, reason="optuna is installed")
def test_optuna_without_package_is_a_clear_error(write_sweep):
    with pytest.raises(SweepError, match=r"needs the optuna package \(pip install optuna\)"):
        parse_sweep(write_sweep(_with(search="optuna")))


def test_extreme_samples_that_are_valid_pass(write_sweep, tiny_cfg):
    # uniform samples [lower, upper): model.dropout's rule is [0, 1), so upper = 1 is fine;
    # randint excludes upper: num_actions in [1, ...) with lower 1 is fine.
    spec, base = load_sweep(write_sweep(_with(
        space__model__dropout={"dist": "uniform", "lower": 0.0, "upper": 1.0},
        space__model__num_actions={"dist": "randint", "lower": 1, "upper": 9},
        overrides=["train.max_steps=7"])), tiny_cfg)
    assert [d.key for d in spec.space] == ["method.asot.segment.eps", "method.asot.segment.alpha", "method.asot.tau", "model.dropout", "model.num_actions"]
    assert base.train.max_steps == 7 and tiny_cfg.train.max_steps == 4  # overrides apply to a copy
    assert spec.name == "sweep"


def test_yaml_floats_like_config_files(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("metric: m\nmode: min\nspace:\n  optim.lr: {dist: loguniform, lower: 1e-5, upper: 3e-4}\n")
    spec = parse_sweep(path)
    assert spec.space[0].args == {"lower": 1e-5, "upper": 3e-4}


def test_domains_sample_inside_their_bounds_and_the_config():
    spec = sweep_from_dict(_with(space__model__num_actions={"dist": "randint", "lower": 3, "upper": 6}), "mem",
                           default_name="x")
    space = spec.param_space()
    rng = np.random.default_rng(0)
    eps = np.array(space["method.asot.segment.eps"].sample(size=4000, random_state=rng))
    assert eps.min() >= 0.03 and eps.max() < 0.15
    # log-uniform: half of the mass below the geometric mean of the bounds (uniform would put ~0.33 there)
    assert abs(np.mean(eps < math.sqrt(0.03 * 0.15)) - 0.5) < 0.03
    alpha = np.array(space["method.asot.segment.alpha"].sample(size=4000, random_state=rng))
    assert abs(np.mean(alpha < 0.35) - 0.5) < 0.03
    acts = space["model.num_actions"].sample(size=2000, random_state=rng)
    assert set(acts) == {3, 4, 5}
    assert set(space["method.asot.tau"].sample(size=200, random_state=rng)) == {0.07, 0.1}


def test_grid_search_turns_choices_into_grid_axes():
    spec = sweep_from_dict({"metric": "m", "mode": "max", "search": "grid", "space": {
        "method.asot.tau": {"dist": "choice", "values": [0.05, 0.1]},
        "optim.lr": {"dist": "grid", "values": [1e-4, 3e-4, 1e-3]}}}, "mem", default_name="g")
    space = spec.param_space()
    assert space["method.asot.tau"] == {"grid_search": [0.05, 0.1]}
    assert space["optim.lr"] == {"grid_search": [1e-4, 3e-4, 1e-3]}


def test_apply_params_sets_nested_keys(tiny_cfg):
    cfg = apply_params(tiny_cfg, {"method.asot.segment.eps": 0.11, "data.synthetic.seed": 5, "model.mlp_layers": [64, 8]})
    assert cfg.method.asot.segment.eps == 0.11 and cfg.data.synthetic.seed == 5 and cfg.model.mlp_layers == [64, 8]
    assert tiny_cfg.method.asot.segment.eps != 0.11  # the base is untouched
    assert cfg.optim == tiny_cfg.optim


def test_sweep_round_trips_through_its_stored_form(write_sweep):
    spec = parse_sweep(write_sweep(_with(seed=3, max_concurrent=2, scheduler={"name": "asha", "max_t": 8},
                                         overrides=["train.eval_every=2"]), name="rt"))
    again = sweep_from_dict(spec.to_dict(), "stored", default_name="other")
    assert again.to_dict() == spec.to_dict()
    assert again.name == "rt" and again.space == spec.space and again.scheduler == spec.scheduler
    fifo = parse_sweep(write_sweep(_with(scheduler="fifo"), name="f"))
    assert sweep_from_dict(fifo.to_dict(), "stored", default_name="f").to_dict() == fifo.to_dict()


def test_shipped_sweeps_are_valid():
    from vasot_dist.config import load_config

    repo = Path(__file__).resolve().parents[2]
    spec, base = load_sweep(repo / "configs/sweeps/demo_asot.yaml", load_config(repo / "configs/demo.yaml"))
    assert {d.key for d in spec.space} == {"method.asot.segment.eps", "method.asot.segment.alpha", "optim.lr"}
    assert base.train.eval_every > 0 and base.tune.gpus_per_worker == 0 and base.data.modality == "features"
    spec, base = load_sweep(repo / "configs/sweeps/ikea_asm.yaml", load_config(repo / "configs/ikea_asm.yaml"))
    assert {d.key for d in spec.space} == {"method.vasot.align.eps", "method.vasot.align.alpha", "method.vasot.align.radius", "method.vasot.tau",
                                             "optim.lr"}
    assert base.train.eval_every > 0 and base.tune.gpus_per_worker > 0
