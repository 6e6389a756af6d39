"""The pieces of a sweep that need no Ray cluster: storage checks, trial concurrency, the resume choice,
checkpoint staging, the result table and the best config."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from vasot_dist.config import load_config
from vasot_dist.tune.results import TrialRow, format_table, pick_best, sort_rows, write_best_config
from vasot_dist.tune.storage import (
    check_multinode_storage,
    filesystem_type,
    is_shared,
    resolve_storage,
)
from vasot_dist.tune.sweep import max_concurrent_trials, sweep_base_config
from vasot_dist.tune.trial import DRIVER_CPUS, RayReporter, choose_resume, staged_checkpoint, trial_config

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
tmpfs /tmp tmpfs rw 0 0
nas:/export/shared /mnt/nfs nfs4 rw,vers=4.2 0 0
s3fs /mnt/bucket fuse.s3fs rw 0 0
/dev/sdb1 /mnt/nfs/local\\040disk xfs rw 0 0
"""


@pytest.mark.parametrize("path,fstype,shared", [
    ("/home/me/ray", "ext4", False),
    ("/tmp/x", "tmpfs", False),
    ("/mnt/nfs/sweeps/a", "nfs4", True),
    ("/mnt/nfs", "nfs4", True),
    ("/mnt/nfsx/a", "ext4", False),  # a prefix of the name, not of the path
    ("/mnt/bucket/a", "fuse.s3fs", True),
    ("/mnt/nfs/local disk/a", "xfs", False),  # the longest mount point wins; \040 is a space
])
def test_filesystem_type_and_sharing(path, fstype, shared):
    assert filesystem_type(path, MOUNTS) == fstype
    assert is_shared(path, MOUNTS) is shared


def test_uris_are_shared_and_kept():
    assert is_shared("s3://bucket/sweeps", MOUNTS) and is_shared("gs://b/x", MOUNTS)
    assert resolve_storage("s3://bucket/sweeps/", Path("/unused")) == "s3://bucket/sweeps"
    assert resolve_storage("file:///tmp/a/../b", Path("/unused")) == "/tmp/b"
    assert resolve_storage(None, Path("rel/dir")) == str(Path.cwd() / "rel" / "dir")


def test_local_storage_refused_only_on_multinode_clusters():
    check_multinode_storage("/home/me/ray", 1, MOUNTS)  # one node: any path
    check_multinode_storage("/mnt/nfs/ray", 4, MOUNTS)
    check_multinode_storage("s3://bucket/ray", 4, MOUNTS)
    with pytest.raises(ValueError) as err:
        check_multinode_storage("/home/me/ray", 3, MOUNTS)
    msg = str(err.value)
    assert "'/home/me/ray'" in msg and "ext4" in msg and "3 alive nodes" in msg and "--storage-path" in msg
    assert msg.endswith("set tune.shared_storage=true.")
    check_multinode_storage("/home/me/ray", 3, MOUNTS, asserted_shared=True)  # the user says every node sees it


def _tune(cfg, **kw):
    return dataclasses.replace(cfg, tune=dataclasses.replace(cfg.tune, **kw))


def test_concurrency_is_capped_by_gpus_then_cpus(tiny_cfg):
    gpu2 = _tune(tiny_cfg, workers_per_trial=2, gpus_per_worker=1.0, cpus_per_worker=4.0)
    assert max_concurrent_trials({"CPU": 64, "GPU": 8}, gpu2) == 4  # 8 GPUs / 2 per trial
    assert max_concurrent_trials({"CPU": 64, "GPU": 7}, gpu2) == 3
    assert max_concurrent_trials({"CPU": 17, "GPU": 8}, gpu2) == 2  # CPUs: 17 // (2*4 + driver)
    half = _tune(tiny_cfg, workers_per_trial=1, gpus_per_worker=0.5, cpus_per_worker=1.0)
    assert max_concurrent_trials({"CPU": 64, "GPU": 2}, half) == 4
    cpu = _tune(tiny_cfg, workers_per_trial=2, gpus_per_worker=0.0, cpus_per_worker=1.0)
    assert max_concurrent_trials({"CPU": 16}, cpu) == int(16 // (2 + DRIVER_CPUS))
    with pytest.raises(ValueError, match="needs 2 GPUs .* has 0 GPUs"):
        max_concurrent_trials({"CPU": 64}, gpu2)
    with pytest.raises(ValueError, match="CPUs"):
        max_concurrent_trials({"CPU": 2}, cpu)


def test_sweep_base_config_makes_paths_absolute_and_groups(tiny_cfg, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cfg = dataclasses.replace(tiny_cfg, data=dataclasses.replace(tiny_cfg.data, shards="data/x"),
                              train=dataclasses.replace(tiny_cfg.train, output_dir="runs", run_id="old"))
    base = sweep_base_config(cfg, "my_sweep")
    assert base.data.shards == str(tmp_path / "data" / "x")
    assert base.train.output_dir == str(tmp_path / "runs")
    assert base.train.run_id is None and base.log.group == "my_sweep"
    assert sweep_base_config(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, shards="/abs/x")),
                             "s").data.shards == "/abs/x"
    # model.weights: the names imagenet and none stay names; a file path becomes absolute
    for weights, expected in (("imagenet", "imagenet"), ("none", "none"), ("w/r50.pth", str(tmp_path / "w" / "r50.pth"))):
        with_weights = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights=weights))
        assert sweep_base_config(with_weights, "s").model.weights == expected


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"x")


