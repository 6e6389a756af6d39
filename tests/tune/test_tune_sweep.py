"""Real sweeps on a local Ray instance (CPU): trials are Ray Train runs of the training loop on synthetic
features. The tests share one Ray instance (:func:`shared_ray`), started once for the module; the multi-node
test makes its own cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tune_faults import FAIL_ONCE
from tune_helpers import DEMO, REPO, tiny_overrides

from vasot_dist.config import load_config
from vasot_dist.train.checkpoint import list_checkpoints
from vasot_dist.tune.space import SweepError
from vasot_dist.tune.sweep import run_sweep

# xdist_group: the tests share one Ray instance (one per worker process), so they run on one worker.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400), pytest.mark.xdist_group("ray")]

# Fewer helper actors per Train run (no preemption watcher, no metrics) and patience with a loaded 2-core
# machine, where a worker group can take more than Ray Train's default 60 s to start.
LEAN_RAY_TRAIN = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_METRICS_ENABLED": "0",
                  "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": "300"}
# 2 logical CPUs: one trial (1 worker CPU + the driver's 0.25) at a time, so a trial that does not free its
# resources when it ends holds up the next one.
RAY_CPUS = 2


@pytest.fixture(scope="module")
def _ray_settings():
    """The environment every Ray process of the module inherits (set before Ray starts); Ray stops at the end."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in LEAN_RAY_TRAIN.items():
            mp.setenv(k, v)
        # the fault test's Ray workers import tune_faults (this folder) for their setup hook
        here = str(Path(__file__).resolve().parent)
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
        yield
        import ray

        ray.shutdown()


