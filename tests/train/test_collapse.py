"""The collapse monitor: its statistics against numpy, the warning once per episode, train.on_collapse=stop (a
checkpoint, then CollapseError; the CLI's one-line error), a healthy run that says nothing, vasot-compare's verdict."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from trainutil import tiny_config

from vasot_dist.cli import train_main
from vasot_dist.config import METHODS, load_config, save_config
from vasot_dist.train import checkpoint as ckpt
from vasot_dist.train.collapse import (
    GRACE_STEPS,
    CollapseError,
    CollapseMonitor,
    embedding_collapse_stats,
    plan_entropy_ratio,
)
from vasot_dist.train.evaluate import compare_verdict
from vasot_dist.train.loop import run
from vasot_dist.train.model import TrainModel, build_train_model

LENGTHS = [7, 4, 2]
QUICK_EVAL = {"eval.alignment_metrics": "false", "eval.max_videos": 2}  # the run's closing evaluation, cut short


def _mask(lengths: list[int], t: int) -> torch.Tensor:
    return torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


@pytest.mark.parametrize("dim", [5, 9])  # D < T and D > T: the two Gram matrices
def test_embedding_statistics_match_numpy_on_the_real_frames(dim):
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(3, 7, dim, generator=gen, dtype=torch.float64)
    emb[1] += 2.0  # a video whose frames point one way: its cosine near 1, its rank near 1
    mask = _mask(LENGTHS, 7)
    emb_padded = torch.where(mask.unsqueeze(-1), emb, torch.full_like(emb, 123.0))  # padding must not count
    stats = embedding_collapse_stats(emb_padded, mask)
    cos, rank = [], []
    for b, n in enumerate(LENGTHS):
        x = emb[b, :n].numpy()
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        c = u @ u.T
        cos.append((c.sum() - np.trace(c)) / (n * (n - 1)))  # distinct pairs only
        lam = np.linalg.eigvalsh(x.T @ x)
        rank.append(lam.sum() ** 2 / (lam**2).sum())
    assert stats["collapse/emb_cos"].item() == pytest.approx(np.mean(cos), rel=1e-5)
    assert stats["collapse/eff_rank"].item() == pytest.approx(np.mean(rank), rel=1e-5)
    assert not stats["collapse/emb_cos"].requires_grad and stats["collapse/emb_cos"].dim() == 0


def test_a_constant_embedding_has_cosine_1_and_rank_1():
    stats = embedding_collapse_stats(torch.full((2, 6, 4), 0.5), _mask([6, 3], 6))
    assert stats["collapse/emb_cos"].item() == pytest.approx(1.0, abs=1e-6)
    assert stats["collapse/eff_rank"].item() == pytest.approx(1.0, abs=1e-6)


def test_plan_entropy_ratio_matches_numpy_over_real_rows_and_columns():
    gen = torch.Generator().manual_seed(1)
    plan = torch.rand(3, 7, 6, generator=gen, dtype=torch.float64) ** 4
    rows, cols = _mask(LENGTHS, 7), _mask([6, 3, 5], 6)
    plan[0, 2] = 0.0  # a row without mass (all sent to a virtual frame): left out
    padded = torch.where(cols.unsqueeze(1), plan, torch.full_like(plan, 9.0))  # padded columns must not count
    ratios = []
    for b, (n, m) in enumerate(zip(LENGTHS, [6, 3, 5])):
        for i in range(n):
            t = plan[b, i, :m].numpy()
            if t.sum() > 0:
                p = t / t.sum()
                ratios.append(-(p * np.log(p)).sum() / math.log(m))
    assert plan_entropy_ratio(padded, rows, cols).item() == pytest.approx(np.mean(ratios), rel=1e-5)
    uniform = torch.where(cols.unsqueeze(1), 1.0, 0.0).expand(3, 7, 6)
    assert plan_entropy_ratio(uniform, rows, cols).item() == pytest.approx(1.0, abs=1e-6)
    one_hot = torch.nn.functional.one_hot(torch.zeros(3, 7, dtype=torch.long), 6).float()
    assert plan_entropy_ratio(one_hot, rows, cols).item() == 0.0


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_logs_its_main_plans_entropy_ratio(method):
    """Every method's forward logs the ratio of its main plan over the right real columns: with KOT (no prior),
    a constant embedding gives a uniform plan over video 1's real frames (padding excluded), ratio 1."""
    cfg = load_config("configs/demo.yaml", [f"method.name={method}", "data.modality=features", "model.encoder=mlp",
                                            "model.mlp_layers=[8,16]", "model.embed_dim=16", "model.num_actions=4"])
    torch.manual_seed(0)
    model = build_train_model(cfg)
    mask = _mask([10, 6, 10, 8], 10)  # video 1 (the columns of the first pair's plan) is padded
    out = model(torch.randn(4, 10, 8), mask, 0)
    main, main_rows, main_cols = model.loss.main_plan(out, mask)
    assert main is next(iter(out.couplings.values()))
    assert main_cols.sum().item() == (6 if METHODS[method].settings.needs_pairs else main.shape[-1])
    ratio = out.metrics["collapse/plan_entropy_ratio"]
    assert ratio.item() == pytest.approx(plan_entropy_ratio(main, main_rows, main_cols).item())
    assert 0.0 < ratio.item() < 1.0 and not ratio.requires_grad
    if method == "kot":
        with torch.no_grad():
            model.encoder.net[0].weight.zero_()
            model.encoder.net[0].bias.fill_(0.3)
        assert model(torch.randn(4, 10, 8), mask, 0).metrics["collapse/plan_entropy_ratio"].item() == pytest.approx(
            1.0, abs=1e-5)


