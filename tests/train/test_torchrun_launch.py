"""The README's torchrun launches on a new user's first tries: a dataset that is not there stops every rank in
seconds with one error line (and torchrun's summary naming it), and a dataset of a single shard trains on two
ranks (each reads the shard and keeps its share of the videos)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vasot_dist.config.schema import SyntheticConfig

ROOT = Path(__file__).resolve().parents[2]
TRAIN = str(ROOT / "launchers" / "train.py")

pytestmark = pytest.mark.slow


def _torchrun(args: list[str], cwd: Path, timeout: int) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    env.pop("WANDB_API_KEY", None)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           TRAIN, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    return proc, time.monotonic() - start


def test_a_failing_check_under_torchrun_prints_one_error_and_exits_in_seconds(tmp_path):
    # A guard against the minute it took (every rank importing the training code before the check), not a
    # benchmark: the bound is loose for a loaded machine.
    proc, seconds = _torchrun(["--config", "ikea_asm", f"data.shards={tmp_path / 'ikea_asm'}",
                               f"train.output_dir={tmp_path / 'runs'}"], tmp_path, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and seconds < 30, (seconds, out[-3000:])
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: data.shards='{tmp_path / 'ikea_asm'}' does not exist")
    assert f"vasot-shard --adapter ikea_asm --root /path/to/IKEA_ASM --out {tmp_path / 'ikea_asm'}" in out
    assert "https://ikeaasm.github.io/" in out
    # torchrun's summary: one failure (local rank 0), whose text is the message rather than a link
    assert "<NO_OTHER_FAILURES>" in out and "traceback : error: data.shards=" in out
    assert not (tmp_path / "runs").exists()


def test_one_shard_trains_on_two_ranks(tmp_path):
    from vasot_pipelines.synthetic import generate_synthetic

    # 5 training videos written as one shard (vasot-shard's default holds up to 32), 2 ranks x 1 worker
    syn = SyntheticConfig(num_activities=1, steps_per_activity=3, videos_per_activity=5, test_videos_per_activity=2,
                          frames_min=12, frames_max=16, feature_dim=8)
    generate_synthetic(tmp_path / "five", syn, modality="features", max_shard_samples=32)
    index = json.loads((tmp_path / "five" / "dataset.json").read_text())
    assert [s["num_samples"] for s in index["shards"] if s["split"] == "train"] == [5]
    proc, _ = _torchrun(["--config", "demo", f"data.shards={tmp_path / 'five'}", "data.name=five",
                         "data.modality=features", "model.encoder=mlp", "model.mlp_layers=[8,16]",
                         "model.embed_dim=16", "model.num_actions=null", "method.name=asot", "data.frames_per_video=8", "data.context_frames=1",
                         "data.num_workers=1", "data.batch_size=2", "train.max_steps=4", "train.log_every=1",
                         "train.ckpt_every=0", "train.run_id=r", f"train.output_dir={tmp_path / 'runs'}",
                         "train.device=cpu", "optim.warmup_steps=0", "eval.protocol=lav",
                         "eval.alignment_metrics=false"], tmp_path, timeout=400)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "split 'train' has 1 shard(s) for 2 readers (world_size 2 x data.num_workers 1)" in proc.stderr
    assert "model.num_actions = 3 (from the label map" in proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "runs" / "demo" / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # 1 batch per rank per epoch: 4 epochs
    assert any("eval/seg/MoF" in r for r in rows)
