"""The datasets' catalogue (vasot_dist.data.catalog): docs/datasets.md shows the same sources and shard lines,
every adapter and every dataset config has an entry, and a command without the data prints them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from vasot_dist.config import ConfigError, load_config
from vasot_dist.data.catalog import DATASETS
from vasot_dist.train.preflight import check_data

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "datasets.md"
# Adapters that are not a dataset: any features layout (extend segmentation_base.yaml).
GENERIC_ADAPTERS = {"features"}


def _doc_rows() -> dict[str, list[str]]:
    """The first table of docs/datasets.md: data.name -> its cells (backticks and links reduced to text)."""
    rows = {}
    for line in DOC.read_text().split("## What to expect")[0].splitlines():
        m = re.match(r"^\| `([a-z0-9_]+)` \|", line)
        if m:
            cells = [re.sub(r"\[`?([^`\]]+)`?\]\([^)]*\)", r"\1", c.strip()).strip("`")
                     for c in line.strip("|").split("|")]
            rows[m[1]] = cells
    return rows


def test_the_docs_table_agrees_with_the_catalogue():
    rows = _doc_rows()
    assert set(rows) == set(DATASETS)
    for name, entry in DATASETS.items():
        _, title, source, licence, config, command = rows[name]
        assert (title, source, licence) == (entry.title, entry.source, entry.licence), name
        assert config == f"{entry.config}.yaml" and command == entry.shard_command(), name


def test_every_adapter_and_every_dataset_config_has_an_entry():
    from vasot_pipelines.adapters import ADAPTERS

    assert {d.adapter for d in DATASETS.values()} == set(ADAPTERS) - GENERIC_ADAPTERS
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        name = (yaml.safe_load(path.read_text()).get("data") or {}).get("name")
        if name and name != "synthetic":
            assert name in DATASETS and DATASETS[name].config == path.stem, path.name
            assert load_config(path).data.shards == f"data/{name}"  # the catalogue's default --out
    for entry in DATASETS.values():
        assert (ROOT / "configs" / f"{entry.config}.yaml").is_file(), entry.name


@pytest.mark.parametrize("config", ["ikea_asm", "breakfast"])
def test_missing_data_says_where_the_dataset_comes_from_and_how_to_shard_it(config, tmp_path):
    missing = tmp_path / "nowhere"
    cfg = load_config(config, [f"data.shards={missing}"])
    with pytest.raises(ConfigError) as err:
        check_data(cfg)
    entry = DATASETS[config]
    message = str(err.value)
    assert message.startswith(f"data.shards='{missing}' does not exist")
    assert entry.source in message and f"\n  {entry.shard_command(str(missing))}\n" in message
    assert f"--adapter {entry.adapter} --root /path/to/{entry.folder} --out {missing}" in message
