"""Command-line entry points: ``vasot-train``, ``vasot-evaluate``, ``vasot-tune`` (and ``launchers/*.py``).

Config errors are reported before any process group, worker or Ray cluster starts.
"""

from __future__ import annotations

import argparse
import sys

from vasot_dist.config import ConfigError, RunConfig, load_config

_OVERRIDES_HELP = "dotted overrides applied after the config file, e.g. optim.lr=3e-4 method.name=vava"


def _load(parser: argparse.ArgumentParser, args: argparse.Namespace) -> RunConfig:
    try:
        return load_config(args.config, args.overrides)
    except ConfigError as e:
        parser.exit(2, f"error: {e}\n")


def train_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vasot-train",
        description="Train an OT alignment / segmentation model. Runs as one process or under torchrun "
        "(DDP, or DeepSpeed when dist.engine=deepspeed).",
        epilog="example: torchrun --nproc_per_node=8 launchers/train.py --config configs/ikea_asm.yaml optim.lr=1e-4",
    )
    parser.add_argument("--config", required=True, help="YAML run config (may `extends:` a base file)")
    parser.add_argument(
        "--resume",
        default="none",
        help="'auto': newest complete checkpoint of this run (needs train.run_id); a checkpoint path; or 'none'",
    )
    parser.add_argument("overrides", nargs="*", help=_OVERRIDES_HELP)
    args = parser.parse_args(argv)
    cfg = _load(parser, args)
    from vasot_dist.train.loop import run

    run(cfg, resume=args.resume)
    return 0


def evaluate_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vasot-evaluate",
        description="Evaluate a checkpoint with the papers' protocols and write metrics.json plus a report.",
    )
    parser.add_argument("--config", required=True, help="YAML run config (the run's config.yaml works)")
    parser.add_argument("--checkpoint", required=True, help="checkpoint file or a run directory (newest checkpoint)")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/eval/<checkpoint-step>)")
    parser.add_argument("overrides", nargs="*", help=_OVERRIDES_HELP)
    args = parser.parse_args(argv)
    cfg = _load(parser, args)
    from vasot_dist.eval.runner import evaluate_checkpoint

    evaluate_checkpoint(cfg, args.checkpoint, out_dir=args.out)
    return 0


def tune_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vasot-tune",
        description="Sweep hyper-parameters with Ray Tune; each trial is a distributed training run.",
    )
    parser.add_argument("--config", required=True, help="base YAML run config")
    parser.add_argument("--sweep", required=True, help="sweep file: search space, metric, mode, samples, scheduler")
    parser.add_argument("--address", default=None, help="Ray cluster address ('auto' to join a running cluster)")
    parser.add_argument("--storage-path", default=None, help="shared storage for trials (required on multi-node)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep from its experiment dir")
    parser.add_argument("overrides", nargs="*", help=_OVERRIDES_HELP)
    args = parser.parse_args(argv)
    cfg = _load(parser, args)
    from vasot_dist.tune.sweep import run_sweep

    try:
        run_sweep(cfg, args.sweep, address=args.address, storage_path=args.storage_path, resume=args.resume)
    except ConfigError as e:  # includes SweepError: a bad sweep file fails before Ray starts
        parser.exit(2, f"error: {e}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(train_main())
