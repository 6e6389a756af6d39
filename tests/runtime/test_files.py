"""The one atomic writer: all or nothing, no temporary file left behind, and files with the mode the umask
gives (as ``open()`` creates them), for everything the project writes in place."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import torch
from vasot_pipelines.writer import DatasetWriter, Sample

from vasot_dist.data import format as fmt
from vasot_dist.runtime.files import AtomicFile, temp_target, write_json_atomic, write_jsonl_atomic
from vasot_dist.train.checkpoint import save_file_checkpoint


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _plain_mode(folder) -> int:
    """The mode open() gives a new file under the current umask: the reference."""
    ref = folder / "reference"
    with open(ref, "w"):
        pass
    return _mode(ref)


def test_files_get_the_mode_open_would_give(tmp_path, umask):
    want = _plain_mode(tmp_path)
    assert want == 0o666 & ~umask
    written = [write_json_atomic(tmp_path / "a.json", {"x": 1}), write_jsonl_atomic(tmp_path / "f.jsonl", [{"y": 2}]),
               save_file_checkpoint(tmp_path / "ckpt", 3, {"w": torch.ones(2)}, keep_last=2)]
    for path in written:
        assert _mode(path) == want, path


def test_dataset_files_get_the_mode_open_would_give(tmp_path, umask):
    """dataset.json, progress.json and the tars (failures.jsonl is write_jsonl_atomic, above)."""
    want = _plain_mode(tmp_path)
    writer = DatasetWriter(tmp_path / "ds", name="d", modality="features", label_map={"a": 0}, background_id=None,
                           fps=None, short_side=None)
    meta = fmt.sample_meta(key="act__v0", dataset="d", activity="act", split="train", labels=[0, 0, 0], fps=None,
                           source="test", feature_dim=2)
    writer.add(Sample(meta, fmt.features_to_bytes(np.zeros((3, 2))), fmt.FEATURES_EXT))
    index = writer.finish()
    files = sorted((tmp_path / "ds").iterdir())
    assert [p.name for p in files] == ["dataset.json", "progress.json", "train-000000.tar"]
    assert {p.name: _mode(p) for p in files} == {p.name: want for p in files}
    assert json.loads(index.read_text())["splits"]["train"]["num_samples"] == 1


def test_an_exception_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "config.yaml"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), AtomicFile(target) as f:
        f.write("half of the new")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_until_commit_readers_see_the_old_file(tmp_path):
    target = tmp_path / "progress.json"
    target.write_text("old\n")
    out = AtomicFile(target)
    out.file.write("new\n")
    out.file.flush()
    assert target.read_text() == "old\n"
    assert temp_target(out.tmp.name) == "progress.json"
    assert out.commit() == target and target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.json"]


def test_temporary_names_are_recognised_and_only_them():
    assert temp_target(".train-000001.tar.0a1b2c3d.tmp") == "train-000001.tar"
    for name in ("train-000001.tar", "train-000001.tar.tmp", ".train-000001.tar.tmp", ".x.0A1B2C3D.tmp"):
        assert temp_target(name) is None, name
