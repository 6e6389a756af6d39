"""Method study on the synthetic benchmark (feature mode, CPU): every method, one budget, two variants.

Usage::

    python benchmarks/study_synthetic.py             # full study, writes benchmarks/results/study_synthetic.json
    python benchmarks/study_synthetic.py --quick     # a few minutes: fewer steps, one seed
    python benchmarks/study_synthetic.py --steps 300 --seeds 0 1 2 --out my.json --set optim.lr=3e-4

What it does (issue 5, "benchmarks/study_synthetic.py"):

- Two variants of ``vasot_pipelines.synthetic`` in feature mode, one activity of ``steps_per_activity`` steps,
  ground-truth correspondence known from the canonical progress:
  ``monotonic`` (time warp only: no permutation, repeat, background or redundant step) and
  ``non_monotonic`` (time warp plus, each with probability 0.5 per video, permuted step order, a repeated
  step, one or two background segments, a redundant step).
- Every method (``asot vaot vasot vava clot realign kot``) and two ASOT ablations (``method.asot.segment.alpha=0``:
  no GW structure in training; ``unbalanced_actions=false`` in training and decoding: balanced) trained with the
  same budget: same steps, learning
  rate, schedule, encoder (MLP on the features), data, batch (4 videos = 2 pairs for pair methods) and seeds;
  every other hyper-parameter is the method's default in the schema.
- ``vasot_dist.train.loop.run`` trains and evaluates (``eval.protocol=lav``): ``align_acc`` (nearest-neighbour
  alignment accuracy against the known correspondence, %), ``align_progress_err``, ``kendalls_tau`` and, for
  segmentation methods (asot, vasot, clot), MoF / F1 / mIoU (Hungarian over the activity, background frames
  included as a ground-truth class).
- The untrained baseline: every configuration is also evaluated as built, before any optimiser step (first
  seed; prototypes by k-means on the untrained embeddings, as training starts), so the table shows what
  training bought (values in parentheses).
- REALIGN: on the trained embeddings of every ordered test pair the REALIGN coupling
  (``align_partial_fgw`` with the run's settings) is solved and the mass each frame sends to real frames of
  the other video is averaged over background frames (``steps == -1``: background and redundant segments,
  which have no counterpart) and over step frames.

Seeds vary the training (initialisation, sampling order), not the data. Values are mean ± sd over seeds
(population sd: for two seeds, half their difference). Runs and data go to ``--work-dir``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vasot_pipelines.synthetic import generate_synthetic  # noqa: E402

from vasot_dist.config import RunConfig, load_config  # noqa: E402

# name -> data.synthetic overrides; time warp on in both so the only difference is the non-monotonic structure
VARIANTS: dict[str, dict[str, float]] = {
    "monotonic": {"p_time_warp": 1.0, "p_background": 0.0, "p_redundant": 0.0, "p_repeat": 0.0, "p_permute": 0.0},
    "non_monotonic": {"p_time_warp": 1.0, "p_background": 0.5, "p_redundant": 0.5, "p_repeat": 0.5,
                      "p_permute": 0.5},
}

# row label -> overrides on top of the shared budget
CONFIGS: dict[str, list[str]] = {
    "asot": ["method.name=asot"],
    "asot alpha=0": ["method.name=asot", "method.asot.segment.alpha=0"],
    "asot balanced": ["method.name=asot", "method.asot.segment.unbalanced_actions=false",
                      "method.asot.decode.unbalanced_actions=false"],
    "vaot": ["method.name=vaot"],
    "vasot": ["method.name=vasot"],
    "vava": ["method.name=vava"],
    "clot": ["method.name=clot"],
    "realign": ["method.name=realign"],
    "kot": ["method.name=kot"],
}

# Measured CPU seconds per training step (batch 4 x 32 frames, 1 thread) — only for the ETA before a
# configuration has run once; measured times replace them.
STEP_COST_S = {"realign": 0.7, "clot": 0.06, "vasot": 0.035, "vaot": 0.02, "asot": 0.02, "vava": 0.02, "kot": 0.015}
EVAL_COST_S = 4.0

STEPS_PER_ACTIVITY = 4
METRICS = ("align_acc", "align_progress_err", "kendalls_tau", "seg/MoF", "seg/F1", "seg/mIoU")
MASS_KEYS = ("bg_mass", "step_mass", "bg_unmatched", "step_unmatched")


# ----------------------------------------------------------------------------------------- configs
def shared_overrides(work_dir: Path, variant: str, steps: int, seed: int, extra: list[str]) -> list[str]:
    """The budget every method gets: data, encoder, optimiser, steps, seed."""
    syn = VARIANTS[variant]
    return [
        "data.name=synthetic",
        "data.modality=features",
        f"data.shards={work_dir / 'data' / variant}",
        "data.synthetic.num_activities=1",
        f"data.synthetic.steps_per_activity={STEPS_PER_ACTIVITY}",
        "data.synthetic.videos_per_activity=16",
        "data.synthetic.test_videos_per_activity=8",
        "data.synthetic.frames_min=48",
        "data.synthetic.frames_max=96",
        "data.synthetic.feature_dim=64",
        "data.synthetic.seed=0",
        *[f"data.synthetic.{k}={v}" for k, v in syn.items()],
        "data.frames_per_video=32",
        "data.num_workers=0",
        "data.batch_size=4",
        "model.encoder=mlp",
        "model.mlp_layers=[64,64,32]",
        "model.embed_dim=32",
        f"model.num_actions={STEPS_PER_ACTIVITY}",
        "optim.lr=1e-3",
        "optim.weight_decay=1e-4",
        f"train.max_steps={steps}",
        f"train.seed={seed}",
        f"train.output_dir={work_dir / 'runs'}",
        "train.experiment=study_synthetic",
        "train.device=cpu",
        "train.bf16=false",
        "train.ckpt_every=0",
        f"train.log_every={max(1, min(50, steps))}",
        "log.wandb=disabled",
        "eval.protocol=lav",
        *extra,
    ]


def make_config(work_dir: Path, variant: str, label: str, steps: int, seed: int, extra: list[str]) -> RunConfig:
    """The run config of one cell; ``steps=0`` names the untrained baseline (its max_steps is never used)."""
    run_id = f"{variant}-{label.replace(' ', '_').replace('=', '')}-s{seed}-{f'n{steps}' if steps else 'init'}"
    return load_config(None, [*shared_overrides(work_dir, variant, max(steps, 1), seed, extra), *CONFIGS[label],
                              f"train.run_id={run_id}"])


def write_data(work_dir: Path, variants: list[str], steps: int, extra: list[str]) -> dict[str, dict[str, Any]]:
    """(Re)write each variant's feature shards; returns per-variant settings and split statistics."""
    info = {}
    for variant in variants:
        cfg = load_config(None, shared_overrides(work_dir, variant, steps, 0, extra))
        out = Path(cfg.data.shards)
        if out.exists():
            shutil.rmtree(out)
        generate_synthetic(out, cfg.data.synthetic, modality="features")
        stats = json.loads((out / "dataset.json").read_text())
        info[variant] = {"synthetic": dataclasses.asdict(cfg.data.synthetic), "shards": str(out),
                         "splits": stats["splits"]}
    return info


