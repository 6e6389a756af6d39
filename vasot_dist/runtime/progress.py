"""Progress bars of long loops (training steps, embedding a split, k-means), shown by rank 0 only.

One helper so that every bar looks and behaves alike: tqdm's rate and ETA, redrawn at most every 2 s (a log file
collects few lines), and nothing at all on other ranks or where ``TQDM_DISABLE=1`` (a sweep's trials).
"""

from __future__ import annotations

import os
from typing import Any


def progress_bar(total: int | None, desc: str, *, enabled: bool, unit: str = "it", initial: int = 0,
                 leave: bool = True) -> Any:
    """A tqdm bar of ``total`` steps (None: unknown, rate only); ``enabled``: this process shows bars (rank 0).
    ``leave=False`` for a bar inside another one's loop (an evaluation during training): cleared when done."""
    from tqdm import tqdm

    # tqdm reads TQDM_DISABLE only for an argument not given; ours is, so honour it here
    off = not enabled or os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=off, leave=leave, dynamic_ncols=True,
                mininterval=2.0)
