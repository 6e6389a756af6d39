"""The training loop: ``run(cfg)``, read top to bottom.

Called by ``launchers/train.py`` (one process or torchrun) and by Ray Train workers (``vasot_dist.tune``).
Every rank runs the same code; rank 0 writes the run directory, logs and checkpoints.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vasot_dist.config import RunConfig, config_to_dict
from vasot_dist.runtime.distributed import (
    DistContext,
    all_gather_objects,
    any_rank,
    barrier,
    broadcast_object,
    init_distributed,
    shutdown,
)
from vasot_dist.runtime.progress import progress_bar
from vasot_dist.runtime.ranklog import get_logger, setup_logging
from vasot_dist.runtime.seeding import rng_state, seed_everything, set_rng_state
from vasot_dist.train import checkpoint as ckpt
from vasot_dist.train.buffers import broadcast_buffers
from vasot_dist.train.collapse import CollapseError, CollapseMonitor
from vasot_dist.train.engine import DeepSpeedEngine, Engine, build_engine
from vasot_dist.train.log_window import LogWindow
from vasot_dist.train.model import TrainModel, build_train_model, compile_for_training
from vasot_dist.train.nonfinite import NonFiniteError
from vasot_dist.train.preflight import check_data, fill_from_data, launch_world_size
from vasot_dist.train.resume import data_position, open_run_dir, release_run_dirs, write_error
from vasot_dist.train.rundir import RunDir, new_run_id, run_dir_for
from vasot_dist.train.tracking import Tracker

log = get_logger(__name__)

# Called at every evaluation with (step, metrics, checkpoint path or None); Ray Tune reports through it.
ReportFn = Callable[[int, dict[str, float], "Path | None"], None]
# Called on every rank after every optimizer step with (step, model, loss output): hooks, tests.
StepFn = Callable[[int, TrainModel, Any], None]


class _Preemption:
    """SIGTERM / SIGUSR1 set a flag; after every optimiser step the ranks agree on it (:meth:`agreed`), and the
    loop then checkpoints and exits 0 (docs/training.md: SLURM, Kubernetes, torchrun).

    The agreement is a one-integer all-reduce on the CPU: the default group under gloo, a gloo side group under
    NCCL, so it never waits on the GPU and costs a host round trip. Every step, not every log step: torchrun
    gives its workers ``--shutdown-timeout`` (30 s) after forwarding a signal before it kills them, and
    Kubernetes ``terminationGracePeriodSeconds`` (30 s). The DataLoader workers ignore both signals
    (``vasot_dist.data.workers``), so a signal to the whole process group reaches this flag instead of killing
    them.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self, ctx: DistContext) -> None:
        self.ctx = ctx
        self.requested = False
        self._old: dict[int, Any] = {}
        self._group = None

    def __enter__(self) -> _Preemption:
        for sig in self.SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. some Ray workers): no handler, no preemption
                pass
        if self.ctx.distributed:
            import torch.distributed as dist

            if dist.get_backend() != "gloo":  # a collective: every rank enters here at the same point
                self._group = dist.new_group(backend="gloo")
        return self

    def _handle(self, signum, frame) -> None:
        if not self.requested:
            log.warning("received %s: checkpointing after this step", signal.Signals(signum).name)
        self.requested = True

    def agreed(self) -> bool:
        """True on every rank when any rank has received a signal (a collective: call it on every rank)."""
        if not self.ctx.distributed:
            return self.requested
        import torch.distributed as dist

        flag = torch.tensor([int(self.requested)], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return bool(flag.item())

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._group is not None:
            import torch.distributed as dist

            dist.destroy_process_group(self._group)


def with_method_pairs(cfg: RunConfig) -> RunConfig:
    """``cfg`` with ``data.pairs`` on when its method trains on pairs of videos of one activity."""
    data = dataclasses.replace(cfg.data, pairs=cfg.data.pairs or cfg.method.needs_pairs)
    return dataclasses.replace(cfg, data=data)


def _prepare_config(cfg: RunConfig, ctx: DistContext) -> RunConfig:
    """Fill in what a run needs decided once for all ranks: the run id and pairing."""
    run_id = cfg.train.run_id or broadcast_object(ctx, new_run_id() if ctx.is_main else None)
    cfg = with_method_pairs(cfg)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, run_id=run_id))