# -------------------------------------------------------------------------------------- one run
@contextlib.contextmanager
def _quiet(log_path: Path, verbose: bool):
    """Send stdout/stderr (the run's log handler and progress bar bind them when created) to ``log_path``."""
    if verbose:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as f, contextlib.redirect_stderr(f), contextlib.redirect_stdout(f):
        yield


def train_and_evaluate(cfg: RunConfig, log_path: Path, verbose: bool) -> dict[str, Any]:
    """``loop.run`` with its log and progress bar sent to ``log_path`` unless ``verbose``."""
    from vasot_dist.train.loop import run

    run_dir = Path(cfg.train.output_dir) / cfg.train.experiment / str(cfg.train.run_id)
    if run_dir.exists():  # a fresh run every time: never resume an older one
        shutil.rmtree(run_dir)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    with _quiet(log_path, verbose):
        out = run(cfg, resume="none")
    if out["status"] != "completed":
        raise RuntimeError(f"run {run_dir} ended with status {out['status']!r}; log: {log_path}")
    return {"run_dir": out["run_dir"], "step": out["step"], "metrics": out["metrics"],
            "wall_s": time.perf_counter() - t_wall, "cpu_s": time.process_time() - t_cpu}


def load_trained(cfg: RunConfig, run_dir: Path):
    """The ``TrainModel`` of ``run_dir``'s newest checkpoint file, in eval mode."""
    from vasot_dist.train import checkpoint as ckpt
    from vasot_dist.train.model import build_train_model

    found = ckpt.latest_loadable(run_dir / "checkpoints")
    if found is None or found[1] is None:
        raise FileNotFoundError(f"no loadable checkpoint file under {run_dir / 'checkpoints'}")
    model = build_train_model(cfg)
    model.load_state_dict(found[1]["model"])
    return model.eval()


