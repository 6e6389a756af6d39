"""Method study on the synthetic presets (feature mode, CPU): does each method learn, and do the papers' orderings hold?

Usage::

    python benchmarks/study_synthetic.py --tables segmentation --out benchmarks/results/study_synthetic_segmentation.json
    python benchmarks/study_synthetic.py --tables alignment --out benchmarks/results/study_synthetic_alignment.json
    python benchmarks/study_synthetic.py --quick            # 1 seed, 2 activities per segmentation preset
    python benchmarks/study_synthetic.py --tables alignment --seeds 0 1 2 3 4 --set train.max_steps=100
    python benchmarks/study_synthetic.py --merge s0.json s1.json s2.json --out all.json   # one process per seed
    python benchmarks/study_synthetic.py --modality video   # raw video, ResNet-50 end to end (below)

The default (both tables, 3 seeds, 3 activities per segmentation preset) writes benchmarks/results/study_synthetic.json;
the two tables run as two processes use the two cores (~45 min each on a loaded 2-core machine).

Every row is a registered method (``vasot_dist.config.METHODS``; in the segmentation table when its loss decodes
segmentations, else in the alignment table) or one of its ablations (``ABLATIONS``), run with a config of
``configs/synthetic/`` as is (``<preset>_<method>.yaml``, else the preset's own file with ``method.name=<method>``),
under each method's own protocol; the study adds only the data location, the seed, and the CPU bookkeeping
(``STUDY_OVERRIDES``). docs/benchmark.md holds the tables and what they show.

- **Segmentation** (``breakfast_like``, ``yti_like``), ASOT's protocol: one model per activity with K = its
  ground-truth classes, trained and scored on the same videos (transductive), MoF / F1 / mIoU with one
  Hungarian matching per activity, averaged over the scored activities. Rows: ASOT, its ablations (no GW in
  training only / in training and decoding; balanced OT in training and decoding), VASOT, CLOT with and
  without feature dispatching.
- **Alignment** (``pouring_like`` monotonic, ``ikea_like`` non-monotonic with background), held-out
  protocol: train on the train split, score the test split (phase SVM per the preset's ``eval.protocol``,
  nearest-neighbour ``align_acc`` against the known correspondence, Kendall's tau, AP@K). Rows: VAOT, VAVA,
  KOT, REALIGN; REALIGN's coupling is also solved on every ordered test pair to measure the mass that
  background and step frames send (``realign_mass``).
- **Untrained baseline**: the same model as built before the first optimiser step (same seed, prototypes by
  k-means on the untrained embeddings), scored the same way, for every seed. Alignment methods without
  learnable loss parts share one untrained encoder per seed (the ``untrained`` row).

**Video mode** (``--modality video``): the same presets rendered as procedural videos and the LAV/VAOT ResNet-50
encoder trained end to end from random weights, at the CPU's budget: every run adds ``VIDEO_OVERRIDES`` (the
common part and the preset's, after the preset's file and before ``--set``): small frames, few frames per video,
few and short videos, few steps, 1 context frame, a narrow head. Default rows: VAOT on ``pouring_like`` and
``ikea_like`` (with LAV's contrastive-IDM as the guard against VAOT's trivial solution, as configs/demo.yaml),
ASOT on one activity of ``breakfast_like``; results in benchmarks/results/study_video.json, written after every
run; runs and logs under runs/study_video.

Values are mean ± sd over training seeds (population sd); the data are fixed (generator seed 0; the sweeps
tune on generator seed 1, other activities and videos). Runs, data and logs go to ``--work-dir``.
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

from vasot_pipelines import synthetic as syn  # noqa: E402

import vasot_dist.losses  # noqa: E402,F401  (registers every method's loss: the rows come from the registry)
from vasot_dist.config import METHODS, RunConfig, load_config  # noqa: E402
from vasot_dist.train.preflight import fill_from_data  # noqa: E402

PRESET_DIR = ROOT / "configs" / "synthetic"

PRESETS = {"segmentation": ("breakfast_like", "yti_like"), "alignment": ("pouring_like", "ikea_like")}
# Rows beside each method's own: {method: {row label: extra overrides}}, each listed after its method's row.
ABLATIONS: dict[str, dict[str, list[str]]] = {
    "asot": {
        "asot no-GW (train)": ["method.asot.segment.alpha=0"],
        "asot no-GW (train+test)": ["method.asot.segment.alpha=0", "method.asot.decode.alpha=0"],
        "asot balanced (train+test)": ["method.asot.segment.unbalanced_actions=false",
                                       "method.asot.decode.unbalanced_actions=false"],
    },
    "clot": {"clot no-dispatch": ["method.clot.dispatch=none"]},
}


def method_rows(table: str) -> dict[str, tuple[str, list[str]]]:
    """{row label: (method, extra overrides)} of ``table``: every registered method whose loss decodes
    segmentations (segmentation) or does not (alignment), each followed by its ablations."""
    rows: dict[str, tuple[str, list[str]]] = {}
    for name, method in METHODS.items():
        if method.loss.segments() == (table == "segmentation"):
            rows[name] = (name, [])
            rows.update({label: (name, extra) for label, extra in ABLATIONS.get(name, {}).items()})
    return rows


# table -> (presets, {row label: (method, extra overrides)})
TABLES: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, list[str]]]]] = {
    table: (presets, method_rows(table)) for table, presets in PRESETS.items()}
UNTRAINED = "untrained"  # the shared untrained encoder of an alignment preset

# What the study sets on top of every config: where data and runs go, and CPU bookkeeping.
STUDY_OVERRIDES = ["data.num_workers=0", "train.device=cpu", "train.bf16=false", "train.ckpt_every=0",
                   "log.wandb=disabled", "train.experiment=study_synthetic"]

# Video mode (``--modality video``): what every run adds to fit a ~1-core CPU budget of ~3 min per run (ResNet-50
# from random weights, as configs/demo.yaml), "*" for every preset, then the preset's own. Fewer and shorter
# videos keep the rendering and the per-evaluation embedding cheap; the preset's timeline statistics (steps,
# background, repeats, swaps) stay.
VIDEO_OVERRIDES: dict[str, list[str]] = {
    # 2 videos of 16 frames per step (one pair for VAOT, as each of the demo's 2 processes), 32 px, 100 steps
    "*": ["data.modality=video", "model.encoder=resnet50", "model.weights=none", "data.image_size=32",
          "data.synthetic.size=32", "data.frames_per_video=16", "data.context_frames=1", "data.batch_size=2",
          "model.head_dim=128", "model.embed_dim=64", "data.standardize=false", "train.max_steps=100",
          "optim.lr=1e-3", "optim.schedule=constant"],
    # the guard against VAOT's trivial solution from random weights: the demo's (LAV's contrastive-IDM)
    "pouring_like": ["data.synthetic.videos_per_activity=12", "data.synthetic.test_videos_per_activity=8",
                     "data.synthetic.frames_min=48", "data.synthetic.frames_max=96", "eval.kendall_stride=1",
                     "method.vaot.contrastive_weight=0.5"],
    "ikea_like": ["data.synthetic.videos_per_activity=12", "data.synthetic.test_videos_per_activity=8",
                  "data.synthetic.frames_min=64", "data.synthetic.frames_max=128", "eval.kendall_stride=1",
                  "method.vaot.contrastive_weight=0.5"],
    # 12 videos, scored on themselves (transductive)
    "breakfast_like": ["data.synthetic.videos_per_activity=12", "data.synthetic.frames_min=64",
                       "data.synthetic.frames_max=128"],
}
VIDEO_PRESETS = {"segmentation": ("breakfast_like",), "alignment": ("pouring_like", "ikea_like")}
VIDEO_ROWS = ["vaot", "asot"]  # the default rows of the video mode (--rows chooses others)


def video_overrides(preset: str) -> list[str]:
    """The video mode's overrides of ``preset``: the common part, then the preset's."""
    return [*VIDEO_OVERRIDES["*"], *VIDEO_OVERRIDES.get(preset, [])]


HEADLINE = {"segmentation": ("seg/MoF", "seg/F1"), "alignment": ("align_acc", "ap@5")}
METRICS = {
    "segmentation": ("seg/MoF", "seg/F1", "seg/mIoU"),
    "alignment": ("phase_acc@0.1", "phase_acc@1", "align_acc", "kendalls_tau", "ap@5"),
}
MASS_KEYS = ("bg_mass", "step_mass", "bg_unmatched", "step_unmatched")


# ----------------------------------------------------------------------------------------- configs
def preset_config(preset: str, overrides: list[str] = ()) -> RunConfig:
    return load_config(PRESET_DIR / f"{preset}.yaml", list(overrides))


def scored_activities(preset: str, count: int | None) -> list[int]:
    """The activities a preset is scored on: each segmentation model trains on one activity; an alignment
    preset holds one activity and trains on all of it (``[-1]``)."""
    cfg = preset_config(preset)
    if not cfg.data.synthetic.activities:
        return [-1]
    n = cfg.data.synthetic.num_activities
    return list(range(n if count is None else min(count, n)))


def cell_overrides(work_dir: Path, preset: str, activity: int, seed: int, extra: list[str]) -> list[str]:
    """Data location (one shard folder per preset and activity), K of the activity, seed, study bookkeeping."""
    out = [*STUDY_OVERRIDES, f"train.output_dir={work_dir / 'runs'}", f"train.seed={seed}"]
    if activity < 0:
        return [*out, f"data.shards={work_dir / 'data' / preset}", *extra]
    cfg = preset_config(preset)
    k = syn.num_steps(cfg.data.synthetic, activity)
    c = cfg.data.synthetic
    background_is_a_class = (c.p_background > 0 or c.p_redundant > 0) and cfg.eval.exclude_cls != syn.background_id(c)
    return [*out, f"data.synthetic.activities=[{activity}]", f"model.num_actions={k + int(background_is_a_class)}",
            f"data.shards={work_dir / 'data' / preset / f'activity{activity}'}", *extra]


def make_config(work_dir: Path, table: str, preset: str, label: str, activity: int, seed: int, trained: bool,
                extra: list[str]) -> RunConfig:
    """The row's config on ``preset``: ``<preset>_<method>.yaml`` when it exists, else the preset's own file with
    ``method.name=<method>`` (the preset's method, or a method run at its defaults on the preset's data)."""
    method, row = TABLES[table][1].get(label, (None, []))  # None: the untrained row, the preset's own config
    path = PRESET_DIR / f"{preset}.yaml"
    if method is not None:
        own = PRESET_DIR / f"{preset}_{method}.yaml"
        path, row = (own, row) if own.exists() else (path, [f"method.name={method}", *row])
    tag = "".join(c if c.isalnum() else "_" for c in label)
    run_id = f"{preset}-{tag}-a{activity}-s{seed}-{'trained' if trained else 'init'}"
    cfg = load_config(path, [*row, *cell_overrides(work_dir, preset, activity, seed, extra), f"train.run_id={run_id}"])
    # K from the label map when the preset leaves it unset, as loop.run does: the untrained baseline and the
    # REALIGN key-step metrics build and score the model outside loop.run
    return fill_from_data(cfg, training=False, report=False)


def write_data(work_dir: Path, preset: str, activities: list[int], extra: list[str]) -> dict[str, Any]:
    """(Re)write the preset's shards, one folder per scored activity; returns its settings and split statistics."""
    info: dict[str, Any] = {}
    for a in activities:
        cfg = preset_config(preset, cell_overrides(work_dir, preset, a, 0, extra))
        out = Path(cfg.data.shards)
        if out.exists():
            shutil.rmtree(out)
        syn.generate_synthetic(out, cfg.data.synthetic, modality=cfg.data.modality)
        stats = json.loads((out / "dataset.json").read_text())["splits"]
        info[str(a)] = {"shards": str(out), "splits": stats, "num_actions": cfg.model.num_actions}
        info["synthetic"] = {k: v for k, v in dataclasses.asdict(cfg.data.synthetic).items() if k != "activities"}
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
    """``loop.run`` (a fresh run) with its log and progress bar sent to ``log_path`` unless ``verbose``."""
    from vasot_dist.train.loop import run

    run_dir = Path(cfg.train.output_dir) / cfg.train.experiment / str(cfg.train.run_id)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    t_wall = time.perf_counter()
    with _quiet(log_path, verbose):
        out = run(cfg, resume="none")
    if out["status"] != "completed":
        raise RuntimeError(f"run {run_dir} ended with status {out['status']!r}; log: {log_path}")
    return {"run_dir": out["run_dir"], "step": out["step"], "metrics": out["metrics"],
            "wall_s": time.perf_counter() - t_wall}


