"""Rank-aware logging: rank 0 prints INFO, other ranks only WARNING and above, each line tagged with its rank."""

from __future__ import annotations

import logging
import os
import sys


def current_rank() -> int:
    """Global rank from torch.distributed when initialised, else torchrun's RANK, else 0."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return int(os.environ.get("RANK", "0"))


def setup_logging(rank: int | None = None, level: int = logging.INFO) -> logging.Logger:
    """Configure the ``vasot_dist`` logger once per process and return it."""
    rank = current_rank() if rank is None else rank
    logger = logging.getLogger("vasot_dist")
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s [rank{rank}] %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level if rank == 0 else logging.WARNING)
    logger.propagate = False
    return logger


def get_logger(name: str) -> logging.Logger:
    """A child of the ``vasot_dist`` logger (``get_logger(__name__)``)."""
    return logging.getLogger(name if name.startswith("vasot_dist") else f"vasot_dist.{name}")
