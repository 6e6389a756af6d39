"""Command-line entry points: ``vasot-train``, ``vasot-evaluate``, ``vasot-tune``, ``vasot-compare``,
``vasot-embed``, ``vasot-segment``, ``vasot-align`` (and ``launchers/*.py``), the top of the import layers.

Config and data errors are reported (exit status 2) before any process group, run directory, worker or Ray
cluster starts, and before the training code (torch) is imported: a launch that fails its checks ends in
seconds, under torchrun too. An error is printed once (:func:`fail`). The built-in synthetic benchmark is written
here, before training, when the config names it (``data.name: synthetic``) and its shards are missing; any other
missing ``data.shards`` is an error that says where the dataset comes from and how to shard it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

from vasot_dist.config import ConfigError, RunConfig, load_config
from vasot_dist.data.format import index_path
from vasot_dist.runtime.ranklog import get_logger, setup_logging
from vasot_dist.train.preflight import check_data, launch_world_size
from vasot_dist.tune.data import data_variants
from vasot_dist.tune.space import load_sweep

log = get_logger(__name__)
_OVERRIDES_HELP = "dotted overrides applied after the config file, e.g. optim.lr=3e-4 method.name=vava"
_CONFIG_HELP = "YAML run config, or the name of a packaged one (demo, ikea_asm, ...); may `extends:` a base"


def fail(parser: argparse.ArgumentParser, status: int, error: BaseException | str) -> NoReturn:
    """Print ``error: <error>`` and exit with ``status``; once per node under torchrun.

    Under torchrun every rank meets the same error (the checks before the start are deterministic, and the
    errors after it are agreed by all ranks). Local rank 0 prints it and writes it to torchrun's error file
    (``TORCHELASTIC_ERROR_FILE``), so that torchrun's closing summary shows the message rather than a link (with
    ``--redirects`` / ``--log-dir`` that summary is all the console shows); the other local ranks leave quietly
    with status 0 (:func:`_leave_together`), so that torchrun neither stops local rank 0 before it has reported
    nor lists them, and its summary names one failure. torchrun itself then exits with status 1.
    """
    message = f"error: {error}"
    if "TORCHELASTIC_RUN_ID" in os.environ:
        _leave_together()
    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if error_file:  # torchrun's summary shows "py_callstack" as the failure's text: the message, no traceback
        try:
            with open(error_file, "w") as f:
                json.dump({"message": {"message": message, "extraInfo": {
                    "py_callstack": message, "timestamp": str(int(time.time()))}}}, f)
        except OSError:  # the summary then shows torchrun's link instead; the message below is what matters
            pass
    parser.exit(status, message + "\n")


def _leave_together(timeout_s: float = 10.0) -> None:
    """Under torchrun: a local rank other than 0 leaves a mark and exits with status 0; local rank 0 returns once
    every other local rank has left its mark (at most ``timeout_s``), so that torchrun, which stops the remaining
    workers when one fails, finds them gone rather than listing each as a failure of its own."""
    env = os.environ
    marks = Path(tempfile.gettempdir()) / (f"vasot_fail_{env['TORCHELASTIC_RUN_ID']}_{env.get('GROUP_RANK', '0')}_"
                                           f"{env.get('TORCHELASTIC_RESTART_COUNT', '0')}")
    marks.mkdir(exist_ok=True)
    if env.get("LOCAL_RANK", "0") != "0":
        (marks / env["LOCAL_RANK"]).touch()
        sys.exit(0)
    others = int(env.get("LOCAL_WORLD_SIZE", "1")) - 1
    deadline = time.monotonic() + timeout_s
    while sum(1 for _ in marks.iterdir()) < others and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a mark is made just before its process exits
    shutil.rmtree(marks, ignore_errors=True)


def _run_errors() -> tuple[type[BaseException], ...]:
    """Errors of a run that has started (its directory holds what it wrote): reported with status 1. Imported
    only when an error is being reported, so that the checks before the start stay free of torch."""
    from vasot_dist.eval.runner import IncompleteEvaluation
    from vasot_dist.train.collapse import CollapseError
    from vasot_dist.train.nonfinite import NonFiniteError
    from vasot_dist.train.rundir import RunWriteError

    return NonFiniteError, CollapseError, IncompleteEvaluation, RunWriteError


def ensure_synthetic_data(cfg: RunConfig) -> None:
    """Write the built-in synthetic shards into ``data.shards`` when ``data.name`` is ``synthetic`` and they
    are missing; nothing otherwise (real data is never replaced by generated data).

    Safe when every rank of a torchrun launch calls it: the first one to take the folder's lock writes, the
    others wait and then find the shards.
    """
    if cfg.data.name != "synthetic":
        return
    index = index_path(cfg.data.shards)
    if index.is_file():
        return
    index.parent.mkdir(parents=True, exist_ok=True)
    with open(index.parent.parent / f".{index.parent.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if index.is_file():  # written by another rank while this one waited
            return
        from vasot_pipelines.synthetic import generate_synthetic

        log.info("synthetic shards missing at %s; generating them (seed %d)", index.parent,
                 cfg.data.synthetic.seed)
        generate_synthetic(index.parent, cfg.data.synthetic, modality=cfg.data.modality)


def train_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vasot-train",
        description="Train an OT alignment / segmentation model. Runs as one process or under torchrun "
        "(DDP, or DeepSpeed when dist.engine=deepspeed).",
        epilog="example: torchrun --nproc_per_node=8 launchers/train.py --config ikea_asm optim.lr=1e-4",
    )
    parser.add_argument("--config", required=True, help=_CONFIG_HELP)
    parser.add_argument(
        "--resume",
        default="none",
        help="'auto': newest complete checkpoint of this run (needs train.run_id); a checkpoint path; or 'none'",
    )
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the run directory of train.run_id and start over (without it, or --resume, a "
                        "run directory that holds checkpoints is refused)")
    parser.add_argument("overrides", nargs="*", help=_OVERRIDES_HELP)
    args = parser.parse_args(argv)
    setup_logging(int(os.environ.get("RANK", "0")))
    try:
        cfg = load_config(args.config, args.overrides)
        ensure_synthetic_data(cfg)
        check_data(cfg, world_size=launch_world_size())  # before torch and the training code are imported
        from vasot_dist.train.loop import run

        run(cfg, resume=args.resume, overwrite=args.overwrite)
    except ConfigError as e:
        fail(parser, 2, e)
    except _run_errors() as e:  # the run started: its directory holds what it wrote
        fail(parser, 1, e)
    return 0


def evaluate_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vasot-evaluate",
        description="Evaluate a checkpoint with the papers' protocols and write metrics.json plus a report.",
    )
    parser.add_argument("--config", required=True, help=_CONFIG_HELP + " (the run's config.yaml works)")
    parser.add_argument("--checkpoint", required=True, help="checkpoint file or a run directory (newest checkpoint)")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/evaluate/<checkpoint-step>, "
                        "beside the run's own <run>/eval/<checkpoint-step>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an output folder that already holds "
                        "an evaluation (without it, such a folder is refused)")
    parser.add_argument("overrides", nargs="*", help=_OVERRIDES_HELP)
    args = parser.parse_args(argv)
    setup_logging(int(os.environ.get("RANK", "0")))
    try:
        cfg = load_config(args.config, args.overrides)
        # the checkpoint is checked first, then the data (in evaluate_checkpoint)
        from vasot_dist.train.evaluate import evaluate_checkpoint

        evaluate_checkpoint(cfg, args.checkpoint, out_dir=args.out, overwrite=args.overwrite)
    except (ConfigError, FileNotFoundError, FileExistsError) as e:
        fail(parser, 2, e)
    except _run_errors() as e:
        fail(parser, 1, e)
    return 0


def compare_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vasot-compare",
        description="A run's newest checkpoint against the same model untrained (same seed and initialisation): "
        "both metrics and the change. `make demo` ends with it.",
    )
    parser.add_argument("--run", required=True, help="run directory runs/<experiment>/<run-id> (its config.yaml "
                        "is used)")
    parser.add_argument("overrides", nargs="*", help=_OVERRIDES_HELP)
    args = parser.parse_args(argv)
    from vasot_dist.train.evaluate import compare_with_untrained

    try:
        result = compare_with_untrained(args.run, args.overrides)
    except (ConfigError, FileNotFoundError) as e:
        parser.exit(2, f"error: {e}\n")
    run, before, after = Path(args.run), result["untrained"], result["trained"]
    print(f"\nrun directory: {run}")
    print(f"  metrics: {run / 'metrics.jsonl'}\n  checkpoints: {run / 'checkpoints'}")
    print(f"  report: {run / 'eval' / Path(result['checkpoint']).stem / 'report.md'}\n  plots: {run / 'plots'}\n")
    print(f"{'metric':<24}{'untrained':>12}{'trained':>12}{'change':>10}")
    for k in after:
        b, a = before.get(k, float("nan")), float("nan") if after[k] is None else after[k]
        print(f"{k:<24}{b:>12.3f}{a:>12.3f}{a - b:>+10.3f}")
    verdict = result["verdict"]
    if verdict["message"]:
        print(f"\nverdict: {verdict['message']}")
    elif verdict["compared"]:
        print(f"\nverdict: the trained model is at least as good as the untrained one on "
              f"{', '.join(verdict['compared'])}")
    return 0


def tune_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vasot-tune",
        description="Sweep hyper-parameters with Ray Tune; each trial is a distributed training run.",
    )
    parser.add_argument("--config", required=True, help=_CONFIG_HELP)
    parser.add_argument("--sweep", required=True, help="sweep file, or the name of a packaged one (demo_asot, "
                        "ikea_asm): search space, metric, mode, samples, scheduler")
    parser.add_argument("--address", default=None, help="Ray cluster address ('auto' to join a running cluster)")
    parser.add_argument("--storage-path", default=None, help="shared storage for trials (required on multi-node)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep from its experiment dir")
    parser.add_argument("overrides", nargs="*", help=_OVERRIDES_HELP)
    args = parser.parse_args(argv)
    setup_logging(0)
    try:
        cfg = load_config(args.config, args.overrides)
        spec, base = load_sweep(args.sweep, cfg)
        # the data of the sweep's trials (its overrides and space decide it, not --config alone), written once
        # here rather than racing from concurrent trials
        for variant in data_variants(spec, base):
            ensure_synthetic_data(variant)
        from vasot_dist.tune.sweep import run_sweep

        run_sweep(cfg, args.sweep, address=args.address, storage_path=args.storage_path, resume=args.resume)
    except ConfigError as e:  # includes SweepError: a bad sweep file fails before Ray starts
        fail(parser, 2, e)
    return 0


# ------------------------------------------------------------------------------- applying a trained model
_CKPT_HELP = "a run directory (its newest loadable checkpoint) or a checkpoint file"
_VIDEOS_HELP = ("video files (any container decord or PyAV reads), folders (searched recursively) or glob patterns; "
                "for a features model, .npy / .txt feature files")


def _inference_parser(prog: str, description: str, epilog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog)
    parser.add_argument("checkpoint", metavar="CKPT", help=_CKPT_HELP)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", required=True, help="output folder (created; files in it are replaced)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA when present)")


def _open_model(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The model, and the output folder created; exit 2 naming the checkpoint or folder when either fails."""
    from vasot_dist.infer import load

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.exit(2, f"error: --out {out} exists and is not a folder\n")
    try:
        model = load(args.checkpoint, device=args.device)
    except (ConfigError, FileNotFoundError, ValueError, RuntimeError) as e:
        parser.exit(2, f"error: cannot load {args.checkpoint}: {e}\n")
    out.mkdir(parents=True, exist_ok=True)
    log.info("%s", model)
    return model, out


