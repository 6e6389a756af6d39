"""vasot-evaluate on a checkpoint of a tiny video run: metrics.json, a Markdown report and its PNGs
(transport plans, segmentation bars, retrieval strips); a missing checkpoint is a clear error; the launcher
scripts start the same entry points from a checkout."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from trainutil import ROOT

from vasot_dist.cli import evaluate_main, train_main


@pytest.mark.slow
def test_evaluate_checkpoint_writes_metrics_and_report(tmp_path):
    overrides = [
        f"data.shards={tmp_path / 'syn'}", f"train.output_dir={tmp_path / 'runs'}", "train.experiment=e",
        "train.run_id=r", "train.max_steps=2", "train.ckpt_every=0", "log.wandb=disabled", "data.num_workers=0",
        "model.head_dim=32", "data.frames_per_video=4", "data.synthetic.videos_per_activity=3",
        "data.synthetic.test_videos_per_activity=2", "data.synthetic.frames_min=24",
        "data.synthetic.frames_max=32", "eval.batch_frames=32",
        "method.name=vasot",  # the demo trains VAOT; VASOT's run has both the alignment and the segmentation metrics
    ]
    assert train_main(["--config", "demo", *overrides]) == 0
    run_dir = tmp_path / "runs" / "e" / "r"
    out_dir = tmp_path / "evaluation"
    assert evaluate_main(["--config", str(run_dir / "config.yaml"), "--checkpoint", str(run_dir),
                          "--out", str(out_dir)]) == 0
    metrics = json.loads((out_dir / "metrics.json").read_text())
    for key in ("phase_acc@1", "kendalls_tau", "ap@5", "align_acc", "seg/MoF", "seg/F1", "seg/mIoU"):
        assert key in metrics, key
    assert 0 <= metrics["seg/MoF"] <= 100 and 0 <= metrics["align_acc"] <= 100
    report = (out_dir / "report.md").read_text()
    pngs = sorted(out_dir.rglob("*.png"))
    names = {p.stem.split("_")[0] for p in pngs}
    assert {"plan", "segmentation", "retrieval"} <= names, names
    for p in pngs:  # every figure is a real, non-blank image linked from the report
        img = np.asarray(Image.open(p).convert("L"), dtype=float)
        assert img.std() > 5, p
        assert p.name in report


def test_evaluate_reports_a_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        evaluate_main(["--config", "demo", "--checkpoint", str(tmp_path)])
    assert stop.value.code == 2
    assert f"{tmp_path} is neither a checkpoint file nor a run directory" in capsys.readouterr().err


def test_launcher_scripts_start_their_entry_points_from_a_checkout():
    script = ("import runpy, sys\n"
              "for name in ('train', 'evaluate', 'tune', 'compare', 'embed', 'segment', 'align'):\n"
              "    sys.argv = [name, '--help']\n"
              "    try:\n"
              "        runpy.run_path(f'launchers/{name}.py', run_name='__main__')\n"
              "    except SystemExit as e:\n"
              "        assert e.code == 0, (name, e.code)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    usages = {text.split()[0]: text for text in proc.stdout.split("usage: ")[1:]}
    assert sorted(usages) == ["vasot-align", "vasot-compare", "vasot-embed", "vasot-evaluate", "vasot-segment",
                              "vasot-train", "vasot-tune"]
    assert all("--config" in usages[prog] for prog in ("vasot-train", "vasot-evaluate", "vasot-tune"))
    assert all("CKPT" in usages[prog] and "--out" in usages[prog] for prog in ("vasot-embed", "vasot-segment",
                                                                               "vasot-align"))