def test_the_monitor_warns_once_per_episode_after_the_grace_steps():
    monitor = CollapseMonitor(threshold=0.9)
    rows = {GRACE_STEPS: 0.99, GRACE_STEPS + 1: 0.95, GRACE_STEPS + 2: 0.96, GRACE_STEPS + 3: 0.5,
            GRACE_STEPS + 4: 0.9, GRACE_STEPS + 5: 0.99}
    warned = {s: monitor.check({"collapse/emb_cos": c}, s) for s, c in rows.items()}
    assert [s for s, w in warned.items() if w] == [GRACE_STEPS + 1, GRACE_STEPS + 4]
    assert monitor.check({"loss": 1.0}, GRACE_STEPS + 6) is None  # a row without the statistic is not checked
    assert CollapseMonitor().check({"collapse/emb_cos": float("nan")}, 100) is None
    s = GRACE_STEPS + 1
    assert CollapseMonitor(0.9).check({"collapse/emb_cos": 0.95, "collapse/eff_rank": 1.1234}, s) == (
        f"step {s}: the encoder has collapsed: collapse/emb_cos 0.9500 >= train.collapse_cos 0.9 (mean cosine "
        "between the frames of a video; 1 = every frame embedded alike, eff_rank 1.123). Training on a constant "
        "embedding learns nothing: lower optim.lr, or add a guard against the trivial solution (VAOT / VASOT: "
        "method.<name>.contrastive_weight, LAV's contrastive-IDM); see docs/training.md#collapse-monitor")


@pytest.fixture
def collapse_at(monkeypatch):
    """``collapse_at(steps)``: at those optimiser steps (1-based, as logged) the encoder embeds every frame alike
    (its output times 0 plus a constant unit vector: still a function of the weights, gradients flow)."""
    def install(steps):
        embed, forward = TrainModel.embed, TrainModel.forward

        def constant_embed(self, inputs, mask):
            emb = embed(self, inputs, mask)
            return emb * 0.0 + 0.25 if getattr(self, "_collapse", False) else emb  # 16 x 0.25^2 = 1

        def collapsing_forward(self, inputs, mask, step=0):
            self._collapse = step + 1 in steps
            return forward(self, inputs, mask, step)

        monkeypatch.setattr(TrainModel, "embed", constant_embed)
        monkeypatch.setattr(TrainModel, "forward", collapsing_forward)
    return install


def _collapse_warnings(capsys) -> list[str]:
    """The collapse warnings the run logged (its logger writes to stderr and does not propagate), messages only."""
    lines = capsys.readouterr().err.splitlines()
    return [ln.split(" vasot_dist.train.loop: ", 1)[1] for ln in lines if " WARNING vasot_dist.train.loop: " in ln
            and "has collapsed" in ln]


def _rows(run_dir) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows if "loss" in r}


def test_a_collapsed_encoder_warns_once_per_episode_with_its_step(feature_shards, tmp_path, collapse_at, capsys):
    g = GRACE_STEPS
    collapse_at({*range(1, g + 3), g + 4})  # collapsed from the start, then a second episode
    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": g + 5, "train.ckpt_every": 0, **QUICK_EVAL})
    assert run(cfg)["status"] == "completed"
    rows = _rows(tmp_path / "runs" / "t" / "r")
    assert [s for s, r in rows.items() if r["collapse/emb_cos"] > 0.999] == [*range(1, g + 3), g + 4]
    assert rows[g + 3]["collapse/emb_cos"] < 0.97
    warned = _collapse_warnings(capsys)
    assert [w.split(":")[0] for w in warned] == [f"step {g + 1}", f"step {g + 4}"]
    assert "collapse/emb_cos 1.0000 >= train.collapse_cos 0.97" in warned[0]


