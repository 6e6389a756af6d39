"""Preemption as schedulers deliver it: SIGTERM to a whole process group (SLURM, ``kill -TERM -<pgid>``) or to
torchrun (which forwards it to each worker's process group, DataLoader workers included). The DataLoader
workers used to die first ("DataLoader worker ... is killed by signal: Terminated"): exit 1, no checkpoint.
Now every rank checkpoints at the next step boundary and exits 0, and the run resumes, also on another number
of processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trainutil import HERE, ROOT, feature_overrides, read_record, tiny_config

from vasot_dist.train import checkpoint as ckpt
from vasot_dist.train.loop import run

pytestmark = pytest.mark.slow


def _launch(record: Path, overrides: list[str], nproc: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "pipelines")])}
    worker = [str(HERE / "_worker.py"), str(record), *overrides]
    cmd = [sys.executable, *worker] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *worker]
    # its own session: the process group a scheduler signals
    return subprocess.Popen(cmd, env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _signal_group_after(proc: subprocess.Popen, record: Path, steps: int, timeout: float = 300) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while len(read_record(record, 0)) < steps:
        if proc.poll() is not None:
            raise AssertionError(f"run ended ({proc.returncode}) before step {steps}:\n{proc.stderr.read()[-5000:]}")
        assert time.monotonic() < deadline, f"no step {steps} after {timeout} s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    return proc.returncode, err


def _epochs(run_dir: Path) -> dict[int, int]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["epoch"] for r in rows if "loss" in r}


@pytest.mark.parametrize("nproc", [1, 2])
def test_sigterm_to_the_process_group_checkpoints_exits_0_and_resumes(feature_shards, tmp_path, nproc):
    rec = tmp_path / "rec"
    # one video per batch: 12 steps per epoch on one process, 6 on two; the signal comes mid-epoch, while the
    # loader worker is alive and reading
    settings = {"data.shards": str(feature_shards), "data.num_workers": 1, "data.batch_size": 1,
                "train.max_steps": 400, "train.ckpt_every": 0, "train.log_every": 5}
    proc = _launch(rec, feature_overrides(tmp_path, **settings), nproc)
    code, err = _signal_group_after(proc, rec, steps=2)
    assert "killed by signal" not in err and "exited unexpectedly" not in err, err[-5000:]
    results = [json.loads(Path(f"{rec}.result.rank{r}").read_text()) for r in range(nproc)]
    assert all(r["status"] == "preempted" for r in results), err[-5000:]  # every rank left run() normally: exit 0
    step = results[0]["step"]
    assert all(r["step"] == step for r in results) and 2 <= step < 400
    # the step boundary right after the signal, not the next log step
    assert step == max(r["step"] for r in read_record(rec, 0))
    run_dir = tmp_path / "runs" / "t" / "r"
    assert [s for s, _ in ckpt.list_checkpoints(run_dir / "checkpoints")] == [step]
    # A single process exits 0. torchrun re-raises the signal it forwarded (SignalException) once its workers have
    # ended: exit 1 whatever they did (docs/training.md).
    assert code == (0 if nproc == 1 else 1), err[-3000:]
    assert not (run_dir.parent / ".r.lock").exists()

    # Resumed in one process with 2 videos per batch (6 batches per epoch): the videos already consumed, b x nproc,
    # are not read again; b x nproc / 2 batches of the epoch are done.
    state = ckpt.load_file_checkpoint(run_dir / "checkpoints" / ckpt.checkpoint_name(step))
    epoch, batch = state["vasot"]["progress"]["epoch"], state["vasot"]["progress"]["batch_in_epoch"]
    run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": step + 8, "train.ckpt_every": 0}), resume="auto")
    left = 6 - batch * nproc // 2  # batches of this epoch left on one process
    epochs = _epochs(run_dir)
    assert [epochs[s] for s in range(step + 1, step + 9)] == [epoch] * left + [epoch + 1] * (8 - left)
