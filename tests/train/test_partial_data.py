"""Corrupt data is counted where a person sees it: an evaluation records how much of its split it scored and
fails below ``eval.min_scored_fraction``; training logs the corrupt samples it skipped with its other metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from trainutil import tiny_config

from vasot_dist.data import DatasetIndex, corrupt_count, make_train_loader
from vasot_dist.eval.runner import IncompleteEvaluation, evaluate_model
from vasot_dist.runtime.distributed import DistContext
from vasot_dist.train.loop import run
from vasot_dist.train.model import build_train_model

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), owns_group=False)


def _with_garbage(feature_shards: Path, tmp: Path, split: str, n: int) -> Path:
    """A copy of the shards whose first ``n`` shards of ``split`` are not tar files."""
    shards = tmp / "shards"
    shutil.copytree(feature_shards, shards)
    for url in DatasetIndex.load(shards).urls(split)[:n]:
        Path(url).write_bytes(b"not a tar file " * 64)
    return shards


def test_an_evaluation_missing_videos_fails_unless_a_partial_one_is_allowed(feature_shards, tmp_path):
    torch.manual_seed(0)
    complete = tiny_config(feature_shards, tmp_path)
    model = build_train_model(complete)
    metrics = evaluate_model(complete, model, CPU)
    assert (metrics["videos_scored"], metrics["videos_expected"], metrics["corrupt_skipped"]) == (4, 4, 0)

    shards = _with_garbage(feature_shards, tmp_path, "test", 2)  # 2 of the 4 test videos unreadable
    partial = tiny_config(shards, tmp_path)
    out = tmp_path / "eval"
    with pytest.raises(IncompleteEvaluation) as err:
        evaluate_model(partial, model, CPU, out_dir=out)
    assert str(err.value) == (
        f"evaluation scored 2 of the 4 videos of split 'test' in {shards} (2 corrupt samples or unreadable shards "
        "skipped; the warnings above name them); eval.min_scored_fraction=1 needs 4: repair the shards, or lower "
        "eval.min_scored_fraction to accept a partial evaluation")
    assert not out.exists()  # no metrics.json that would pass for a result

    allowed = tiny_config(shards, tmp_path, **{"eval.min_scored_fraction": 0.5})
    evaluate_model(allowed, model, CPU, out_dir=out)
    written = json.loads((out / "metrics.json").read_text())
    assert (written["videos_scored"], written["videos_expected"], written["corrupt_skipped"]) == (2, 4, 2)
    report = (out / "report.md").read_text()
    assert "| videos_scored | 2 |\n| videos_expected | 4 |\n| corrupt_skipped | 2 |" in report


def test_training_logs_the_corrupt_samples_it_skipped(feature_shards, tmp_path):
    shards = _with_garbage(feature_shards, tmp_path, "train", 1)
    cfg = tiny_config(shards, tmp_path, **{"train.max_steps": 12, "train.log_every": 5, "train.ckpt_every": 0})
    # What the loader itself counts over the steps the run takes: 6 batches per epoch, two epochs.
    expected = 0
    for epoch in (0, 1):
        loader = make_train_loader(cfg.data, rank=0, world_size=1, epoch=epoch, seed=cfg.train.seed)
        assert sum(1 for _ in loader) == 6
        expected += corrupt_count(loader)
    assert expected >= 2  # the bad shard is read at least once per epoch
    run(cfg)
    rows = [json.loads(line) for line in (tmp_path / "runs/t/r/metrics.jsonl").read_text().splitlines()]
    counts = {r["step"]: r["corrupt_skipped"] for r in rows if "loss" in r}
    assert sorted(counts) == [5, 10, 12] and all(isinstance(c, int) for c in counts.values())
    assert sum(counts.values()) == expected
