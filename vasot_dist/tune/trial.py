"""What runs inside Ray for one trial (Ray Train V2 + Tune shape).

``trial_driver`` is the Tune trainable: it builds a ``TorchTrainer`` for the trial's config and ``fit()``s it.
``train_worker`` runs on each Train worker and calls the same ``vasot_dist.train.loop.run`` as
``launchers/train.py``; at every evaluation :class:`RayReporter` hands the metrics, and rank 0's checkpoint,
to ``ray.train.report``, and ``TuneReportCallback`` forwards rank 0's metrics to Tune (ASHA decides on them;
a stop reaches the workers through :mod:`vasot_dist.tune.stopping`).

Restores: the Train run is named by the trial id (never by time) under the experiment folder, so a retried
worker group, a restarted trial or a ``--resume``d sweep finds the run's reported checkpoints through
``ray.train.get_checkpoint()``; the run directory (``train.run_id`` = trial id) holds the loop's own
checkpoints, used when they are newer and every rank sees them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vasot_dist.config import RunConfig, config_from_dict, config_to_dict
from vasot_dist.runtime.ranklog import get_logger
from vasot_dist.train.checkpoint import list_checkpoints
from vasot_dist.train.collapse import CollapseError
from vasot_dist.train.rundir import run_dir_for
from vasot_dist.tune.space import apply_params
from vasot_dist.tune.stopping import StopCheck, StopRequested

log = get_logger(__name__)

# Logical CPUs the trial driver (Tune trainable) holds: it only launches and watches its Train run.
DRIVER_CPUS = 0.25


def trial_config(base: RunConfig, params: dict[str, Any], run_id: str | None) -> RunConfig:
    """The config of one trial: ``base`` with the sampled ``{dotted key: value}`` and ``train.run_id``."""
    cfg = apply_params(base, params)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, run_id=run_id))


def scaling_config(cfg: RunConfig):
    """``ScalingConfig`` from ``tune.workers_per_trial`` / ``gpus_per_worker`` / ``cpus_per_worker``."""
    import ray.train

    t = cfg.tune
    resources: dict[str, float] = {"CPU": t.cpus_per_worker}
    if t.gpus_per_worker > 0:
        resources["GPU"] = t.gpus_per_worker
    return ray.train.ScalingConfig(num_workers=t.workers_per_trial, use_gpu=t.gpus_per_worker > 0,
                                   resources_per_worker=resources)


def trial_driver(params: dict[str, Any], *, base: dict[str, Any], settings: dict[str, Any]) -> None:
    """Tune trainable: run one trial as a Ray Train job (``tune.with_parameters`` binds ``base``/``settings``).

    ``params``: the sampled ``{dotted key: value}``; ``base``: the sweep's base config as a dict;
    ``settings``: ``metric``, ``mode``, ``train_storage`` (folder or URI of the Train runs) and
    ``stop_registry`` (name of the sweep's :class:`~vasot_dist.tune.stopping.StopRegistry`).
    """
    import ray.train
    import ray.tune
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    trial_id = ray.tune.get_context().get_trial_id()
    cfg = trial_config(config_from_dict(base), params, trial_id)
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"cfg": config_to_dict(cfg), "metric": settings["metric"], "trial_id": trial_id,
                           "stop_registry": settings["stop_registry"]},
        scaling_config=scaling_config(cfg),
        run_config=ray.train.RunConfig(
            name=trial_id,
            storage_path=settings["train_storage"],
            failure_config=ray.train.FailureConfig(max_failures=cfg.tune.max_failures),
            # keeps the best checkpoint by the sweep metric; Ray Train always keeps the latest as well
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute=settings["metric"],
                checkpoint_score_order=settings["mode"]),
            callbacks=[TuneReportCallback()],
            # Ray Train's own INFO lines (worker group starts, every report as a whole TrainingReport) are in its
            # log files; the sweep prints its progress itself (vasot_dist.tune.progress)
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
        ),
    )
    trainer.fit()


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train worker function: ``run(cfg)`` with reports through Ray, resuming where the run left off."""
    import ray.train

    from vasot_dist.train.loop import run

    cfg = config_from_dict(config["cfg"])
    rank = ray.train.get_context().get_world_rank()
    quiet_trial_output()
    reporter = RayReporter(config["metric"], rank, config["trial_id"])
    stop_check = StopCheck(config["stop_registry"], config["trial_id"], rank, cfg.train.log_every)
    checkpoint = ray.train.get_checkpoint()
    try:
        if checkpoint is None:
            run(cfg, resume=choose_resume(cfg, None), report=reporter, on_step=stop_check)
        else:
            with checkpoint.as_directory() as ray_dir:
                run(cfg, resume=choose_resume(cfg, Path(ray_dir)), report=reporter, on_step=stop_check)
    except StopRequested as stop:  # the scheduler stopped this trial: end the Train run normally
        log.info("trial %s: %s", config["trial_id"], stop)
    except CollapseError as collapse:  # train.on_collapse=stop: the trial has its answer, a retry would collapse too
        log.warning("trial %s: %s", config["trial_id"], collapse)


def quiet_trial_output() -> None:
    """A trial's worker prints warnings only: no progress bar (``TQDM_DISABLE``) and no INFO lines. Its metrics
    reach the sweep through Ray, and its run directory holds ``metrics.jsonl``; with several trials at once,
    their bars and evaluation lines interleaved would bury the sweep's own progress lines."""
    os.environ["TQDM_DISABLE"] = "1"
    for name in ("vasot_dist.train", "vasot_dist.eval", "vasot_dist.data", "vasot_dist.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:  # Ray 2.60 names this logger by its file path, outside "ray.train": LoggingConfig misses its per-report
        # INFO line ("Reporting training result N: TrainingReport(...)", every metric of every report)
        from ray.train.v2._internal.execution import context as train_context

        logging.getLogger(train_context.__file__).setLevel(logging.WARNING)
    except ImportError:  # another Ray layout: only that line comes back
        pass


def _all_ranks(value: Any) -> list[Any]:
    """``value`` from every rank (Ray's TorchTrainer has made the process group), ``[value]`` alone."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def choose_resume(cfg: RunConfig, ray_dir: Path | None) -> str:
    """The ``resume`` argument of ``run``: the newer of the run's reported Ray checkpoint (in ``ray_dir``) and
    the run directory's own newest checkpoint; the latter only when every rank sees the same one (a run
    directory on one node's local disk is invisible to the others). ``"none"`` when there is neither."""
    reported = list_checkpoints(ray_dir) if ray_dir is not None else []
    ray_step, ray_path = reported[-1] if reported else (-1, None)
    local = list_checkpoints(run_dir_for(cfg).checkpoints) if cfg.train.run_id else []
    local_step = local[-1][0] if local else -1
    if len(set(_all_ranks(local_step))) != 1:
        local_step = -1
    if local_step >= 0 and local_step > ray_step:
        return "auto"
    return str(ray_path) if ray_path is not None else "none"


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or no hard links: copy
        shutil.copy2(src, dst)
    return dst


@contextmanager
def staged_checkpoint(path: Path) -> Iterator[Path]:
    """A temporary folder holding only ``path`` (a checkpoint file or DeepSpeed folder), by hard links, for
    ``Checkpoint.from_directory``; it sits in the run directory so the links stay on one filesystem."""
    with tempfile.TemporaryDirectory(dir=path.parent.parent, prefix=".ray_report_") as tmp:
        dst = Path(tmp) / path.name
        if path.is_dir():
            shutil.copytree(path, dst, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(path), str(dst))
        yield Path(tmp)


class RayReporter:
    """The loop's ``report`` hook under Ray Train: every rank calls ``ray.train.report`` (it is a barrier);
    rank 0 attaches its checkpoint and the metrics (others have none). ``step`` is added to the metrics: ASHA
    budgets count it."""

    def __init__(self, metric: str, rank: int, trial_id: str) -> None:
        self.metric = metric
        self.rank = rank
        self.trial_id = trial_id

    def __call__(self, step: int, metrics: dict[str, float], checkpoint_path: Path | None) -> None:
        import ray.train

        row = {**metrics, "step": step}
        if self.rank == 0 and self.metric not in metrics:
            raise ValueError(f"the sweep's metric '{self.metric}' is not among the evaluation metrics "
                             f"{sorted(metrics)}; set 'metric:' in the sweep file to one of them")
        if self.rank == 0 and checkpoint_path is not None:
            with staged_checkpoint(Path(checkpoint_path)) as folder:
                ray.train.report(row, checkpoint=ray.train.Checkpoint.from_directory(str(folder)))
        else:
            ray.train.report(row, checkpoint=None)
