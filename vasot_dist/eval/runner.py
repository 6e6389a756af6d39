"""Evaluation of a model: embeddings of whole videos (split across ranks, gathered on rank 0), the protocols of
``alignment`` / ``segmentation`` / ``procedure``, plots, ``metrics.json`` and a report.

This module is the glue between torch and the pure-numpy metric functions; the metrics themselves stay free of
torch and distributed code. A corrupt video is skipped by the loader, so every evaluation records how much of
the split it scored (``videos_scored``, ``videos_expected``, ``corrupt_skipped``) and fails below
``eval.min_scored_fraction`` of it: a partial evaluation never passes for a complete one. It knows nothing of
training: the model is anything with ``embed(inputs, mask)``, ``train()`` / ``eval()`` and ``loss.segment(emb, mask)`` (a ``TrainModel``); loading checkpoints is
``vasot_dist.train.evaluate``'s job.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vasot_dist.config import RunConfig
from vasot_dist.config.rules import value_at
from vasot_dist.eval import alignment as A
from vasot_dist.eval import plots
from vasot_dist.eval.procedure import cluster_keysteps, keystep_metrics
from vasot_dist.eval.report import write_report
from vasot_dist.eval.segmentation import segmentation_metrics
from vasot_dist.ot import eager
from vasot_dist.runtime.distributed import DistContext, all_gather_objects, broadcast_object
from vasot_dist.runtime.progress import progress_bar
from vasot_dist.runtime.ranklog import get_logger

log = get_logger(__name__)


class IncompleteEvaluation(RuntimeError):
    """Fewer videos of a split were scored than ``eval.min_scored_fraction`` asks (corrupt or unreadable ones
    skipped)."""


@dataclass
class VideoEmbedding:
    key: str
    activity: str
    emb: np.ndarray  # (T, D) float32
    labels: np.ndarray  # (T,) int
    progress: np.ndarray | None  # (T,) float, synthetic ground truth (-1 background)
    segmentation: np.ndarray | None  # (T,) predicted cluster ids (segmentation methods)
    thumbs: np.ndarray | None = None  # (n, H, W, 3) uint8 frames kept for retrieval strips (first videos only)
    thumb_idx: np.ndarray | None = None  # (n,) positions of the thumbs among the video's frames


_THUMB_VIDEOS, _THUMBS_PER_VIDEO = 4, 48


@torch.no_grad()
def extract_embeddings(cfg: RunConfig, model, ctx: DistContext, split: str) -> tuple[list[VideoEmbedding], int]:
    """Embed every frame of every video of ``split`` (this rank's share, at most its share of
    ``eval.max_videos``), in chunks of ``eval.batch_frames``; segmentation methods also decode their
    segmentation here (the OT runs on the device). Returns the videos and the corrupt samples and unreadable
    shards the loader skipped."""
    from vasot_dist.data import corrupt_count, make_eval_loader, resolve_shards
    from vasot_dist.data.stages import share

    loader = make_eval_loader(cfg.data, split, rank=ctx.rank, world_size=ctx.world_size)
    out: list[VideoEmbedding] = []
    chunk = cfg.eval.batch_frames
    # rank r holds the split's videos r, r + world_size, ...: its part of the first max_videos
    limit = share(cfg.eval.max_videos, ctx.rank, ctx.world_size) if cfg.eval.max_videos else None
    expected = resolve_shards(cfg.data.shards, split).num_samples  # None for a pattern without dataset.json
    mine = None if expected is None else share(expected, ctx.rank, ctx.world_size)
    total = limit if mine is None else mine if limit is None else min(mine, limit)
    bar = progress_bar(total, f"eval: embedding {split} videos" + (" (rank 0's share)" if ctx.world_size > 1 else ""),
                       enabled=ctx.is_main, unit="video", leave=False)
    for i, batch in enumerate(loader):
        if limit is not None and i >= limit:
            break
        batch = batch.to(ctx.device)
        inputs = batch.frames if batch.frames is not None else batch.features
        t = inputs.shape[1]
        parts = [
            model.embed(inputs[:, s : s + chunk], batch.mask[:, s : s + chunk]) for s in range(0, t, chunk)
        ]
        emb = torch.cat(parts, dim=1).float()
        with eager():  # videos of many lengths: no solver compile stalls an evaluation (vasot_dist.ot._compile)
            seg = model.loss.segment(emb, batch.mask)
        valid = batch.mask[0]
        progress = batch.progress[0][valid].cpu().numpy() if batch.progress is not None else None
        if progress is not None:
            progress = np.where(progress < 0, np.nan, progress)  # background frames have no counterpart
            if np.isnan(progress).all():
                progress = None
        thumbs = thumb_idx = None
        if batch.frames is not None and i < _THUMB_VIDEOS:
            n = int(valid.sum())
            thumb_idx = np.unique(np.linspace(0, n - 1, min(n, _THUMBS_PER_VIDEO)).round().astype(int))
            thumbs = batch.frames[0, torch.as_tensor(thumb_idx, device=batch.frames.device), -1].cpu().numpy()
        out.append(
            VideoEmbedding(
                key=batch.keys[0],
                activity=batch.activities[0],
                emb=emb[0][valid].cpu().numpy(),
                labels=batch.labels[0][valid].cpu().numpy(),
                progress=progress,
                segmentation=None if seg is None else seg[0][valid].cpu().numpy(),
                thumbs=thumbs,
                thumb_idx=thumb_idx,
            )
        )
        bar.update(1)
    bar.close()
    return out, corrupt_count(loader)


def _gather(ctx: DistContext, part: tuple[list[VideoEmbedding], int]) -> tuple[list[VideoEmbedding], int, int]:
    """Every rank's videos on rank 0 (``[]`` elsewhere), and on every rank the number of videos and of corrupt
    samples over all ranks (so that every rank takes the same decision on them)."""
    videos, corrupt = part
    gathered = all_gather_objects(ctx, ([dataclasses.asdict(v) for v in videos], corrupt))
    scored, skipped = sum(len(g[0]) for g in gathered), sum(g[1] for g in gathered)
    if not ctx.is_main:
        return [], scored, skipped
    allv = [VideoEmbedding(**d) for vids, _ in gathered for d in vids]
    # sorted order: the SVM fractions take the first n videos
    return sorted(allv, key=lambda v: v.key), scored, skipped


def coverage(cfg: RunConfig, split: str, scored: int, corrupt: int) -> dict[str, int]:
    """``videos_scored``, ``videos_expected`` (``dataset.json``'s count, capped by ``eval.max_videos``; for
    shards without an index, the videos read, corrupt ones included) and ``corrupt_skipped`` of ``split``.

    Raises:
        IncompleteEvaluation: fewer than ``eval.min_scored_fraction`` of the expected videos were scored.
    """
    from vasot_dist.data import resolve_shards

    expected = resolve_shards(cfg.data.shards, split).num_samples
    if expected is None:
        expected = scored + corrupt
    if cfg.eval.max_videos:
        expected = min(expected, cfg.eval.max_videos)
    needed = math.ceil(cfg.eval.min_scored_fraction * expected - 1e-9)
    if scored < needed:
        raise IncompleteEvaluation(
            f"evaluation scored {scored} of the {expected} videos of split {split!r} in {cfg.data.shards} "
            f"({corrupt} corrupt samples or unreadable shards skipped; the warnings above name them); "
            f"eval.min_scored_fraction={cfg.eval.min_scored_fraction:g} needs {needed}: repair the shards, or "
            "lower eval.min_scored_fraction to accept a partial evaluation")
    if scored < expected:
        log.warning("evaluation scored %d of the %d videos of split %r (%d corrupt skipped)", scored, expected,
                    split, corrupt)
    return {"videos_scored": scored, "videos_expected": expected, "corrupt_skipped": corrupt}


def alignment_metrics(
    cfg: RunConfig, train: list[VideoEmbedding], test: list[VideoEmbedding]
) -> dict[str, float]:
    """TCC/LAV protocol (phase classification at fractions, Kendall's tau, retrieval AP@K) and, where ground
    truth progress is known, nearest-neighbour alignment accuracy over pairs of one activity.

    What needs phase labels (classification, AP@K) needs two phases among the labels; Kendall's tau (two
    videos) and the alignment accuracy (progress) need none, and are computed whatever the labels hold."""
    fit = test if cfg.eval.protocol == "lav" else train
    m: dict[str, float] = {}
    phases = all(len({int(lab) for v in vs for lab in np.unique(v.labels)}) > 1 for vs in (fit, test))
    if phases:
        acc = A.phase_classification(
            [v.emb for v in fit],
            [v.labels for v in fit],
            [v.emb for v in test],
            [v.labels for v in test],
            fractions=cfg.eval.fractions,
        )
        m.update({f"phase_acc@{f:g}": 100 * a for f, a in acc.items()})
    else:
        log.warning("the labels of the fitted or the evaluated videos hold a single phase: no phase accuracy, no AP@K")
    if len(test) >= 2:
        m["kendalls_tau"] = A.kendalls_tau([v.emb for v in test], stride=cfg.eval.kendall_stride)
        if phases:
            ap = A.retrieval_ap([v.emb for v in test], [v.labels for v in test], ks=cfg.eval.retrieval_ks)
            m.update({f"ap@{k}": 100 * a for k, a in ap.items()})
    accs, errs = [], []
    for x, y in _pairs_of_one_activity(test):
        if x.progress is None or y.progress is None:
            continue
        d = ((x.emb[:, None, :] - y.emb[None, :, :]) ** 2).sum(-1)
        pred = d.argmin(1)
        accs.append(A.alignment_accuracy(pred, A.gt_match_from_progress(x.progress, y.progress), y.labels))
        errs.append(A.alignment_progress_error(pred, x.progress, y.progress))
    if accs:
        m["align_acc"] = 100 * float(np.nanmean(accs))
        m["align_progress_err"] = float(np.nanmean(errs))
    return m


def _pairs_of_one_activity(videos: list[VideoEmbedding]) -> list[tuple[VideoEmbedding, VideoEmbedding]]:
    by_act: dict[str, list[VideoEmbedding]] = {}
    for v in videos:
        by_act.setdefault(v.activity, []).append(v)
    return [
        (vs[i], vs[j]) for vs in by_act.values() for i in range(len(vs)) for j in range(len(vs)) if i != j
    ]


def evaluate_model(cfg: RunConfig, model, ctx: DistContext, out_dir: Path | None = None, *,
                   checkpoint: str | None = None, step: int | None = None) -> dict[str, float]:
    """Metrics of ``model`` (a ``TrainModel``) on ``data.eval_split``; rank 0 returns them, others ``{}``.

    With ``out_dir``: ``metrics.json`` and ``report.md`` there; the report states what was evaluated
    (``checkpoint`` and its training ``step``, protocol, split, counts) and labels its figures with the
    dataset's label names."""
    was_training = model.training
    model.eval()
    test, scored, corrupt = _gather(ctx, extract_embeddings(cfg, model, ctx, cfg.data.eval_split))
    counts = coverage(cfg, cfg.data.eval_split, scored, corrupt)
    train = []
    if cfg.eval.protocol == "tcc":  # TCC fits the SVM on the train split; LAV on the test videos themselves
        train, fit_scored, fit_corrupt = _gather(ctx, extract_embeddings(cfg, model, ctx, cfg.data.train_split))
        coverage(cfg, cfg.data.train_split, fit_scored, fit_corrupt)
    model.train(was_training)
    metrics = {**score(cfg, train, test), **counts} if ctx.is_main else {}
    check_quality_metrics(cfg, metrics, ctx)
    if not ctx.is_main:
        return {}
    if out_dir is not None:
        names = label_names(cfg)
        images = _plots(cfg, test, Path(out_dir), names)
        write_report(
            out_dir, metrics, images, title=f"{cfg.train.experiment}/{cfg.train.run_id} {cfg.method.name}",
            about=describe(cfg, metrics, checkpoint=checkpoint, step=step, names=names),
        )
    log.info(
        "eval on %d %s videos: %s",
        len(test),
        cfg.data.eval_split,
        ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()),
    )
    return metrics