def load_trained(cfg: RunConfig, run_dir: Path):
    """The ``TrainModel`` of ``run_dir``'s newest checkpoint file, in eval mode."""
    from vasot_dist.train import checkpoint as ckpt
    from vasot_dist.train.model import build_train_model

    found = ckpt.latest_loadable(run_dir / "checkpoints")
    if found is None or found[1] is None:
        raise FileNotFoundError(f"no loadable checkpoint file under {run_dir / 'checkpoints'}")
    model = build_train_model(cfg, from_checkpoint=True)
    model.load_state_dict(found[1]["model"])
    return model.eval()


def untrained_model(cfg: RunConfig):
    """The model exactly as ``loop.run`` builds it before the first optimiser step: same seed, so the same
    weights; prototypes by k-means on the untrained embeddings. Not ``train.max_steps=1``: one Adam step at
    lr 1e-3 already moves the metrics by points."""
    from vasot_dist.runtime.distributed import init_distributed
    from vasot_dist.runtime.seeding import seed_everything
    from vasot_dist.train.loop import init_prototypes, with_method_pairs
    from vasot_dist.train.model import build_train_model

    cfg = with_method_pairs(cfg)  # as loop.run: pair methods read pairs (this decides the batches k-means sees)
    ctx = init_distributed(cfg.train.device, cfg.dist.backend)
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)
    model = build_train_model(cfg)
    init_prototypes(cfg, model, ctx)
    return model.eval(), ctx