def test_resume_takes_the_newer_of_ray_and_local_checkpoints(tiny_cfg, tmp_path):
    cfg = trial_config(tiny_cfg, {}, "trialA")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, output_dir=str(tmp_path / "runs")))
    local = tmp_path / "runs" / cfg.train.experiment / "trialA" / "checkpoints"
    ray_dir = tmp_path / "ray_ckpt"
    assert choose_resume(cfg, None) == "none"
    _touch(ray_dir, "step_00000004.pt")
    assert choose_resume(cfg, ray_dir) == str(ray_dir / "step_00000004.pt")
    _touch(local, "step_00000002.pt", "step_00000004.pt")
    assert choose_resume(cfg, ray_dir) == str(ray_dir / "step_00000004.pt")  # a tie: Ray's copy
    _touch(local, "step_00000006.pt")
    assert choose_resume(cfg, ray_dir) == "auto"  # the run dir is ahead (checkpoint after the last report)
    assert choose_resume(cfg, None) == "auto"


def test_staged_checkpoint_holds_only_that_checkpoint_by_hard_links(tmp_path):
    ckpts = tmp_path / "run" / "checkpoints"
    _touch(ckpts, "step_00000002.pt", "step_00000004.pt")
    with staged_checkpoint(ckpts / "step_00000004.pt") as folder:
        assert [p.name for p in folder.iterdir()] == ["step_00000004.pt"]
        assert os.stat(folder / "step_00000004.pt").st_ino == os.stat(ckpts / "step_00000004.pt").st_ino
        assert folder.parent == tmp_path / "run"
    assert not folder.exists() and (ckpts / "step_00000004.pt").exists()
    ds = ckpts / "step_00000006"  # a DeepSpeed checkpoint folder
    _touch(ds / "global_step6", "mp_rank_00_model_states.pt")
    _touch(ds, "complete")
    with staged_checkpoint(ds) as folder:
        staged = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        assert staged == ["step_00000006/complete", "step_00000006/global_step6/mp_rank_00_model_states.pt"]


def test_reporter_names_a_missing_metric():
    with pytest.raises(ValueError, match=r"metric 'seg/MoF' is not among .*\['loss', 'phase_acc@1'\]"):
        RayReporter("seg/MoF", 0, "t0")(2, {"phase_acc@1": 50.0, "loss": 1.0}, None)


ROWS = [
    TrialRow("a", "completed", 4, 40.0, {"method.asot.segment.eps": 0.05}),
    TrialRow("b", "error", 2, 90.0, {"method.asot.segment.eps": 0.07}, error="RuntimeError: boom"),
    TrialRow("c", "stopped", 2, 20.0, {"method.asot.segment.eps": 0.1}),
    TrialRow("d", "error", None, None, {"method.asot.segment.eps": 0.2}),
    TrialRow("e", "completed", 4, 60.0, {"method.asot.segment.eps": 0.03}),
    TrialRow("f", "unfinished", 2, 70.0, {"method.asot.segment.eps": 0.04}),
]


def test_rows_sort_by_metric_and_the_best_did_not_fail():
    assert [r.trial_id for r in sort_rows(ROWS, "max")] == ["b", "f", "e", "a", "c", "d"]
    assert [r.trial_id for r in sort_rows(ROWS, "min")] == ["c", "a", "e", "f", "b", "d"]
    assert pick_best(ROWS, "max").trial_id == "e"  # b failed, f did not finish
    assert pick_best(ROWS, "min").trial_id == "c"
    assert pick_best([ROWS[3]], "max") is None


def test_table_lists_every_trial_in_order():
    table = format_table(sort_rows(ROWS, "max"), "seg/MoF", ["method.asot.segment.eps"])
    lines = table.splitlines()
    assert lines[0].split() == ["#", "trial", "status", "step", "seg/MoF", "method.asot.segment.eps"]
    assert [ln.split()[1] for ln in lines[2:]] == ["b", "f", "e", "a", "c", "d"]
    assert lines[-1].split() == ["6", "d", "error", "-", "-", "0.2"]


def test_best_config_loads_as_a_run_config(tiny_cfg, tmp_path):
    base = sweep_base_config(tiny_cfg, "s")
    best = TrialRow("e", "completed", 4, 60.0, {"method.asot.segment.eps": 0.03, "optim.lr": 2e-3})
    path = write_best_config(base, best, tmp_path / "best.yaml")
    cfg = load_config(path)
    assert cfg.method.asot.segment.eps == 0.03 and cfg.optim.lr == 2e-3 and cfg.train.run_id is None
    assert dataclasses.replace(cfg, method=base.method, optim=base.optim) == base