def test_a_healthy_run_does_not_warn(feature_shards, tmp_path, capsys):
    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": GRACE_STEPS + 4, "train.log_every": 2,
                                                   "train.ckpt_every": 0, **QUICK_EVAL})
    run(cfg)
    rows = _rows(tmp_path / "runs" / "t" / "r")
    assert max(r["collapse/emb_cos"] for r in rows.values()) < 0.97
    assert all(0 < r["collapse/plan_entropy_ratio"] < 1 for r in rows.values())
    assert _collapse_warnings(capsys) == []


def test_on_collapse_stop_checkpoints_and_raises_with_the_step(feature_shards, tmp_path, collapse_at, capsys):
    collapse_at(set(range(1, 100)))
    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": GRACE_STEPS + 8, "train.log_every": 2,
                                                   "train.ckpt_every": 0, "train.on_collapse": "stop"})
    step = GRACE_STEPS + 2  # the first row checked
    with pytest.raises(CollapseError) as err:
        run(cfg)
    ck = tmp_path / "runs" / "t" / "r" / "checkpoints"
    assert str(err.value) == (
        f"stopped at step {step} (train.on_collapse=stop): collapse/emb_cos 1.0000 >= train.collapse_cos 0.97, the "
        f"encoder embeds every frame alike; checkpoint written: {ck / ckpt.checkpoint_name(step)}. See "
        "docs/training.md#collapse-monitor")
    assert [s for s, _ in ckpt.list_checkpoints(ck)] == [step]
    assert max(_rows(tmp_path / "runs" / "t" / "r")) == step  # the row was logged before stopping
    assert len(_collapse_warnings(capsys)) == 1


def test_the_cli_reports_a_collapse_stop_in_one_line_with_status_1(feature_shards, tmp_path, collapse_at, capsys):
    collapse_at(set(range(1, 100)))
    config = tmp_path / "config.yaml"
    save_config(tiny_config(feature_shards, tmp_path, **{"train.max_steps": GRACE_STEPS + 2,
                                                         "train.ckpt_every": 0}), config)
    with pytest.raises(SystemExit) as stop:
        train_main(["--config", str(config), "train.on_collapse=stop", "train.collapse_cos=0.9"])
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: stopped at step {GRACE_STEPS + 1} (train.on_collapse=stop): collapse/emb_cos "
                          "1.0000 >= train.collapse_cos 0.9")


def test_compare_verdict_names_the_worse_metrics_and_the_last_collapse_statistics(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"step": 10, "loss": 2.6, "collapse/emb_cos": 0.5, "collapse/eff_rank": 3.0},
        {"step": 20, "loss": 2.6, "collapse/emb_cos": 0.9985, "collapse/eff_rank": 1.1},
        {"step": 20, "eval/align_acc": 30.0},  # an evaluation row: no statistics
    ]) + "\n")
    before = {"align_acc": 35.9, "kendalls_tau": 0.10, "phase_acc@1": 50.0}
    after = {"align_acc": 34.8, "kendalls_tau": 0.20, "phase_acc@1": 40.0}
    verdict = compare_verdict(before, after, log, 0.97)
    assert verdict["compared"] == ["align_acc", "kendalls_tau"] and verdict["worse_on"] == ["align_acc"]
    assert verdict["collapse"] == {"step": 20, "collapse/emb_cos": 0.9985, "collapse/eff_rank": 1.1}
    assert verdict["message"] == (
        f"the trained model is WORSE than the untrained one on align_acc 35.900 -> 34.800; the last logged "
        f"collapse/emb_cos in {log} is 0.9985 at step 20 (>= train.collapse_cos 0.97: the encoder collapsed, every "
        "frame embedded alike). See docs/training.md#collapse-monitor")
    assert "0.9985 at step 20 (< train.collapse_cos 0.999: not a collapse" in compare_verdict(
        before, after, log, 0.999)["message"]
    assert "holds no collapse statistics" in compare_verdict(before, after, tmp_path / "none.jsonl", 0.97)["message"]
    better = compare_verdict(before, {**after, "align_acc": 40.0}, log, 0.97)
    assert better["worse_on"] == [] and better["message"] is None