COUNT_KEYS = ("videos_scored", "videos_expected", "corrupt_skipped")


def check_quality_metrics(cfg: RunConfig, metrics: dict[str, float], ctx: DistContext) -> None:
    """Raise IncompleteEvaluation on every rank when rank 0's ``metrics`` hold nothing but the video counts,
    unless ``eval.allow_no_metrics``: an evaluation that measured nothing must not pass for one that did."""
    quality = sorted(k for k in metrics if k not in COUNT_KEYS)
    empty = broadcast_object(ctx, ctx.is_main and not quality)
    if empty and not cfg.eval.allow_no_metrics:
        raise IncompleteEvaluation(
            f"the evaluation of split {cfg.data.eval_split!r} in {cfg.data.shards} gave no quality metric, only "
            f"the counts: phase accuracy and AP@K need two phases among the labels, Kendall's tau two videos, "
            f"align_acc ground-truth progress, seg/* a segmentation method (method.name={cfg.method.name}, "
            f"eval.alignment_metrics={cfg.eval.alignment_metrics}). Check the labels of the split (the warnings "
            "above name skipped videos), or set eval.allow_no_metrics=true to accept it")


def score(cfg: RunConfig, train: list[VideoEmbedding], test: list[VideoEmbedding]) -> dict[str, float]:
    if not test:
        raise ValueError(f"no videos in split '{cfg.data.eval_split}' of {cfg.data.shards}")
    metrics: dict[str, float] = {}
    if cfg.eval.alignment_metrics:
        metrics.update(alignment_metrics(cfg, train or test, test))
    segs = [v for v in test if v.segmentation is not None]
    if segs:
        # Clusters are matched to classes within one activity (models are trained per activity, as in
        # ASOT's protocol); with several activities, each metric is the mean over activities.
        per_activity = []
        for act in sorted({v.activity for v in segs}):
            vs = [v for v in segs if v.activity == act]
            per_activity.append(segmentation_metrics(
                [v.segmentation for v in vs], [v.labels for v in vs], mode=cfg.eval.segmentation_mode,
                exclude_cls=cfg.eval.exclude_cls))
        for k in per_activity[0]:
            metrics[f"seg/{k}"] = float(np.mean([m[k] for m in per_activity]))
    for family in cfg.method.spec.metrics:  # the method's extra metrics (its registration)
        if family not in METRIC_FAMILIES:
            raise ValueError(f"method {cfg.method.name!r} asks for the metric family {family!r}; known: "
                             f"{', '.join(METRIC_FAMILIES)}")
        metrics.update(METRIC_FAMILIES[family](cfg, test))
    return metrics


