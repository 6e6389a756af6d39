"""Sweep files: parse and validate a Ray Tune search space over config keys, before Ray starts.

A sweep file (YAML)::

    name: ikea_vaot            # optional; default: the file name. Names the Tune experiment and W&B group
    metric: phase_acc@0.1      # a key of the evaluation metrics (vasot_dist.eval.runner.evaluate_model)
    mode: max                  # max | min
    num_samples: 16            # samples of the space (for grid search: repeats of the grid)
    search: random             # random | grid | optuna | hyperopt (the last two when installed)
    seed: 0                    # optional: seed of random / optuna / hyperopt sampling
    max_concurrent: 2          # optional: cap on trials at once (default: as many as the cluster fits)
    scheduler:                 # optional; default ASHA with max_t = train.max_steps
      name: asha               # asha | fifo
      max_t: 3000              # ASHA budgets are in training steps (reported at every train.eval_every)
      grace_period: 500
      reduction_factor: 3
    space:                     # dotted config keys, the same names as command-line overrides
      method.asot.segment.eps: {dist: loguniform, lower: 0.01, upper: 0.2}
      method.asot.segment.alpha: {dist: uniform, lower: 0.1, upper: 0.9}
      method.asot.tau: {dist: choice, values: [0.07, 0.1]}
      model.num_actions: {dist: randint, lower: 4, upper: 9}     # upper excluded (Ray Tune's randint)
      optim.lr: {dist: grid, values: [1.0e-4, 3.0e-4]}
    overrides: [train.max_steps=3000, train.eval_every=500]     # applied to the base config of every trial

Every mistake (unknown key, with the nearest valid one; empty space; unknown distribution; missing, extra or
out-of-order arguments; a value the config's range checks reject) raises a :class:`SweepError` naming the
sweep file and the key, without touching Ray.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vasot_dist.config import (
    SCHEMA_KEYS,
    ConfigError,
    RunConfig,
    config_from_dict,
    config_to_dict,
    find_config,
    load_config,
)
from vasot_dist.config.dotted import set_dotted
from vasot_dist.config.loader import YamlLoader, _display  # the config files' YAML dialect (3e-4 is a float)

DISTRIBUTIONS: dict[str, tuple[str, ...]] = {  # name -> its arguments (all required)
    "uniform": ("lower", "upper"),
    "loguniform": ("lower", "upper"),
    "randint": ("lower", "upper"),
    "choice": ("values",),
    "grid": ("values",),
}
SEARCHERS = ("random", "grid", "optuna", "hyperopt")
SCHEDULERS: dict[str, tuple[str, ...]] = {"asha": ("max_t", "grace_period", "reduction_factor"), "fifo": ()}
_TOP_KEYS = ("name", "metric", "mode", "num_samples", "search", "seed", "max_concurrent", "scheduler", "space",
             "overrides")
_REQUIRED = ("metric", "mode", "space")
# Keys the sweep itself decides for every trial; sweeping them would break restores or grouping.
_RESERVED = ("train.run_id", "log.group")
_RESERVED_SECTIONS = ("tune.",)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SweepError(ConfigError):
    """A sweep file is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Dimension:
    """One swept config key: ``key`` (dotted), ``dist`` (a name in :data:`DISTRIBUTIONS`) and its arguments."""

    key: str
    dist: str
    args: dict[str, Any]

    def domain(self, *, choice_as_grid: bool = False) -> Any:
        """The Ray Tune search-space object (``tune.uniform(...)``, ``tune.grid_search([...])``, ...);
        ``choice_as_grid``: a ``choice`` becomes a grid axis (``search: grid``)."""
        from ray import tune

        a = self.args
        if self.dist == "uniform":
            return tune.uniform(a["lower"], a["upper"])
        if self.dist == "loguniform":
            return tune.loguniform(a["lower"], a["upper"])
        if self.dist == "randint":
            return tune.randint(a["lower"], a["upper"])
        if self.dist == "choice" and not choice_as_grid:
            return tune.choice(list(a["values"]))
        return tune.grid_search(list(a["values"]))

    def probe_values(self) -> list[tuple[str, Any]]:
        """The extreme values a sample can take, labelled, for checking them against the config's rules.

        Ray Tune samples ``uniform`` / ``loguniform`` in ``[lower, upper)`` and ``randint`` in
        ``[lower, upper - 1]``; ``choice`` / ``grid`` take exactly their values.
        """
        a = self.args
        if self.dist in ("uniform", "loguniform"):
            return [("lower", a["lower"]), ("upper", math.nextafter(a["upper"], a["lower"]))]
        if self.dist == "randint":
            return [("lower", a["lower"]), ("upper - 1", a["upper"] - 1)]
        return [(f"values[{i}]", v) for i, v in enumerate(a["values"])]


