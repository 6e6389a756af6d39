"""Suite-wide settings."""

from __future__ import annotations

import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest worker per core (pytest-xdist); each keeps to one intra-op thread, or two
    # workers with a thread per core each would oversubscribe the 2-core machines.
    torch.set_num_threads(1)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make `--dist loadgroup` group again under pytest 9 (the slow stage's Ray tests share one Ray instance).

    pytest-xdist 3.8 tags a grouped test by rewriting ``item._nodeid`` (``...::test@ray``), but pytest 9 reads a
    node's id from ``item._id``, so the tag is lost and the group's tests spread over the workers (checked with
    a 2-worker run: each landed on another worker). Copy the tag where pytest reads it.
    """
    if not (getattr(config.option, "loadgroup", False) or getattr(config.option, "dist", None) == "loadgroup"):
        return
    try:
        from _pytest.nodeid import coerce_node_id  # pytest >= 9; pytest 8 reads ``_nodeid`` itself
    except ImportError:
        return
    for item in items:
        grouped = getattr(item, "_nodeid", None)
        if grouped and grouped != item.nodeid and "@" in grouped:
            item._id = coerce_node_id(grouped)
