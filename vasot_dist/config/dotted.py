"""Dotted config keys (``method.asot.segment.eps``): the schema's keys, and nested mappings read and written by them.

The one place that turns a nested config mapping into dotted keys and back, for the loader (unknown keys, which
file set a key, command-line overrides), the resume check (which keys changed) and the sweeps (a trial's values).
A dict-valued field (``dist.ds_config``) is one key: only the schema's sections are descended into.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from .registry import on_change
from .schema import RunConfig


def _schema_keys(cls: type, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> field type for every field of the schema, sections included (dict-typed fields are leaves)."""
    keys: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, tp = f"{prefix}{f.name}", hints[f.name]
        keys[key] = tp
        if dataclasses.is_dataclass(tp):
            keys.update(_schema_keys(tp, key + "."))
    return keys


SCHEMA_KEYS: dict[str, Any] = {}  # dotted key -> field type (a dataclass for a section)


def _collect_keys() -> None:
    """(Re)fill :data:`SCHEMA_KEYS` in place: at import, and whenever a method joins or leaves the schema."""
    SCHEMA_KEYS.clear()
    SCHEMA_KEYS.update(_schema_keys(RunConfig))


_collect_keys()
on_change(_collect_keys)


def is_section(key: str) -> bool:
    """``key`` names a section of the schema (``method.asot``), not a value."""
    return dataclasses.is_dataclass(SCHEMA_KEYS.get(key))


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config mapping -> ``{dotted key: value}``, descending only into the schema's sections: a
    dict-valued field, or a key the schema does not know, stays one entry."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and is_section(key):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def set_dotted(d: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of the nested mapping ``d`` with the dotted ``key`` set to ``value`` (missing levels created):
    ``set_dotted({}, "optim.lr", 1e-3) == {"optim": {"lr": 1e-3}}``."""
    out = copy.deepcopy(dict(d))
    cur = out
    *sections, leaf = key.split(".")
    for part in sections:
        cur = cur.setdefault(part, {})
    cur[leaf] = value
    return out