def evaluate_at_init(cfg: RunConfig) -> tuple[dict[str, Any], Any]:
    """The untrained baseline: the model exactly as ``loop.run`` builds it before the first optimiser step
    (same seed, so the same encoder weights; prototypes by k-means on the untrained embeddings), evaluated
    with the same ``evaluate_model``. Returns (record fields, model).

    Not ``train.max_steps=1``: one Adam step at lr 1e-3 already moves nearest-neighbour accuracy by points.
    """
    from vasot_dist.config import ALIGNMENT_METHODS
    from vasot_dist.eval.runner import evaluate_model
    from vasot_dist.runtime.distributed import init_distributed
    from vasot_dist.runtime.seeding import seed_everything
    from vasot_dist.train.loop import init_prototypes
    from vasot_dist.train.model import build_train_model

    t_wall, t_cpu = time.perf_counter(), time.process_time()
    # as loop.run: alignment methods read pairs (this decides the batches k-means sees)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, pairs=cfg.data.pairs or cfg.method.name in ALIGNMENT_METHODS))
    ctx = init_distributed(cfg.train.device, cfg.dist.backend)
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)
    model = build_train_model(cfg)
    init_prototypes(cfg, model, ctx)
    metrics = evaluate_model(cfg, model, ctx, out_dir=None)
    return ({"run_dir": None, "step": 0, "metrics": metrics, "wall_s": time.perf_counter() - t_wall,
             "cpu_s": time.process_time() - t_cpu}, model.eval())


@torch.no_grad()
def realign_mass(cfg: RunConfig, model) -> dict[str, float]:
    """Mass the REALIGN coupling sends from background vs step frames, on ``model``'s embeddings.

    Every ordered pair (x, y) of test videos of one activity: ``T = align_partial_fgw(1 - X Y^T)`` with the
    run's settings (``method.realign.align``, exactly what training solves), plan (P, N, M) whose
    real rows sum to the fraction of the frame transported to real frames of y. Returns the mean row mass on
    frames with ``steps == -1`` (``bg_mass``) and on step frames (``step_mass``), the fractions of those
    frames with row mass < 0.5 (``*_unmatched``) and the frame counts.
    """
    from vasot_dist.data import make_eval_loader
    from vasot_dist.losses.common import cosine_cost
    from vasot_dist.losses.realign import solve_partial

    model.eval()
    videos: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for batch in make_eval_loader(cfg.data, cfg.data.eval_split, rank=0, world_size=1):
        valid = batch.mask[0]
        emb = model.embed(batch.features, batch.mask)[0][valid].float()
        videos.setdefault(batch.activities[0], []).append((emb, batch.steps[0][valid]))
    pairs = [(vs[i], vs[j]) for vs in videos.values() for i in range(len(vs)) for j in range(len(vs)) if i != j]
    if not pairs:
        raise ValueError(f"no pair of test videos of one activity in {cfg.data.shards}")
    n, m = max(len(x[0]) for x, _ in pairs), max(len(y[0]) for _, y in pairs)
    d = pairs[0][0][0].shape[1]
    ex, ey = torch.zeros(len(pairs), n, d), torch.zeros(len(pairs), m, d)
    mx, my = torch.zeros(len(pairs), n, dtype=torch.bool), torch.zeros(len(pairs), m, dtype=torch.bool)
    sx = torch.full((len(pairs), n), -2, dtype=torch.long)  # -2: padding
    for b, ((x, stx), (y, _)) in enumerate(pairs):
        ex[b, : len(x)], mx[b, : len(x)], sx[b, : len(x)] = x, True, stx
        ey[b, : len(y)], my[b, : len(y)] = y, True
    plan = solve_partial(cfg.method.realign.align, cosine_cost(ex, ey), mx, my)
    row = plan.sum(dim=-1)
    bg, st = sx == -1, sx >= 0
    out = {"pairs": len(pairs), "bg_frames": int(bg.sum()), "step_frames": int(st.sum())}
    for name, sel in (("bg", bg), ("step", st)):
        out[f"{name}_mass"] = float(row[sel].mean()) if sel.any() else float("nan")
        out[f"{name}_unmatched"] = float((row[sel] < 0.5).float().mean()) if sel.any() else float("nan")
    return out


