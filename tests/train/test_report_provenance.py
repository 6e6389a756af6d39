"""A report says what it evaluated and names the labels; evaluation and k-means show progress; 2-frame clips plot
with integer ticks and score without scipy's small-sample warning."""

from __future__ import annotations

import warnings

import numpy as np
from trainutil import tiny_config

from vasot_dist.data import DatasetIndex
from vasot_dist.eval.alignment import kendalls_tau
from vasot_dist.eval.plots import label_names_of, segmentation_figure, transport_plan_figure
from vasot_dist.train.loop import run


def test_the_report_states_checkpoint_protocol_split_counts_and_label_names(feature_shards, tmp_path, capsys):
    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 2, "train.ckpt_every": 0})
    summary = run(cfg)
    err = capsys.readouterr().err
    assert "k-means init: embedding" in err and "k-means init: 4 clusters of" in err  # rank 0's bars
    assert "eval: embedding test videos" in err

    report = (tmp_path / "runs" / "t" / "r" / "eval" / "step_00000002" / "report.md").read_text()
    index = DatasetIndex.load(feature_shards)
    names = label_names_of(index.label_map)
    assert names[index.background_id] == "background" and names[1] == "activity0_step0"
    rows = dict(line.strip("|").split(" | ", 1) for line in report.splitlines() if line.startswith("| ")
                and line.count("|") == 3)
    rows = {k.strip(): v.strip() for k, v in rows.items()}
    assert rows["checkpoint"] == f"{tmp_path / 'runs' / 't' / 'r' / 'checkpoints' / 'step_00000002.pt'}"
    assert rows["training step"] == "2" and rows["method"] == "asot" and rows["split"] == "test"
    assert rows["segmentation protocol"] == "Hungarian matching per activity (full)"
    assert rows["videos"] == "4 scored of 4 (0 corrupt skipped)"
    assert rows["labels (id name)"] == ", ".join(f"{i} {n}" for i, n in sorted(names.items()))
    assert summary["metrics"]["videos_scored"] == 4

    # the segmentation figure's legend names the labels (matched clusters take the ground truth's names)
    gt = [np.array([0, 1, 1, 2, 2, 0]), np.array([1, 1, 2, 2, 3, 3])]
    pred = [np.array([5, 7, 7, 9, 9, 5]), np.array([7, 7, 9, 9, 8, 6])]
    legend = [t.get_text() for t in segmentation_figure(pred, gt, match_clusters=True,
                                                        label_names=names).legends[0].get_texts()]
    assert legend == [names[0], names[1], names[2], names[3], "unmatched cluster 1"]


def test_two_frame_clips_get_integer_ticks_and_no_small_sample_warning():
    fig = transport_plan_figure(np.array([[0.4, 0.1], [0.0, 0.5]]), axes=("frames", "actions (prototypes)"))
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("actions (prototypes)", "frames")
    for ticks in (ax.get_xticks(), ax.get_yticks()):
        assert np.all(ticks == np.round(ticks))
    clips = [np.random.default_rng(i).normal(size=(2, 4)) for i in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's SmallSampleWarning included
        assert np.isnan(kendalls_tau(clips, stride=5))  # one strided frame per clip: no order to compare
        assert kendalls_tau(clips, stride=1) == kendalls_tau(clips, stride=1)  # 2 frames: defined (not NaN)
