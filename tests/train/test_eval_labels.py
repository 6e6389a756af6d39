"""An evaluation never passes without measuring anything: samples whose labels are not in the label map are
skipped and counted (so a split of them fails the coverage check), the metrics that need no labels are computed
whatever the labels hold, and an evaluation that still yields no quality metric is an error unless
``eval.allow_no_metrics``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from trainutil import tiny_config

from vasot_dist.data import DatasetIndex
from vasot_dist.eval.runner import COUNT_KEYS, IncompleteEvaluation, VideoEmbedding, evaluate_model, score
from vasot_dist.runtime.distributed import DistContext
from vasot_dist.train.model import build_train_model

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), owns_group=False)


def _relabelled(feature_shards: Path, tmp: Path, edit: Callable[[dict], dict]) -> Path:
    """A copy of the shards with every sample's ``<key>.json`` passed through ``edit``."""
    shards = tmp / "relabelled"
    shutil.copytree(feature_shards, shards)
    index = DatasetIndex.load(shards)
    for url in index.urls("train") + index.urls("test"):
        samples = list(wds.WebDataset(url, shardshuffle=False))
        with wds.TarWriter(url) as out:
            for s in samples:
                meta = edit(json.loads(s["json"]))
                out.write({"__key__": s["__key__"], "json": json.dumps(meta).encode(), "npy": s["npy"]})
    return shards


def test_labels_outside_the_map_fail_the_evaluation_instead_of_passing_with_the_counts(feature_shards, tmp_path,
                                                                                       caplog):
    # Every test video labelled 9, an id the label map does not have: it used to give exit 0 and a metrics.json
    # holding only the counts (one "phase", so no metric at all). Now each video is a corrupt sample, named.
    shards = _relabelled(feature_shards, tmp_path, lambda m: {**m, "labels": [9] * m["num_frames"]})
    assert 9 not in DatasetIndex.load(shards).label_map.values()
    cfg = tiny_config(shards, tmp_path)
    with pytest.raises(IncompleteEvaluation, match=r"^evaluation scored 0 of the 4 videos of split 'test'"):
        evaluate_model(cfg, build_train_model(cfg), CPU, out_dir=tmp_path / "eval")
    assert "labels [9] are not ids of the label map" in caplog.text
    assert not (tmp_path / "eval").exists()


def _video(key: str, t: int, labels: np.ndarray, progress: np.ndarray | None, rng) -> VideoEmbedding:
    return VideoEmbedding(key=key, activity="a", emb=rng.standard_normal((t, 8)).astype(np.float32), labels=labels,
                          progress=progress, segmentation=None)


def test_metrics_that_need_no_labels_are_computed_when_the_labels_hold_one_phase(feature_shards, tmp_path):
    rng = np.random.default_rng(0)
    videos = [_video(f"a__{i}", t, np.zeros(t, np.int64), np.linspace(0, 1, t), rng) for i, t in enumerate((20, 30))]
    cfg = tiny_config(feature_shards, tmp_path)
    metrics = score(cfg, videos, videos)
    # Kendall's tau (two videos) and the alignment accuracy (ground-truth progress) need no phase labels; phase
    # accuracy and AP@K do. They used to be skipped together whenever the labels held one phase.
    assert {"kendalls_tau", "align_acc", "align_progress_err"} <= set(metrics)
    assert not any(k.startswith(("phase_acc", "ap@")) for k in metrics)
    assert -1 <= metrics["kendalls_tau"] <= 1 and 0 <= metrics["align_acc"] <= 100


def test_an_evaluation_without_a_quality_metric_is_an_error_unless_allowed(feature_shards, tmp_path):
    # An alignment method (no segmentation), one test video (eval.max_videos=1), one phase, no progress: nothing
    # can be measured.
    shards = _relabelled(feature_shards, tmp_path,
                         lambda m: {**m, "labels": [0] * m["num_frames"], "progress": None, "steps": None})
    settings = {"eval.max_videos": 1, "method.name": "vaot"}
    cfg = tiny_config(shards, tmp_path, **settings)
    model = build_train_model(cfg)
    with pytest.raises(IncompleteEvaluation) as err:
        evaluate_model(cfg, model, CPU, out_dir=tmp_path / "eval")
    assert str(err.value).startswith(f"the evaluation of split 'test' in {shards} gave no quality metric, only the "
                                     "counts: ")
    assert str(err.value).endswith("or set eval.allow_no_metrics=true to accept it")
    assert not (tmp_path / "eval").exists()

    allowed = tiny_config(shards, tmp_path, **settings, **{"eval.allow_no_metrics": "true"})
    metrics = evaluate_model(allowed, model, CPU, out_dir=tmp_path / "eval")
    assert set(metrics) == set(COUNT_KEYS) and metrics["videos_scored"] == 1