# ----------------------------------------------------------------------------------- bookkeeping
class Eta:
    """Remaining-time estimate: measured seconds per (config, steps) when seen, the static cost model
    scaled by the observed/estimated ratio otherwise."""

    def __init__(self, jobs: list[tuple[str, str, int, int]]) -> None:
        self.jobs = jobs
        self.seen: dict[tuple[str, int], float] = {}
        self.est_done = 0.0
        self.actual_done = 0.0

    @staticmethod
    def static(label: str, steps: int) -> float:
        method = CONFIGS[label][0].split("=")[1]
        realign_mass_s = 10.0 if method == "realign" else 0.0
        return STEP_COST_S[method] * steps + EVAL_COST_S + realign_mass_s

    def record(self, label: str, steps: int, seconds: float) -> None:
        self.seen[(label, steps)] = seconds
        self.est_done += self.static(label, steps)
        self.actual_done += seconds

    def remaining(self, start: int) -> float:
        ratio = self.actual_done / self.est_done if self.est_done else 1.0
        return sum(self.seen.get((lab, st), ratio * self.static(lab, st)) for _, lab, st, _ in self.jobs[start:])


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s"


def aggregate(records: list[dict[str, Any]], steps: int) -> dict[str, dict[str, dict[str, Any]]]:
    """variant -> label -> {metric: {mean, sd, n, init}} over the trained seeds (and the 1-step baseline)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for variant in VARIANTS:
        out[variant] = {}
        for label in CONFIGS:
            trained = [r for r in records if r["variant"] == variant and r["label"] == label and r["steps"] == steps]
            init = [r for r in records if r["variant"] == variant and r["label"] == label and r["steps"] == 0]
            if not trained and not init:
                continue
            row: dict[str, Any] = {}
            for key in (*METRICS, *[f"realign/{k}" for k in MASS_KEYS]):
                vals = [_value(r, key) for r in trained]
                vals = [v for v in vals if v is not None and math.isfinite(v)]
                ivals = [_value(r, key) for r in init]
                ivals = [v for v in ivals if v is not None and math.isfinite(v)]
                if not vals and not ivals:
                    continue
                row[key] = {
                    "mean": float(np.mean(vals)) if vals else None,
                    "sd": float(np.std(vals)) if vals else None,
                    "n": len(vals),
                    "init": float(np.mean(ivals)) if ivals else None,
                }
            out[variant][label] = row
    return out


def _value(record: dict[str, Any], key: str) -> float | None:
    if key.startswith("realign/"):
        mass = record.get("realign_mass")
        return None if mass is None else mass.get(key.split("/", 1)[1])
    return record["metrics"].get(key)


def _cell(entry: dict[str, Any] | None, digits: int) -> str:
    if entry is None:
        return "-"
    mean, sd, init = entry["mean"], entry["sd"], entry["init"]
    s = "-" if mean is None else (f"{mean:.{digits}f}±{sd:.{digits}f}" if entry["n"] > 1 else f"{mean:.{digits}f}")
    return s + ("" if init is None else f" ({init:.{digits}f})")


def format_tables(agg: dict[str, Any], steps: int, seeds: list[int]) -> str:
    cols = [("align_acc", "align_acc %", 1), ("align_progress_err", "prog_err", 3), ("kendalls_tau", "tau", 3),
            ("seg/MoF", "MoF %", 1), ("seg/F1", "F1 %", 1), ("seg/mIoU", "mIoU %", 1)]
    lines = [f"trained: {steps} steps, mean±sd over seeds {seeds}; (init) = untrained, seed {seeds[0]}"]
    for variant, rows in agg.items():
        lines.append("")
        lines.append(f"== {variant}")
        table = [["method", *[c[1] for c in cols]]]
        for label, row in rows.items():
            table.append([label, *[_cell(row.get(key), dg) for key, _, dg in cols]])
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        for i, r in enumerate(table):
            lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        mass = rows.get("realign", {})
        if "realign/step_mass" in mass:
            lines.append(
                f"REALIGN coupling, mass sent to real frames per frame: background {_cell(mass.get('realign/bg_mass'), 3)}"
                f" vs step {_cell(mass.get('realign/step_mass'), 3)}; frames with mass < 0.5: background "
                f"{_cell(mass.get('realign/bg_unmatched'), 3)} vs step {_cell(mass.get('realign/step_unmatched'), 3)}"
            )
    return "\n".join(lines)


def orderings(agg: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's expected orderings, each with the numbers it compares (mean over seeds)."""

    def mean(variant: str, label: str, key: str) -> float | None:
        e = agg.get(variant, {}).get(label, {}).get(key)
        return None if e is None else e["mean"]

    checks = []

    def add(claim: str, variant: str, key: str, left: str, right: str, op: str) -> None:
        a, b = mean(variant, left, key), mean(variant, right, key)
        holds = None if a is None or b is None else (a >= b if op == ">=" else a > b)
        checks.append({"claim": claim, "variant": variant, "metric": key, left: a, right: b, "holds": holds})

    nm = "non_monotonic"
    for left in ("vaot", "vasot"):
        add(f"{left} >= vava", nm, "align_acc", left, "vava", ">=")
    add("vava > kot", nm, "align_acc", "vava", "kot", ">")
    for ablation in ("asot alpha=0", "asot balanced"):
        for key in ("seg/MoF", "seg/F1", "seg/mIoU"):
            for variant in VARIANTS:
                add(f"asot > {ablation}", variant, key, "asot", ablation, ">")
    e_bg, e_st = mean(nm, "realign", "realign/bg_mass"), mean(nm, "realign", "realign/step_mass")
    checks.append({"claim": "realign background mass < step mass", "variant": nm, "metric": "realign mass",
                   "bg_mass": e_bg, "step_mass": e_st,
                   "holds": None if e_bg is None or e_st is None else e_bg < e_st})
    return checks


