"""The data a sweep's trials read, known before Ray starts: the sweep's base config (``--config`` + the sweep
file's ``overrides``) and every value the space gives the keys that decide what is on disk.

``vasot-tune`` writes the built-in synthetic benchmark for each of them (once, before the trials, rather than
racing from concurrent trials), and ``run_sweep`` checks each of them like ``vasot-train`` checks its data.
"""

from __future__ import annotations

import itertools
from typing import Any

from vasot_dist.config import RunConfig, config_to_dict
from vasot_dist.tune.space import Dimension, SweepError, SweepSpec, apply_params

# Keys that change which dataset a trial reads (data.synthetic.* too): the rest of data.* only changes how.
_DATA_KEYS = ("data.name", "data.modality", "data.shards")
_MAX_VARIANTS = 64  # datasets a sweep may ask for; each is written (synthetic) or checked before the sweep


def _decides_data(key: str) -> bool:
    return key in _DATA_KEYS or key.startswith("data.synthetic.")


def _values(dim: Dimension) -> list[Any]:
    if dim.dist in ("choice", "grid"):
        return list(dim.args["values"])
    return list(range(dim.args["lower"], dim.args["upper"]))  # randint, upper excluded


def data_variants(spec: SweepSpec, base: RunConfig) -> list[RunConfig]:
    """The configs of the distinct datasets the sweep's trials can read: ``base`` with each combination of the
    values of the swept keys that decide the dataset (``data.name``, ``data.modality``, ``data.shards``,
    ``data.synthetic.*``), one per ``data.shards`` folder; just ``[base]`` when the space sweeps none.

    Raises:
        SweepError: such a key swept continuously (a dataset per sample cannot be written before the sweep),
            more than 64 combinations, or two combinations that would write different synthetic data into one
            ``data.shards`` folder (naming the keys that differ).
    """
    dims = [d for d in spec.space if _decides_data(d.key)]
    if not dims:
        return [base]
    continuous = [d.key for d in dims if d.dist in ("uniform", "loguniform")]
    if continuous:
        raise SweepError(f"{spec.path}: space keys {continuous} change the dataset the trials read; sweep them with "
                         "dist choice, grid or randint, so that every dataset is written (or checked) before the "
                         "sweep starts")
    values = [_values(d) for d in dims]
    count = 1
    for v in values:
        count *= len(v)
    if count > _MAX_VARIANTS:
        raise SweepError(f"{spec.path}: space keys {[d.key for d in dims]} give {count} datasets (at most "
                         f"{_MAX_VARIANTS}); sweep fewer of their values")
    by_folder: dict[str, RunConfig] = {}
    for combo in itertools.product(*values):
        cfg = apply_params(base, {d.key: v for d, v in zip(dims, combo)})
        first = by_folder.setdefault(cfg.data.shards, cfg)
        differ = _data_differences(first, cfg)
        if differ:
            raise SweepError(f"{spec.path}: two samples of the space read different data from one folder "
                             f"data.shards={cfg.data.shards!r} (they differ in {differ}); sweep data.shards along "
                             "with them, or leave them out of the space")
    return list(by_folder.values())


def _data_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """The dataset-deciding keys whose values differ between ``a`` and ``b``."""
    da, db = config_to_dict(a)["data"], config_to_dict(b)["data"]
    keys = [k.split(".", 1)[1] for k in _DATA_KEYS if k != "data.shards"]
    out = [f"data.{k}" for k in keys if da[k] != db[k]]
    if da["name"] == "synthetic":
        out += [f"data.synthetic.{k}" for k in da["synthetic"] if da["synthetic"][k] != db["synthetic"][k]]
    return out
