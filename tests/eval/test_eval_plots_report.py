"""Figures are real PNGs of plausible size; the report is valid JSON + Markdown whose links resolve."""

from __future__ import annotations

import json
import os
import re

import matplotlib.image as mpimg
import numpy as np
import pytest

from vasot_dist.eval.plots import (
    label_colours,
    plot_curves,
    plot_retrieval_strip,
    plot_segmentation_bars,
    plot_transport_plan,
)
from vasot_dist.eval.report import to_jsonable, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_bytes=2000):
    assert os.path.isfile(path)
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert os.path.getsize(path) > min_bytes
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    assert img[..., :3].std() > 0.01  # not a blank canvas


def test_transport_plan_png(tmp_path):
    n, m = 30, 40
    i, j = np.meshgrid(np.arange(n) / n, np.arange(m) / m, indexing="ij")
    plan = np.exp(-((i - j) ** 2) / 0.005)
    plan /= plan.sum()
    gt = np.round(np.arange(n) / n * m).astype(int)
    path = plot_transport_plan(plan, tmp_path / "sub" / "plan.png", "pair 0-1", gt_match=gt)
    assert path == str(tmp_path / "sub" / "plan.png")
    assert_png(path)
    with pytest.raises(ValueError, match="gt_match has 3 entries but plan has 30 rows"):
        plot_transport_plan(plan, tmp_path / "x.png", "t", gt_match=np.zeros(3, int))


def test_segmentation_bars_png_and_consistent_colours(tmp_path):
    gts = [np.repeat([0, 1, 2, -1], [10, 20, 15, 5]), np.repeat([0, 2, 1], [25, 10, 15])]
    preds = [np.repeat([0, 1, 2, 7], [12, 18, 10, 10]), np.repeat([0, 2, 1], [20, 15, 15])]
    assert_png(plot_segmentation_bars(preds, gts, tmp_path / "bars.png", names=["a", "b"]))
    colours = label_colours(np.concatenate(preds + gts))
    assert colours[-1] == pytest.approx((0.82, 0.82, 0.82, 1.0))
    assert len({colours[v] for v in (0, 1, 2, 7)}) == 4
    # raw cluster ids mapped inside: same image as mapping them by hand first
    raw = [np.repeat([5, 3, 4, 9], [12, 18, 10, 10]), np.repeat([5, 4, 3], [20, 15, 15])]
    # by hand: 5->0 (30 frames), 3->1 (33), 4->2 (20), 9->-1 (5; class 2 is taken by cluster 4)
    mapped = [np.repeat([0, 1, 2, -1], [12, 18, 10, 10]), np.repeat([0, 2, 1], [20, 15, 15])]
    a = plot_segmentation_bars(raw, gts, tmp_path / "raw.png", match_clusters=True)
    b = plot_segmentation_bars(mapped, gts, tmp_path / "mapped.png")
    c = plot_segmentation_bars(raw, gts, tmp_path / "unmapped.png")
    np.testing.assert_array_equal(mpimg.imread(a), mpimg.imread(b))
    assert not np.array_equal(mpimg.imread(a), mpimg.imread(c))
    with pytest.raises(ValueError, match="names has 1 entries but there are 2 videos"):
        plot_segmentation_bars(preds, gts, tmp_path / "x.png", names=["a"])
    with pytest.raises(ValueError, match="pred_list"):
        plot_segmentation_bars([preds[0][:3], preds[1]], gts, tmp_path / "x.png")


def test_retrieval_strip_png(tmp_path):
    rng = np.random.default_rng(0)
    q = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    r = rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    assert_png(
        plot_retrieval_strip(q, r, tmp_path / "strip.png", query_label=1, retrieved_labels=[1, 1, 0, 1, 2])
    )
    with pytest.raises(ValueError, match="query_frames: expected a uint8"):
        plot_retrieval_strip(q.astype(np.float32), r, tmp_path / "x.png")


def test_curves_png(tmp_path):
    rows = [{"step": s, "loss": 1.0 / (s + 1), "lr": 1e-3} for s in range(0, 200, 10)]
    rows.append({"step": 200, "eval/MoF": 55.0})
    assert_png(plot_curves(rows, ["loss", "lr", "missing"], tmp_path / "curves.png"))
    with pytest.raises(ValueError, match="none of the keys"):
        plot_curves(rows, ["missing"], tmp_path / "x.png")


def test_report_writes_valid_json_and_markdown(tmp_path):
    img_in = plot_curves(
        [{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5}], ["loss"], tmp_path / "run" / "c.png"
    )
    img_out = plot_curves(
        [{"step": 0, "loss": 2.0}, {"step": 1, "loss": 0.5}], ["loss"], tmp_path / "other.png"
    )
    metrics = {
        "segmentation": {"full": {"MoF": np.float64(55.5), "F1": float("nan")}},
        "alignment": {"phase_classification": {0.1: np.float32(0.5), 1.0: 0.75}, "n_videos": np.int64(4)},
    }
    report = write_report(tmp_path / "run", metrics, {"curves": img_in, "other curves": img_out})
    assert report == str(tmp_path / "run" / "report.md")
    data = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert data["segmentation"]["full"] == {"MoF": 55.5, "F1": None}
    assert data["alignment"]["phase_classification"] == {"0.1": 0.5, "1.0": 0.75}
    assert data["alignment"]["n_videos"] == 4
    text = (tmp_path / "run" / "report.md").read_text()
    assert "| segmentation/full/MoF | 55.5 |" in text
    assert "| segmentation/full/F1 | n/a |" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 2
    for link in links:
        assert not os.path.isabs(link)
        assert os.path.isfile(tmp_path / "run" / link)  # outside image copied into run/figures
    assert "figures/other.png" in links
    assert not [f for f in os.listdir(tmp_path / "run") if f.startswith(".tmp-")]


def test_report_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        write_report(tmp_path, {"a": 1.0}, {"missing": tmp_path / "nope.png"})
    with pytest.raises(ValueError, match="cannot be written to JSON"):
        to_jsonable({"a": object()})