@torch.no_grad()
def init_prototypes(cfg: RunConfig, model: TrainModel, ctx: DistContext) -> None:
    """k-means on the untrained encoder's embeddings of every training video (ASOT ``fit_clusters`` clusters
    the sampled frames of all of them): one epoch of the training stream (each rank embeds its share, all
    but at most world_size x batch_size - 1 videos), gathered on every rank, clustered with the same seed;
    DDP / DeepSpeed then broadcast rank 0's prototypes when they wrap the model."""
    from vasot_dist.data import make_train_loader

    protos = model.loss.prototypes
    if protos is None:
        return
    if cfg.model.prototype_init == "random":
        protos.init_random_(cfg.train.seed)
        return
    loader = make_train_loader(cfg.data, rank=ctx.rank, world_size=ctx.world_size, epoch=0, seed=cfg.train.seed + 7919)
    was_training = model.training
    model.eval()
    embs = []
    with progress_bar(len(loader), "k-means init: embedding", enabled=ctx.is_main, unit="batch", leave=False) as bar:
        for batch in loader:
            batch = batch.to(ctx.device)
            emb = model.embed(_inputs(batch), batch.mask)
            embs.append(emb[batch.mask].float().cpu())
            bar.update(1)
    model.train(was_training)
    gathered = torch.cat([e for part in all_gather_objects(ctx, embs) for e in part])
    max_iter = 100
    with progress_bar(max_iter, f"k-means init: {protos.num_actions} clusters of {len(gathered)} embeddings",
                      enabled=ctx.is_main, unit="iter", leave=False) as bar:
        inertia = protos.init_kmeans_(gathered.to(ctx.device), seed=cfg.train.seed, max_iter=max_iter,
                                      on_iteration=lambda _: bar.update(1))
    log.info("prototypes initialised by k-means on %d embeddings (inertia %.4f)", len(gathered), inertia)


def _checkpoint_state(engine: Engine, ctx: DistContext, progress: dict[str, int], tracker: Tracker,
                      cfg: RunConfig) -> dict[str, Any] | None:
    """Everything a resume needs, gathered on rank 0 (None elsewhere)."""
    rank_states = all_gather_objects(ctx, {"rng": rng_state(), "progress": dict(progress)})
    if not ctx.is_main:
        return None
    return {
        "progress": dict(progress),
        "ranks": rank_states,
        "world_size": ctx.world_size,
        "wandb_id": tracker.wandb_id,
        "config": config_to_dict(cfg),
    }


def check_finite_weights(engine: Engine, ctx: DistContext, run_dir: RunDir, step: int) -> None:
    """Raise NonFiniteError (on every rank) when a weight or buffer of the model is NaN or infinite: a
    checkpoint of them would be useless, and pruning would make room for it by deleting good ones."""
    named = [(n, t) for n, t in (*engine.module.named_parameters(), *engine.module.named_buffers())
             if t.is_floating_point() and t.numel()]
    finite = torch.stack([torch.isfinite(t).all() for _, t in named]).tolist() if named else []  # one read
    bad = [n for (n, _), ok in zip(named, finite) if not ok]
    if any_rank(ctx, bool(bad)):
        kept = ckpt.list_checkpoints(run_dir.checkpoints)
        raise NonFiniteError(
            f"step {step}: the model's weights are not finite ({', '.join(bad[:5]) or 'on another rank'}"
            f"{', ...' if len(bad) > 5 else ''}); no checkpoint written, the newest one is kept "
            f"({kept[-1][1] if kept else 'none yet'})")


def save_checkpoint(engine: Engine, ctx: DistContext, run_dir: RunDir, progress: dict[str, int],
                    tracker: Tracker, cfg: RunConfig) -> Path:
    step = progress["step"]
    broadcast_buffers(engine.module, ctx)  # every rank holds what the checkpoint holds (rank 0's BN statistics)
    check_finite_weights(engine, ctx, run_dir, step)
    extra = _checkpoint_state(engine, ctx, progress, tracker, cfg)
    if isinstance(engine, DeepSpeedEngine):
        extra = broadcast_object(ctx, extra)
        tag = ckpt.checkpoint_name(step, folder=True)
        engine.save(run_dir.checkpoints, tag, client_state={"vasot": extra})
        barrier(ctx)
        path = run_dir.checkpoints / tag
        if ctx.is_main:
            ckpt.mark_folder_complete(path)
            ckpt.prune(run_dir.checkpoints, cfg.train.keep_last, step)
    else:
        path = run_dir.checkpoints / ckpt.checkpoint_name(step)
        if ctx.is_main:
            ckpt.save_file_checkpoint(run_dir.checkpoints, step, {**engine.state_dict(), "vasot": extra},
                                      cfg.train.keep_last)
    barrier(ctx)
    log.info("checkpoint step %d -> %s", step, path)
    return path


