"""Range and choice rules, declared on the schema's fields and checked in one place.

A field that has a rule is declared with a helper instead of a bare default::

    eps: float = positive(0.07)            # (0, inf)
    alpha: float = fraction(0.3)           # [0, 1]
    n_iters: int = at_least(1, 25)         # [1, inf)
    name: str = one_of("vasot", ("asot", "vaot", "vasot"))
    run_id: str | None = a_name(None)      # a file name: [A-Za-z0-9_][A-Za-z0-9._-]*, never a path

The rule travels in the field's metadata; :func:`field_rules` collects every rule of a schema under its dotted
key, :func:`violation` says what a value breaks (the config loader adds the file that set it) and
:func:`check_section` validates a section built in code (a ``DataConfig`` handed to the data pipeline).
``None`` passes every rule: optional fields (``virtual_cost: float | None``) use it to switch a term off.

Every number must be finite: a range rule rejects ``inf`` and ``nan`` even where the range is unbounded
(``optim.lr=.inf`` would turn every weight into NaN at the first step), and a float field declared without a
rule (``tune.gpus_per_worker``, ``eval.fractions``) gets the rule ``("finite",)``; list values are checked
item by item.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any

# ("in", choices) | ("range", lo, hi, lo_open, hi_open), lo / hi None = unbounded | ("finite",) | ("name",)
Rule = tuple
FINITE: Rule = ("finite",)
NAME: Rule = ("name",)
# A name that becomes one folder of a path (``train.run_id``, ``train.experiment``): no separator, not ``.`` or
# ``..`` (the first character cannot be a dot), nothing a shell or another file system reads differently.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def _ruled(default: Any, rule: Rule) -> Any:
    if isinstance(default, list):  # a mutable default: each instance gets its own copy
        return dataclasses.field(default_factory=lambda: list(default), metadata={"rule": rule})
    return dataclasses.field(default=default, metadata={"rule": rule})


def in_range(default: Any, lo: float | None, hi: float | None, *, lo_open: bool = False, hi_open: bool = False) -> Any:
    """A field whose value must lie in ``lo..hi`` (closed ends unless ``*_open``)."""
    return _ruled(default, ("range", lo, hi, lo_open, hi_open))


def positive(default: Any) -> Any:
    """A field in (0, inf)."""
    return in_range(default, 0, None, lo_open=True)


def non_negative(default: Any) -> Any:
    """A field in [0, inf)."""
    return in_range(default, 0, None)


def at_least(lo: float, default: Any) -> Any:
    """A field in [lo, inf)."""
    return in_range(default, lo, None)


def fraction(default: Any) -> Any:
    """A field in [0, 1]."""
    return in_range(default, 0, 1)


def one_of(default: str, choices: tuple[str, ...]) -> Any:
    """A field that must be one of ``choices``."""
    if default not in choices:
        raise ValueError(f"default {default!r} is not one of {choices}")
    return _ruled(default, ("in", tuple(choices)))


def a_name(default: str | None) -> Any:
    """A field that names one folder (``train.run_id``): letters, digits, ``_``, ``.``, ``-``, at most 128,
    not starting with ``.`` or ``-`` (so never ``.``, ``..``, a hidden folder, an option or a path)."""
    return _ruled(default, NAME)


def name_violation(value: str) -> str | None:
    """What a folder name should have been, or None when ``value`` is one (see :func:`a_name`)."""
    if isinstance(value, str) and _NAME_RE.match(value):
        return None
    return ("expected a name, not a path: 1 to 128 of the letters A-Z a-z, digits, '_', '.', '-', not starting "
            "with '.' or '-' (no '/', no '.' or '..')")


def _holds_floats(tp: Any) -> bool:
    """``float``, ``float | None`` or ``list[float]``: a field whose numbers must be finite."""
    if tp is float:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType, list, tuple):
        return any(_holds_floats(a) for a in typing.get_args(tp) if a is not type(None) and a is not Ellipsis)
    return False


def field_rules(cls: type, prefix: str = "") -> dict[str, Rule]:
    """Dotted key -> rule for every ruled field of the dataclass ``cls`` and of its nested sections; a float
    field without a rule gets :data:`FINITE`."""
    rules: dict[str, Rule] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if "rule" in f.metadata:
            rules[key] = f.metadata["rule"]
        elif _holds_floats(hints[f.name]):
            rules[key] = FINITE
        if dataclasses.is_dataclass(hints[f.name]):
            rules.update(field_rules(hints[f.name], key + "."))
    return rules


def violation(value: Any, rule: Rule) -> str | None:
    """What ``value`` should have been (``"expected one of [...]"``, ``"expected a value in (0, inf]"``), or
    None when it keeps the rule."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return next((v for v in (violation(x, rule) for x in value) if v is not None), None)
    if rule[0] == "in":
        return None if value in rule[1] else f"expected one of {list(rule[1])}"
    if rule[0] == "name":
        return name_violation(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "expected a finite number"
    if rule[0] == "finite":
        return None
    _, lo, hi, lo_open, hi_open = rule
    ok = True
    if lo is not None:
        ok &= value > lo if lo_open else value >= lo
    if hi is not None:
        ok &= value < hi if hi_open else value <= hi
    if ok:
        return None
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    return f"expected a value in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def value_at(obj: Any, dotted: str) -> Any:
    """``obj.a.b`` for ``dotted = "a.b"``."""
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def check_section(section: Any, prefix: str) -> None:
    """Raise ValueError naming ``prefix.key`` for the first ruled field of ``section`` that breaks its rule."""
    for key, rule in field_rules(type(section)).items():
        value = value_at(section, key)
        expected = violation(value, rule)
        if expected is not None:
            raise ValueError(f"invalid value {value!r} for '{prefix}.{key}': {expected}")
