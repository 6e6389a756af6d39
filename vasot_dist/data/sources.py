"""Where the shards of a split are: ``data.shards`` resolved to a URL list and, when known, sizes.

Accepted forms of ``data.shards``:

- a folder holding ``dataset.json``, or the ``dataset.json`` path: shard list and sizes of every split
  come from the index (the normal case, written by ``vasot-shard``);
- a brace pattern or list of tars, ``/data/train-{000000..000031}.tar`` (``::`` joins several): the
  split's shards directly, sizes unknown;
- a ``pipe:`` command or URL (``pipe:aws s3 cp s3://bucket/train-{000000..000031}.tar -``): idem.

With unknown sizes a training loader needs ``data.resampled=true`` or an explicit number of batches
per epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .index import DatasetIndex


@dataclass
class ShardSource:
    """The shards of one split. ``num_samples``/``activities`` are None when only URLs are known."""

    spec: str
    split: str
    urls: list[str]
    num_samples: int | None
    activities: dict[str, int] | None
    index: DatasetIndex | None

    @property
    def modality(self) -> str | None:
        return None if self.index is None else self.index.modality


def _is_remote(url: str) -> bool:
    return url.startswith("pipe:") or "://" in url


def _is_pattern(spec: str) -> bool:
    return _is_remote(spec) or "{" in spec or "::" in spec or spec.endswith(".tar")


def resolve_shards(spec: str, split: str) -> ShardSource:
    """Resolve ``data.shards`` for ``split`` (ignored for patterns: they name one split's shards).

    Raises ValueError naming the spec when nothing usable is there, or a local shard is missing.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"data.shards must be a non-empty path or pattern, got {spec!r}")
    if _is_pattern(spec):
        from webdataset.shardlists import (
            expand_urls,  # here: webdataset imports torch, dataset.json needs neither
        )

        urls = expand_urls(spec)
        if not urls:
            raise ValueError(f"data.shards={spec!r} expands to no shard")
        source = ShardSource(spec, split, urls, None, None, None)
    else:
        if not os.path.exists(spec):
            raise ValueError(f"data.shards={spec!r} does not exist; expected a folder holding dataset.json, the "
                             "dataset.json path, a brace pattern of tars or a pipe: command")
        if os.path.isdir(spec) and not os.path.isfile(os.path.join(spec, "dataset.json")):
            raise ValueError(f"data.shards={spec!r} is a folder without dataset.json; write shards with "
                             "vasot-shard, or pass a brace pattern of the tars")
        index = DatasetIndex.load(spec)
        urls = index.urls(split)
        if not urls:
            raise ValueError(f"{index.path}: split {split!r} has no shards")
        source = ShardSource(spec, split, urls, index.num_samples(split), index.activities(split), index)
    missing = [u for u in source.urls if not _is_remote(u) and not os.path.isfile(u)]
    if missing:
        raise ValueError(f"data.shards={spec!r}: {len(missing)} shard file(s) missing, e.g. {missing[0]}")
    return source
