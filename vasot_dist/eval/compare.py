"""Trained vs untrained: the same architecture at initialisation (same seed, prototypes initialised the same
way) against a run's newest checkpoint, whose metrics the run's final evaluation already wrote (evaluated
here only when missing). Prints both and the difference. Used by ``make demo``.

    python -m vasot_dist.eval.compare --config configs/demo.yaml --run runs/demo/<run-id>
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vasot_dist.config import ConfigError, load_config
from vasot_dist.eval.runner import evaluate_model
from vasot_dist.runtime.distributed import init_distributed, shutdown
from vasot_dist.runtime.ranklog import setup_logging
from vasot_dist.runtime.seeding import seed_everything
from vasot_dist.train import checkpoint as ckpt
from vasot_dist.train.loop import init_prototypes
from vasot_dist.train.model import build_train_model


def compare(config: str, run: str, overrides: list[str] | None = None) -> dict[str, dict[str, float]]:
    run_dir = Path(run)
    cfg = load_config(run_dir / "config.yaml" if (run_dir / "config.yaml").exists() else config, overrides)
    found = ckpt.latest_loadable(run_dir / "checkpoints")
    if found is None or found[1] is None:
        raise FileNotFoundError(f"no loadable checkpoint file under {run_dir / 'checkpoints'}")
    ctx = init_distributed(cfg.train.device, cfg.dist.backend)
    setup_logging(ctx.rank)
    try:
        seed_everything(cfg.train.seed)
        untrained = build_train_model(cfg).to(ctx.device)
        init_prototypes(cfg, untrained, ctx)
        before = evaluate_model(cfg, untrained, ctx, out_dir=run_dir / "eval" / "untrained")
        done = run_dir / "eval" / found[0].stem / "metrics.json"
        if done.exists():
            after = {k: v for k, v in json.loads(done.read_text()).items() if isinstance(v, (int, float))}
        else:
            trained = build_train_model(cfg).to(ctx.device)
            trained.load_state_dict(found[1]["model"])
            after = evaluate_model(cfg, trained, ctx, out_dir=run_dir / "eval" / found[0].stem)
    finally:
        shutdown(ctx)
    result = {"untrained": before, "trained": after}
    (run_dir / "eval" / "compare.json").write_text(json.dumps(result, indent=2))
    print(f"\nrun directory: {run_dir}")
    print(f"  metrics: {run_dir / 'metrics.jsonl'}\n  checkpoints: {run_dir / 'checkpoints'}")
    print(f"  report: {run_dir / 'eval' / found[0].stem / 'report.md'}\n  plots: {run_dir / 'plots'}\n")
    print(f"{'metric':<24}{'untrained':>12}{'trained':>12}{'change':>10}")
    for k in after:
        b, a = before.get(k, float("nan")), float("nan") if after[k] is None else after[k]
        print(f"{k:<24}{b:>12.3f}{a:>12.3f}{a - b:>+10.3f}")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--run", required=True, help="run directory runs/<experiment>/<run-id>")
    p.add_argument("overrides", nargs="*")
    a = p.parse_args(argv)
    try:
        compare(a.config, a.run, a.overrides)
    except ConfigError as e:
        p.exit(2, f"error: {e}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
