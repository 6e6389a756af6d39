"""The method registry: a method is declared once, and every part of the project iterates over :data:`METHODS`.

A method is three things, declared together under its name:

* its **settings**: a dataclass registered with :func:`register_method` (the built-in ones are in
  :mod:`.methods`). It becomes the config section ``method.<name>`` (each field a dotted key,
  ``method.<name>.tau=0.2``) and says with the class variable ``needs_pairs`` whether the method trains on
  pairs of videos of one activity (batch rows 2i, 2i+1).
* its **loss**: a ``vasot_dist.losses.MethodLoss`` decorated ``@method_loss(name)``, which fills
  :attr:`Method.loss` when its module is imported (this layer imports no torch). The loss also says what
  evaluation decodes: ``loss.segment`` gives segmentation labels, or None for a pure alignment method.
* its **evaluation hooks**, given to :func:`register_method`: ``plot_align``, the alignment solve (a section
  under ``method.``) whose plan of a test pair the evaluation plots, and ``metrics``, the extra metric families
  the evaluation computes for it (``"keystep"``: REALIGN's key-step clustering; the families are
  ``vasot_dist.eval.runner.METRIC_FAMILIES``).

The config (:class:`MethodConfig`: ``method.name`` and one section per method), the loss builder, the
evaluation, the learning guard, the synthetic study and the docs test iterate over :data:`METHODS`; nothing else
lists method names. A method registered after import (a plugin, a test) joins the schema at once: the loader's
keys and rules follow through :func:`on_change`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .rules import one_of

DEFAULT_METHOD = "vasot"


@dataclass
class Method:
    """One registered method (see the module docstring)."""

    name: str
    settings: type  # the dataclass of ``method.<name>``; ``settings.needs_pairs``: trains on pairs of videos
    plot_align: str = "vaot.align"  # the AlignSolve under ``method.`` that solves the evaluation's pair plots
    metrics: tuple[str, ...] = ()  # extra metric families of the evaluation ("keystep")
    loss: type | None = None  # its MethodLoss subclass, set by ``@method_loss(name)`` in ``vasot_dist.losses``

    @property
    def needs_pairs(self) -> bool:
        return self.settings.needs_pairs


METHODS: dict[str, Method] = {}  # name -> method, in registration order (the order of the config's sections)

_listeners: list[Callable[[], None]] = []


class MethodConfig:
    """``method.name`` picks the method; ``method.<name>`` holds the settings of each registered method (those of
    the others are ignored). A dataclass whose fields :func:`register_method` declares from :data:`METHODS`."""

    @property
    def spec(self) -> Method:
        """The chosen method's registration."""
        return METHODS[self.name]

    @property
    def settings(self) -> Any:
        """The section of the chosen method."""
        return getattr(self, self.name)

    @property
    def needs_pairs(self) -> bool:
        """The chosen method trains on pairs of videos of one activity (batch rows 2i, 2i+1)."""
        return type(self.settings).needs_pairs


# What ``dataclass`` generates on a class; removed before MethodConfig is declared again with other fields.
_GENERATED = ("__init__", "__repr__", "__eq__", "__hash__", "__match_args__", "__dataclass_fields__",
              "__dataclass_params__")


def _declare_method_config() -> None:
    """Make :class:`MethodConfig` the dataclass of ``name`` + one section per registered method, in place: the
    class object stays the same, so the schema (``RunConfig.method``) and every reference to it follow."""
    for attr in _GENERATED:
        if attr in MethodConfig.__dict__:
            delattr(MethodConfig, attr)
    names = tuple(METHODS)
    default = DEFAULT_METHOD if DEFAULT_METHOD in METHODS else names[0]  # until vasot is registered
    MethodConfig.__annotations__ = {"name": str, **{n: m.settings for n, m in METHODS.items()}}
    MethodConfig.name = one_of(default, names)
    for n, m in METHODS.items():
        setattr(MethodConfig, n, field(default_factory=m.settings))
    dataclass(MethodConfig)
    for listener in _listeners:
        listener()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever a method is registered or removed (the loader's key and rule tables)."""
    _listeners.append(listener)


def register_method(name: str, *, plot_align: str = "vaot.align",
                    metrics: tuple[str, ...] = ()) -> Callable[[type], type]:
    """Class decorator: the settings dataclass of the method ``name`` (its section ``method.<name>``).

    Args:
        name: ``method.name`` of the method; a lowercase identifier.
        plot_align: the AlignSolve section under ``method.`` the evaluation plots a test pair's plan with.
        metrics: extra metric families of the evaluation (``"keystep"``).

    Raises:
        ValueError: a name already registered or unusable as a config key, settings that are not a dataclass
            or do not say ``needs_pairs``.
    """

    def register(settings: type) -> type:
        if not (name.isidentifier() and name.islower()) or name in ("name", "spec", "settings", "needs_pairs"):
            raise ValueError(f"method name {name!r}: expected a lowercase identifier other than a MethodConfig "
                             "attribute")
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered (settings "
                             f"{METHODS[name].settings.__qualname__})")
        if not dataclasses.is_dataclass(settings) or not isinstance(getattr(settings, "needs_pairs", None), bool):
            raise ValueError(f"settings of method {name!r}: expected a dataclass with a class variable "
                             f"'needs_pairs: ClassVar[bool]', got {settings!r}")
        METHODS[name] = Method(name, settings, plot_align, tuple(metrics))
        _declare_method_config()
        return settings

    return register


def unregister_method(name: str) -> None:
    """Remove a registered method (tests, interactive sessions); its section leaves the schema."""
    if name not in METHODS or len(METHODS) == 1:
        raise ValueError(f"method {name!r} is not a registered method that can be removed; registered: "
                         f"{', '.join(METHODS)}")
    del METHODS[name]
    _declare_method_config()
