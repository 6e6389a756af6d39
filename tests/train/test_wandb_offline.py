"""W&B offline: the run is created from rank 0 with the resolved config, and a resumed run continues the same
W&B run (its id is kept in the checkpoint). In-process: one rank, the session's feature shards."""

from __future__ import annotations

import pytest
import torch
from trainutil import tiny_config

from vasot_dist.train.loop import run

pytestmark = pytest.mark.slow  # W&B starts its service process


def test_offline_run_id_survives_resume(feature_shards, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wandb").mkdir()
    common = {"log.wandb": "offline", "train.max_steps": 4, "train.ckpt_every": 2}
    run(tiny_config(feature_shards, tmp_path, **common))
    state = torch.load(tmp_path / "runs/t/r/checkpoints/step_00000004.pt", weights_only=True)
    wandb_id = state["vasot"]["wandb_id"]
    assert isinstance(wandb_id, str) and wandb_id
    run(tiny_config(feature_shards, tmp_path, **{**common, "train.max_steps": 6}), resume="auto")
    state = torch.load(tmp_path / "runs/t/r/checkpoints/step_00000006.pt", weights_only=True)
    assert state["vasot"]["wandb_id"] == wandb_id
    runs = [p.name for p in (tmp_path / "runs/t/r/wandb").glob("offline-run-*")]
    assert len(runs) == 2 and all(name.endswith(wandb_id) for name in runs), runs
