"""Which datasets a sweep's trials read (written or checked before Ray starts), and the sweep's progress sums."""

from __future__ import annotations

import pytest

from vasot_dist.config import load_config
from vasot_dist.tune.data import data_variants
from vasot_dist.tune.progress import format_duration, sweep_size
from vasot_dist.tune.space import SweepError, load_sweep


def test_the_readme_sweep_reads_the_features_its_overrides_select():
    spec, base = load_sweep("demo_asot", load_config("demo"))
    (only,) = data_variants(spec, base)
    assert only is base and only.data.modality == "features" and only.data.shards == "data/synthetic/features"
    assert load_config("demo").data.shards == "data/synthetic/demo"  # what --config alone would have written


def _sweep(write_sweep, space: dict, **extra):
    return write_sweep({"metric": "seg/MoF", "mode": "max", "space": space, **extra})


def test_swept_data_keys_give_one_dataset_per_folder(write_sweep, tiny_cfg, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    spec, base = load_sweep(_sweep(write_sweep, {"data.shards": {"dist": "choice", "values": [a, b]},
                                                 "optim.lr": {"dist": "loguniform", "lower": 1e-4, "upper": 1e-3}}),
                            tiny_cfg)
    assert [v.data.shards for v in data_variants(spec, base)] == [a, b]
    paired = _sweep(write_sweep, {"data.shards": {"dist": "grid", "values": [a, b]},
                                  "data.synthetic.p_background": {"dist": "grid", "values": [0.1, 0.3]}}, search="grid")
    with pytest.raises(SweepError, match=r"two samples of the space read different data from one folder "
                                         rf"data.shards='{a}' \(they differ in \['data.synthetic.p_background'\]\)"):
        data_variants(*load_sweep(paired, tiny_cfg))
    continuous = _sweep(write_sweep, {"data.synthetic.p_background": {"dist": "uniform", "lower": 0.1, "upper": 0.3}})
    with pytest.raises(SweepError, match=r"\['data.synthetic.p_background'\] change the dataset the trials read"):
        data_variants(*load_sweep(continuous, tiny_cfg))


def test_sweep_size_and_durations(write_sweep):
    grid = {"optim.lr": {"dist": "grid", "values": [1e-4, 3e-4, 1e-3]},
            "method.asot.tau": {"dist": "choice", "values": [0.05, 0.1]}}
    spec, _ = load_sweep(_sweep(write_sweep, grid, num_samples=2), load_config("demo"))
    assert sweep_size(spec) == 2 * 3  # random search: choice is sampled, grid is crossed
    spec, _ = load_sweep(_sweep(write_sweep, grid, num_samples=2, search="grid"), load_config("demo"))
    assert sweep_size(spec) == 2 * 3 * 2
    assert [format_duration(s) for s in (0, 83, 3723)] == ["0:00", "1:23", "1:02:03"]
