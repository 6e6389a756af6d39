"""Checkpoint files: atomic writes, pruning, weights_only loading, corrupt-file fallback."""

from __future__ import annotations

import logging

import torch

from vasot_dist.runtime.seeding import rng_state, set_rng_state
from vasot_dist.train import checkpoint as ckpt


def _state(v: float) -> dict:
    return {"model": {"w": torch.full((3,), v)}, "vasot": {"progress": {"step": int(v)}, "rng": rng_state()}}


def test_save_prune_and_list(tmp_path):
    for step in (1, 2, 3, 4):
        ckpt.save_file_checkpoint(tmp_path, step, _state(step), keep_last=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [3, 4]
    assert not list(tmp_path.glob(".*.tmp"))
    path, state = ckpt.latest_loadable(tmp_path)
    assert path.name == "step_00000004.pt" and state["model"]["w"][0] == 4


def test_pruning_never_deletes_the_checkpoint_just_written(tmp_path):
    """Steps above the one written are not this run's (pruning by step number used to delete a shorter new run's
    checkpoints right after writing them, keeping an older run's higher steps)."""
    ckpt.save_file_checkpoint(tmp_path, 200, _state(200), keep_last=1)
    ckpt.save_file_checkpoint(tmp_path, 50, _state(50), keep_last=1)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [50, 200]
    ckpt.save_file_checkpoint(tmp_path, 60, _state(60), keep_last=1)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [60, 200]
    assert ckpt.step_of(tmp_path / "step_00000060.pt") == 60 and ckpt.step_of(tmp_path / "last.pt") is None


def test_truncated_newest_falls_back_with_warning(tmp_path, caplog):
    ckpt.save_file_checkpoint(tmp_path, 1, _state(1), keep_last=3)
    newest = ckpt.save_file_checkpoint(tmp_path, 2, _state(2), keep_last=3)
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    logging.getLogger("vasot_dist").propagate = True
    with caplog.at_level(logging.WARNING):
        path, state = ckpt.latest_loadable(tmp_path)
    assert path.name == "step_00000001.pt" and state["model"]["w"][0] == 1
    assert "step_00000002.pt" in caplog.text and "unreadable" in caplog.text


def test_partial_temp_files_and_incomplete_folders_are_ignored(tmp_path):
    (tmp_path / ".step_00000009.pt.tmp").write_bytes(b"partial")
    (tmp_path / "step_00000007").mkdir()  # a DeepSpeed folder without its 'complete' marker
    ckpt.save_file_checkpoint(tmp_path, 5, _state(5), keep_last=3)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [5]
    ckpt.mark_folder_complete(tmp_path / "step_00000007")
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [5, 7]


def test_rng_state_round_trips_through_weights_only(tmp_path):
    torch.manual_seed(3)
    state = rng_state()
    torch.save({"rng": state}, tmp_path / "r.pt")
    expected = torch.rand(4)
    loaded = torch.load(tmp_path / "r.pt", weights_only=True)["rng"]
    torch.rand(10)
    set_rng_state(loaded)
    torch.testing.assert_close(torch.rand(4), expected)
