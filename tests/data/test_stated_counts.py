"""dataset.json counts against the shards: an overstated count must not be filled by repeating videos."""

from __future__ import annotations

import json

import pytest
from data_fixtures import build_dataset

from vasot_dist.config.schema import DataConfig
from vasot_dist.data import make_eval_loader, make_train_loader


def _overstate(root, shard: str, extra: int) -> None:
    """Add ``extra`` samples to one shard's count in dataset.json, keeping the index self-consistent."""
    index = json.loads((root / "dataset.json").read_text())
    rec = next(s for s in index["shards"] if s["path"] == shard)
    rec["num_samples"] += extra
    split = index["splits"][rec["split"]]
    split["num_samples"] += extra
    first = next(iter(split["activities"]))
    split["activities"][first] += extra
    (root / "dataset.json").write_text(json.dumps(index))


def test_overstated_counts_are_an_error_not_repeated_videos(tmp_path):
    build_dataset(tmp_path, splits={"train": 4, "test": 2}, frames=(8, 10), samples_per_shard=2)
    _overstate(tmp_path, "train-000001.tar", 6)  # 10 videos stated, 4 there: 5 batches of 2 would repeat them
    cfg = DataConfig(shards=str(tmp_path), frames_per_video=4, context_frames=1, image_size=32, batch_size=2,
                     num_workers=0, shuffle_buffer=1, augment=False)
    loader = make_train_loader(cfg, rank=0, world_size=1, epoch=0, seed=0)
    assert len(loader) == 5
    with pytest.raises(ValueError, match=rf"shard {tmp_path}/train-000001.tar holds 2 samples but "
                                         rf"{tmp_path}/dataset.json says 8"):
        [k for batch in loader for k in batch.keys]
    _overstate(tmp_path, "test-000000.tar", 1)
    with pytest.raises(ValueError, match="test-000000.tar holds 2 samples but .* says 3"):
        list(make_eval_loader(cfg, "test", rank=0, world_size=1))