def evaluate_untrained(cfg: RunConfig) -> tuple[dict[str, Any], Any]:
    """The untrained baseline's metrics (same ``evaluate_model`` as a trained run) and the model."""
    from vasot_dist.eval.runner import evaluate_model

    t_wall = time.perf_counter()
    model, ctx = untrained_model(cfg)
    metrics = evaluate_model(cfg, model, ctx, out_dir=None)
    return {"run_dir": None, "step": 0, "metrics": metrics, "wall_s": time.perf_counter() - t_wall}, model


@torch.no_grad()
def has_unmatched_frames(cfg: RunConfig) -> bool:
    """The preset draws frames without a counterpart in another video (background, redundant steps): only then
    is REALIGN's mass worth measuring (pouring_like has none: its 992 ordered test pairs ran for minutes, for NaN)."""
    c = cfg.data.synthetic
    return c.p_background > 0 or c.p_redundant > 0


def realign_mass(cfg: RunConfig, model) -> dict[str, float]:
    """Mass the REALIGN coupling sends from background vs step frames, on ``model``'s embeddings.

    Every ordered pair (x, y) of test videos of one activity: ``T = align_partial_fgw(1 - X Y^T)`` with the
    run's settings (``method.realign.align``, what training solves), plan (P, N, M) whose real rows
    sum to the share of the frame transported to real frames of y. Returns the mean row mass on frames with
    ``steps == -1`` (background and redundant steps, which have no counterpart: ``bg_mass``) and on step
    frames (``step_mass``), the shares of those frames with row mass < 0.5 (``*_unmatched``) and the counts.
    Videos are subsampled to 256 frames (every k-th) to bound the P x N x M solve.
    """
    from vasot_dist.data import make_eval_loader
    from vasot_dist.losses.common import cosine_cost
    from vasot_dist.losses.realign import solve_partial

    model.eval()
    videos: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for batch in make_eval_loader(cfg.data, cfg.data.eval_split, rank=0, world_size=1):
        valid = batch.mask[0]
        emb = model.embed(batch.features, batch.mask)[0][valid].float()
        stride = max(1, math.ceil(len(emb) / 256))
        videos.setdefault(batch.activities[0], []).append((emb[::stride], batch.steps[0][valid][::stride]))
    pairs = [(vs[i], vs[j]) for vs in videos.values() for i in range(len(vs)) for j in range(len(vs)) if i != j]
    if not pairs:
        raise ValueError(f"no pair of test videos of one activity in {cfg.data.shards}")
    rows, steps = [], []
    for start in range(0, len(pairs), 16):  # batches of pairs: memory stays bounded
        chunk = pairs[start:start + 16]
        n, m = max(len(x[0]) for x, _ in chunk), max(len(y[0]) for _, y in chunk)
        d = chunk[0][0][0].shape[1]
        ex, ey = torch.zeros(len(chunk), n, d), torch.zeros(len(chunk), m, d)
        mx, my = torch.zeros(len(chunk), n, dtype=torch.bool), torch.zeros(len(chunk), m, dtype=torch.bool)
        sx = torch.full((len(chunk), n), -2, dtype=torch.long)  # -2: padding
        for b, ((x, stx), (y, _)) in enumerate(chunk):
            ex[b, : len(x)], mx[b, : len(x)], sx[b, : len(x)] = x, True, stx
            ey[b, : len(y)], my[b, : len(y)] = y, True
        plan = solve_partial(cfg.method.realign.align, cosine_cost(ex, ey), mx, my)
        rows.append(plan.sum(dim=-1)[sx > -2])
        steps.append(sx[sx > -2])
    row, st = torch.cat(rows), torch.cat(steps)
    bg, step = st == -1, st >= 0
    out = {"pairs": len(pairs), "bg_frames": int(bg.sum()), "step_frames": int(step.sum())}
    for name, sel in (("bg", bg), ("step", step)):
        out[f"{name}_mass"] = float(row[sel].mean()) if sel.any() else float("nan")
        out[f"{name}_unmatched"] = float((row[sel] < 0.5).float().mean()) if sel.any() else float("nan")
    return out