def load_checkpoint(engine: Engine, path: Path, ctx: DistContext) -> dict[str, Any]:
    """Restore engine state and this rank's RNG; returns our extra state (progress, wandb id)."""
    if path.is_dir():
        if not isinstance(engine, DeepSpeedEngine):
            raise ValueError(f"{path} is a DeepSpeed checkpoint folder; set dist.engine=deepspeed to resume it")
        extra = engine.load(path.parent, path.name)["vasot"]
    else:
        if isinstance(engine, DeepSpeedEngine):
            raise ValueError(f"{path} is a DDP checkpoint file; set dist.engine=ddp to resume it")
        state = ckpt.load_file_checkpoint(path)
        engine.load_state_dict(state)
        extra = state["vasot"]
    if extra["world_size"] == ctx.world_size:
        set_rng_state(extra["ranks"][ctx.rank]["rng"])
    else:
        log.warning("checkpoint was written by %d ranks, resuming on %d: RNG streams restart", extra["world_size"],
                    ctx.world_size)
    return extra


def run(cfg: RunConfig, resume: str = "none", *, overwrite: bool = False, report: ReportFn | None = None,
        on_step: StepFn | None = None) -> dict[str, Any]:
    """Train ``cfg`` to ``train.max_steps``; returns a summary (run dir, final step, last metrics, status).

    The data must exist (``vasot-train`` writes the built-in synthetic shards first when the config names
    them); checks that need it run before the process group or the run directory exists.

    Args:
        resume: ``"none"``, ``"auto"`` (the run directory's newest readable checkpoint) or a checkpoint path.
        overwrite: delete the run directory first; without it (or ``resume``), a run directory that holds
            checkpoints is refused (:mod:`vasot_dist.train.resume`).

    Raises:
        ConfigError: missing shards or splits, a modality the dataset or the encoder does not match, a value
            this data or machine does not allow (``preflight.check_values``); a run directory that cannot be used
            as asked (``RunDirError``: not a run, held by another run, unwritable), before anything is written.
        RunWriteError: the run directory stopped accepting writes (disk full, read-only) during the run.
        NonFiniteError: ``train.max_nonfinite_steps`` steps in a row with a non-finite loss or gradient norm,
            or non-finite weights at a checkpoint.
        CollapseError: ``train.on_collapse=stop`` and a log row's ``collapse/emb_cos`` reached
            ``train.collapse_cos`` (a checkpoint of that step is written first, on every rank together).
    """
    joined = torch.distributed.is_available() and torch.distributed.is_initialized()  # a group Ray Train made
    check_data(cfg, world_size=torch.distributed.get_world_size() if joined else launch_world_size())
    ctx = init_distributed(cfg.train.device, cfg.dist.backend)
    setup_logging(ctx.rank)
    try:
        cfg = fill_from_data(cfg, world_size=ctx.world_size, report=ctx.is_main)
        return _train(cfg, ctx, resume, overwrite, report, on_step)
    except OSError as e:  # a full or read-only disk under the run: a message, not a traceback
        clear = write_error(e, cfg)
        if clear is None:
            raise
        raise clear from e
    finally:
        release_run_dirs()  # the run directory's lock (rank 0)
        shutdown(ctx)


