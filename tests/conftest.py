"""Suite-wide settings."""

from __future__ import annotations

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest worker per core (pytest-xdist); each keeps to one intra-op thread, or two
    # workers with a thread per core each would oversubscribe the 2-core machines.
    torch.set_num_threads(1)
