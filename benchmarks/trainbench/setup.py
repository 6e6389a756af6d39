"""What a benchmark run trains: its config, its synthetic shards, and the model and engine the trainer builds."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from pathlib import Path

import torch

from vasot_dist.config import RunConfig, load_config
from vasot_dist.runtime.distributed import init_distributed
from vasot_dist.train.engine import Engine, build_engine
from vasot_dist.train.loop import with_method_pairs
from vasot_dist.train.model import build_train_model, compile_for_training

REPO = Path(__file__).resolve().parents[2]


def build_config(args: argparse.Namespace) -> RunConfig:
    """The config file, then the dotted overrides, then the explicit flags; pairs as the trainer decides."""
    flags = {
        "method.name": args.method, "train.device": args.device, "train.bf16": args.bf16,
        "model.channels_last": args.channels_last, "train.compile": args.compile,
        "data.image_size": args.image_size, "data.frames_per_video": args.frames,
        "data.batch_size": args.batch, "data.num_workers": args.workers,
    }  # fmt: skip
    # Throughput does not depend on the initial weights: no ImageNet download unless asked for.
    overrides = ["model.weights=none", *args.overrides] + [f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                                                           for k, v in flags.items() if v is not None]
    if args.config is None:  # data.name=synthetic: ensure_bench_shards writes the shards this run reads
        args.config = str(REPO / "configs" / "alignment_base.yaml")
        overrides.insert(0, "data.name=synthetic")
    cfg = load_config(args.config, overrides)
    if cfg.data.modality != "video" or cfg.model.encoder != "resnet50":
        raise ValueError(f"{args.config}: bench_train measures the ResNet-50 video encoder; got "
                         f"data.modality={cfg.data.modality!r}, model.encoder={cfg.model.encoder!r}")
    if cfg.dist.engine != "ddp":
        raise ValueError(f"{args.config}: bench_train times the DDP engine's step in one process; got "
                         f"dist.engine={cfg.dist.engine!r} (override dist.engine=ddp)")
    return with_method_pairs(cfg)


def ensure_bench_shards(cfg: RunConfig, args: argparse.Namespace) -> RunConfig:
    """Synthetic data: write pre-resized shards sized for this run (reused when present); else as configured."""
    if cfg.data.name != "synthetic":
        return cfg
    from vasot_pipelines.synthetic import generate_synthetic

    size = args.shard_size or 2 * math.ceil(cfg.data.image_size * 256 / 224 / 2)
    if size < cfg.data.image_size:
        raise ValueError(f"--shard-size {size} is smaller than data.image_size {cfg.data.image_size}")
    syn = cfg.data.synthetic
    # One video per shard, split over the workers; every worker's pass over its shards must fill at least one
    # batch (EpochPipeline raises otherwise), and pairing needs slack: B + 2 videos per worker.
    needed = max(cfg.data.num_workers, 1) * (cfg.data.batch_size + 2)
    per_activity = max(syn.videos_per_activity, math.ceil((args.shard_videos or needed) / syn.num_activities))
    frames_min = max(syn.frames_min, cfg.data.frames_per_video)
    syn = dataclasses.replace(syn, size=size, videos_per_activity=per_activity, frames_min=frames_min,
                              frames_max=max(syn.frames_max, frames_min))
    root = Path(args.shards_root) / f"synthetic_{size}px_{syn.num_activities * per_activity}v_seed{syn.seed}"
    if not (root / "dataset.json").exists():
        t0 = time.perf_counter()
        workers = min(os.cpu_count() or 1, 8)
        print(f"writing {syn.num_activities * per_activity} synthetic videos at {size} px to {root} "
              f"({workers} processes)", flush=True)
        generate_synthetic(root, syn, modality="video", splits=("train",), workers=workers)
        print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    data = dataclasses.replace(cfg.data, shards=str(root), synthetic=syn)
    return dataclasses.replace(cfg, data=data)


def build_bench_engine(cfg: RunConfig, compile_mode: str | None = None) -> Engine:
    """The trainer's model and engine (``build_train_model``, ``build_engine``: its optimizer, clipping and
    non-finite guard), on ``train.device`` in this one process; random prototypes (k-means is not a step)."""
    ctx = init_distributed(cfg.train.device, cfg.dist.backend)
    torch.manual_seed(cfg.train.seed)
    model = build_train_model(cfg).to(ctx.device)
    if model.loss.prototypes is not None:
        model.loss.prototypes.init_random_(cfg.train.seed)
    if cfg.train.compile:
        compile_for_training(model, **({"mode": compile_mode} if compile_mode else {}))
    engine = build_engine(cfg, model, ctx)
    engine.train()
    return engine
