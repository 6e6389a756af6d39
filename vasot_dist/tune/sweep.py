"""``run_sweep``: a Ray Tune sweep whose trials are Ray Train (V2) distributed training runs.

Order of work: the sweep file and every sampled value are checked against the config (no Ray yet), the
experiment folder is checked (a new sweep must not exist there, a ``--resume``d one must), then Ray starts
(locally, or joins ``address``), the storage is checked against the cluster's node count, the number of
trials at once is capped by the GPUs (CPUs without GPUs) the cluster has, and the Tuner runs. At the end a
table of trials sorted by the metric is printed and the best config is written as a YAML.

Layout under ``<storage>/<sweep name>/``: Tune's experiment state and one ``trial_<id>/`` folder per trial,
``train_runs/<trial id>/`` with each trial's Ray Train run (reported checkpoints), ``vasot_sweep.json``
(the sweep and its base config, read back by ``--resume``), and, for local storage, ``trials.csv`` and
``best_config.yaml``. Each trial's own run directory is ``<train.output_dir>/<train.experiment>/<trial id>``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path
from typing import Any

from vasot_dist.config import ConfigError, RunConfig, config_from_dict, config_to_dict
from vasot_dist.models.resnet_encoder import NAMED_WEIGHTS
from vasot_dist.runtime.ranklog import get_logger
from vasot_dist.train.preflight import check_data
from vasot_dist.tune.data import data_variants
from vasot_dist.tune.progress import SweepProgress, sweep_size
from vasot_dist.tune.results import (
    SweepResult,
    format_table,
    pick_best,
    rows_from_results,
    rows_to_csv,
    sort_rows,
    write_best_config,
)
from vasot_dist.tune.space import SweepError, SweepSpec, load_sweep, sweep_from_dict
from vasot_dist.tune.stopping import GracefulStop, start_registry
from vasot_dist.tune.storage import check_multinode_storage, is_uri, read_json, resolve_storage, write_json
from vasot_dist.tune.trial import DRIVER_CPUS, trial_driver

log = get_logger(__name__)
STATE_FILE = "vasot_sweep.json"
# Environment passed on to the workers of a cluster joined with --address (a local cluster inherits it).
_FORWARDED_ENV_PREFIXES = ("WANDB_",)


def _absolute(p: str) -> str:
    if "://" in p or p.startswith("pipe:") or os.path.isabs(p):
        return p
    return str(Path(p).expanduser().resolve())


def sweep_base_config(cfg: RunConfig, name: str) -> RunConfig:
    """The config every trial starts from: relative paths made absolute (Ray workers run in other folders),
    ``log.group`` = the sweep name (all trials of a sweep in one W&B group), no run id (the trial id is)."""
    data = dataclasses.replace(cfg.data, shards=_absolute(cfg.data.shards))
    w = cfg.model.weights
    model = dataclasses.replace(cfg.model, weights=w if w in NAMED_WEIGHTS else _absolute(w))
    train = dataclasses.replace(cfg.train, output_dir=_absolute(cfg.train.output_dir), run_id=None)
    log_cfg = dataclasses.replace(cfg.log, group=name)
    return dataclasses.replace(cfg, data=data, model=model, train=train, log=log_cfg)


def max_concurrent_trials(resources: dict[str, float], cfg: RunConfig) -> int:
    """How many trials fit in the cluster at once: by GPUs when trials use GPUs, and by CPUs (each trial's
    workers plus its driver).

    Raises:
        ValueError: when not even one trial fits.
    """
    t = cfg.tune
    gpu_need = t.workers_per_trial * t.gpus_per_worker
    cpu_need = t.workers_per_trial * t.cpus_per_worker + DRIVER_CPUS
    cpu, gpu = float(resources.get("CPU", 0.0)), float(resources.get("GPU", 0.0))
    if gpu_need > gpu + 1e-9 or cpu_need > cpu + 1e-9:
        raise ValueError(
            f"one trial needs {gpu_need:g} GPUs and {cpu_need:g} CPUs (tune.workers_per_trial="
            f"{t.workers_per_trial} x gpus_per_worker={t.gpus_per_worker:g} / cpus_per_worker="
            f"{t.cpus_per_worker:g}, plus {DRIVER_CPUS:g} CPU for the trial driver), but the Ray cluster has "
            f"{gpu:g} GPUs and {cpu:g} CPUs")
    fits = math.floor(cpu / cpu_need + 1e-9)
    if gpu_need > 0:
        fits = min(fits, math.floor(gpu / gpu_need + 1e-9))
    return max(1, fits)


def _concurrency(resources: dict[str, float], base: RunConfig, *, joined: bool) -> int:
    try:
        return max_concurrent_trials(resources, base)
    except ValueError as e:
        if not joined:
            raise SweepError(str(e)) from None
        # a joined cluster may autoscale: Ray Train waits for the resources
        warnings.warn(f"{e}; starting one trial at a time while the cluster scales up", stacklevel=3)
        return 1


def build_scheduler(spec: SweepSpec, base: RunConfig, registry: str):
    """ASHA over training steps (``step`` is reported at every evaluation), its stops delivered to the
    workers through the stop registry ``registry`` (:mod:`vasot_dist.tune.stopping`); or FIFO."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    sch = spec.scheduler
    if sch.name == "fifo":
        return FIFOScheduler()
    max_t = sch.max_t or base.train.max_steps
    every = base.train.eval_every
    grace = sch.grace_period or (min(every, max_t) if every else max_t)
    asha = ASHAScheduler(time_attr="step", max_t=max_t, grace_period=grace, reduction_factor=sch.reduction_factor)
    return GracefulStop(asha, registry)


