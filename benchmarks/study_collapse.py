"""Why VAOT collapses onto a constant embedding, measured on the loss itself (no training, seconds on a CPU).

Near a constant embedding ``u_t = normalize(c + delta z_t)`` (the encoder's output is L2-normalised), this
evaluates VAOT's training loss, as the trainer computes it (plan solved on the detached embeddings, soft
cross-entropy of the pseudo-labels against the softmax of cosine / tau), for two kinds of spread ``z``:

- ``nuisance``: independent random directions per frame and per video (what a random-init encoder's features
  mostly are: colours, textures, noise that differ between the two videos);
- ``temporal``: one smooth function of the frame's position in its video, the same for both videos (what an
  alignment encoder should learn).

The loss's slope in ``delta`` says which way the gradient pushes: positive = the loss prefers less of that
spread (contracting towards the constant embedding), negative = more. Printed for VAOT as published
(``contrastive_weight=0``) and with LAV's contrastive-IDM at the demo's weight 0.5, and written as JSON.

    .venv/bin/python benchmarks/study_collapse.py [--out benchmarks/results/study_collapse.json]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vasot_dist.config import load_config  # noqa: E402
from vasot_dist.losses import build_loss  # noqa: E402
from vasot_dist.runtime.files import write_json_atomic  # noqa: E402

DELTAS = (0.01, 0.03, 0.1, 0.3, 1.0)


def embeddings(kind: str, delta: float, pairs: int, frames: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """(2 * pairs, frames, dim) unit embeddings around one direction c, spread by ``delta`` along ``kind``."""
    c = F.normalize(torch.randn(dim, generator=gen), dim=0)
    if kind == "nuisance":
        z = torch.randn(2 * pairs, frames, dim, generator=gen)
    else:  # temporal: the same smooth function of t / frames in every video
        t = torch.arange(frames, dtype=torch.float32) / frames
        basis = torch.randn(4, dim, generator=gen)
        feats = torch.stack([torch.cos(math.pi * k * t) for k in range(1, 5)], dim=1)  # (frames, 4)
        z = (feats @ basis).expand(2 * pairs, frames, dim)
    z = z - (z @ c).unsqueeze(-1) * c  # spread orthogonal to c
    z = z / z.norm(dim=-1, keepdim=True).mean()
    return F.normalize(c + delta * z, dim=-1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "demo.yaml"))
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "study_collapse.json"))
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    frames, dim = cfg.data.frames_per_video, cfg.model.embed_dim
    rows = []
    for weight in (0.0, 0.5):
        loss_fn = build_loss(load_config(args.config, ["method.name=vaot", f"method.vaot.contrastive_weight={weight}"]))
        for kind in ("nuisance", "temporal"):
            values = []
            for delta in DELTAS:
                total = 0.0
                for r in range(args.repeats):
                    gen = torch.Generator().manual_seed(r)
                    emb = embeddings(kind, delta, args.pairs, frames, dim, gen)
                    mask = torch.ones(emb.shape[:2], dtype=torch.bool)
                    total += float(loss_fn(emb, mask).loss)
                values.append(total / args.repeats)
            rows.append({"contrastive_weight": weight, "spread": kind,
                         "loss": dict(zip(map(str, DELTAS), values))})
            trend = "contracts" if values[1] > values[0] else "expands"
            print(f"contrastive_weight {weight:<4} {kind:<9} " + "  ".join(
                f"d={d:g}: {v:.4f}" for d, v in zip(DELTAS, values)) + f"   (near 0 the loss {trend})")
    write_json_atomic(args.out, {"config": args.config, "frames": frames, "dim": dim, "pairs": args.pairs,
                                 "tau": cfg.method.vaot.tau, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
