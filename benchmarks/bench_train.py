"""Training throughput of the ResNet-50 alignment encoder with a method loss, per process.

Three measurements, each after ``--warmup`` steps, over ``--steps`` steps:

1. ``ceiling``: model + loss + optimizer on in-memory uint8 batches already on the device (two random
   batches, cycled): the compute ceiling, no data path at all.
2. ``e2e``: the same step fed by the real training loader (:func:`vasot_dist.data.make_train_loader`)
   reading pre-resized synthetic shards, with ``Batch.to(device, non_blocking=True)`` (the DataLoader
   pins memory when CUDA is available): end to end.
3. ``loader``: the loader alone, nothing consuming its batches: the frames/s the data path can supply.
   The data path is not the bottleneck when ``loader >= 1.5 x ceiling`` (issue 9). On a CPU run the
   loader's workers and the model share the same cores, so the ratio is only indicative there.

``frames`` are the sampled frames of a batch (B x T real frames, what the trainer logs as frames_per_s);
each carries S context frames, so the backbone sees ``images = frames x S``.

The model and the step are the trainer's: ``build_train_model`` and ``build_engine`` (its optimizer, clipping,
non-finite guard and schedule), the loaders of ``vasot_dist.data``. Time split of a step: ``data`` (waiting for
the next batch + host-to-device copy), ``forward`` (the encoder, ``TrainModel.embed`` under autocast), ``loss``
(``TrainModel.loss``: the OT solves and the cross-entropies, float32), ``backward`` (``engine.backward``),
``optimizer`` (``engine.step``: clipping, the guard, ``step``, ``zero_grad``; the prototypes renormalised), and
``ot`` (the OT solver calls alone, part of ``loss``). The step is split exactly as ``TrainModel.forward`` does
(embed under autocast, loss with autocast off). On CUDA every boundary is a CUDA event (no host
synchronisation is added inside the measured steps; one at the end), so the split is GPU-timeline time:
``data`` is how long the GPU waited for the batch. On CPU the boundaries are ``time.perf_counter``.
Wall-clock frames/s is measured separately (one synchronisation at the end of the measured steps).
GPU utilisation is sampled every 0.2 s with ``torch.cuda.utilization()`` (needs pynvml; reported as
unavailable without it). ``--profile PATH`` runs ``--profile-steps`` extra end-to-end steps under
``torch.profiler`` with the phases and every OT call labelled, writes a Chrome trace to PATH and prints
the top operators. ``--sync-debug`` runs extra steps under
:class:`vasot_dist.train.host_syncs.HostSyncRecorder` (any device: the ops that would make the host wait for
a GPU) and, on CUDA, under ``torch.cuda.set_sync_debug_mode``, and lists each place with its count per step.
``--compile [--compile-mode reduce-overhead]`` compiles the encoder and the loss as ``train.compile`` does.

Shards: when ``data.name`` is ``synthetic`` the benchmark writes its own synthetic shards, pre-resized
the way ``vasot-shard`` stores videos (short side ``--shard-size``, default 256/224 x the image size) with
enough videos for the workers, under ``--shards-root`` (reused when present). Other datasets' shards are
read as configured.

The modes and options live in ``benchmarks/trainbench/`` (one module per job); this script parses the
command line, runs the chosen modes and writes one JSON.

Targets (issue 9, H100, bf16, 224 px): end to end >= 3,500 frames/s per GPU (its reference figure counts
backbone images, so both frames and images are checked), loader >= 1.5 x what the GPU consumes, OT < 3 %
of the step. Figures and commands: docs/performance.md.

    python benchmarks/bench_train.py --device cuda --bf16 --channels-last             # 224 px, 20 frames
    python benchmarks/bench_train.py --quick --threads 1                               # small CPU run
    python benchmarks/bench_train.py --config configs/demo.yaml --method asot optim.lr=1e-4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from trainbench.loader import run_loader  # noqa: E402
from trainbench.profile import run_profile  # noqa: E402
from trainbench.report import (  # noqa: E402
    TARGET_E2E_FPS,
    TARGET_LOADER_RATIO,
    TARGET_OT_SHARE,
    machine_info,
    print_table,
    summarise,
)
from trainbench.setup import build_config, ensure_bench_shards  # noqa: E402
from trainbench.steps import run_training  # noqa: E402
from trainbench.syncs import print_syncs, run_sync_debug  # noqa: E402

from vasot_dist.config import config_to_dict  # noqa: E402

DEFAULTS = {"warmup": 5, "steps": 20}
QUICK = {"image_size": 64, "frames": 4, "batch": 2, "warmup": 2, "steps": 6, "workers": 1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. optim.lr=1e-4 (applied before the flags)")
    ap.add_argument("--config", default=None,
                    help="run config (default: alignment_base.yaml on the built-in synthetic data)")
    ap.add_argument("--method", default=None, help="method.name (default: the config's; vasot in alignment_base.yaml)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default=None,
                    help="default: cuda when available, else cpu")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                    help="bf16 autocast of the encoder on CUDA (default: train.bf16); ignored on CPU")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="channels_last backbone (default: model.channels_last)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="torch.compile the encoder and the loss as the trainer does (default: train.compile); "
                         "the per-solver OT split is then not measured (the solves are inside the loss graph)")
    ap.add_argument("--compile-mode", default=None, choices=("default", "reduce-overhead", "max-autotune"),
                    help="torch.compile mode with --compile (reduce-overhead: CUDA graphs; default: torch's)")
    ap.add_argument("--image-size", type=int, default=None, help="data.image_size")
    ap.add_argument("--frames", type=int, default=None, help="data.frames_per_video (T)")
    ap.add_argument("--batch", type=int, default=None, help="data.batch_size (videos per step; pairs count 2)")
    ap.add_argument("--workers", type=int, default=None, help="data.num_workers")
    ap.add_argument("--steps", type=int, default=None, help="measured steps per mode (default 20)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="steps before measuring: worker start-up, cuDNN autotune, compilation (default 5)")
    ap.add_argument("--loader-batches", type=int, default=100, help="measured batches of the loader-alone mode")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in the main process")
    ap.add_argument("--modes", default="ceiling,e2e,loader", help="comma-separated subset of ceiling,e2e,loader")
    ap.add_argument("--shard-size", type=int, default=None,
                    help="side of the synthetic videos written (default: image size x 256/224, even)")
    ap.add_argument("--shard-videos", type=int, default=None,
                    help="synthetic train videos (default: workers x (batch + 2), at least the config's)")
    ap.add_argument("--shards-root", default=str(REPO / "data" / "bench_train"))
    ap.add_argument("--loop-syncs", action="store_true",
                    help="after every step read the loss, metrics and mask.sum() as Python floats, as "
                         "vasot_dist/train/loop.py did before commit 0954961 (measures what those host syncs "
                         "cost on CUDA, i.e. what removing them bought)")
    ap.add_argument("--profile", default=None, metavar="PATH", help="write a torch.profiler Chrome trace here")
    ap.add_argument("--profile-steps", type=int, default=4)
    ap.add_argument("--sync-debug", action="store_true",
                    help="list the host-device synchronisations of a step: the ops that synchronise on a GPU "
                         "(vasot_dist.train.host_syncs, any device) and, on CUDA, torch.cuda.set_sync_debug_mode")
    ap.add_argument("--quick", action="store_true",
                    help=f"small CPU-friendly run: {QUICK} unless given explicitly")
    ap.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/bench_train_<device>.json)")
    args = ap.parse_args(argv)
    for dest, value in {**DEFAULTS, **(QUICK if args.quick else {})}.items():
        if getattr(args, dest) is None:  # explicit flags win over --quick
            setattr(args, dest, value)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = sorted(set(modes) - {"ceiling", "e2e", "loader"})
    if bad or not modes:
        raise ValueError(f"--modes: expected a comma-separated subset of ceiling,e2e,loader, got {args.modes!r}")
    args.modes = modes
    for name in ("steps", "warmup", "profile_steps", "loader_batches"):
        if getattr(args, name) < (1 if name != "warmup" else 0):
            raise ValueError(f"--{name.replace('_', '-')} must be >= {1 if name != 'warmup' else 0}, "
                             f"got {getattr(args, name)}")
    if args.out is None:
        args.out = str(REPO / "benchmarks" / "results" / f"bench_train_{args.device}.json")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: autotune once during warm-up
    from vasot_dist.train.preflight import fill_from_data

    # model.num_actions as a run takes it: the label map's count unless the config sets it
    cfg = fill_from_data(ensure_bench_shards(build_config(args), args), training=False, report=False)
    d = cfg.data
    print(f"bench_train: {cfg.method.name} on {device}, {d.image_size} px, B={d.batch_size} T={d.frames_per_video} "
          f"S={d.context_frames}, workers={d.num_workers}, bf16={cfg.train.bf16 and device.type == 'cuda'}, "
          f"channels_last={cfg.model.channels_last}, compile={cfg.train.compile}, torch threads "
          f"{torch.get_num_threads()}, shards {d.shards}", flush=True)

    rows = []
    for mode in args.modes:
        t = time.perf_counter()
        row = run_loader(cfg, args) if mode == "loader" else run_training(mode, cfg, args, device)
        print(f"  {mode}: {row['frames_per_s']:.1f} frames/s ({time.perf_counter() - t:.1f} s)", flush=True)
        rows.append(row)
    by_mode = {r["mode"]: r for r in rows}
    print_table(rows)

    summary = summarise(by_mode, device)
    for k, v in summary.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    if device.type == "cpu" and "loader" in by_mode:
        print("(CPU: the loader's workers and the model share the same cores; the loader ratio is indicative)")

    result: dict[str, Any] = {
        "benchmark": "bench_train",
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else argv,
        "device": str(device),
        "machine": machine_info(device),
        "settings": {
            "config": args.config, "overrides": args.overrides, "method": cfg.method.name,
            "image_size": d.image_size, "frames_per_video": d.frames_per_video, "context_frames": d.context_frames,
            "batch_size": d.batch_size, "pairs": d.pairs, "num_workers": d.num_workers, "augment": d.augment,
            "bf16": bool(cfg.train.bf16 and device.type == "cuda"), "channels_last": cfg.model.channels_last,
            "compile": cfg.train.compile, "loop_syncs": args.loop_syncs, "steps": args.steps,
            "warmup": args.warmup, "shards": d.shards,
            "shard_size": d.synthetic.size if d.name == "synthetic" else None,
            "method_settings": dataclasses.asdict(cfg.method.settings),
            "embed_dim": cfg.model.embed_dim, "head_dim": cfg.model.head_dim,
        },
        "targets": {"e2e_frames_per_s": TARGET_E2E_FPS, "loader_over_consumption": TARGET_LOADER_RATIO,
                    "ot_share_of_step": TARGET_OT_SHARE, "applies_to": "H100, bf16, 224 px"},
        "rows": rows,
        "summary": summary,
        "max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "config": config_to_dict(cfg),
    }
    if args.profile:
        result["profile"] = run_profile(cfg, args, device)
    if args.sync_debug:
        result["host_syncs"] = run_sync_debug(cfg, device, args.compile_mode)
        print_syncs(result["host_syncs"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