def build_searcher(spec: SweepSpec, limit: int) -> tuple[Any, int | None]:
    """The search algorithm and the ``TuneConfig.max_concurrent_trials`` to go with it: Tune ignores the
    latter for its own variant generator (random / grid), which takes the cap itself."""
    if spec.search in ("random", "grid"):
        from ray.tune.search import BasicVariantGenerator

        return BasicVariantGenerator(random_state=spec.seed, max_concurrent=limit), None
    if spec.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(seed=spec.seed), limit
    from ray.tune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(random_state_seed=spec.seed), limit


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and not k.endswith("ds_config"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _restore_state(exp_path: str, spec: SweepSpec, base: RunConfig) -> tuple[SweepSpec, RunConfig]:
    """The sweep and base config stored when the sweep started; a resumed sweep keeps them."""
    stored = read_json(f"{exp_path}/{STATE_FILE}")
    if stored is None:
        warnings.warn(f"{exp_path}/{STATE_FILE} is missing: resuming with the given config and sweep file",
                      stacklevel=3)
        return spec, base
    old_spec = sweep_from_dict(stored["sweep"], f"{exp_path}/{STATE_FILE}", default_name=spec.name)
    old_base = config_from_dict(stored["base"])
    new, old = _flat(config_to_dict(base)), _flat(config_to_dict(old_base))
    changed = sorted(k for k in new if new[k] != old.get(k))
    if changed or old_spec.to_dict() != spec.to_dict():
        warnings.warn(f"--resume keeps the sweep and config stored at {exp_path}/{STATE_FILE}; ignoring "
                      f"changes to {changed[:8] or 'the sweep file'}", stacklevel=3)
    return old_spec, old_base


def _check_experiment(exp_path: str, resume: bool) -> None:
    from ray.tune import Tuner

    exists = Tuner.can_restore(exp_path)
    if resume and not exists:
        raise SweepError(f"--resume: no interrupted sweep at {exp_path} (no Tune experiment state there); "
                         "check --storage-path and the sweep's name")
    if not resume and exists:
        raise SweepError(f"a sweep already ran at {exp_path}: pass --resume to continue it, or give this one "
                         "another 'name:' in the sweep file or another --storage-path")


def _init_ray(address: str | None, num_cpus: int | None) -> bool:
    """Start Ray locally (or join ``address``) unless already initialised; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {}
    if address is None:
        address = "local"  # a new instance on this machine, never one that happens to be running here
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        # One machine is never drained by a cloud provider: Ray Train's preemption watcher (an actor per trial,
        # each logging an error-level line about its restart policy) has nothing to watch. The local instance's
        # processes inherit this process's environment; a value the user set stands.
        os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
    else:
        env = {k: v for k, v in os.environ.items() if k.startswith(_FORWARDED_ENV_PREFIXES)}
        if env:
            kwargs["runtime_env"] = {"env_vars": env}
    ray.init(address=address, **kwargs)
    return True


def run_sweep(cfg: RunConfig, sweep_path: str | os.PathLike, *, address: str | None = None,
              storage_path: str | None = None, resume: bool = False, num_cpus: int | None = None) -> SweepResult:
    """Run (or with ``resume``, continue) the sweep ``sweep_path`` over the base config ``cfg``.

    Args:
        cfg: the base run config (``launchers/tune.py --config ... overrides``).
        sweep_path: the sweep file (:mod:`vasot_dist.tune.space`).
        address: None starts Ray on this machine; ``"auto"`` (or ``host:port``) joins a running cluster.
        storage_path: folder or URI for results; default ``tune.storage_path``, else
            ``<train.output_dir>/ray_tune``. Must be shared storage on a multi-node cluster.
        resume: continue the interrupted sweep stored under ``<storage>/<sweep name>``: finished trials are
            kept, unfinished and failed ones continue from their last checkpoint.
        num_cpus: CPUs of a local Ray instance (default: all); ignored with ``address``.

    Returns:
        the trials (best first), the best trial and the path of its config YAML.

    Raises:
        SweepError: a bad sweep file, value, data, storage or experiment folder (before any trial starts).
        RuntimeError: when no trial reported the metric.
    """
    spec, base = load_sweep(sweep_path, cfg)
    base = sweep_base_config(base, spec.name)
    storage = resolve_storage(storage_path or base.tune.storage_path, Path(base.train.output_dir) / "ray_tune")
    exp_path = f"{storage}/{spec.name}"
    _check_experiment(exp_path, resume)
    if resume:
        spec, base = _restore_state(exp_path, spec, base)
    if spec.scheduler.name == "asha" and not base.train.eval_every:
        warnings.warn("train.eval_every=0: trials report only at the end, so ASHA cannot stop any early; set "
                      "train.eval_every (e.g. in the sweep's overrides)", stacklevel=2)
    try:  # the data every trial reads, checked once here rather than failing in every trial
        for variant in data_variants(spec, base):
            check_data(variant, world_size=base.tune.workers_per_trial)
    except ConfigError as e:
        raise SweepError(str(e)) from None

    import ray
    from ray import tune

    started = _init_ray(address, num_cpus)
    try:
        alive = [n for n in ray.nodes() if n.get("Alive")]
        try:
            check_multinode_storage(storage, len(alive), asserted_shared=base.tune.shared_storage)
        except ValueError as e:
            raise SweepError(str(e)) from None
        limit = spec.max_concurrent or _concurrency(ray.cluster_resources(), base, joined=address is not None)
        log.info("sweep %s: %d trials of %s by %s (%s), %d alive node(s), up to %d trial(s) at once, results in %s",
                 spec.name, sweep_size(spec), spec.search, spec.metric, spec.mode, len(alive), limit, exp_path)
        registry = f"vasot_sweep_stops_{spec.name}"
        registry_actor = start_registry(registry)  # noqa: F841 -- kept: the actor lives while a handle does
        settings = {"metric": spec.metric, "mode": spec.mode, "train_storage": f"{exp_path}/train_runs",
                    "stop_registry": registry}
        trainable = tune.with_resources(
            tune.with_parameters(trial_driver, base=config_to_dict(base), settings=settings), {"CPU": DRIVER_CPUS})
        if resume:
            tuner = tune.Tuner.restore(exp_path, trainable=trainable, resume_errored=True)
        else:
            write_json(f"{exp_path}/{STATE_FILE}", {"sweep": spec.to_dict(), "base": config_to_dict(base)})
            searcher, tune_limit = build_searcher(spec, limit)
            tuner = tune.Tuner(
                trainable,
                param_space=spec.param_space(),
                tune_config=tune.TuneConfig(
                    metric=spec.metric, mode=spec.mode, num_samples=spec.num_samples, search_alg=searcher,
                    scheduler=build_scheduler(spec, base, registry), max_concurrent_trials=tune_limit,
                    trial_dirname_creator=_trial_dirname),
                run_config=tune.RunConfig(
                    name=spec.name, storage_path=storage,
                    failure_config=tune.FailureConfig(max_failures=base.tune.max_failures),
                    verbose=0, callbacks=[SweepProgress(spec, base.train.max_steps)]),  # our lines, not Tune's tables
            )
        results = tuner.fit()
        return summarize(results, spec, base, exp_path, storage)
    finally:
        if started:
            ray.shutdown()


def summarize(results, spec: SweepSpec, base: RunConfig, exp_path: str, storage: str) -> SweepResult:
    """Print the trials sorted by the metric; write ``trials.csv`` and the best config YAML."""
    from ray.tune import ExperimentAnalysis

    keys = [d.key for d in spec.space]
    tune_status = {t.trial_id: t.status for t in ExperimentAnalysis(exp_path).trials}
    rows = sort_rows(rows_from_results(results, spec.metric, base.train.max_steps, tune_status), spec.mode)
    best = pick_best(rows, spec.mode)
    out_dir = Path(base.train.output_dir) / "sweeps" / spec.name if is_uri(storage) else Path(exp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = format_table(rows, spec.metric, keys)
    (out_dir / "trials.csv").write_text(rows_to_csv(rows, spec.metric, keys))
    print(f"\nsweep '{spec.name}': {len(rows)} trials by {spec.metric} ({spec.mode}), results in {exp_path}\n{table}")
    for r in rows:
        if r.error:
            print(f"trial {r.trial_id} failed: {r.error}")
    if any(r.status == "unfinished" for r in rows):
        print("the sweep was interrupted; continue it with --resume (the same --sweep and --storage-path)")
    if best is None:
        raise RuntimeError(f"no trial of sweep '{spec.name}' reported '{spec.metric}' without failing; "
                           f"see the trial errors above and {exp_path}")
    path = write_best_config(base, best, out_dir / "best_config.yaml")
    print(f"best trial {best.trial_id}: {spec.metric} = {best.value:.6g} at step {best.step}"
          + (f", checkpoint {best.checkpoint}" if best.checkpoint else ""))
    print(f"best config: {path}\n  train it with: vasot-train --config {path}")
    return SweepResult(exp_path, rows, best, path, table)
