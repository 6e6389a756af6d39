"""How many Bregman sweeps per mirror-descent step REALIGN's solver needs (``ot.partial_inner_iters``).

REALIGN's solve is 20 outer steps x ``inner_iters`` sweeps (default 100), each sweep ~27 small ops: on a GPU
it is bound by kernel launches, so the sweep count is the cost (docs/performance.md). The sweeps are
warm-started from the previous step's duals. This study measures, over eps, mass and pair shapes, the largest
plan difference between a float32 solve with a given sweep count and a converged float64 reference (2,000
sweeps), and the CPU time of the float32 solve.

    python benchmarks/study_realign_inner.py            # writes benchmarks/results/study_realign_inner.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vasot_dist.ot import align_partial_fgw  # noqa: E402

INNER = (5, 10, 20, 30, 50, 100)
SHAPES = ((20, 20, 0.1), (20, 30, 1.0), (128, 96, 0.3))  # (N, M, noise of y around a resampled x)


def pair_cost(gen: torch.Generator, batch: int, n: int, m: int, noise: float, dim: int = 32) -> torch.Tensor:
    """Cosine cost (B, N, M) between x and a time-resampled noisy copy of it (a plausible alignment)."""
    x = F.normalize(torch.randn(batch, n, dim, generator=gen), dim=-1)
    idx = torch.linspace(0, n - 1, m).round().long()
    y = F.normalize(x[:, idx] + noise * torch.randn(batch, m, dim, generator=gen), dim=-1)
    return 1 - x @ y.transpose(1, 2)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "study_realign_inner.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    rows = []
    print(f"{'eps':>5} {'mass':>5} {'N':>4} {'M':>4} | max |P_k - P_ref| for k sweeps (float32 vs float64, 2000)")
    for eps in (0.01, 0.03, 0.07):
        for mass in (0.5, 0.8, 1.0):
            for n, m, noise in SHAPES:
                cost = pair_cost(gen, 2, n, m, noise)
                kw = dict(mass=mass, eps=eps, alpha=0.3, radius=0.04, temporal_prior=0.35, virtual_cost=0.5,
                          n_iters=20)
                ref = align_partial_fgw(cost.double(), inner_iters=2000, **kw)
                errors, ms = {}, {}
                for k in INNER:
                    t0 = time.perf_counter()
                    plan = align_partial_fgw(cost, inner_iters=k, **kw)
                    ms[k] = (time.perf_counter() - t0) * 1e3
                    errors[k] = float((plan.double() - ref).abs().max())
                rows.append({"eps": eps, "mass": mass, "n": n, "m": m, "noise": noise,
                             "max_abs_diff": errors, "cpu_ms": ms})
                print(f"{eps:>5} {mass:>5} {n:>4} {m:>4} | " + "  ".join(f"{k}:{e:.1e}" for k, e in errors.items()),
                      flush=True)
    result = {"benchmark": "study_realign_inner", "torch": torch.__version__, "threads": 1, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