# ----------------------------------------------------------------------------------- bookkeeping
def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo; the architecture elsewhere) and whether it has AVX-512."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    return f"{name or platform.machine()} ({os.cpu_count()} cores{', AVX-512' if 'avx512f' in info else ''})"


def _stats(vals: list[float]) -> dict[str, Any] | None:
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    if not vals:
        return None
    return {"mean": float(np.mean(vals)), "sd": float(np.std(vals)), "n": len(vals), "values": vals}


def _value(record: dict[str, Any], key: str) -> float | None:
    if key.startswith("realign/"):
        mass = record.get("realign_mass")
        return None if mass is None else mass.get(key.split("/", 1)[1])
    return record["metrics"].get(key)


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    """table -> preset -> label -> metric -> {trained: stats over seeds, untrained: stats over seeds}.

    A seed's value is the mean over the scored activities (segmentation) or the preset's one run (alignment).
    """
    out: dict[str, Any] = {}
    for table, (presets, rows) in TABLES.items():
        for preset in presets:
            labels = ([UNTRAINED] if table == "alignment" else []) + list(rows)
            for label in labels:
                recs = [r for r in records if r["preset"] == preset and r["label"] == label]
                if not recs:
                    continue
                keys = [*METRICS[table], *([f"realign/{k}" for k in MASS_KEYS] if label == "realign" else [])]
                entry: dict[str, Any] = {}
                for key in keys:
                    cell = {}
                    for kind in ("trained", "untrained"):
                        per_seed: dict[int, list[float]] = {}
                        for r in recs:
                            v = _value(r, key)
                            if r["kind"] == kind and v is not None and math.isfinite(v):
                                per_seed.setdefault(r["seed"], []).append(v)
                        cell[kind] = _stats([float(np.mean(v)) for _, v in sorted(per_seed.items())])
                    if cell["trained"] or cell["untrained"]:
                        entry[key] = cell
                out.setdefault(table, {}).setdefault(preset, {})[label] = entry
    return out


