"""Does the demo learn on any machine? `make demo`'s training over seeds and CPU instruction sets.

For every seed (default 0-9) and every instruction set (default: the machine's own, and
``ATEN_CPU_CAPABILITY=default``, ATen's kernels without vector instructions, whose float rounding differs), this
runs exactly what ``launchers/demo.sh`` runs (``configs/demo.yaml`` on 2 CPU processes under
``torch.distributed.run``, then ``vasot-compare`` against the same model untrained) and reads back:

- untrained and trained ``align_acc``, ``kendalls_tau`` and ``phase_acc@1`` (``<run>/eval/compare.json``);
- the collapse statistics of every log row (``collapse/emb_cos``, ``collapse/eff_rank`` in ``metrics.jsonl``) and
  the warnings the trainer's collapse monitor gives on them (:class:`CollapseMonitor`, replayed on the rows).

A run *learned* when the trained model beats the untrained one by at least ``--min-gain-acc`` points of
alignment accuracy and ``--min-gain-tau`` of Kendall's tau. Results go to ``--out`` (JSON, rewritten after every
run, so an interrupted study resumes: finished runs are read back, not trained again) and a table is printed.

    .venv/bin/python benchmarks/demo_seeds.py                     # 20 runs, ~5 min each on an idle 2-core machine
    .venv/bin/python benchmarks/demo_seeds.py --seeds 1 --isa native   # one run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vasot_dist.runtime.files import write_json_atomic  # noqa: E402
from vasot_dist.train.collapse import COLLAPSE_COS, CollapseMonitor  # noqa: E402

METRICS = ("align_acc", "kendalls_tau", "phase_acc@1")


def cpu_facts() -> dict[str, str]:
    flags = ""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    vector = [f for f in ("avx512f", "avx2", "avx", "sse4_2") if f" {f}" in flags]
    return {"cpu": model or "unknown", "vector_flags": ",".join(vector)}


def isa_env(isa: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PYTHONUNBUFFERED="1")
    env.pop("ATEN_CPU_CAPABILITY", None)
    if isa != "native":
        env["ATEN_CPU_CAPABILITY"] = isa
    return env


def capability(env: dict[str, str]) -> str:
    """What ATen dispatches to under ``env`` (torch.backends.cpu.get_cpu_capability in a fresh process)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def monitor_rows(run_dir: Path) -> list[dict[str, float]]:
    rows = []
    path = run_dir / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if "collapse/emb_cos" in row:
                rows.append({"step": row.get("step"), "loss": row.get("loss"),
                             "emb_cos": row["collapse/emb_cos"], "eff_rank": row.get("collapse/eff_rank")})
    return rows


def collapse_warnings(rows: list[dict[str, float]]) -> int:
    """The warnings the trainer's monitor gives on these rows (one per collapse episode)."""
    monitor = CollapseMonitor(COLLAPSE_COS)
    return sum(monitor.check({"collapse/emb_cos": r["emb_cos"]}, r["step"]) is not None for r in rows)


