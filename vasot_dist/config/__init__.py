"""Typed run configuration: schema (dataclasses), the method registry, YAML loading with ``extends:`` and dotted
overrides."""

from .dotted import SCHEMA_KEYS
from .loader import (
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
from .registry import METHODS, Method, MethodConfig, register_method, unregister_method
from .schema import RunConfig

__all__ = [
    "METHODS",
    "Method",
    "MethodConfig",
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
    "register_method",
    "save_config",
    "unregister_method",
]
