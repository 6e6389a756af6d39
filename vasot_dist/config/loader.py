"""Load a run config: YAML files that may ``extends:`` a base, then ``key.sub=value`` overrides.

Every error is raised before any process or worker starts, as a :class:`ConfigError` naming the
file, the dotted key and, for unknown keys, the nearest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vasot_dist.runtime.files import write_text_atomic

from .dotted import SCHEMA_KEYS, flatten, is_section, set_dotted
from .methods import MOVED_KEYS
from .rules import value_at, violation
from .schema import _RULES, RunConfig


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the file and key."""


class YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads ``3e-4`` as a float (YAML 1.1 wants ``3.0e-4``)."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _suggest(key: str) -> str:
    if key in MOVED_KEYS:  # a key of the shared sections before each method had its own
        return "; it moved to " + " / ".join(f"'{k}'" for k in MOVED_KEYS[key])
    close = difflib.get_close_matches(key, list(SCHEMA_KEYS), n=1, cutoff=0.6)
    if not close:  # a typo in the section name: compare the last part within all sections
        leaf = key.rsplit(".", 1)[-1]
        cands = [k for k in SCHEMA_KEYS if k.rsplit(".", 1)[-1] == leaf]
        close = cands[:1]
    return f"; did you mean '{close[0]}'?" if close else ""


def _check_keys(d: dict, source: str) -> None:
    for key in flatten(d):
        if key not in SCHEMA_KEYS:
            raise ConfigError(f"unknown key '{key}' in {source}{_suggest(key)}")


# The configs shipped with the package: the repository's configs/ folder (vasot_dist/configs links to it in a
# checkout; a wheel holds a copy), so `--config ikea_asm` works from a pip install as from the repository.
PACKAGED_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def packaged_configs(folder: str = "") -> list[str]:
    """Names of the packaged configs in ``folder`` (``""`` for run configs, ``"sweeps"`` for sweep files)."""
    return sorted(p.stem for p in (PACKAGED_CONFIGS / folder).glob("*.yaml"))


def find_config(name: str | os.PathLike, folder: str = "", *, relative_to: Path | None = None) -> Path:
    """The file ``name`` means: a path (relative to ``relative_to``, else the working directory) when it exists,
    else a packaged config of that name (``ikea_asm``, ``ikea_asm.yaml``; sweep files with ``folder="sweeps"``).

    Raises:
        ConfigError: neither exists; lists the packaged names.
    """
    path = Path(name)
    given = relative_to / path if relative_to is not None and not path.is_absolute() else path
    if given.is_file():
        return given.resolve()
    if len(path.parts) == 1:  # a bare name: look among the packaged configs
        packaged = PACKAGED_CONFIGS / folder / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
        if packaged.is_file():
            return packaged.resolve()
    raise ConfigError(f"config file not found: {given} (nor a packaged config of that name; packaged: "
                      f"{', '.join(packaged_configs(folder))})")


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """Read ``path`` and the chain of files it extends, deepest base first, merged as plain dicts."""
    if path in seen:
        raise ConfigError(f"circular 'extends' in {path}: {' -> '.join(str(p) for p in seen + (path,))}")
    try:
        data = yaml.load(path.read_text(), Loader=YamlLoader) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot parse {path}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(data).__name__}")
    base = data.pop("extends", None)
    shown = _display(path)
    _check_keys(data, shown)
    if base is None:
        return {"__layers__": [(shown, data)]}
    parent = _read_yaml(find_config(base, relative_to=path.parent), seen + (path,))
    parent["__layers__"].append((shown, data))
    return parent


def _display(path: Path) -> str:
    """The path as a user reads it: relative to the working directory when under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key.sub=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if key not in SCHEMA_KEYS or is_section(key):
        raise ConfigError(f"unknown key '{key}' in command-line override{_suggest(key)}")
    value = yaml.load(raw, Loader=YamlLoader) if raw != "" else ""
    return key, value


def _merge_layer(cfg: DictConfig, layer: dict, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(cfg, layer)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = str(e).splitlines()[0]
        expected = SCHEMA_KEYS.get(key)
        exp = f" (expected {getattr(expected, '__name__', expected)})" if expected is not None else ""
        raise ConfigError(f"invalid value for '{key}' in {source}{exp}: {msg}") from None


def _check_ranges(cfg: RunConfig, provenance: dict[str, str]) -> None:
    """Range and choice checks; ``provenance`` maps a key to the file or override that set it."""
    for key, rule in _RULES.items():
        value = value_at(cfg, key)
        expected = violation(value, rule)
        if expected is not None:
            source = provenance.get(key, "defaults")
            raise ConfigError(f"invalid value {value!r} for '{key}' in {source}: {expected}")


def load_config(source: str | os.PathLike | Mapping[str, Any] | RunConfig | None = None,
                overrides: Sequence[str] | None = None) -> RunConfig:
    """Build a validated :class:`RunConfig`.

    Args:
        source: a YAML file, or the name of a packaged config (``ikea_asm``), where ``extends: base.yaml``
            (relative to the file, else a packaged config of that name) chains bases; or a config in memory:
            a nested mapping (:func:`config_to_dict`'s form, any subset of the keys) or a ``RunConfig``;
            None: the schema's defaults.
        overrides: dotted ``key.sub=value`` items applied last (YAML-typed values).

    Raises:
        ConfigError: naming the file (``config dict`` for a mapping, or "command-line override"), the key and
            what was expected.
    """
    cfg = OmegaConf.structured(RunConfig)
    provenance: dict[str, str] = {}
    if isinstance(source, RunConfig):
        source = config_to_dict(source)
    if isinstance(source, Mapping):
        layers = [("config dict", dict(source))]
        _check_keys(layers[0][1], "config dict")
    else:
        layers = [] if source is None else _read_yaml(find_config(source))["__layers__"]
    for src, layer in layers:
        cfg = _merge_layer(cfg, layer, src)
        provenance.update(dict.fromkeys(flatten(layer), src))
    for item in overrides or []:
        key, value = _parse_override(item)
        cfg = _merge_layer(cfg, set_dotted({}, key, value), f"override '{item}'")
        provenance[key] = f"override '{item}'"
    run_cfg: RunConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    _check_ranges(run_cfg, provenance)
    return run_cfg


def config_to_dict(cfg: RunConfig) -> dict:
    return dataclasses.asdict(cfg)


def config_to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def save_config(cfg: RunConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML atomically (:mod:`vasot_dist.runtime.files`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, config_to_yaml(cfg))



def config_from_dict(d: Mapping[str, Any]) -> RunConfig:
    """Inverse of :func:`config_to_dict` (checkpoints, Ray trials): ``load_config(d)``, validated like a file."""
    return load_config(d)