def _cell(stats: dict[str, Any] | None, digits: int) -> str:
    if stats is None:
        return "-"
    return f"{stats['mean']:.{digits}f}" + (f"±{stats['sd']:.{digits}f}" if stats["n"] > 1 else "")


def format_tables(agg: dict[str, Any], seeds: list[int]) -> str:
    lines = [f"mean±sd over seeds {seeds}; trained (untrained)"]
    for table, presets in agg.items():
        for preset, rows in presets.items():
            cols = METRICS[table]
            lines += ["", f"== {table}: {preset}"]
            grid = [["row", *cols]]
            for label, entry in rows.items():
                cells = []
                for key in cols:
                    digits = 3 if key == "kendalls_tau" else 1
                    e = entry.get(key, {})
                    tr, un = e.get("trained"), e.get("untrained")
                    cells.append(_cell(tr if tr else un, digits) + (f" ({_cell(un, digits)})" if tr and un else ""))
                grid.append([label, *cells])
            widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]
            for i, r in enumerate(grid):
                lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
                if i == 0:
                    lines.append("  ".join("-" * w for w in widths))
            mass = rows.get("realign", {})
            if "realign/step_mass" in mass:
                t = {k: mass[f"realign/{k}"]["trained"] for k in MASS_KEYS if f"realign/{k}" in mass}
                lines.append(f"REALIGN coupling, mass each frame sends to real frames: background "
                             f"{_cell(t.get('bg_mass'), 3)} vs step {_cell(t.get('step_mass'), 3)}; frames sending "
                             f"< 0.5: background {_cell(t.get('bg_unmatched'), 3)} vs step {_cell(t.get('step_unmatched'), 3)}")
    return "\n".join(lines)


