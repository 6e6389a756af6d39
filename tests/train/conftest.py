"""Shared by the in-process trainer tests: one set of tiny synthetic feature shards for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainutil import feature_overrides

from vasot_dist.cli import ensure_synthetic_data
from vasot_dist.config import load_config


@pytest.fixture(scope="session")
def feature_shards(tmp_path_factory) -> Path:
    """The shards of :func:`trainutil.feature_overrides` (12 train and 4 test videos, one per shard)."""
    root = tmp_path_factory.mktemp("features")
    ensure_synthetic_data(load_config(None, feature_overrides(root)))
    return root / "syn"
