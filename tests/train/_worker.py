"""Subprocess entry for trainer tests: ``python _worker.py <out.jsonl> [--die-at STEP --signal KILL|TERM]
[--pause-at STEP] [--resume auto] -- overrides...``. Records, after every step on every rank, the loss and a
checksum of the weights, then optionally signals itself; ``--pause-at``: rank 0 creates ``<out>.paused`` at that
step and waits for ``<out>.go``. Every rank whose ``run`` returns writes ``<out>.result.rank<r>``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("record")
    p.add_argument("--die-at", type=int, default=0)
    p.add_argument("--signal", default="KILL")
    p.add_argument("--pause-at", type=int, default=0)
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
        if a.pause_at and step == a.pause_at and rank == 0:
            open(f"{a.record}.paused", "w").close()
            deadline = time.monotonic() + 300
            while not os.path.exists(f"{a.record}.go") and time.monotonic() < deadline:
                time.sleep(0.05)

    result = run(cfg, resume=a.resume, on_step=on_step)
    summary = {k: v for k, v in result.items() if k != "metrics"}
    if rank == 0:
        with open(f"{a.record}.result", "w") as f:
            json.dump(summary, f)
    with open(f"{a.record}.result.rank{rank}", "w") as f:
        json.dump(summary, f)


if __name__ == "__main__":
    sys.exit(main())