def learning_checks(agg: dict[str, Any]) -> list[dict[str, Any]]:
    """Every trained row against its untrained baseline on its table's headline metrics: holds when the mean
    gain exceeds the larger of the two seed sds."""
    checks = []
    for table, presets in agg.items():
        for preset, rows in presets.items():
            for label, entry in rows.items():
                if label == UNTRAINED:
                    continue
                for key in HEADLINE[table]:
                    e = entry.get(key, {})
                    tr = e.get("trained")
                    un = e.get("untrained") or rows.get(UNTRAINED, {}).get(key, {}).get("untrained")
                    if tr is None or un is None:
                        continue
                    gain, spread = tr["mean"] - un["mean"], max(tr["sd"], un["sd"])
                    checks.append({"table": table, "preset": preset, "row": label, "metric": key,
                                   "trained": tr["mean"], "untrained": un["mean"], "gain": gain, "spread": spread,
                                   "holds": gain > spread})
    return checks


def ordering_checks(agg: dict[str, Any]) -> list[dict[str, Any]]:
    """The papers' orderings on the preset where each paper makes its claim (means; ``clear`` when the gap
    also exceeds the larger seed sd)."""

    def stat(table: str, preset: str, label: str, key: str) -> dict[str, Any] | None:
        return agg.get(table, {}).get(preset, {}).get(label, {}).get(key, {}).get("trained")

    checks = []

    def add(claim: str, table: str, preset: str, key: str, left: str, right: str, op: str = ">") -> None:
        a, b = stat(table, preset, left, key), stat(table, preset, right, key)
        if a is None or b is None:
            return
        gap = a["mean"] - b["mean"]
        holds = gap >= 0 if op == ">=" else gap > 0
        checks.append({"claim": claim, "preset": preset, "metric": key, "left": a["mean"], "right": b["mean"],
                       "gap": gap, "spread": max(a["sd"], b["sd"]), "holds": holds,
                       "clear": holds and abs(gap) > max(a["sd"], b["sd"])})

    for preset in TABLES["segmentation"][0]:
        for key in METRICS["segmentation"]:
            for ablation in ("asot no-GW (train)", "asot no-GW (train+test)", "asot balanced (train+test)"):
                add(f"asot > {ablation}", "segmentation", preset, key, "asot", ablation)
            add("vasot >= asot", "segmentation", preset, key, "vasot", "asot", ">=")
        for key in ("seg/MoF", "seg/F1"):  # CLOT's Table 1: above ASOT on MoF and F1 (mIoU about equal)
            add("clot > asot", "segmentation", preset, key, "clot", "asot")
            add("clot > clot no-dispatch", "segmentation", preset, key, "clot", "clot no-dispatch")
    for key in ("align_acc", "ap@5", "phase_acc@0.1", "phase_acc@1"):  # VAOT on IKEA ASM: VAOT > VAVA > KOT-like
        add("vaot >= vava", "alignment", "ikea_like", key, "vaot", "vava", ">=")
        add("vava >= kot", "alignment", "ikea_like", key, "vava", "kot", ">=")
    bg, st = stat("alignment", "ikea_like", "realign", "realign/bg_mass"), stat("alignment", "ikea_like", "realign",
                                                                                "realign/step_mass")
    if bg is not None and st is not None:
        gap = st["mean"] - bg["mean"]
        checks.append({"claim": "realign background mass < step mass", "preset": "ikea_like", "metric": "mass",
                       "left": bg["mean"], "right": st["mean"], "gap": gap, "spread": max(bg["sd"], st["sd"]),
                       "holds": gap > 0, "clear": gap > max(bg["sd"], st["sd"])})
    return checks


def format_checks(title: str, checks: list[dict[str, Any]], left: str, right: str) -> str:
    lines = ["", f"== {title}"]
    for c in checks:
        name = c.get("claim") or f"{c['row']} trained > untrained"
        verdict = ("clear" if c.get("clear", c["holds"]) else "holds, within the seed spread") if c["holds"] else "FAILS"
        lines.append(f"{name:<44} {c['preset']:<15} {c['metric']:<14} {left} {c['left' if 'left' in c else 'trained']:8.3f}"
                     f"  {right} {c['right' if 'right' in c else 'untrained']:8.3f}  gap {c['gap' if 'gap' in c else 'gain']:+8.3f} "
                     f"(sd {c['spread']:.3f})  {verdict}")
    return "\n".join(lines)