def embed_main(argv: list[str] | None = None) -> int:
    parser = _inference_parser(
        "vasot-embed", "Per-frame embeddings of videos by a trained encoder: <out>/<name>.npy (T, D) per video and "
        "<out>/index.json (fps, frame times); optionally feature shards vasot-train reads (data.modality=features).",
        "example: vasot-embed runs/demo/r1 clips/ 'more/*.mov' -o emb --shards data/emb_feats --split train")
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help=_VIDEOS_HELP)
    _add_common(parser)
    parser.add_argument("--shards", default=None, help="also write WebDataset feature shards + dataset.json into this "
                        "folder (resumable; run again with --split test for a test split)")
    parser.add_argument("--split", default="train", help="the split of --shards the videos go to (default train)")
    parser.add_argument("--activity", default=None, help="the activity of every video in --shards (default: the name "
                        "of its folder)")
    args = parser.parse_args(argv)
    setup_logging(0)
    model, out = _open_model(parser, args)
    from vasot_dist.infer.commands import run_embed

    try:
        shards = Path(args.shards) if args.shards else None
        return run_embed(model, args.videos, out, shards=shards, split=args.split, activity=args.activity)
    except ValueError as e:  # a --shards folder of other settings, a bad split name
        parser.exit(2, f"error: {e}\n")


