from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def feature_overrides(tmp: Path, **kw) -> list[str]:
    """A tiny ASOT-on-features run: fast on CPU, deterministic."""
    base = {
        "data.name": "synthetic", "data.modality": "features", "model.encoder": "mlp", "model.mlp_layers": "[32,32,16]",
        "model.embed_dim": 16, "data.shards": str(tmp / "syn"), "data.frames_per_video": 16,
        "data.batch_size": 2, "data.num_workers": 0, "data.shuffle_buffer": 4, "method.name": "asot",
        "model.num_actions": 4, "train.output_dir": str(tmp / "runs"), "train.experiment": "t",
        "train.run_id": "r", "train.max_steps": 8, "train.log_every": 1, "train.ckpt_every": 4,
        "train.deterministic": "true", "optim.lr": 1e-2, "log.wandb": "disabled", "data.synthetic.feature_dim": 32,
        "data.synthetic.videos_per_activity": 6, "data.synthetic.frames_min": 24, "data.synthetic.frames_max": 40,
        "eval.protocol": "lav",
    }
    base.update(kw)
    return [f"{k}={v}" for k, v in base.items()]


def tiny_config(shards: Path, tmp: Path, **kw):
    """The run of :func:`feature_overrides` on existing ``shards`` (in-process tests: ``run(tiny_config(...))``)."""
    from vasot_dist.config import load_config

    return load_config(None, feature_overrides(tmp, **{"data.shards": str(shards), **kw}))


def run_worker(record: Path, overrides: list[str], *, nproc: int = 1, extra: list[str] = (), timeout: int = 300,
               check: bool = True) -> subprocess.CompletedProcess:
    return run_script(HERE / "_worker.py", [*extra, str(record), *overrides], nproc=nproc, timeout=timeout,
                      check=check)


def run_script(script: Path, args: list[str], *, nproc: int = 1, timeout: int = 300,
               check: bool = True) -> subprocess.CompletedProcess:
    """``script args`` in a fresh process (one intra-op thread), or under torchrun with ``nproc`` ranks."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "pipelines")])}
    if nproc == 1:
        cmd = [sys.executable, str(script), *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(script), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT))
    if check and out.returncode != 0:
        raise AssertionError(f"{script.name} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}")
    return out


def read_record(record: Path, rank: int = 0) -> list[dict]:
    path = Path(f"{record}.rank{rank}")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
