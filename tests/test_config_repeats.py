"""A shipped config holds only what differs from what it extends: no key set to the value it would inherit anyway
(from its ``extends:`` chain, or the schema's defaults for a file without one). A repeated default hides a
file's real changes and silently pins a value the base may later change for a reason."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest
import yaml

from vasot_dist.config import SCHEMA_KEYS, RunConfig, YamlLoader, find_config, load_config
from vasot_dist.config.rules import value_at

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml")) + sorted((ROOT / "configs" / "synthetic").glob("*.yaml"))
_load_base = functools.lru_cache(load_config)  # a base is extended by many files: resolve it once (read only)


def _leaves(node: yaml.MappingNode, prefix: str = "") -> list[tuple[str, int]]:
    """``(dotted key, line)`` of every leaf a YAML mapping sets; schema sections are walked into, dict-typed
    fields (``dist.ds_config``) and lists are leaves."""
    out = []
    for key_node, value_node in node.value:
        key = f"{prefix}{key_node.value}"
        if isinstance(value_node, yaml.MappingNode) and dataclasses.is_dataclass(SCHEMA_KEYS.get(key)):
            out.extend(_leaves(value_node, key + "."))
        else:
            out.append((key, key_node.start_mark.line + 1))
    return out


def repeated_keys(path: Path) -> list[str]:
    """``line key: value (inherited from ...)`` for every key of ``path`` that repeats what it inherits."""
    text = path.read_text()
    root = yaml.compose(text, Loader=YamlLoader)
    base = (yaml.load(text, Loader=YamlLoader) or {}).get("extends")
    if base is None:
        inherited, source = RunConfig(), "the schema defaults"
    else:
        base_path = find_config(base, relative_to=path.parent)
        inherited, source = _load_base(base_path), base_path.name
    own = load_config(path)
    found = []
    for key, line in _leaves(root) if root is not None else []:
        if key != "extends" and value_at(own, key) == value_at(inherited, key):
            found.append(f"{line} {key}: {value_at(own, key)!r} (inherited from {source})")
    return found


def test_the_check_finds_repeats_of_the_chain_and_of_the_defaults(tmp_path):
    (tmp_path / "a.yaml").write_text("optim:\n  lr: 1.0e-4\n  weight_decay: 0.1\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\noptim:\n  weight_decay: 0.1\n  lr: 2.0e-4\n"
                                     "method:\n  asot:\n    segment: {eps: 0.07, alpha: 0.5}\n"
                                     "dist:\n  ds_config: {}\n")
    # a.yaml: lr is the schema's default; b.yaml: weight_decay is a.yaml's, eps and ds_config the schema's
    assert repeated_keys(tmp_path / "a.yaml") == ["2 optim.lr: 0.0001 (inherited from the schema defaults)"]
    assert repeated_keys(tmp_path / "b.yaml") == [
        "3 optim.weight_decay: 0.1 (inherited from a.yaml)",
        "7 method.asot.segment.eps: 0.07 (inherited from a.yaml)",
        "9 dist.ds_config: {} (inherited from a.yaml)",
    ]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_shipped_config_sets_only_what_differs_from_what_it_extends(path):
    found = repeated_keys(path)
    assert not found, (f"{path.relative_to(ROOT)} sets keys to the value they inherit (delete them; a comment may "
                       "say why the inherited value is the right one):\n" + "\n".join(found))
