"""W&B gets what a person looks at: each evaluation's metrics as a table and its report's figures as images
(an offline run, its media files read back), besides the scalars in metrics.jsonl. (The run's history record
is written by W&B's service process, not necessarily by the time ``finish`` returns: not read here.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vasot_dist.config import load_config
from vasot_dist.eval.report import write_report
from vasot_dist.train.rundir import RunDir
from vasot_dist.train.tracking import Tracker


def test_an_evaluation_goes_to_wandb_as_a_table_and_its_figures(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    out = tmp_path / "eval"
    out.mkdir()
    rng = np.random.default_rng(0)
    figures = {"transport plan v1": out / "plan_v1.png", "segmentation v1": out / "segmentation_v1.png"}
    for i, p in enumerate(figures.values()):
        Image.fromarray(rng.integers(0, 255, (12 + i, 20, 3), dtype=np.uint8)).save(p)
    Image.new("RGB", (4, 4)).save(out / "plan_old.png")  # an earlier evaluation's file, not in this report
    metrics = {"align_acc": 87.5, "seg/MoF": 40.25, "videos_scored": 4}
    write_report(out, metrics, figures)

    cfg = load_config(None, ["log.wandb=offline", "train.experiment=t", "train.run_id=r"])
    run_dir = RunDir(tmp_path / "runs" / "t" / "r")
    run_dir.root.mkdir(parents=True)
    tracker = Tracker(cfg, run_dir, enabled=True)
    tracker.log_evaluation(metrics, out, step=7)
    tracker.finish()

    rows = [json.loads(line) for line in run_dir.metrics.read_text().splitlines()]
    assert rows == [{"step": 7, "eval/align_acc": 87.5, "eval/seg/MoF": 40.25, "eval/videos_scored": 4}]
    (wandb_run,) = (run_dir.root / "wandb").glob("offline-run-*")
    media = wandb_run / "files" / "media"
    (table,) = (media / "table" / "eval").glob("metrics_*.table.json")
    assert json.loads(table.read_text()) == {"columns": ["metric", "value"],
                                             "data": [["align_acc", 87.5], ["seg/MoF", 40.25], ["videos_scored", 4]]}
    logged = {p.name.split("_0_")[0]: p for p in (media / "images" / "eval").glob("*.png")}
    assert sorted(logged) == ["plan_v1", "segmentation_v1"]  # exactly the report's figures
    for name, src in (("plan_v1", figures["transport plan v1"]), ("segmentation_v1", figures["segmentation v1"])):
        assert np.array_equal(np.asarray(Image.open(logged[name])), np.asarray(Image.open(src)))
