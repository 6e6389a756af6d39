"""Shared pieces of the sweep tests: a tiny ASOT-on-synthetic-features base config (its features written once
per session) and a sweep-file writer."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tune_helpers import DEMO, tiny_overrides

from vasot_dist.cli import ensure_synthetic_data
from vasot_dist.config import RunConfig, load_config


@pytest.fixture(scope="session")
def features_dir(tmp_path_factory) -> Path:
    """Where the session's synthetic features go (written by :func:`tiny_cfg`)."""
    return tmp_path_factory.mktemp("synthetic") / "features"


@pytest.fixture(scope="session")
def tiny_cfg(features_dir, tmp_path_factory) -> RunConfig:
    """The tiny base config (shared: tests must not modify it; sweeps give each trial its own run dir)."""
    cfg = load_config(DEMO, tiny_overrides(features_dir, tmp_path_factory.mktemp("runs")))
    ensure_synthetic_data(cfg)  # as vasot-tune does before the sweep
    return cfg


@pytest.fixture
def write_sweep(tmp_path):
    """``write_sweep(mapping, name=...)`` -> path of a sweep YAML holding ``mapping``."""

    def _write(mapping: dict, name: str = "sweep") -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(mapping, sort_keys=False))
        return path

    return _write