def _train(cfg: RunConfig, ctx: DistContext, resume: str, overwrite: bool, report: ReportFn | None,
           on_step: StepFn | None) -> dict[str, Any]:
    from vasot_dist.data import CorruptTally, corrupt_count, make_train_loader

    cfg = _prepare_config(cfg, ctx)
    run_dir = run_dir_for(cfg)
    resume_path = open_run_dir(cfg, run_dir, resume, overwrite, ctx)
    barrier(ctx)
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)  # same init on every rank

    # A resumed model takes every weight from its checkpoint: pretrained ones are not loaded (or downloaded).
    model = build_train_model(cfg, from_checkpoint=resume_path is not None).to(ctx.device)
    if resume_path is None:
        if ctx.is_main:
            run_dir.save_weights_source(cfg, model.encoder)
        init_prototypes(cfg, model, ctx)
    if cfg.train.compile:
        compile_for_training(model)
    engine = build_engine(cfg, model, ctx)

    progress = {"step": 0, "epoch": 0, "batch_in_epoch": 0}
    wandb_id = None
    if resume_path is not None:
        extra = load_checkpoint(engine, resume_path, ctx)
        progress, wandb_id = data_position(extra, cfg, ctx.world_size), extra.get("wandb_id")
        log.info("resumed from %s at step %d (epoch %d, batch %d)", resume_path, progress["step"],
                 progress["epoch"], progress["batch_in_epoch"])
    tracker = Tracker(cfg, run_dir, enabled=ctx.is_main, wandb_id=wandb_id)
    log.info("run %s: %s on %s x%d, engine %s", run_dir.root, cfg.method.name, ctx.device, ctx.world_size,
             cfg.dist.engine)

    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                              enabled=cfg.train.bf16 and ctx.device.type == "cuda" and cfg.dist.engine == "ddp")
    bar = _progress_bar(cfg, progress["step"], ctx)
    window, status, last_eval = LogWindow(), "completed", {}
    monitor = CollapseMonitor(cfg.train.collapse_cos)
    corrupt_done = corrupt_logged = 0  # this rank's corrupt samples: in finished epochs, in logged rows
    engine.train()
    with _Preemption(ctx) as preempt:
        while progress["step"] < cfg.train.max_steps and status == "completed":
            loader = make_train_loader(cfg.data, rank=ctx.rank, world_size=ctx.world_size, epoch=progress["epoch"],
                                       seed=cfg.train.seed, start_batch=progress["batch_in_epoch"])
            tally = CorruptTally()
            for batch in loader:
                tally.update(batch)  # host integers stamped by the loader workers
                frames = int(batch.mask.sum())  # on the host, before the copy: no device sync
                batch = batch.to(ctx.device)
                with autocast:
                    out = engine(_inputs(batch), batch.mask if batch.padded else None, progress["step"])
                engine.backward(out.loss)
                progress["batch_in_epoch"] += 1
                window.add({"loss": out.loss, **out.metrics}, frames)
                if not engine.step():
                    continue
                if engine.module.loss.prototypes is not None:
                    engine.module.loss.prototypes.renormalize_()  # back on the sphere after every step, as ASOT does
                progress["step"] += 1
                step = progress["step"]
                if bar is not None:
                    bar.update(1)
                if on_step is not None:
                    on_step(step, engine.module, out)

                if step % cfg.train.log_every == 0 or step == cfg.train.max_steps:
                    # Counts since the previous row: corrupt samples skipped (all ranks), steps skipped as non-finite.
                    row = window.reduce(ctx, {"corrupt_skipped": corrupt_done + tally.total - corrupt_logged})
                    corrupt_logged = corrupt_done + tally.total
                    row["nonfinite_steps"], nonfinite_run = engine.guard.read()
                    row["lr"] = engine.lr
                    row["epoch"] = progress["epoch"]
                    tracker.log(row, step)
                    if bar is not None:
                        bar.set_postfix(loss=f"{row['loss']:.4f}", fps=f"{row['frames_per_s']:.0f}")
                    window = LogWindow()
                    if nonfinite_run >= cfg.train.max_nonfinite_steps:
                        raise NonFiniteError(
                            f"stopped at step {step}: {nonfinite_run} optimiser steps in a row had a non-finite loss "
                            f"or gradient norm (train.max_nonfinite_steps={cfg.train.max_nonfinite_steps}); they "
                            "were not applied and no checkpoint was written from them. Lower optim.lr, set "
                            "optim.grad_clip, or look for NaN / inf in the data")
                    collapse = monitor.check(row, step)  # the same reduced row on every rank: the same answer
                    if collapse is not None and ctx.is_main:
                        log.warning("%s", collapse)
                    # stop: every rank checkpoints and raises together (one flag all-reduced, at log rows only)
                    if cfg.train.on_collapse == "stop" and any_rank(ctx, collapse is not None):
                        path = save_checkpoint(engine, ctx, run_dir, progress, tracker, cfg)
                        raise CollapseError(
                            f"stopped at step {step} (train.on_collapse=stop): collapse/emb_cos "
                            f"{row['collapse/emb_cos']:.4f} >= train.collapse_cos {cfg.train.collapse_cos:g}, "
                            f"the encoder embeds every frame alike; checkpoint written: {path}. See "
                            "docs/training.md#collapse-monitor")
                if cfg.train.plot_every and step % cfg.train.plot_every == 0 and ctx.is_main:
                    tracker.log_images(_plot_couplings(out, batch, run_dir, step), step)

                stop = preempt.agreed()  # a signal on any rank: checkpoint at this step boundary
                if cfg.train.eval_every and step % cfg.train.eval_every == 0 and step < cfg.train.max_steps:
                    path = save_checkpoint(engine, ctx, run_dir, progress, tracker, cfg)
                    last_eval = _evaluate(cfg, engine, ctx, run_dir, step, tracker)
                    if report is not None:
                        report(step, last_eval, path)
                    engine.train()
                elif stop or (cfg.train.ckpt_every and step % cfg.train.ckpt_every == 0):
                    save_checkpoint(engine, ctx, run_dir, progress, tracker, cfg)
                if stop:
                    log.warning("preemption signal: checkpoint written at step %d, exiting", step)
                    status = "preempted"
                    break
                if step >= cfg.train.max_steps:
                    break
            else:  # the epoch's batches are exhausted
                corrupt_done += corrupt_count(loader)  # exact: includes samples after a worker's last batch
                progress["epoch"] += 1
                progress["batch_in_epoch"] = 0

    if status == "completed":
        path = run_dir.checkpoints / ckpt.checkpoint_name(progress["step"], folder=isinstance(engine, DeepSpeedEngine))
        if not path.exists():  # not already written by the periodic checkpoint of this very step
            path = save_checkpoint(engine, ctx, run_dir, progress, tracker, cfg)
        last_eval = _evaluate(cfg, engine, ctx, run_dir, progress["step"], tracker)
        if report is not None:
            report(progress["step"], last_eval, path)
    if bar is not None:
        bar.close()
    tracker.finish()
    return {"run_dir": str(run_dir.root), "step": progress["step"], "status": status, "metrics": last_eval}