@dataclass(frozen=True)
class SchedulerSpec:
    """``name``: asha | fifo. ASHA's budgets count training steps; None means the default from the config."""

    name: str = "asha"
    max_t: int | None = None
    grace_period: int | None = None
    reduction_factor: float = 3.0


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    name: str
    metric: str
    mode: str
    num_samples: int
    search: str
    seed: int | None
    max_concurrent: int | None
    scheduler: SchedulerSpec
    space: tuple[Dimension, ...]
    overrides: tuple[str, ...]

    def param_space(self) -> dict[str, Any]:
        """``{dotted key: Ray Tune domain}`` for ``Tuner(param_space=...)``; trial configs hold the same keys."""
        return {d.key: d.domain(choice_as_grid=self.search == "grid") for d in self.space}

    def to_dict(self) -> dict[str, Any]:
        """The sweep as a plain mapping in the sweep-file format (stored next to the experiment for --resume)."""
        out: dict[str, Any] = {
            "name": self.name, "metric": self.metric, "mode": self.mode, "num_samples": self.num_samples,
            "search": self.search, "scheduler": dataclasses.asdict(self.scheduler),
            "space": {d.key: {"dist": d.dist, **d.args} for d in self.space}, "overrides": list(self.overrides),
        }
        if self.seed is not None:
            out["seed"] = self.seed
        if self.max_concurrent is not None:
            out["max_concurrent"] = self.max_concurrent
        if self.scheduler.name == "fifo":
            out["scheduler"] = {"name": "fifo"}
        out["scheduler"] = {k: v for k, v in out["scheduler"].items() if v is not None}
        return out


def _suggest(key: str, candidates: list[str]) -> str:
    """'; did you mean ...?' with the nearest candidate (as the config loader does for config keys)."""
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close:  # a typo in the section name: the same leaf in another section
        leaf = key.rsplit(".", 1)[-1]
        close = [k for k in candidates if k.rsplit(".", 1)[-1] == leaf][:1]
    if not close and key:  # a shortened name ('grace' for 'grace_period')
        close = [k for k in candidates if k.startswith(key)][:1]
    return f"; did you mean '{close[0]}'?" if close else ""


_LEAF_KEYS = [k for k, tp in SCHEMA_KEYS.items() if not dataclasses.is_dataclass(tp)]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _parse_dimension(src: str, key: str, spec: Any) -> Dimension:
    where = f"{src}: space key '{key}'"
    if key not in SCHEMA_KEYS or key not in _LEAF_KEYS:
        kind = "a config section, not a key" if key in SCHEMA_KEYS else "not a config key"
        raise SweepError(f"{where} is {kind}{_suggest(key, _LEAF_KEYS)}")
    if key in _RESERVED or key.startswith(_RESERVED_SECTIONS):
        raise SweepError(f"{where} cannot be swept: the sweep sets it for every trial")
    if not isinstance(spec, dict):
        raise SweepError(f"{where}: expected a mapping like {{dist: uniform, lower: 0.1, upper: 0.5}}, "
                         f"got {spec!r}")
    dist = spec.get("dist")
    if dist not in DISTRIBUTIONS:
        raise SweepError(f"{where}: 'dist' must be one of {list(DISTRIBUTIONS)}, got {dist!r}"
                         f"{_suggest(str(dist), list(DISTRIBUTIONS))}")
    names = DISTRIBUTIONS[dist]
    args = {k: v for k, v in spec.items() if k != "dist"}
    extra = [k for k in args if k not in names]
    missing = [k for k in names if k not in args]
    if extra or missing:
        raise SweepError(f"{where}: dist '{dist}' takes exactly {list(names)}"
                         + (f"; unknown {extra}" if extra else "") + (f"; missing {missing}" if missing else ""))
    if dist in ("choice", "grid"):
        values = args["values"]
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}: dist '{dist}' needs 'values' as a non-empty list, got {values!r}")
        return Dimension(key, dist, {"values": list(values)})
    lo, hi = args["lower"], args["upper"]
    if not (_is_number(lo) and _is_number(hi)):
        raise SweepError(f"{where}: 'lower' and 'upper' must be finite numbers, got {lo!r} and {hi!r}")
    if dist == "randint" and not (isinstance(lo, int) and isinstance(hi, int)):
        raise SweepError(f"{where}: dist 'randint' needs integer bounds, got {lo!r} and {hi!r}")
    if not lo < hi:
        raise SweepError(f"{where}: needs lower < upper, got lower={lo!r}, upper={hi!r}")
    if dist == "loguniform" and lo <= 0:
        raise SweepError(f"{where}: dist 'loguniform' needs lower > 0, got {lo!r}")
    if dist != "randint":
        lo, hi = float(lo), float(hi)
    return Dimension(key, dist, {"lower": lo, "upper": hi})