def segment_main(argv: list[str] | None = None) -> int:
    parser = _inference_parser(
        "vasot-segment", "Action segments of videos by a trained model, with the method's own decoder: per video "
        "<name>.json and <name>.csv (start/end frame and second, action, name, confidence) and MS-TCN "
        "groundTruth/<name>.txt, plus mapping/mapping.txt and index.json.",
        "example: vasot-segment runs/breakfast/r1 videos/ -o segments --match-labels")
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help=_VIDEOS_HELP)
    _add_common(parser)
    parser.add_argument("--match-labels", action="store_true", help="name the model's actions with the run's label "
                        "map: the Hungarian matching of its segments over the run's evaluation split (needs the run's "
                        "shards at data.shards)")
    args = parser.parse_args(argv)
    setup_logging(0)
    model, out = _open_model(parser, args)
    from vasot_dist.infer.commands import run_segment

    if args.match_labels:
        try:
            model.match_actions()
        except (ValueError, ConfigError) as e:
            parser.exit(2, f"error: --match-labels: {e}\n")
    return run_segment(model, args.videos, out)


def align_main(argv: list[str] | None = None) -> int:
    parser = _inference_parser(
        "vasot-align", "Align video A with each video B by a trained model: per pair <out>/<A>__<B>/ with "
        "alignment.json, a_to_b.csv and b_to_a.csv (frame matches both ways with times), plan.png and "
        "side_by_side.mp4 (B re-timed to A).",
        "example: vasot-align runs/pouring/r1 a.mp4 b.mp4 -o aligned")
    parser.add_argument("a", metavar="A", help="the video the others are aligned to")
    parser.add_argument("videos", nargs="+", metavar="B", help=_VIDEOS_HELP)
    _add_common(parser)
    args = parser.parse_args(argv)
    setup_logging(0)
    model, out = _open_model(parser, args)
    from vasot_dist.infer.commands import run_align

    return run_align(model, args.a, args.videos, out)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(train_main())