def _inputs(batch) -> torch.Tensor:
    return batch.frames if batch.frames is not None else batch.features


def _progress_bar(cfg: RunConfig, initial: int, ctx: DistContext):
    if not ctx.is_main:
        return None
    return progress_bar(cfg.train.max_steps, f"train {cfg.method.name}", enabled=True, unit="step", initial=initial)


def _plot_couplings(out, batch, run_dir: RunDir, step: int) -> dict[str, Path]:
    from vasot_dist.eval.plots import plot_transport_plan

    images = {}
    for name, plan in list(out.couplings.items())[:2]:
        p = plan[0].float().cpu().numpy()
        path = run_dir.plots / f"{name}_step{step:08d}.png"
        # "align": frames of two videos; the others (asot, seg, CLOT's frames / refined): frames -> prototypes
        axes = ("frames of x", "frames of y") if name == "align" else ("frames", "actions (prototypes)")
        plot_transport_plan(p, str(path), title=f"{name} step {step} ({batch.keys[0]})", axes=axes)
        images[f"plots/{name}"] = path
    return images


def _evaluate(cfg: RunConfig, engine: Engine, ctx: DistContext, run_dir: RunDir, step: int,
              tracker: Tracker) -> dict[str, float]:
    """The periodic evaluation hook (all ranks extract embeddings; rank 0 scores and logs)."""
    from vasot_dist.eval.runner import evaluate_model

    broadcast_buffers(engine.module, ctx)  # the checkpoint's BN statistics on every rank: its metrics, not a mix
    engine.eval()
    out_dir = run_dir.root / "eval" / f"step_{step:08d}"
    metrics = evaluate_model(cfg, engine.module, ctx, out_dir=out_dir, step=step,
                             checkpoint=str(run_dir.checkpoints / ckpt.checkpoint_name(
                                 step, folder=isinstance(engine, DeepSpeedEngine))))
    if ctx.is_main and metrics:
        tracker.log_evaluation(metrics, out_dir, step)
    return metrics