def format_orderings(checks: list[dict[str, Any]]) -> str:
    lines = ["", "== expected orderings (means)"]
    for c in checks:
        vals = ", ".join(f"{k} {v:.3f}" for k, v in c.items()
                         if k not in ("claim", "variant", "metric", "holds") and v is not None)
        verdict = {True: "holds", False: "DOES NOT HOLD", None: "n/a"}[c["holds"]]
        lines.append(f"{c['claim']:<36} [{c['variant']}, {c['metric']}] {verdict}: {vals or 'not run'}")
    return "\n".join(lines)


def _finite(obj: Any) -> Any:
    """NaN / inf -> None, so the file is strict JSON (no background frames -> no background mass)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_finite(payload), indent=2, default=float, allow_nan=False))
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few minutes: 40 steps, seed 0 only")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default 200, quick 40)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default 0 1, quick 0)")
    ap.add_argument("--methods", nargs="+", default=list(CONFIGS), choices=list(CONFIGS), metavar="LABEL",
                    help=f"configurations to run (default all: {', '.join(CONFIGS)})")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--no-init", action="store_true", help="skip the untrained baseline evaluations")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra overrides for every run")
    ap.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "study_synthetic", help="data and runs")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON output (default benchmarks/results/study_synthetic.json, quick: study_synthetic_quick.json)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--verbose", action="store_true", help="show each run's log instead of writing it to a file")
    args = ap.parse_args(argv)

    steps = args.steps or (40 if args.quick else 200)
    seeds = args.seeds or ([0] if args.quick else [0, 1])
    out_path = args.out or ROOT / "benchmarks" / "results" / (
        "study_synthetic_quick.json" if args.quick else "study_synthetic.json")
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    torch.set_num_threads(args.threads)
    work_dir = args.work_dir.resolve()
    variants = {v: VARIANTS[v] for v in args.variants}

    t0_wall, t0_cpu = time.perf_counter(), time.process_time()
    print(f"study_synthetic: {len(args.methods)} configurations x {len(variants)} variants x seeds {seeds}, "
          f"{steps} steps each{'' if args.no_init else ' + untrained baselines (seed ' + str(seeds[0]) + ')'}; "
          f"work dir {work_dir}", flush=True)
    data_info = write_data(work_dir, list(variants), steps, args.set)
    print(f"data written in {time.perf_counter() - t0_wall:.1f} s", flush=True)

    jobs: list[tuple[str, str, int, int]] = []  # (variant, label, steps, seed)
    if not args.no_init:
        jobs += [(v, lab, 0, seeds[0]) for v in variants for lab in args.methods]
    jobs += [(v, lab, steps, s) for s in seeds for v in variants for lab in args.methods]
    eta = Eta(jobs)
    records: list[dict[str, Any]] = []
    for i, (variant, label, n_steps, seed) in enumerate(jobs):
        cfg = make_config(work_dir, variant, label, n_steps, seed, args.set)
        t_job = time.perf_counter()
        log_path = work_dir / "logs" / f"{cfg.train.run_id}.log"
        if n_steps == 0:
            with _quiet(log_path, args.verbose):
                res, model = evaluate_at_init(cfg)
        else:
            res = train_and_evaluate(cfg, log_path, args.verbose)
            model = load_trained(cfg, Path(res["run_dir"])) if cfg.method.name == "realign" else None
        rec = {"variant": variant, "label": label, "method": cfg.method.name, "steps": n_steps, "seed": seed, **res}
        if cfg.method.name == "realign":
            rec["realign_mass"] = realign_mass(cfg, model)
        rec["job_wall_s"] = time.perf_counter() - t_job
        records.append(rec)
        eta.record(label, n_steps, rec["job_wall_s"])
        m = rec["metrics"]
        shown = " ".join(f"{k.split('/')[-1]} {m[k]:.3g}" for k in ("align_acc", "kendalls_tau", "seg/MoF") if k in m)
        if "realign_mass" in rec:
            shown += f" bg_mass {rec['realign_mass']['bg_mass']:.3g} step_mass {rec['realign_mass']['step_mass']:.3g}"
        print(f"[{i + 1}/{len(jobs)}] {variant:<13} {label:<13} seed {seed} {n_steps:>4} steps "
              f"{rec['job_wall_s']:6.1f} s | {shown} | elapsed {_fmt_time(time.perf_counter() - t0_wall)} "
              f"ETA {_fmt_time(eta.remaining(i + 1))}", flush=True)

    agg = aggregate(records, steps)
    checks = orderings(agg)
    print("\n" + format_tables(agg, steps, seeds) + "\n" + format_orderings(checks))
    wall, cpu = time.perf_counter() - t0_wall, time.process_time() - t0_cpu
    print(f"\ntotal {_fmt_time(wall)} wall, {_fmt_time(cpu)} CPU (this process, {args.threads} thread(s))")
    write_json(out_path, {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "steps": steps, "seeds": seeds, "init_baseline": not args.no_init,
        "variants": data_info, "configs": {k: CONFIGS[k] for k in args.methods},
        "shared_overrides": [o for o in shared_overrides(work_dir, next(iter(variants)), steps, 0, args.set)
                             if not o.startswith(("data.synthetic.p_", "data.shards=", "train.seed="))],
        "summary": agg, "orderings": checks, "runs": records,
        "wall_s": wall, "cpu_s": cpu, "torch": torch.__version__, "python": platform.python_version(),
        "threads": args.threads,
    })
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
