"""The evaluation hooks a method declares when it is registered: the alignment solve of its plots and its extra
metric families (REALIGN's key-step clustering), read from the registry by ``eval.runner``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from vasot_dist.config import METHODS, RunConfig, register_method, unregister_method
from vasot_dist.config.methods import AlignSolve
from vasot_dist.config.rules import value_at
from vasot_dist.eval.runner import METRIC_FAMILIES, VideoEmbedding, score


def test_every_method_names_an_alignment_solve_to_plot_and_known_metric_families():
    method = RunConfig().method
    for name, m in METHODS.items():
        assert isinstance(value_at(method, m.plot_align), AlignSolve), name
        assert set(m.metrics) <= set(METRIC_FAMILIES), name
    assert {n: m.plot_align for n, m in METHODS.items() if m.plot_align != "vaot.align"} == {"vasot": "vasot.align"}
    assert {n: m.metrics for n, m in METHODS.items() if m.metrics} == {"realign": ("keystep",)}


def _videos(n: int = 3, t: int = 24, d: int = 8) -> list[VideoEmbedding]:
    """Videos of one activity whose embeddings cluster by their label (3 steps in order)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, d)).astype(np.float32)
    out = []
    for i in range(n):
        labels = np.repeat(np.arange(3), t // 3)
        emb = centres[labels] + 0.05 * rng.normal(size=(len(labels), d)).astype(np.float32)
        out.append(VideoEmbedding(key=f"v{i}", activity="a", emb=emb, labels=labels, progress=None,
                                  segmentation=None))
    return out


@pytest.mark.parametrize("name", ["realign", "vaot"])
def test_the_key_step_metrics_are_scored_for_the_methods_that_ask_for_them(name):
    cfg = RunConfig()
    cfg.method.name, cfg.model.num_actions, cfg.eval.alignment_metrics = name, 3, False
    metrics = score(cfg, [], _videos())
    if name == "realign":  # three well-separated clusters: every key step recovered
        assert set(metrics) == {"keystep/MoF", "keystep/precision", "keystep/IoU", "keystep/F1"}
        assert metrics["keystep/F1"] == pytest.approx(100.0)
    else:
        assert metrics == {}


def test_a_method_asking_for_an_unknown_metric_family_is_told_the_known_ones():
    @dataclass
    class Odd:
        needs_pairs: ClassVar[bool] = True

    register_method("odd", metrics=("keysteps",))(Odd)
    try:
        cfg = RunConfig()
        cfg.method.name, cfg.eval.alignment_metrics = "odd", False
        with pytest.raises(ValueError, match="method 'odd' asks for the metric family 'keysteps'; known: keystep"):
            score(cfg, [], _videos())
    finally:
        unregister_method("odd")
