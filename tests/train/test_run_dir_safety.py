"""Nothing outside a run is ever touched: run ids are names, ``--overwrite`` deletes only a run directory inside
the experiment folder, one run at a time holds a run directory, what killed runs left is cleaned, and a full or
read-only disk is a message. In-process runs of a tiny MLP on features, the concurrent one in a subprocess."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trainutil import HERE, ROOT, feature_overrides, tiny_config

from vasot_dist.cli import train_main
from vasot_dist.config import ConfigError, save_config
from vasot_dist.runtime.ranklog import setup_logging
from vasot_dist.train import checkpoint as ckpt
from vasot_dist.train.loop import run
from vasot_dist.train.resume import RunDirError, data_position
from vasot_dist.train.runlock import RunLock


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _steps(run_dir: Path) -> list[int]:
    return [s for s, _ in ckpt.list_checkpoints(run_dir / "checkpoints")]


@pytest.fixture(scope="module")
def trained_runs(feature_shards, tmp_path_factory) -> Path:
    """runs/t/r and runs/t/other, each with its checkpoint, trained once for the module."""
    tmp = tmp_path_factory.mktemp("template")
    for run_id in ("r", "other"):
        run(tiny_config(feature_shards, tmp, **{"train.max_steps": 2, "train.ckpt_every": 0, "train.run_id": run_id}))
    return tmp / "runs"


@pytest.fixture
def two_runs(trained_runs, tmp_path) -> Path:
    """A copy of :func:`trained_runs` under ``tmp_path``; returns its output folder."""
    shutil.copytree(trained_runs, tmp_path / "runs", symlinks=True)
    return tmp_path / "runs"


def test_a_run_id_that_is_a_path_is_refused_before_anything_is_deleted(two_runs, feature_shards, tmp_path, capsys):
    before = _snapshot(two_runs)
    config = save_config(tiny_config(feature_shards, tmp_path), tmp_path / "run.yaml")
    for run_id in ("..", ".", "/tmp/elsewhere", "a/../..", ".hidden", "-rf"):
        # `train.run_id=.. --overwrite` deleted runs/t/.. (every experiment); `.` every run of the experiment
        with pytest.raises(SystemExit) as stop:
            train_main(["--config", str(config), f"train.run_id={run_id}", "--overwrite"])
        assert stop.value.code == 2
        assert f"invalid value '{run_id}' for 'train.run_id'" in capsys.readouterr().err
        # a config built in code skips the loader: the run directory is refused all the same
        cfg = tiny_config(feature_shards, tmp_path)
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, run_id=run_id))
        with pytest.raises(RunDirError, match=f"^invalid value '{run_id}' for 'train.run_id': expected a name, "
                                              "not a path"):
            run(cfg, overwrite=True)
        assert _snapshot(two_runs) == before


def test_overwrite_refuses_a_folder_that_is_not_a_run(feature_shards, tmp_path):
    folder = tmp_path / "runs" / "t" / "r"
    folder.mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")
    cfg = tiny_config(feature_shards, tmp_path)
    for overwrite in (True, False):  # neither deleted nor written into
        with pytest.raises(RunDirError) as err:
            run(cfg, overwrite=overwrite)
        assert str(err.value).startswith(f"{folder} exists and is not a run directory (it holds no vasot_run.json, "
                                         "nor the config.yaml, versions.json and checkpoints/ of a run written "
                                         "before the marker): it is left as it is")
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["r"]  # and the lock file is gone


def test_overwrite_never_follows_a_symlink_out_of_the_experiment(two_runs, feature_shards, tmp_path):
    outside = tmp_path / "outside_run"
    os.replace(two_runs / "t" / "other", outside)  # a real run, marker included, elsewhere
    (two_runs / "t" / "other").symlink_to(outside)
    before = _snapshot(outside)
    cfg = tiny_config(feature_shards, tmp_path, **{"train.run_id": "other"})
    with pytest.raises(RunDirError, match=rf"^--overwrite: {two_runs / 't' / 'other'} is a symbolic link to "
                                          rf"{outside}; --overwrite deletes only a run directory"):
        run(cfg, overwrite=True)
    assert _snapshot(outside) == before


def test_a_run_written_before_the_marker_is_still_a_run(two_runs, feature_shards, tmp_path):
    run_dir = two_runs / "t" / "r"
    (run_dir / "vasot_run.json").unlink()  # the layout of earlier versions: config.yaml, versions.json, checkpoints/
    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 3, "train.ckpt_every": 0})
    run(cfg, resume="auto")  # continued, and marked
    assert _steps(run_dir) == [2, 3] and json.loads((run_dir / "vasot_run.json").read_text())["run_id"] == "r"
    (run_dir / "vasot_run.json").unlink()
    run(cfg, overwrite=True)  # replaced
    assert _steps(run_dir) == [3] and (run_dir / "vasot_run.json").is_file()


def test_temporary_files_of_a_killed_run_are_removed_at_start(two_runs, feature_shards, tmp_path, capsys):
    run_dir = two_runs / "t" / "r"
    orphans = [run_dir / "checkpoints" / ".step_00000003.pt.0badc0de.tmp", run_dir / ".metrics.jsonl.12345678.tmp"]
    for p in orphans:
        p.write_bytes(b"x" * 1000)
    (run_dir / ".ray_report_abc").mkdir()
    keep = run_dir / "notes.tmp"  # not a name our writers use
    keep.write_text("mine")
    run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 3, "train.ckpt_every": 0}), resume="auto")
    assert not any(p.exists() for p in orphans) and not (run_dir / ".ray_report_abc").exists()
    assert keep.read_text() == "mine"
    assert f"{run_dir}: removed 3 temporary file(s) (0.0 MB) left by a run that was killed while writing" \
        in capsys.readouterr().err


# -------------------------------------------------------------------------------------------- the lock
def _start(record: Path, overrides: list[str], *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "pipelines")])}
    return subprocess.Popen([sys.executable, str(HERE / "_worker.py"), *extra, str(record), *overrides],
                            env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker ended ({proc.returncode}) before {path.name}:\n{proc.stderr.read()[-4000:]}")
        assert time.monotonic() < deadline, f"no {path.name} after {timeout} s"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_second_run_on_the_same_id_fails_at_once_naming_the_first(feature_shards, tmp_path):
    rec = tmp_path / "rec"
    common = {"data.shards": str(feature_shards), "train.max_steps": 6, "train.ckpt_every": 0}
    first = _start(rec, feature_overrides(tmp_path, **common), "--pause-at", "2")
    try:
        _wait_for(Path(f"{rec}.paused"), first)
        run_dir = tmp_path / "runs" / "t" / "r"
        before = _snapshot(run_dir)
        # Both used to exit 0, overwriting each other's checkpoints and writing every step twice to metrics.jsonl.
        for how in ({}, {"resume": "auto"}, {"overwrite": True}):
            with pytest.raises(RunDirError) as err:
                run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 6}), **how)
            msg = str(err.value)
            assert msg.startswith(f"{run_dir} is in use by another run: pid {first.pid} on host "
                                  f"{socket.gethostname()} since ")
            assert msg.endswith(f"(lock file {run_dir.parent / '.r.lock'}). Two runs in one run directory would "
                                "overwrite each other's checkpoints; wait for that run to end, or choose another "
                                "train.run_id")
            assert _snapshot(run_dir) == before
        Path(f"{rec}.go").touch()
        assert first.wait(timeout=240) == 0, first.stderr.read()[-4000:]
    finally:
        first.kill()
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == list(range(1, 7))  # one row per step: no second writer
    assert not (run_dir.parent / ".r.lock").exists()
    run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 7, "train.ckpt_every": 0}), resume="auto")
    assert _steps(run_dir) == [6, 7]


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, capsys):
    setup_logging(0)  # to this test's stderr
    run_dir = tmp_path / "t" / "r"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = {"host": socket.gethostname(), "pid": int(dead.stdout), "since": "2020-01-01T00:00:00+00:00",
              "run_dir": str(run_dir)}
    lock_file = tmp_path / "t" / ".r.lock"
    lock_file.parent.mkdir()
    lock_file.write_text(json.dumps(record))  # SIGKILLed: its record stays, its lock went with it
    lock = RunLock(run_dir).acquire()
    try:
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
        assert f"took over the lock of pid {record['pid']} on host {record['host']} since 2020-01-01" \
            in capsys.readouterr().err
        with pytest.raises(RunDirError, match=f"in use by another run: pid {os.getpid()}"):
            RunLock(run_dir).acquire()  # this process already holds it (POSIX locks do not see their own)
    finally:
        lock.release()
    assert not lock_file.exists()


# --------------------------------------------------------------------------------- a disk that refuses
def _limited(max_bytes: int):
    def limit() -> None:  # in the child: writes past max_bytes fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return limit


@pytest.mark.slow
@pytest.mark.parametrize("max_bytes,code,expected", [
    (0, 2, "error: cannot write the run directory {run}: File too large ({lock}); set train.output_dir to a "
           "writable folder\n"),
    (20_000, 1, "error: cannot write {run}/checkpoints/step_00000002.pt: File too large (errno EFBIG). The run "
                "stopped; what it wrote before is intact (newest checkpoint: none yet). Free space or make the run "
                "directory writable, then continue with --resume auto\n"),
])
def test_a_disk_that_refuses_writes_is_a_message_not_a_traceback(feature_shards, tmp_path, max_bytes, code,
                                                                 expected):
    # RLIMIT_FSIZE stands in for a full or read-only disk (the tests run as root, which ignores permissions): at
    # 0 bytes not even the lock's record fits; at 20 kB the config does and a 41 kB checkpoint does not.
    overrides = feature_overrides(tmp_path, **{"data.shards": str(feature_shards), "train.max_steps": 4,
                                               "train.ckpt_every": 2})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "pipelines")])}
    proc = subprocess.run([sys.executable, "-m", "vasot_dist.cli", "--config", "demo", *overrides],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300,
                          preexec_fn=_limited(max_bytes))
    run_dir = tmp_path / "runs" / "t" / "r"
    assert proc.returncode == code, proc.stderr[-3000:]
    assert expected.format(run=run_dir, lock=run_dir.parent / ".r.lock") in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    if run_dir.exists():  # the half-written checkpoint went with its temporary name
        assert not [p for p in run_dir.rglob("*.tmp")] and _steps(run_dir) == []


# ---------------------------------------------------------------------- resuming on another world size
@pytest.mark.parametrize("saved,now,batch,expected", [
    ((2, 2), (1, 2), 2, 4),  # 2 processes -> 1: 2 batches x 2 ranks x 2 videos = 8 videos = 4 batches of 1 rank
    ((1, 2), (2, 2), 3, 1),  # 1 -> 2: 6 videos consumed, 4 per step of 2 ranks: batch 1 (rounded down)
    ((1, 2), (1, 4), 4, 2),  # another batch size
    ((2, 2), (2, 2), 3, 3),  # the same: exact, untouched
])
def test_the_data_position_is_converted_to_the_videos_consumed(feature_shards, tmp_path, saved, now, batch, expected):
    cfg = tiny_config(feature_shards, tmp_path, **{"data.batch_size": now[1]})
    extra = {"progress": {"step": 9, "epoch": 1, "batch_in_epoch": batch}, "world_size": saved[0],
             "config": {"data": {"batch_size": saved[1]}}}
    assert data_position(extra, cfg, now[0]) == {"step": 9, "epoch": 1, "batch_in_epoch": expected}


def test_resuming_with_another_batch_size_continues_the_epoch_where_it_was(feature_shards, tmp_path):
    # 12 training videos: 6 batches of 2 per epoch; stopped after 4 (8 videos), resumed with batches of 4: the
    # epoch has 1 batch left (it used to restart at batch 4 of 3, an error; on another world size, half an epoch
    # replayed).
    run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 4, "train.ckpt_every": 0}))
    run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 7, "data.batch_size": 4}), resume="auto")
    rows = [json.loads(line) for line in (tmp_path / "runs/t/r/metrics.jsonl").read_text().splitlines()]
    epochs = {r["step"]: r["epoch"] for r in rows if "loss" in r}
    assert epochs == {1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 1, 7: 1}


def test_config_errors_name_the_key(feature_shards, tmp_path):
    with pytest.raises(ConfigError, match="'train.experiment'"):
        tiny_config(feature_shards, tmp_path, **{"train.experiment": "../x"})
