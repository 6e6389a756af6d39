"""What docs/methods.md must hold for every registered method: its section and a row per setting with its default.

Used by the docs test (``tests/test_config.py``) and by the test of a method registered in-process
(``tests/train/test_new_method.py``), which checks that the docs test would demand the new method's section.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from vasot_dist.config import METHODS, RunConfig
from vasot_dist.config.methods import AlignSolve, PartialAlignSolve, SegmentSolve
from vasot_dist.config.rules import value_at

DOC = Path(__file__).resolve().parents[1] / "docs" / "methods.md"
SOLVES = {cls.__name__: cls for cls in (SegmentSolve, AlignSolve, PartialAlignSolve)}


def doc_rows(text: str) -> dict[str, str]:
    """``key -> default`` of every table row ``| `key` | default | why |``."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def section_title(name: str) -> str:
    """The heading of a method's section: ``## ASOT`` for ``asot``."""
    return f"## {name.upper()}"


def doc_problems(text: str) -> list[str]:
    """What ``text`` (docs/methods.md) lacks or gets wrong: a section per registered method, a row for every
    setting (solve sections: the solve's row unless a method changes it), each row's value the schema's
    default."""
    rows, problems = doc_rows(text), []
    headings = {line.strip() for line in text.splitlines() if line.startswith("## ")}
    defaults = RunConfig()
    for key, shown in rows.items():
        owner, _, rest = key.partition(".")
        value = getattr(SOLVES[owner](), rest) if owner in SOLVES else value_at(defaults, key)
        if shown.endswith(" defaults"):  # a whole solve section left at its class defaults
            expected = SOLVES[shown.split()[0].strip("`")]()
        else:
            expected = yaml.safe_load(shown)
        if value != expected:
            problems.append(f"{key}: docs say {shown}, the schema {value!r}")
    for cls in SOLVES.values():
        problems += [f"lacks the row {cls.__name__}.{f.name}" for f in dataclasses.fields(cls)
                     if f"{cls.__name__}.{f.name}" not in rows]
    for name in METHODS:
        if section_title(name) not in headings:
            problems.append(f"lacks the section '{section_title(name)}'")
        settings = getattr(defaults.method, name)
        for f in dataclasses.fields(settings):
            key, value = f"method.{name}.{f.name}", getattr(settings, f.name)
            if not dataclasses.is_dataclass(value):
                keys = [key]
            else:  # a solve section: rows for the values the method changes
                base = type(value)()
                keys = [f"{key}.{sub.name}" for sub in dataclasses.fields(value)
                        if getattr(value, sub.name) != getattr(base, sub.name)]
            problems += [f"lacks the row {k}" for k in keys if k not in rows]
    return problems
