"""The evaluation a run makes is the evaluation of the checkpoint it writes at that step, and ``vasot-evaluate``
never writes over it.

Under DDP every rank updates its own BatchNorm running statistics with its own batch, and a checkpoint holds rank
0's; the trainer broadcasts rank 0's buffers before evaluating and saving (``vasot_dist/train/buffers.py``), so
the metrics logged during a 2-process run equal ``vasot-evaluate``'s on that checkpoint, on 1 or 2 processes:
exactly (the same float32 embeddings and the same seeded scoring; each process keeps one intra-op thread).
Without the broadcast they differ (Kendall's tau 0.078 in training against -0.044 from the checkpoint, on a run
of this kind).
"""

from __future__ import annotations

import json
import math

import pytest
from trainutil import ROOT, run_script, run_worker, tiny_config

from vasot_dist.cli import evaluate_main
from vasot_dist.train.loop import run

EVALUATE = ROOT / "launchers" / "evaluate.py"


def _scores(path) -> dict[str, float]:
    """The numeric metrics of a ``metrics.json`` (which writes an undefined metric, NaN, as null)."""
    return {k: math.nan if v is None else v for k, v in json.loads(path.read_text()).items()
            if v is None or isinstance(v, (int, float))}


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


@pytest.mark.slow
def test_two_process_evaluation_equals_vasot_evaluate_on_its_checkpoint(tmp_path):
    # The ResNet encoder (BatchNorm in its head and backbone) on tiny synthetic videos; VASOT scores alignment
    # and segmentation. Each rank trains on its own pair and evaluates 2 of the 4 test videos.
    overrides = [
        f"data.shards={tmp_path / 'syn'}", f"train.output_dir={tmp_path / 'runs'}", "train.experiment=e",
        "train.run_id=r", "train.max_steps=3", "train.ckpt_every=0", "log.wandb=disabled", "data.num_workers=0",
        "model.head_dim=32", "data.image_size=32", "data.frames_per_video=4", "data.synthetic.size=32",
        "data.synthetic.videos_per_activity=4", "data.synthetic.test_videos_per_activity=4",
        "data.synthetic.frames_min=24", "data.synthetic.frames_max=32", "method.name=vasot",
    ]
    run_worker(tmp_path / "rec", overrides, nproc=2, extra=["--config", "demo"], timeout=400)
    run_dir = tmp_path / "runs" / "e" / "r"
    in_training = _scores(run_dir / "eval" / "step_00000003" / "metrics.json")
    assert {"kendalls_tau", "align_acc", "seg/MoF"} <= in_training.keys()
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert _same({k[len("eval/"):]: v for row in logged for k, v in row.items() if k.startswith("eval/")},
                 in_training)  # what metrics.jsonl (and W&B) got

    args = ["--config", str(run_dir / "config.yaml"), "--checkpoint", str(run_dir / "checkpoints" / "step_00000003.pt")]
    run_script(EVALUATE, args, timeout=300)  # default folder: beside the run's own evaluation
    run_script(EVALUATE, [*args, "--out", str(tmp_path / "two")], nproc=2, timeout=300)
    assert _same(_scores(run_dir / "evaluate" / "step_00000003" / "metrics.json"), in_training)
    assert _same(_scores(tmp_path / "two" / "metrics.json"), in_training)
    assert _same(_scores(run_dir / "eval" / "step_00000003" / "metrics.json"), in_training)  # left as it was


def test_vasot_evaluate_writes_beside_the_runs_evaluation_and_never_over_an_evaluation(feature_shards, tmp_path,
                                                                                      capsys):
    run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 2, "train.ckpt_every": 0}))
    run_dir = tmp_path / "runs" / "t" / "r"
    own = run_dir / "eval" / "step_00000002"
    written = {p.name: p.read_bytes() for p in own.iterdir()}
    cmd = ["--config", str(run_dir / "config.yaml"), "--checkpoint", str(run_dir)]

    assert evaluate_main(cmd) == 0
    beside = run_dir / "evaluate" / "step_00000002"
    assert _same(_scores(beside / "metrics.json"), _scores(own / "metrics.json"))  # one process: the same numbers
    assert {p.name: p.read_bytes() for p in own.iterdir()} == written  # the run's own evaluation untouched

    for target in ([], ["--out", str(own)]):  # a folder that holds an evaluation is refused, the run's own too
        with pytest.raises(SystemExit) as stop:
            evaluate_main([*cmd, *target])
        assert stop.value.code == 2
        folder = own if target else beside
        assert f"{folder} already holds an evaluation; pass --overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in own.iterdir()} == written

    (beside / "stale.png").write_bytes(b"from an older evaluation")
    assert evaluate_main([*cmd, "--overwrite"]) == 0  # replaced as a whole, nothing half-written left beside it
    assert not (beside / "stale.png").exists() and (beside / "metrics.json").exists()
    assert sorted(p.name for p in beside.parent.iterdir()) == ["step_00000002"]
