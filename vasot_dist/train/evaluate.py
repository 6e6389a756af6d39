"""Evaluating what training wrote: a checkpoint (``vasot-evaluate``) and a run against the same architecture
untrained (``vasot-compare``, the end of ``make demo``).

Both load the model the way training built it, so they live here rather than in ``vasot_dist.eval`` (whose
metrics know nothing of training).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from vasot_dist.config import RunConfig, load_config
from vasot_dist.eval.runner import evaluate_model
from vasot_dist.runtime.distributed import init_distributed, shutdown
from vasot_dist.runtime.files import write_json_atomic
from vasot_dist.runtime.ranklog import get_logger, setup_logging
from vasot_dist.runtime.seeding import seed_everything
from vasot_dist.train import checkpoint as ckpt
from vasot_dist.train.loop import init_prototypes
from vasot_dist.train.model import build_train_model
from vasot_dist.train.preflight import check_data, fill_from_data
from vasot_dist.train.resume import checkpoint_config

log = get_logger(__name__)


def find_checkpoint(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint file ``path`` names, or a run directory's newest loadable one; returns it and its state.

    Raises:
        FileNotFoundError: neither a checkpoint file nor a run directory with a loadable one.
        ValueError: a DeepSpeed checkpoint folder (convert it with ``zero_to_fp32`` first).
    """
    p = Path(path)
    if p.is_dir() and (p / "checkpoints").is_dir():
        found = ckpt.latest_loadable(p / "checkpoints")
        if found is None:
            names = ", ".join(q.name for _, q in ckpt.list_checkpoints(p / "checkpoints"))
            raise FileNotFoundError(f"no loadable checkpoint under {p / 'checkpoints'}"
                                    + (f": every one is unreadable ({names})" if names else ""))
        p = found[0]
    if p.is_dir():
        if not ckpt.is_checkpoint_name(p.name):
            raise FileNotFoundError(f"{p} is neither a checkpoint file nor a run directory (no checkpoints/)")
        raise ValueError(f"{p} is a DeepSpeed folder; convert it with deepspeed's zero_to_fp32 first")
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    return p, ckpt.load_file_checkpoint(p)


def checkpoint_step(state: dict[str, Any]) -> int | None:
    """The training step a checkpoint's state was saved at (None for a state without our progress record)."""
    return (state.get("vasot") or {}).get("progress", {}).get("step")


def default_out_dir(checkpoint: Path) -> Path:
    """Where ``vasot-evaluate`` writes for ``checkpoint`` by default: ``<run>/evaluate/<checkpoint name>``, beside
    the run's own evaluation of that step (``<run>/eval/<checkpoint name>``, written by training), never over it."""
    return checkpoint.parent.parent / "evaluate" / checkpoint.stem


def evaluate_checkpoint(cfg: RunConfig, checkpoint: str, out_dir: str | None = None, *,
                        overwrite: bool = False) -> dict[str, float]:
    """Load ``checkpoint`` (file or run directory), evaluate it, write ``metrics.json`` and ``report.md`` to
    ``out_dir`` (default :func:`default_out_dir`); returns the metrics on rank 0, ``{}`` elsewhere.

    A folder that already holds files is refused unless ``overwrite``; then the new evaluation is written beside
    it and replaces it only once complete, so a failed evaluation loses nothing.

    Raises:
        FileExistsError: ``out_dir`` holds files and ``overwrite`` is False (before anything runs).
    """
    path, state = find_checkpoint(checkpoint)
    out = Path(out_dir) if out_dir else default_out_dir(path)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already holds an evaluation; pass --overwrite to replace it, or --out to "
                              "write elsewhere")
    cfg = checkpoint_config(cfg, state, path)  # the checkpoint's own config: another model is refused by name
    check_data(cfg, training=False)
    ctx = init_distributed(cfg.train.device, cfg.dist.backend)
    setup_logging(ctx.rank)
    try:
        cfg = fill_from_data(cfg, training=False, report=ctx.is_main)
        model = build_train_model(cfg, from_checkpoint=True).to(ctx.device)
        ckpt.load_model_weights(model, state["model"], path)
        partial = out.with_name(f".{out.name}.partial")
        if ctx.is_main:  # what a failed evaluation left
            shutil.rmtree(partial, ignore_errors=True)
        metrics = evaluate_model(cfg, model, ctx, out_dir=partial, checkpoint=str(path),
                                 step=checkpoint_step(state))
        if ctx.is_main:  # only rank 0 writes: swap the complete folder in, then drop the replaced one
            replaced = out.with_name(f".{out.name}.replaced")
            shutil.rmtree(replaced, ignore_errors=True)
            if out.exists():
                out.rename(replaced)
            partial.rename(out)
            shutil.rmtree(replaced, ignore_errors=True)
            log.info("wrote %s", out / "report.md")
        return metrics
    finally:
        shutdown(ctx)