def run_one(seed: int, isa: str, experiment: str, overrides: list[str], log_dir: Path) -> dict:
    run_id = f"{isa}-s{seed}"
    run_dir = ROOT / "runs" / experiment / run_id
    env = isa_env(isa)
    log_path = log_dir / f"{run_id}.log"
    train = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
             "launchers/train.py", "--config", "configs/demo.yaml", "--overwrite",
             f"train.run_id={run_id}", f"train.seed={seed}", f"train.experiment={experiment}",
             "log.wandb=disabled", *overrides]
    start = time.perf_counter()
    with log_path.open("w") as log:
        subprocess.run(train, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
        subprocess.run([sys.executable, "launchers/compare.py", "--run", str(run_dir)], cwd=ROOT, env=env,
                       stdout=log, stderr=subprocess.STDOUT, check=True)
    compare = json.loads((run_dir / "eval" / "compare.json").read_text())
    rows = monitor_rows(run_dir)
    return {
        "seed": seed, "isa": isa, "capability": capability(env), "run_dir": str(run_dir.relative_to(ROOT)),
        "wall_s": round(time.perf_counter() - start, 1),
        "untrained": {k: compare["untrained"].get(k) for k in METRICS},
        "trained": {k: compare["trained"].get(k) for k in METRICS},
        "monitor": rows,
        "max_emb_cos_after_20": max((r["emb_cos"] for r in rows if r["step"] and r["step"] > 20), default=None),
        "collapse_warnings": collapse_warnings(rows),
    }


def learned(r: dict, min_acc: float, min_tau: float) -> bool:
    u, t = r["untrained"], r["trained"]
    return (t["align_acc"] - u["align_acc"] >= min_acc) and (t["kendalls_tau"] - u["kendalls_tau"] >= min_tau)


def table(results: list[dict], min_acc: float, min_tau: float) -> str:
    lines = ["| seed | instruction set | align_acc | kendalls_tau | phase_acc@1 | max emb_cos (step > 20) | "
             "collapse warnings | learned |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["isa"], r["seed"])):
        u, t = r["untrained"], r["trained"]
        cos = "-" if r["max_emb_cos_after_20"] is None else f"{r['max_emb_cos_after_20']:.3f}"
        lines.append(
            f"| {r['seed']} | {r['capability']} | {u['align_acc']:.1f} → {t['align_acc']:.1f} | "
            f"{u['kendalls_tau']:.3f} → {t['kendalls_tau']:.3f} | {u['phase_acc@1']:.1f} → {t['phase_acc@1']:.1f} "
            f"| {cos} | {r['collapse_warnings']} | {'yes' if learned(r, min_acc, min_tau) else '**no**'} |")
    n = sum(learned(r, min_acc, min_tau) for r in results)
    lines.append(f"\nlearned: {n} of {len(results)} (align_acc gain >= {min_acc} points and tau gain >= {min_tau})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--isa", nargs="+", default=["native", "default"],
                   help="ATEN_CPU_CAPABILITY values; 'native' leaves it unset (the machine's best)")
    p.add_argument("--experiment", default="demo_seeds", help="runs go to runs/<experiment>/<isa>-s<seed>")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "demo_seeds.json"))
    p.add_argument("--min-gain-acc", type=float, default=5.0)
    p.add_argument("--min-gain-tau", type=float, default=0.1)
    p.add_argument("--rerun", action="store_true", help="train again runs already in --out")
    p.add_argument("overrides", nargs="*", help="config overrides for every run (key=value)")
    args = p.parse_args(argv)

    out = Path(args.out)
    done: dict[tuple[int, str], dict] = {}
    if out.exists() and not args.rerun:
        previous = json.loads(out.read_text())
        if previous.get("overrides", []) == args.overrides:
            done = {(r["seed"], r["isa"]): r | {"collapse_warnings": collapse_warnings(r["monitor"])}
                    for r in previous["runs"]}
    log_dir = ROOT / "runs" / args.experiment / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    todo = [(s, isa) for isa in args.isa for s in args.seeds if (s, isa) not in done]
    start = time.perf_counter()
    for i, (seed, isa) in enumerate(todo):
        print(f"[{i + 1}/{len(todo)}] seed {seed}, ATEN_CPU_CAPABILITY={isa} (log {log_dir}/{isa}-s{seed}.log)",
              flush=True)
        r = run_one(seed, isa, args.experiment, args.overrides, log_dir)
        done[(seed, isa)] = r
        elapsed = time.perf_counter() - start
        eta = elapsed / (i + 1) * (len(todo) - i - 1)
        print(f"    align_acc {r['untrained']['align_acc']:.1f} -> {r['trained']['align_acc']:.1f}, tau "
              f"{r['untrained']['kendalls_tau']:.3f} -> {r['trained']['kendalls_tau']:.3f}, {r['wall_s']:.0f} s; "
              f"ETA {eta / 60:.0f} min", flush=True)
        write_json_atomic(out, {
            "config": "configs/demo.yaml", "overrides": args.overrides, "collapse_cos": COLLAPSE_COS,
            "machine": cpu_facts(), "git": _git_commit(),
            "criteria": {"min_gain_acc": args.min_gain_acc, "min_gain_tau": args.min_gain_tau},
            "runs": list(done.values())}, indent=1)
    results = [r for r in done.values() if r["seed"] in args.seeds and r["isa"] in args.isa]
    print(table(results, args.min_gain_acc, args.min_gain_tau))
    return 0


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
