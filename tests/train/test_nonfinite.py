"""Non-finite losses and weights: a NaN step is skipped on the device and counted, a run of them stops training
with a clear error, and a checkpoint is never written from NaN weights (nor are good ones pruned for it)."""

from __future__ import annotations

import json

import pytest
import torch
from trainutil import tiny_config

from vasot_dist.train import checkpoint as ckpt
from vasot_dist.train.loop import run
from vasot_dist.train.model import TrainModel
from vasot_dist.train.nonfinite import NonFiniteError


@pytest.fixture
def nan_loss_at(monkeypatch):
    """``nan_loss_at(steps)``: the loss is NaN at those optimiser steps (1-based, as logged)."""
    def install(steps):
        forward = TrainModel.forward

        def nan_forward(self, inputs, mask, step=0):
            out = forward(self, inputs, mask, step)
            if step + 1 in steps:  # ``step`` is the number of steps done before this one
                out.loss = out.loss * float("nan")
            return out

        monkeypatch.setattr(TrainModel, "forward", nan_forward)
    return install


def _rows(run_dir) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows if "loss" in r}


def _weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).clone()


def test_a_non_finite_step_is_skipped_and_counted(feature_shards, tmp_path, nan_loss_at):
    nan_loss_at({2, 3})
    weights = {}
    result = run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 5}),
                 on_step=lambda step, model, out: weights.__setitem__(step, _weights(model)))
    assert result["status"] == "completed"
    assert torch.equal(weights[2], weights[1]) and torch.equal(weights[3], weights[1])  # nothing applied
    assert not torch.equal(weights[4], weights[3]) and torch.isfinite(weights[5]).all()
    rows = _rows(tmp_path / "runs" / "t" / "r")
    assert {s: r["nonfinite_steps"] for s, r in rows.items()} == {1: 0, 2: 1, 3: 1, 4: 0, 5: 0}
    state = torch.load(tmp_path / "runs/t/r/checkpoints/step_00000005.pt", weights_only=True)
    # Adam's step count did not advance on the skipped steps (the fused kernel skipped them whole)
    assert {float(s["step"]) for s in state["optimizer"]["state"].values()} == {3.0}


def test_a_run_of_non_finite_steps_stops_training(feature_shards, tmp_path, nan_loss_at):
    nan_loss_at(set(range(3, 100)))
    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 20, "train.log_every": 2,
                                                   "train.ckpt_every": 0, "train.max_nonfinite_steps": 3})
    with pytest.raises(NonFiniteError) as err:
        run(cfg)
    assert str(err.value) == (
        "stopped at step 6: 4 optimiser steps in a row had a non-finite loss or gradient norm "
        "(train.max_nonfinite_steps=3); they were not applied and no checkpoint was written from them. Lower "
        "optim.lr, set optim.grad_clip, or look for NaN / inf in the data")
    rows = _rows(tmp_path / "runs" / "t" / "r")
    assert {s: r["nonfinite_steps"] for s, r in rows.items()} == {2: 0, 4: 2, 6: 2}  # logged before stopping


def test_no_checkpoint_from_non_finite_weights_and_good_ones_are_kept(feature_shards, tmp_path):
    def poison_at_3(step, model, out):
        if step == 3:
            with torch.no_grad():
                next(model.parameters()).fill_(float("inf"))

    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 8, "train.ckpt_every": 2,
                                                   "train.keep_last": 1})
    with pytest.raises(NonFiniteError) as err:
        run(cfg, on_step=poison_at_3)
    ck = tmp_path / "runs" / "t" / "r" / "checkpoints"
    assert str(err.value) == (f"step 4: the model's weights are not finite (encoder.net.0.weight); no checkpoint "
                              f"written, the newest one is kept ({ck / 'step_00000002.pt'})")
    assert [s for s, _ in ckpt.list_checkpoints(ck)] == [2]