def compare_with_untrained(run: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Metrics of a run's newest checkpoint and of the same architecture at initialisation (same seed,
    prototypes initialised the same way), with the run's own ``config.yaml`` (plus ``overrides``).

    The trained side reuses the metrics the run's final evaluation wrote, when present. Writes
    ``<run>/eval/compare.json`` and returns ``{"untrained": {...}, "trained": {...}, "checkpoint": path,
    "verdict": {...}}`` (:func:`compare_verdict`: where training made a main metric worse, with the run's last
    collapse statistics).
    """
    run_dir = Path(run)
    cfg = load_config(run_dir / "config.yaml", overrides)
    path, state = find_checkpoint(run_dir)
    cfg = checkpoint_config(cfg, state, path)
    check_data(cfg, training=False)
    ctx = init_distributed(cfg.train.device, cfg.dist.backend)
    setup_logging(ctx.rank)
    try:
        cfg = fill_from_data(cfg, training=False, report=ctx.is_main)
        seed_everything(cfg.train.seed)
        untrained = build_train_model(cfg).to(ctx.device)
        init_prototypes(cfg, untrained, ctx)
        before = evaluate_model(cfg, untrained, ctx, out_dir=run_dir / "eval" / "untrained",
                                checkpoint="none: the same model untrained (seed, initialisation)", step=0)
        done = run_dir / "eval" / path.stem / "metrics.json"
        if done.exists():
            after = {k: v for k, v in json.loads(done.read_text()).items() if isinstance(v, (int, float))}
        else:
            trained = build_train_model(cfg, from_checkpoint=True).to(ctx.device)
            ckpt.load_model_weights(trained, state["model"], path)
            after = evaluate_model(cfg, trained, ctx, out_dir=run_dir / "eval" / path.stem, checkpoint=str(path),
                                   step=checkpoint_step(state))
    finally:
        shutdown(ctx)
    result = {"untrained": before, "trained": after, "checkpoint": str(path),
              "verdict": compare_verdict(before, after, run_dir / "metrics.jsonl", cfg.train.collapse_cos)}
    write_json_atomic(run_dir / "eval" / "compare.json", result, indent=2)
    return result


# The metrics a trained model must not lose to its untrained self: alignment, then segmentation.
MAIN_METRICS = ("align_acc", "kendalls_tau", "seg/MoF")


def last_collapse_row(metrics_jsonl: Path) -> dict[str, float] | None:
    """``{"step", "collapse/emb_cos", ...}`` of the last row of ``metrics.jsonl`` that holds the collapse
    statistics, or None (no such row, or no file)."""
    last = None
    if metrics_jsonl.is_file():
        for line in metrics_jsonl.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if "collapse/emb_cos" in row:
                last = {"step": row["step"], **{k: v for k, v in row.items() if k.startswith("collapse/")}}
    return last


def compare_verdict(untrained: dict[str, float], trained: dict[str, float], metrics_jsonl: Path,
                    collapse_cos: float) -> dict[str, Any]:
    """Whether training lost ground on a main metric (:data:`MAIN_METRICS`, those both sides have), and the
    run's last logged collapse statistics. ``{"compared": [metric, ...], "worse_on": [metric, ...], "collapse":
    row or None, "message": a sentence when ``worse_on`` is not empty, else None}``."""
    compared = [k for k in MAIN_METRICS
                if isinstance(untrained.get(k), (int, float)) and isinstance(trained.get(k), (int, float))]
    worse = [k for k in compared if trained[k] < untrained[k]]
    row = last_collapse_row(metrics_jsonl)
    message = None
    if worse:
        lost = ", ".join(f"{k} {untrained[k]:.3f} -> {trained[k]:.3f}" for k in worse)
        if row is None:
            why = f"{metrics_jsonl} holds no collapse statistics (a run older than the collapse monitor)"
        else:
            cos = row["collapse/emb_cos"]
            state = (f">= train.collapse_cos {collapse_cos:g}: the encoder collapsed, every frame embedded alike"
                     if cos >= collapse_cos else f"< train.collapse_cos {collapse_cos:g}: not a collapse by that measure")
            why = f"the last logged collapse/emb_cos in {metrics_jsonl} is {cos:.4f} at step {row['step']} ({state})"
        message = (f"the trained model is WORSE than the untrained one on {lost}; {why}. "
                   "See docs/training.md#collapse-monitor")
    return {"compared": compared, "worse_on": worse, "collapse": row, "message": message}
