"""A run directory belongs to one run: a rerun of a run id is refused unless it resumes or overwrites, unreadable
checkpoints stop a resume, a resumed config is compared key by key with the saved one, metrics.jsonl keeps one row
per step, and the encoder's weights source is saved. In-process runs of a tiny MLP on features (seconds each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from trainutil import tiny_config

from vasot_dist.cli import train_main
from vasot_dist.config import save_config
from vasot_dist.train import checkpoint as ckpt
from vasot_dist.train.loop import run
from vasot_dist.train.resume import RunDirError, truncate_metrics


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _loss_rows(run_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "loss" in r]


def _steps(run_dir: Path) -> list[int]:
    return [s for s, _ in ckpt.list_checkpoints(run_dir / "checkpoints")]


def test_a_run_id_that_holds_checkpoints_needs_resume_or_overwrite(feature_shards, tmp_path, capsys):
    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 4, "train.ckpt_every": 2})
    run(cfg)
    run_dir = tmp_path / "runs" / "t" / "r"
    assert _steps(run_dir) == [2, 4]
    assert json.loads((run_dir / "weights_source.json").read_text()) == {"encoder": "mlp", "weights": "none"}
    before = _snapshot(run_dir)
    config = save_config(cfg, tmp_path / "run.yaml")

    # A shorter rerun under the same id: refused before anything is written (it used to write steps 1..3 next to
    # the old run's 2 and 4, prune its own, and leave --resume auto to continue the old run).
    with pytest.raises(SystemExit) as stop:
        train_main(["--config", str(config), "train.max_steps=3", "train.ckpt_every=1", "train.keep_last=1"])
    assert stop.value.code == 2
    assert (f"{run_dir} already holds checkpoints of a run (steps 2, 4): continue it with --resume auto, replace "
            "it with --overwrite (deletes that run directory), or choose another train.run_id") in capsys.readouterr().err
    assert _snapshot(run_dir) == before

    # --overwrite replaces the run: only the new run's checkpoint and rows are left.
    assert train_main(["--config", str(config), "train.max_steps=3", "train.ckpt_every=1", "train.keep_last=1",
                       "--overwrite"]) == 0
    assert _steps(run_dir) == [3]
    assert _loss_rows(run_dir) == [1, 2, 3]
    with pytest.raises(SystemExit) as stop:
        train_main(["--config", str(config), "--overwrite", "--resume", "auto"])
    assert stop.value.code == 2
    assert f"--overwrite starts {run_dir} over; it cannot be combined with --resume auto" in capsys.readouterr().err


def test_resume_after_a_crash_logs_each_step_once(feature_shards, tmp_path):
    class Crash(Exception):
        pass

    def crash_at_6(step, model, out):
        if step == 6:
            raise Crash

    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 8, "train.ckpt_every": 4})
    with pytest.raises(Crash):
        run(cfg, on_step=crash_at_6)
    run_dir = tmp_path / "runs" / "t" / "r"
    assert _steps(run_dir) == [4] and _loss_rows(run_dir) == [1, 2, 3, 4, 5]
    source = (run_dir / "weights_source.json").stat().st_mtime_ns
    run(cfg, resume="auto")
    assert _loss_rows(run_dir) == list(range(1, 9))  # step 5 was trained and logged again: one row each
    assert (run_dir / "weights_source.json").stat().st_mtime_ns == source  # the run's start, not the resume's


def test_every_checkpoint_unreadable_is_an_error_not_a_restart(feature_shards, tmp_path, capsys):
    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 4, "train.ckpt_every": 2})
    run(cfg)
    run_dir = tmp_path / "runs" / "t" / "r"
    for _, p in ckpt.list_checkpoints(run_dir / "checkpoints"):
        p.write_bytes(p.read_bytes()[:100])  # truncated copies
    before = _snapshot(run_dir)
    with pytest.raises(RunDirError) as err:
        run(cfg, resume="auto")
    assert str(err.value) == (
        f"--resume auto: every checkpoint in {run_dir / 'checkpoints'} is unreadable (step_00000002.pt, "
        "step_00000004.pt; the warnings above say why); move them away to start over in this directory, or start "
        "over with --overwrite")
    assert "step_00000004.pt (step 4) is unreadable" in capsys.readouterr().err  # the log says why
    assert _snapshot(run_dir) == before


def test_a_resumed_config_is_compared_key_by_key(feature_shards, tmp_path, capsys):
    run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 4, "train.ckpt_every": 2}))
    run_dir = tmp_path / "runs" / "t" / "r"
    before = _snapshot(run_dir)

    wider = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 6, "model.embed_dim": 8,
                                                     "model.mlp_layers": "[32,32,8]"})
    with pytest.raises(RunDirError) as err:
        run(wider, resume="auto")
    msg = str(err.value)
    assert msg.startswith(f"--resume {run_dir / 'checkpoints' / 'step_00000004.pt'}: this config changes the "
                          f"model's shape against {run_dir / 'config.yaml'} (model.embed_dim: 16 -> 8; "
                          "model.mlp_layers: [32, 32, 16] -> [32, 32, 8])")
    assert "train.max_steps" not in msg  # only the keys that are refused
    assert _snapshot(run_dir) == before

    slower = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 6, "train.ckpt_every": 2, "optim.lr": 1e-3})
    capsys.readouterr()
    run(slower, resume="auto")
    assert f"differs from {run_dir / 'config.yaml'}:\n  optim.lr: 0.01 -> 0.001\n  train.max_steps: 4 -> 6\n" \
        in capsys.readouterr().err
    assert yaml.safe_load((run_dir / "config.step_00000004.yaml").read_text())["optim"]["lr"] == 0.01
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["optim"]["lr"] == 0.001
    assert _steps(run_dir) == [2, 4, 6]


def test_resuming_an_older_checkpoint_beside_later_ones_is_refused(feature_shards, tmp_path):
    run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 4, "train.ckpt_every": 2}))
    ck = tmp_path / "runs" / "t" / "r" / "checkpoints"
    with pytest.raises(RunDirError, match=rf"^--resume {ck / 'step_00000002.pt'} \(step 2\): {ck} holds later "
                                          r"checkpoints \(steps 4\) of this run"):
        run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 6}), resume=str(ck / "step_00000002.pt"))
    # the way to branch: another run id, reading the checkpoint from its path
    branch = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 3, "train.run_id": "b"})
    run(branch, resume=str(ck / "step_00000002.pt"))
    assert _loss_rows(tmp_path / "runs" / "t" / "b") == [3] and _steps(ck.parent) == [2, 4]


def test_truncate_metrics_keeps_rows_up_to_the_step_byte_for_byte(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = ['{"step": 1, "loss": 1.0}\n', '{"step": 2, "loss": NaN}\n', '{"step": 2, "eval/x": 3}\n',
            '{"step": 3, "loss": 0.5}\n', '{"step": 4, "lo']  # the last append was cut short by a crash
    path.write_text("".join(rows))
    assert truncate_metrics(path, 2) == 2
    assert path.read_text() == "".join(rows[:3])
    assert truncate_metrics(path, 2) == 0 and truncate_metrics(tmp_path / "none.jsonl", 0) == 0
