"""The evaluation report a person reads: ``report.md`` (metric table + figures) and ``metrics.json``.

Both files are written atomically (:mod:`vasot_dist.runtime.files`), so a reader or a
crashed run never sees half a file. Figures outside ``out_dir`` are copied into ``out_dir/figures`` so the
folder is self-contained; links in the Markdown are relative. :func:`report_figures` reads them back (the
trainer logs them to W&B).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Mapping
from typing import Any

import numpy as np

from vasot_dist.runtime.files import write_json_atomic, write_text_atomic


def to_jsonable(obj: Any) -> Any:
    """Nested metrics as plain JSON: str keys, Python numbers, NaN / inf -> None, arrays -> lists."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, str):
        return obj
    raise ValueError(f"metrics: value of type {type(obj).__name__} cannot be written to JSON: {obj!r}")


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"seg": {"MoF": 1}}`` -> ``{"seg/MoF": 1}``; lists are kept as values."""
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten_metrics(v, key))
        else:
            out[key] = v
    return out


def _format(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(_format(x) for x in v)
    return str(v)


def write_report(
    out_dir: str | os.PathLike[str],
    metrics: Mapping[str, Any],
    images: Mapping[str, str | os.PathLike[str]],
    title: str = "vasot_dist evaluation",
    about: Mapping[str, str] | None = None,
) -> str:
    """Write ``out_dir/metrics.json`` and ``out_dir/report.md``; return the report's path.

    metrics: possibly nested dict of numbers (numpy scalars, NaN allowed: NaN is written as null / "n/a").
    images: caption -> PNG path; each must exist. about: what was evaluated (checkpoint, step, protocol, split,
    counts), a table above the metrics. The report has one table row per (flattened) metric and one embedded
    image per entry, in the given order.
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    clean = to_jsonable(dict(metrics))
    write_json_atomic(os.path.join(out_dir, "metrics.json"), clean, indent=2)

    lines = [f"# {title}", ""]
    if about:
        lines += ["## What was evaluated", "", "| | |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in about.items()]
        lines.append("")
    lines += ["## Metrics", ""]
    flat = flatten_metrics(clean)
    if flat:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_format(v)} |" for k, v in flat.items()]
    else:
        lines.append("_no metrics_")
    lines.append("")
    if images:
        lines += ["## Figures", ""]
        out_abs = os.path.abspath(out_dir)
        for caption, img in images.items():
            img_abs = os.path.abspath(os.fspath(img))
            if not os.path.isfile(img_abs):
                raise ValueError(f"images[{caption!r}]: file not found: {img}")
            if os.path.commonpath([out_abs, img_abs]) != out_abs:
                fig_dir = os.path.join(out_abs, "figures")
                os.makedirs(fig_dir, exist_ok=True)
                copied = os.path.join(fig_dir, os.path.basename(img_abs))
                shutil.copyfile(img_abs, copied)
                img_abs = copied
            rel = os.path.relpath(img_abs, out_abs).replace(os.sep, "/")
            lines += [f"### {caption}", "", f"![{caption}]({rel})", ""]
    report = os.path.join(out_dir, "report.md")
    write_text_atomic(report, "\n".join(lines))
    return report


_FIGURE_RE = re.compile(r"^!\[(?P<caption>.*)\]\((?P<path>[^)]+)\)$")


def report_figures(out_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Caption -> absolute path of every figure ``out_dir/report.md`` shows, in its order (``{}`` without a
    report): exactly the figures of that evaluation, not stale files of an earlier one in the same folder."""
    report = os.path.join(os.fspath(out_dir), "report.md")
    if not os.path.isfile(report):
        return {}
    figures = {}
    with open(report, encoding="utf-8") as f:
        for line in f:
            m = _FIGURE_RE.match(line.rstrip("\n"))
            if m:
                figures[m["caption"]] = os.path.join(os.path.abspath(os.fspath(out_dir)), m["path"])
    return figures
