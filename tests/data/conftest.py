"""Session fixtures of tiny shard sets (built by :func:`data_fixtures.build_dataset`)."""

from __future__ import annotations

import pytest
from data_fixtures import CORRUPT_KINDS, Fixture, build_dataset


@pytest.fixture(scope="session")
def video_ds(tmp_path_factory) -> Fixture:
    """16 train videos in 8 shards of 2 (2 activities; some shorter than 8 frames), 3 test videos."""
    return build_dataset(tmp_path_factory.mktemp("video_ds"), splits={"train": 16, "test": 3}, frames=(6, 40))


@pytest.fixture(scope="session")
def features_ds(tmp_path_factory) -> Fixture:
    return build_dataset(tmp_path_factory.mktemp("features_ds"), modality="features",
                         splits={"train": 8, "test": 3}, frames=(6, 30))


@pytest.fixture(scope="session")
def fuzz_ds(tmp_path_factory) -> Fixture:
    """6 good train videos with every corrupt kind interleaved, 3 samples per shard."""
    return build_dataset(tmp_path_factory.mktemp("fuzz_ds"), splits={"train": 6}, frames=(10, 20),
                         samples_per_shard=3, corrupt={"train": CORRUPT_KINDS})
