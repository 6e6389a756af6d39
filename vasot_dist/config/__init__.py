"""Typed run configuration: schema (dataclasses), YAML loading with ``extends:`` and dotted overrides."""

from .loader import (
    SCHEMA_KEYS,
    ConfigError,
    YamlLoader,
    config_from_dict,
    config_to_dict,
    config_to_yaml,
    find_config,
    load_config,
    packaged_configs,
    save_config,
)
from .schema import ALIGNMENT_METHODS, METHODS, RunConfig

__all__ = [
    "ALIGNMENT_METHODS",
    "METHODS",
    "SCHEMA_KEYS",
    "ConfigError",
    "RunConfig",
    "YamlLoader",
    "config_from_dict",
    "config_to_dict",
    "config_to_yaml",
    "find_config",
    "load_config",
    "packaged_configs",
    "save_config",
]
