"""Writing into a folder that holds another run's shards with other settings is refused, naming the settings that
changed (not two whole settings mappings)."""

from __future__ import annotations

import pytest
from vasot_pipelines.synthetic import generate_synthetic
from vasot_pipelines.writer import changed_settings

from vasot_dist.config.schema import SyntheticConfig

TINY = SyntheticConfig(num_activities=1, videos_per_activity=2, test_videos_per_activity=1, frames_min=12,
                       frames_max=14, feature_dim=4)


def test_resharding_into_the_same_folder_with_another_shard_size_names_the_key(tmp_path):
    generate_synthetic(tmp_path, TINY, modality="features", max_shard_samples=32)
    with pytest.raises(ValueError) as err:
        generate_synthetic(tmp_path, TINY, modality="features", max_shard_samples=2)
    message = str(err.value)
    assert message == (f"{tmp_path / 'progress.json'} was written with other settings: max_shard_samples 32 -> 2; "
                       "use a new --out folder, or delete this one to start over")


def test_changed_settings_lists_keys_and_the_changed_entries_of_mappings():
    stored = {"fps": 15.0, "label_map": {"bg": 0, "pick": 1}, "max_shard_samples": 32, "gop": 8}
    now = {"fps": 25.0, "label_map": {"bg": 0, "pick": 2, "new": 3}, "max_shard_samples": 32}
    assert changed_settings(stored, now) == ("fps 15.0 -> 25.0; gop 8 -> None; "
                                             "label_map (new None -> 3, pick 1 -> 2)")