def _finite(obj: Any) -> Any:
    """NaN / inf -> None, so the file is strict JSON."""
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
    tmp.write_text(json.dumps(_finite(payload), indent=1, default=float, allow_nan=False))
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ main
def plan_jobs(tables: list[str], presets: list[str] | None, labels: list[str] | None, seeds: list[int],
              activities: int | None) -> list[tuple[str, str, str, int, int, str]]:
    """(table, preset, label, activity, seed, kind) for every run, untrained baselines of a seed first."""
    jobs = []
    for seed in seeds:
        for table in tables:
            for preset in TABLES[table][0]:
                if presets and preset not in presets:
                    continue
                rows = [lab for lab in TABLES[table][1] if not labels or lab in labels]
                for a in scored_activities(preset, activities):
                    if table == "alignment":
                        jobs.append((table, preset, UNTRAINED, a, seed, "untrained"))
                    for label in rows:
                        if table == "segmentation":
                            jobs.append((table, preset, label, a, seed, "untrained"))
                        jobs.append((table, preset, label, a, seed, "trained"))
    return jobs


def summarise(records: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Aggregate ``records``, print the tables and the checks; the summary part of the study's JSON."""
    agg = aggregate(records)
    learning, orderings = learning_checks(agg), ordering_checks(agg)
    print("\n" + format_tables(agg, seeds))
    print(format_checks("training beats the untrained baseline (gain > larger seed sd)", learning, "trained", "untrained"))
    print(format_checks("the papers' orderings", orderings, "left", "right"))
    return {"summary": agg, "learning": learning, "orderings": orderings}


def merge(paths: list[Path], out_path: Path, argv: list[str] | None) -> int:
    """``--merge``: the runs of several study files as one study (later files win per cell)."""
    cells: dict[tuple, dict[str, Any]] = {}
    sources = {}
    for path in paths:
        payload = json.loads(path.read_text())
        if payload.get("partial"):
            raise SystemExit(f"{path} holds a partial study (interrupted); rerun it or leave it out")
        for r in payload["runs"]:
            cells[(r["table"], r["preset"], r["label"], r["activity"], r["seed"], r["kind"])] = r
        sources[str(path)] = payload.get("command", "")
    records = list(cells.values())
    seeds = sorted({r["seed"] for r in records})
    write_json(out_path, {
        "command": " ".join(["benchmarks/study_synthetic.py", *(argv if argv is not None else sys.argv[1:])]),
        "sources": sources, "seeds": seeds, **summarise(records, seeds), "runs": records})
    print(f"wrote {out_path} ({len(records)} runs from {len(paths)} files)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modality", choices=("features", "video"), default="features",
                    help="video: the presets as rendered videos, ResNet-50 end to end at the CPU budget "
                         "(VIDEO_OVERRIDES; default rows VAOT and ASOT, 1 activity, study_video.json)")
    ap.add_argument("--quick", action="store_true", help="seed 0 only, 2 activities per segmentation preset")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default 0 1 2)")
    ap.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    ap.add_argument("--presets", nargs="+", default=None, help="only these presets")
    ap.add_argument("--rows", nargs="+", default=None, metavar="LABEL", help="only these rows (labels as printed)")
    ap.add_argument("--activities", type=int, default=None,
                    help="score the first N activities of each segmentation preset (default 3, quick 2)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra overrides for every run")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="data and runs (default runs/study_synthetic, video: runs/study_video)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON output (default benchmarks/results/study_synthetic.json, quick: study_synthetic_quick.json, "
                         "video: study_video.json)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--verbose", action="store_true", help="show each run's log instead of writing it to a file")
    ap.add_argument("--merge", nargs="+", type=Path, default=None, metavar="JSON",
                    help="run nothing: aggregate the runs of these study files (one process per seed, a rerun of "
                         "some rows); a later file's run replaces an earlier one of the same cell")
    args = ap.parse_args(argv)

    video = args.modality == "video"
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    activities = args.activities or (1 if video else 2 if args.quick else 3)
    out_path = args.out or ROOT / "benchmarks" / "results" / (
        "study_video.json" if video else "study_synthetic_quick.json" if args.quick else "study_synthetic.json")
    torch.set_num_threads(args.threads)
    work_dir = (args.work_dir or ROOT / "runs" / ("study_video" if video else "study_synthetic")).resolve()
    if args.merge:
        return merge(args.merge, out_path, argv)
    presets = args.presets or ([p for t in args.tables for p in VIDEO_PRESETS[t]] if video else None)
    rows = args.rows or (VIDEO_ROWS if video else None)

    def extra(preset: str) -> list[str]:
        return [*(video_overrides(preset) if video else []), *args.set]

    jobs = plan_jobs(args.tables, presets, rows, seeds, activities)
    t0 = time.perf_counter()
    print(f"study_synthetic: {len(jobs)} runs (tables {args.tables}, seeds {seeds}); work dir {work_dir}", flush=True)
    data_info = {}
    for table in args.tables:
        for preset in TABLES[table][0]:
            if not presets or preset in presets:
                data_info[preset] = write_data(work_dir, preset, scored_activities(preset, activities), extra(preset))
    print(f"data written in {time.perf_counter() - t0:.1f} s", flush=True)

    records: list[dict[str, Any]] = []
    for i, (table, preset, label, activity, seed, kind) in enumerate(jobs):
        cfg = make_config(work_dir, table, preset, label, activity, seed, kind == "trained", extra(preset))
        log_path = work_dir / "logs" / f"{cfg.train.run_id}.log"
        t_job = time.perf_counter()
        with _quiet(log_path, args.verbose) if kind == "untrained" else contextlib.nullcontext():
            if kind == "untrained":
                res, model = evaluate_untrained(cfg)
            else:
                res = train_and_evaluate(cfg, log_path, args.verbose)
                model = load_trained(cfg, Path(res["run_dir"])) if cfg.method.name == "realign" and has_unmatched_frames(
                    cfg) else None
        rec = {"table": table, "preset": preset, "label": label, "activity": activity, "seed": seed, "kind": kind,
               "method": cfg.method.name, "modality": cfg.data.modality, "max_steps": cfg.train.max_steps, **res}
        if cfg.method.name == "realign" and model is not None and has_unmatched_frames(cfg):
            rec["realign_mass"] = realign_mass(cfg, model)
        rec["job_wall_s"] = time.perf_counter() - t_job
        records.append(rec)
        m = rec["metrics"]
        shown = " ".join(f"{k.split('/')[-1]} {m[k]:.3g}" for k in (*HEADLINE[table], "kendalls_tau") if k in m)
        if "realign_mass" in rec:
            shown += f" bg_mass {rec['realign_mass']['bg_mass']:.3g} step_mass {rec['realign_mass']['step_mass']:.3g}"
        done = time.perf_counter() - t0
        print(f"[{i + 1}/{len(jobs)}] {preset:<14} {label:<26} a{activity:<2} seed {seed} {kind:<9} "
              f"{rec['job_wall_s']:6.1f} s | {shown} | elapsed {_fmt_time(done)} ETA {_fmt_time(done / (i + 1) * (len(jobs) - i - 1))}",
              flush=True)
        if (i + 1) % (1 if video else 10) == 0 or i + 1 == len(jobs):  # partial results survive an interruption
            write_json(out_path, {"partial": i + 1 < len(jobs), "runs": records})

    summary = summarise(records, seeds)
    wall = time.perf_counter() - t0
    print(f"\ntotal {_fmt_time(wall)} wall ({args.threads} torch thread(s)); load average {os.getloadavg()[0]:.1f}")
    write_json(out_path, {
        "command": " ".join(["benchmarks/study_synthetic.py", *(argv if argv is not None else sys.argv[1:])]),
        "seeds": seeds, "activities": activities, "tables": {t: {"presets": TABLES[t][0], "rows": TABLES[t][1]}
                                                             for t in args.tables},
        "modality": args.modality, "study_overrides": STUDY_OVERRIDES,
        "video_overrides": {p: video_overrides(p) for p in presets} if video else None,
        "extra_overrides": args.set, "data": data_info,
        **summary, "runs": records,
        "wall_s": wall, "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads,
        "load_average_end": os.getloadavg()[0], "cpu": _cpu_name(),
    })
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