def keystep_scores(cfg: RunConfig, test: list[VideoEmbedding]) -> dict[str, float]:
    """REALIGN's key-step recognition: each video's embeddings clustered into K = ``model.num_actions`` key
    steps, matched to the labels (``keystep/*``)."""
    k = cfg.model.num_actions
    preds = [cluster_keysteps(v.emb, k=k, seed=cfg.train.seed) for v in test]
    n_classes = int(max(v.labels.max() for v in test)) + 1
    ks = keystep_metrics(preds, [v.labels for v in test], n_classes=n_classes, n_clusters=k)
    return {f"keystep/{name}": float(val) for name, val in ks.items()}


# Extra metric families a method may ask for when it is registered (``register_method(..., metrics=...)``).
METRIC_FAMILIES: dict[str, Callable[[RunConfig, list[VideoEmbedding]], dict[str, float]]] = {
    "keystep": keystep_scores,
}


def label_names(cfg: RunConfig) -> dict[int, str] | None:
    """``{id: name}`` of the dataset's label map (``dataset.json``), or None for shards without one."""
    from vasot_dist.data import resolve_shards

    index = resolve_shards(cfg.data.shards, cfg.data.eval_split).index
    return None if index is None else plots.label_names_of(index.label_map)


def describe(cfg: RunConfig, metrics: dict[str, float], *, checkpoint: str | None, step: int | None,
             names: dict[int, str] | None = None) -> dict[str, str]:
    """What an evaluation evaluated, for the report: the checkpoint and its step, the method, the protocols of the
    metrics it holds, the split, how much of it was scored, and the labels (``names``) its figures show."""
    about = {"checkpoint": checkpoint or "none (the model as given)",
             "training step": "-" if step is None else str(step),
             "method": cfg.method.name,
             "dataset": f"{cfg.data.name or '(unnamed)'} at {cfg.data.shards}",
             "split": cfg.data.eval_split}
    if any(k.startswith("phase_acc@") for k in metrics):
        about["alignment protocol"] = (
            f"TCC: phase classifier fitted on split {cfg.data.train_split!r}, scored on {cfg.data.eval_split!r}"
            if cfg.eval.protocol == "tcc" else
            f"LAV: phase classifier fitted and scored on split {cfg.data.eval_split!r}")
    if any(k.startswith("seg/") for k in metrics):
        about["segmentation protocol"] = (f"Hungarian matching per activity ({cfg.eval.segmentation_mode})"
                                          + ("" if cfg.eval.exclude_cls is None
                                             else f", label {cfg.eval.exclude_cls} excluded"))
    about["videos"] = (f"{metrics['videos_scored']} scored of {metrics['videos_expected']} "
                       f"({metrics['corrupt_skipped']} corrupt skipped)")
    if names:
        about["labels (id name)"] = ", ".join(f"{i} {n}" for i, n in sorted(names.items()))
    return about