def _int_field(src: str, name: str, value: Any, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SweepError(f"{src}: '{name}' must be an integer >= {minimum}, got {value!r}")
    return value


def _parse_scheduler(src: str, raw: Any) -> SchedulerSpec:
    if raw is None:
        return SchedulerSpec()
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise SweepError(f"{src}: 'scheduler' must be a mapping with 'name' (asha | fifo), got {raw!r}")
    name = raw.get("name", "asha")
    if name not in SCHEDULERS:
        raise SweepError(f"{src}: 'scheduler.name' must be one of {list(SCHEDULERS)}, got {name!r}")
    allowed = SCHEDULERS[name]
    for k in raw:
        if k != "name" and k not in allowed:
            raise SweepError(f"{src}: unknown key 'scheduler.{k}' for scheduler '{name}' (takes {list(allowed)})"
                             f"{_suggest(k, list(allowed))}")
    if name == "fifo":
        return SchedulerSpec(name="fifo")
    max_t = raw.get("max_t")
    grace = raw.get("grace_period")
    if max_t is not None:
        _int_field(src, "scheduler.max_t", max_t, 1)
    if grace is not None:
        _int_field(src, "scheduler.grace_period", grace, 1)
    if max_t is not None and grace is not None and grace > max_t:
        raise SweepError(f"{src}: 'scheduler.grace_period' ({grace}) must not exceed 'scheduler.max_t' ({max_t})")
    rf = raw.get("reduction_factor", 3.0)
    if not _is_number(rf) or rf <= 1:
        raise SweepError(f"{src}: 'scheduler.reduction_factor' must be a number > 1, got {rf!r}")
    return SchedulerSpec("asha", max_t, grace, float(rf))


def parse_sweep(path: str | os.PathLike) -> SweepSpec:
    """Read and check a sweep file on its own (keys, distributions, arguments, metric, mode, search).

    Raises:
        SweepError: naming the file and the offending key.
    """
    try:
        path = find_config(path, "sweeps")
    except ConfigError as e:
        raise SweepError(str(e).replace("config file", "sweep file")) from None
    src = _display(path)
    try:
        raw = yaml.load(path.read_text(), Loader=YamlLoader)
    except yaml.YAMLError as e:
        raise SweepError(f"cannot parse {src}: {e}") from None
    if not isinstance(raw, dict):
        raise SweepError(f"{src} must hold a mapping (metric, mode, space, ...), got {type(raw).__name__}")
    return sweep_from_dict(raw, src, default_name=path.stem)


def sweep_from_dict(raw: dict, src: str, *, default_name: str) -> SweepSpec:
    """Like :func:`parse_sweep` on an already-read mapping; ``src`` names it in errors."""
    for k in raw:
        if k not in _TOP_KEYS:
            raise SweepError(f"{src}: unknown key '{k}' (expected {list(_TOP_KEYS)}){_suggest(str(k), list(_TOP_KEYS))}")
    for k in _REQUIRED:
        if k not in raw:
            raise SweepError(f"{src}: missing required key '{k}'")
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SweepError(f"{src}: 'name' must be a folder-safe name (letters, digits, . _ -), got {name!r}")
    metric = raw["metric"]
    if not isinstance(metric, str) or not metric.strip():
        raise SweepError(f"{src}: 'metric' must name an evaluation metric (e.g. 'seg/MoF'), got {metric!r}")
    mode = raw["mode"]
    if mode not in ("max", "min"):
        raise SweepError(f"{src}: 'mode' must be 'max' or 'min', got {mode!r}")
    num_samples = _int_field(src, "num_samples", raw.get("num_samples", 1), 1)
    seed = raw.get("seed")
    if seed is not None:
        _int_field(src, "seed", seed, 0)
    max_concurrent = raw.get("max_concurrent")
    if max_concurrent is not None:
        _int_field(src, "max_concurrent", max_concurrent, 1)
    scheduler = _parse_scheduler(src, raw.get("scheduler"))

    space_raw = raw["space"]
    if not isinstance(space_raw, dict) or not space_raw:
        raise SweepError(f"{src}: 'space' is empty; name at least one config key to sweep, "
                         "e.g. ot.eps: {dist: loguniform, lower: 0.01, upper: 0.2}")
    space = tuple(_parse_dimension(src, str(k), v) for k, v in space_raw.items())

    search = raw.get("search", "random")
    if search not in SEARCHERS:
        raise SweepError(f"{src}: 'search' must be one of {list(SEARCHERS)}, got {search!r}"
                         f"{_suggest(str(search), list(SEARCHERS))}")
    _check_search(src, search, space)

    overrides = raw.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise SweepError(f"{src}: 'overrides' must be a list of 'key.sub=value' strings, got {overrides!r}")
    swept = {d.key for d in space}
    for o in overrides:
        k = o.split("=", 1)[0].strip()
        if k in swept:
            raise SweepError(f"{src}: key '{k}' is both swept in 'space' and set in 'overrides'")
        if k in _RESERVED:
            raise SweepError(f"{src}: override '{o}': the sweep sets '{k}' itself for every trial")
    return SweepSpec(Path(src), name, metric, mode, num_samples, search, seed, max_concurrent, scheduler, space,
                     tuple(overrides))


def _check_search(src: str, search: str, space: tuple[Dimension, ...]) -> None:
    if search == "grid":
        bad = [d.key for d in space if d.dist not in ("grid", "choice")]
        if bad:
            raise SweepError(f"{src}: 'search: grid' needs every key as dist grid or choice; "
                             f"{bad} are continuous (use search: random, or list their values)")
    if search in ("optuna", "hyperopt"):
        if importlib.util.find_spec(search) is None:
            raise SweepError(f"{src}: 'search: {search}' needs the {search} package (pip install {search}); "
                             "use search: random otherwise")
        grid = [d.key for d in space if d.dist == "grid"]
        if grid:
            raise SweepError(f"{src}: 'search: {search}' cannot sample grid dimensions {grid}; "
                             "use dist: choice")


def apply_params(cfg: RunConfig, params: dict[str, Any]) -> RunConfig:
    """``cfg`` with every ``{dotted key: value}`` of a trial set, validated like a config file."""
    d = config_to_dict(cfg)
    for key, value in params.items():
        d = set_dotted(d, key, value)
    return config_from_dict(d)


def apply_overrides(cfg: RunConfig, overrides: list[str] | tuple[str, ...], src: str) -> RunConfig:
    """``cfg`` with ``key=value`` overrides (YAML-typed, as on the command line), through ``load_config``."""
    if not overrides:
        return cfg
    try:
        return load_config(cfg, overrides)
    except ConfigError as e:
        raise SweepError(f"{src}: 'overrides': {e}") from None


def check_against_config(spec: SweepSpec, cfg: RunConfig) -> RunConfig:
    """Apply the sweep's overrides to ``cfg`` and check that every extreme sample of every key passes the
    config's type and range checks. Returns the sweep's base config (``cfg`` with the overrides).

    Raises:
        SweepError: naming the sweep file, the key, the value and the config's complaint.
    """
    src = str(spec.path)
    base = apply_overrides(cfg, spec.overrides, src)
    base_dict = config_to_dict(base)
    probes = [dim.probe_values() for dim in spec.space]
    # The config's rules are per key, so one config per probe position checks every key at once: the i-th
    # config takes each key's i-th extreme value (its last one when it has fewer).
    for i in range(max(len(p) for p in probes)):
        picked = {dim.key: p[min(i, len(p) - 1)] for dim, p in zip(spec.space, probes)}
        d = base_dict
        for key, (_, value) in picked.items():
            d = set_dotted(d, key, value)
        try:
            config_from_dict(d)
        except ConfigError as e:
            culprit = next((dim for dim in spec.space if f"'{dim.key}'" in str(e)), spec.space[0])
            label, value = picked[culprit.key]
            raise SweepError(f"{src}: space key '{culprit.key}' ({culprit.dist}, {label} = {value!r}) is not a "
                             f"valid value: {e}") from None
    sch = spec.scheduler
    if sch.name == "asha":
        max_t = sch.max_t or base.train.max_steps
        if sch.grace_period is not None and sch.grace_period > max_t:
            raise SweepError(f"{src}: 'scheduler.grace_period' ({sch.grace_period}) exceeds max_t ({max_t}, "
                             "train.max_steps unless set)")
    return base


def load_sweep(path: str | os.PathLike, cfg: RunConfig) -> tuple[SweepSpec, RunConfig]:
    """:func:`parse_sweep` then :func:`check_against_config`: the whole check, before any Ray call."""
    spec = parse_sweep(path)
    return spec, check_against_config(spec, cfg)