@pytest.fixture
def shared_ray(_ray_settings):
    """The module's local Ray instance (started by the first test that needs it, again after the multi-node
    test stopped it); ``run_sweep`` uses an instance that is already running."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=RAY_CPUS)


SPACE = {
    "method.asot.segment.eps": {"dist": "loguniform", "lower": 0.03, "upper": 0.15},
    "optim.lr": {"dist": "choice", "values": [1.0e-3, 3.0e-3]},
}


def _sweep(name: str, **extra) -> dict:
    return {"name": name, "metric": "seg/MoF", "mode": "max", "num_samples": 2, "seed": 0, "space": SPACE, **extra}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _reported_steps(exp: Path, trial_id: str) -> list[int]:
    """The steps of every result Tune recorded for a trial (its own result.json, one line per report)."""
    return [row["step"] for row in _jsonl(exp / f"trial_{trial_id}" / "result.json")]


def test_a_local_storage_path_is_refused_on_a_multinode_cluster(tiny_cfg, write_sweep, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()  # run_sweep would use the shared instance; this test needs a cluster of two nodes
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        with pytest.raises(SweepError) as err:
            run_sweep(tiny_cfg, write_sweep(_sweep("two_nodes")), address=cluster.address,
                      storage_path=str(tmp_path / "store"))
        assert f"'{tmp_path / 'store'}'" in str(err.value) and "2 alive nodes" in str(err.value)
        assert "tune.shared_storage=true" in str(err.value)
        assert not (tmp_path / "store" / "two_nodes").exists()  # refused before any trial or state
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_sweep_runs_trials_and_writes_a_best_config_that_trains(tiny_cfg, write_sweep, tmp_path, capsys,
                                                                shared_ray):
    # ASHA's budget max_t = 2 steps stops both trials at their first report (of 10 steps). The stop reaches
    # the workers a step or two later; it must end each Train run cleanly and free its resources, since the
    # 2 trials run one after the other (RAY_CPUS).
    sweep = write_sweep(_sweep("e2e", scheduler={"name": "asha", "max_t": 2, "grace_period": 1},
                               overrides=["train.max_steps=10"]))
    result = run_sweep(tiny_cfg, sweep, storage_path=str(tmp_path / "store"))
    exp = tmp_path / "store" / "e2e"
    assert result.experiment_path == str(exp)
    assert [r.status for r in result.rows] == ["stopped", "stopped"]
    values = [r.value for r in result.rows]
    assert values == sorted(values, reverse=True) and result.best == result.rows[0]

    for row in result.rows:
        # what Tune recorded is what the training loop evaluated at that step (rank 0's metrics.jsonl)
        run_dir = Path(tiny_cfg.train.output_dir) / tiny_cfg.train.experiment / row.trial_id
        logged = _jsonl(run_dir / "metrics.jsonl")
        evals = {r["step"]: r for r in logged if "eval/seg/MoF" in r}
        assert evals[row.step]["eval/seg/MoF"] == pytest.approx(row.value)
        reported = _reported_steps(exp, row.trial_id)
        assert reported[0] == 2 and reported[-1] == row.step < 10
        assert max(r["step"] for r in logged) < 10  # the workers left the loop before train.max_steps
        # the trial's config is the base with its sampled values
        run_cfg = load_config(run_dir / "config.yaml")
        assert run_cfg.method.asot.segment.eps == pytest.approx(row.params["method.asot.segment.eps"]) and run_cfg.optim.lr == row.params["optim.lr"]
        assert run_cfg.train.run_id == row.trial_id and run_cfg.log.group == "e2e"

    best = result.best
    kept = list_checkpoints(Path(best.checkpoint))  # Ray Train's copy of the reported checkpoint
    assert [step for step, _ in kept] == [best.step]

    out = capsys.readouterr().out
    assert "sweep 'e2e': 2 trials by seg/MoF (max)" in out and str(result.best_config_path) in out
    assert result.best_config_path == exp / "best_config.yaml"
    best_cfg = load_config(result.best_config_path)
    assert best_cfg.train.run_id is None and best_cfg.method.asot.segment.eps == pytest.approx(best.params["method.asot.segment.eps"])
    assert best_cfg.optim.lr == best.params["optim.lr"] and best_cfg.train.max_steps == 10

    # ... and it trains as is, through the same loop launchers/train.py runs
    from vasot_dist.train.loop import run

    summary = run(load_config(result.best_config_path, ["train.max_steps=2", "train.eval_every=0",
                                                         f"train.output_dir={tmp_path / 'final'}"]))
    assert summary["status"] == "completed" and summary["step"] == 2 and "seg/MoF" in summary["metrics"]


def _trial_statuses(exp: Path) -> dict[str, str]:
    from ray.tune import ExperimentAnalysis

    try:
        return {t.trial_id: t.status for t in ExperimentAnalysis(str(exp)).trials}
    except Exception:  # no experiment state written yet
        return {}


def test_a_failed_trial_retries_from_its_checkpoint_and_a_killed_sweep_resumes(tiny_cfg, write_sweep, tmp_path,
                                                                             shared_ray):
    """One sweep, two faults (one Ray sweep the less): its first trial fails once after its step-2 report and
    Ray Train retries it from that checkpoint; once that trial has finished, the sweep's process is killed,
    and ``--resume`` finishes the other trial without running the first again."""
    sweep = write_sweep(_sweep("killed", max_concurrent=1, scheduler="fifo"))
    store, exp = tmp_path / "store", tmp_path / "store" / "killed"
    runs = tmp_path / "runs"
    (runs / FAIL_ONCE).mkdir(parents=True)  # tune_faults: each trial's rank 0 raises once, after its first report
    overrides = tiny_overrides(Path(tiny_cfg.data.shards), runs)
    # run_sweep starts its own local Ray instance (killed with it), given the fault hook through ray.init
    script = ("import functools, ray; from vasot_dist.config import load_config; "
              "from vasot_dist.tune.sweep import run_sweep; "
              "ray.init = functools.partial(ray.init, runtime_env={'worker_process_setup_hook': 'tune_faults.install'}); "
              f"run_sweep(load_config({str(DEMO)!r}, {overrides!r}), {str(sweep)!r}, storage_path={str(store)!r}, "
              f"num_cpus={RAY_CPUS})")
    log = open(tmp_path / "first_attempt.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: Ray's processes die with it
    try:
        deadline = time.monotonic() + 300
        while "TERMINATED" not in _trial_statuses(exp).values():
            assert proc.poll() is None, (tmp_path / "first_attempt.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(1)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # killed midway: no chance to save anything
        except ProcessLookupError:  # it ended by itself (the assertion above says why)
            pass
        proc.wait()
        log.close()
    statuses = _trial_statuses(exp)
    (done,) = [t for t, s in statuses.items() if s == "TERMINATED"]
    assert len(statuses) == 2
    assert (runs / FAIL_ONCE / f"{done}.failed").read_text().strip() == "2"  # it did fail after step 2
    # the retry continued from the step-2 checkpoint: a restart from scratch would have reported 2, 2, 4
    assert _reported_steps(exp, done) == [2, 4]
    shutil.rmtree(runs / FAIL_ONCE)  # the resumed sweep runs without faults (shared_ray has no fault hook)
    done_results = (exp / f"trial_{done}" / "result.json").read_text()
    done_run = runs / tiny_cfg.train.experiment / done
    done_metrics = (done_run / "metrics.jsonl").read_text()

    result = run_sweep(load_config(DEMO, overrides), sweep, storage_path=str(store), resume=True)
    assert {r.trial_id for r in result.rows} == set(statuses)
    assert all(r.status == "completed" and r.step == 4 for r in result.rows)
    # the finished trial was not run again: neither Tune's results nor its run directory changed
    assert (exp / f"trial_{done}" / "result.json").read_text() == done_results
    assert (done_run / "metrics.jsonl").read_text() == done_metrics


def test_the_readme_sweep_command_runs_in_a_fresh_folder(tmp_path, monkeypatch, capsys, shared_ray):
    """``vasot-tune --config demo --sweep demo_asot`` as the README prints it, in a folder without data (a fresh
    checkout): it writes the synthetic features the sweep's overrides select (not demo.yaml's videos) and runs
    the sweep's 4 trials. Shrunk only through what the sweep file leaves to the command line: fewer, shorter
    videos, and trials small enough to run 4 at once on the module's 2 Ray CPUs."""
    import logging

    from vasot_dist.cli import tune_main

    monkeypatch.chdir(tmp_path)
    logger = logging.getLogger("vasot_dist")  # tune_main logs to this test's captured stderr: restored after
    saved = logger.handlers[:], logger.level, logger.propagate
    try:
        assert tune_main(["--config", "demo", "--sweep", "demo_asot", "data.synthetic.videos_per_activity=4",
                          "data.synthetic.test_videos_per_activity=2", "data.synthetic.frames_min=24",
                          "data.synthetic.frames_max=32", "eval.alignment_metrics=false", "log.wandb=disabled",
                          "tune.cpus_per_worker=0.25"]) == 0
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])
    out, err = capsys.readouterr()
    assert (tmp_path / "data" / "synthetic" / "features" / "dataset.json").is_file()
    assert not (tmp_path / "data" / "synthetic" / "demo").exists()  # demo.yaml's own videos: not what trials read
    assert "sweep 'demo_asot': 4 trials by seg/MoF (max)" in out
    best = load_config(tmp_path / "runs" / "ray_tune" / "demo_asot" / "best_config.yaml")
    assert best.method.name == "asot" and best.data.modality == "features"
    # what the sweep printed while it ran: its own progress lines, not Ray's reports
    assert "sweep demo_asot: 4 trials of random by seg/MoF (max), 1 alive node(s), up to 4 trial(s) at once" in err
    assert err.count(" started: method.asot.segment.eps=") == 4
    assert "sweep demo_asot: 4/4 trials done, best seg/MoF " in err and "ETA -" in err
    assert "TrainingReport(" not in out + err and "PreemptionWatcher" not in out + err
    assert "Trial status:" not in out + err  # Tune's periodic status tables
