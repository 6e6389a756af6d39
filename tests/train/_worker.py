"""Subprocess entry for trainer tests: ``python _worker.py <out.jsonl> [--die-at STEP --signal KILL|TERM]
[--resume auto] -- overrides...``. Records, after every step on every rank, the loss and a checksum of the
weights, then optionally signals itself."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("record")
    p.add_argument("--die-at", type=int, default=0)
    p.add_argument("--signal", default="KILL")
    p.add_argument("--resume", default="none")
    p.add_argument("--config", default=None)
    p.add_argument("overrides", nargs="*")
    a = p.parse_args()

    from vasot_dist.cli import ensure_synthetic_data
    from vasot_dist.config import load_config
    from vasot_dist.train.loop import run

    cfg = load_config(a.config, a.overrides)
    ensure_synthetic_data(cfg)  # as vasot-train does before run()
    rank = int(os.environ.get("RANK", "0"))

    def on_step(step, model, out):
        flat = torch.cat([q.detach().double().flatten() for q in model.parameters()])
        row = {"rank": rank, "step": step, "loss": float(out.loss), "wsum": float(flat.sum()),
               "wsq": float((flat * flat).sum()), "w0": flat[:8].tolist()}
        with open(f"{a.record}.rank{rank}", "a") as f:
            f.write(json.dumps(row) + "\n")
        if a.die_at and step == a.die_at:
            os.kill(os.getpid(), getattr(signal, f"SIG{a.signal}"))

    result = run(cfg, resume=a.resume, on_step=on_step)
    if rank == 0:
        with open(f"{a.record}.result", "w") as f:
            json.dump({k: v for k, v in result.items() if k != "metrics"}, f)


if __name__ == "__main__":
    sys.exit(main())