def alignment_plan(cfg: RunConfig, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The transport plan (B, N, M) between embeddings x (B, N, D) and y (B, M, D) of the method's alignment
    solve for plots (its registration's ``plot_align``: VAOT's for methods without one) on the cost
    ``1 - x y^T``, without the virtual frame."""
    from vasot_dist.ot import align_fgw

    align = value_at(cfg.method, cfg.method.spec.plot_align)  # the method's registration names its solve
    with eager():
        return align_fgw(1 - x @ y.transpose(1, 2), **{**dataclasses.asdict(align), "virtual_cost": None})


def _plots(cfg: RunConfig, test: list[VideoEmbedding], out_dir: Path,
           names: dict[int, str] | None = None) -> dict[str, str]:
    """A transport plan of a pair, segmentation bars and retrieval strips, all under ``out_dir``; labels by
    their ``names`` (``{id: name}``) where given."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    pairs = _pairs_of_one_activity(test)[:2]
    for i, (x, y) in enumerate(pairs):
        plan = alignment_plan(cfg, torch.from_numpy(x.emb)[None], torch.from_numpy(y.emb)[None])[0].numpy()
        gt = (
            A.gt_match_from_progress(x.progress, y.progress)
            if x.progress is not None and y.progress is not None
            else None
        )
        images[f"plan {x.key} vs {y.key}"] = plots.plot_transport_plan(
            plan, out_dir / f"plan_{i}.png", title=f"{x.key} → {y.key}", gt_match=gt
        )
    images.update(_retrieval_strips([v for v in test if v.thumbs is not None], out_dir, names))
    segs = [v for v in test if v.segmentation is not None][:6]
    if segs:
        images["segmentation"] = plots.plot_segmentation_bars(
            [v.segmentation for v in segs],
            [v.labels for v in segs],
            out_dir / "segmentation.png",
            names=[v.key for v in segs],
            match_clusters=True,
            label_names=names,
        )
    return images


def _retrieval_strips(videos: list[VideoEmbedding], out_dir: Path, names: dict[int, str] | None = None,
                      k: int = 5) -> dict[str, str]:
    """For three frames of the first video: its k nearest frames (embedding distance) in the other videos."""
    if len(videos) < 2:
        return {}
    query, others = videos[0], videos[1:]
    cand_emb = np.concatenate([v.emb[v.thumb_idx] for v in others])
    cand_img = np.concatenate([v.thumbs for v in others])
    cand_lab = np.concatenate([v.labels[v.thumb_idx] for v in others])
    images = {}
    for j, q in enumerate(np.linspace(0, len(query.thumb_idx) - 1, 3).round().astype(int)):
        t = query.thumb_idx[q]
        near = np.argsort(((cand_emb - query.emb[t]) ** 2).sum(1))[:k]
        images[f"retrieval {query.key} frame {t}"] = plots.plot_retrieval_strip(
            query.thumbs[q], cand_img[near], out_dir / f"retrieval_{j}.png", query_label=int(query.labels[t]),
            retrieved_labels=[int(x) for x in cand_lab[near]], label_names=names)
    return images

