"""``vasot-embed``, ``vasot-segment``, ``vasot-align``: a checkpoint applied to files, folders and globs of videos.

Each command loads the model once, expands its inputs (a file, a folder searched recursively for videos, or a
glob pattern), and handles the videos one at a time under a progress bar (frames, rate, ETA). A video that
cannot be used (missing, unreadable, undecodable, features of the wrong size) is reported with its name and
the reason, skipped, counted and listed in ``<out>/failures.jsonl``; the others go on. The exit status is 0
when every video was handled, 1 when some failed (named at the end), 2 for a bad checkpoint or output folder.
Every output file is written under a temporary name and renamed (:mod:`vasot_dist.runtime.files`).
"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vasot_dist.data import format as fmt
from vasot_dist.runtime.files import AtomicFile, write_json_atomic, write_jsonl_atomic, write_text_atomic
from vasot_dist.runtime.ranklog import get_logger

from .frames import FEATURE_SUFFIXES, Clip
from .model import InferenceModel
from .results import Embeddings, write_segmentation

log = get_logger(__name__)
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".3gp", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                  ".ts", ".mts", ".ogv")
FAILURES_JSONL = "failures.jsonl"
UNLABELLED = "unlabelled"  # the one label of feature shards written from videos without annotations


@dataclass
class Inputs:
    """The videos the command line names, in order, and the arguments that named none."""

    paths: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


def expand_inputs(items: list[str], suffixes: tuple[str, ...]) -> Inputs:
    """Files as given; folders: their files with one of ``suffixes``, recursively, sorted; anything else is a glob
    pattern (``**`` recursive). An argument that names nothing is a failure, not an error."""
    out = Inputs()
    for item in items:
        if os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            what = f"folder holds no {'/'.join(suffixes)} file"
        elif os.path.exists(item) or not glob.has_magic(item):
            found, what = [item], ""
        else:
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            what = "pattern matches no file"
        if not found:
            out.failures.append({"source": item, "error": f"{item}: {what}"})
        for p in found:
            if p not in out.paths:
                out.paths.append(p)
    return out


def output_names(paths: list[str]) -> list[str]:
    """A file name stem per path, ``[A-Za-z0-9_-]``: the path's stem, ``_2``, ``_3``... after a repeat."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        base = fmt.sanitize(Path(p).stem)
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


class FrameBar:
    """One tqdm bar per video over its frames (rate and ETA when the count is known), on stderr."""

    def __init__(self, clip: Clip, position: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=clip.expected_frames, desc=f"{position} {Path(clip.name).name}", unit="frame",
                        file=sys.stderr, leave=False, dynamic_ncols=True)

    def __call__(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def _describe(source: str, err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if source not in text:
        text = f"{source}: {type(err).__name__}: {text}"
    return text


def for_each_video(paths: list[str], work: Callable[[int, str], Any], failures: list[dict[str, str]]) -> list[Any]:
    """``work(i, path)`` for each path; an exception is logged with the file's name, recorded in ``failures``
    and skipped. Returns the results of the videos that succeeded."""
    done = []
    for i, path in enumerate(paths):
        try:
            done.append(work(i, path))
            log.info("[%d/%d] %s done", i + 1, len(paths), path)
        except Exception as err:  # any reason a video cannot be used must not stop the others
            log.error("skipped %s", _describe(path, err))
            log.debug("traceback", exc_info=True)
            failures.append({"source": path, "error": _describe(path, err)})
    return done


def embed_with_bar(model: InferenceModel, path: str, position: str):
    clip = model.open(path)
    bar = FrameBar(clip, position)
    try:
        return model.embed_clip(clip, progress=bar)
    finally:
        bar.close()


def finish(out: Path, failures: list[dict[str, str]], total: int, what: str) -> int:
    """Write ``failures.jsonl`` (removed when nothing failed), say what failed; the exit status."""
    path = out / FAILURES_JSONL
    if not failures:
        path.unlink(missing_ok=True)
        log.info("%s: %d of %d inputs done, written to %s", what, total, total, out)
        return 0
    write_jsonl_atomic(path, failures)
    lines = "\n".join(f"  {f['error']}" for f in failures)
    print(f"error: {what}: {len(failures)} of {total} inputs failed (listed in {path}):\n{lines}", file=sys.stderr)
    return 1


def _videos(model: InferenceModel, items: list[str]) -> tuple[Inputs, list[dict[str, str]], list[str], int]:
    """The inputs of the model's modality, the failures so far, an output name per video and the input count."""
    suffixes = FEATURE_SUFFIXES if model.cfg.data.modality == "features" else VIDEO_SUFFIXES
    inputs = expand_inputs(items, suffixes)
    return inputs, list(inputs.failures), output_names(inputs.paths), len(inputs.paths) + len(inputs.failures)


# ------------------------------------------------------------------------------------------- embed
def run_embed(model: InferenceModel, items: list[str], out: Path, *, shards: Path | None = None,
              split: str = "train", activity: str | None = None) -> int:
    """``<out>/<name>.npy`` (T, D) per video and ``<out>/index.json`` (source, file, fps, times), rewritten after
    each video; with ``shards``, also WebDataset feature shards + ``dataset.json`` there (``vasot-train`` reads
    them with ``data.modality=features``). Resumable: a video that ``index.json`` of an earlier run of the same
    checkpoint lists, with its ``.npy``, is not embedded again; the shard writer skips the samples its
    completed shards hold."""
    inputs, failures, names, total = _videos(model, items)
    writer = _feature_writer(model, shards) if shards is not None else None
    earlier = _earlier_entries(out / "index.json", model)
    entries: dict[str, dict[str, Any]] = {}

    def work(i: int, path: str) -> None:
        file = f"{names[i]}.npy"
        old = earlier.get(path)
        if old is not None and old["file"] == file and (out / file).is_file():
            emb = Embeddings(np.load(out / file), None if old["times"] is None else np.asarray(old["times"]),
                             old["fps"], path)
            log.info("%s: embedded by an earlier run (%s), kept", path, out / file)
        else:
            emb = embed_with_bar(model, path, f"[{i + 1}/{len(inputs.paths)}]")
            with AtomicFile(out / file, binary=True) as f:
                np.save(f, emb.vectors)
        entries[path] = {**emb.index_entry(), "file": file}
        write_json_atomic(out / "index.json", {**_about(model), "videos": list(entries.values())})
        key = fmt.make_key(activity or Path(path).resolve().parent.name, names[i])
        if writer is not None and key not in writer.done_keys:
            _add_sample(writer, key, split, emb, key.split("__", 1)[0])

    for_each_video(inputs.paths, work, failures)
    if writer is not None:
        log.info("feature shards: %s", writer.finish())
    write_json_atomic(out / "index.json", {**_about(model), "videos": list(entries.values()),
                                           "failed": [f["source"] for f in failures]})
    return finish(out, failures, total, "vasot-embed")


def _earlier_entries(index: Path, model: InferenceModel) -> dict[str, dict[str, Any]]:
    """``{source: entry}`` of an earlier ``index.json`` written with the same checkpoint, else empty."""
    try:
        doc = json.loads(index.read_text())
    except (OSError, ValueError):
        return {}
    if doc.get("checkpoint") != str(model.checkpoint):
        return {}
    return {v["source"]: v for v in doc.get("videos", [])}


def _about(model: InferenceModel) -> dict[str, Any]:
    c = model.cfg
    return {"checkpoint": str(model.checkpoint), "method": c.method.name, "encoder": c.model.encoder,
            "embed_dim": c.model.embed_dim}


def _feature_writer(model: InferenceModel, folder: Path):
    from vasot_pipelines.writer import DatasetWriter

    # the checkpoint is a setting: resuming into the folder with another model's features is refused
    return DatasetWriter(folder, name="embeddings", modality="features", label_map={UNLABELLED: 0}, background_id=0,
                         fps=None, short_side=None, settings={"checkpoint": str(model.checkpoint.resolve())})


def _add_sample(writer, key: str, split: str, emb, activity: str) -> None:
    from vasot_pipelines.writer import Sample

    meta = fmt.sample_meta(key=key, dataset="embeddings", activity=activity, split=split, labels=[0] * len(emb),
                           fps=emb.fps, source=emb.source, feature_dim=int(emb.vectors.shape[1]))
    writer.add(Sample(meta, fmt.features_to_bytes(emb.vectors), fmt.FEATURES_EXT))


# ----------------------------------------------------------------------------------------- segment
def run_segment(model: InferenceModel, items: list[str], out: Path) -> int:
    """Per video: ``<name>.json`` and ``<name>.csv`` (segments: frames, seconds, action, name, confidence) and
    ``groundTruth/<name>.txt`` (MS-TCN: a label per frame); ``mapping/mapping.txt`` (MS-TCN: ``id name``) and
    ``index.json`` for all."""
    inputs, failures, names, total = _videos(model, items)
    (out / "groundTruth").mkdir(parents=True, exist_ok=True)
    (out / "mapping").mkdir(exist_ok=True)
    entries: list[dict[str, Any]] = []

    def work(i: int, path: str):
        emb = embed_with_bar(model, path, f"[{i + 1}/{len(inputs.paths)}]")
        seg = model.segment(emb)
        write_segmentation(seg, out, names[i])
        entries.append({"source": path, "json": f"{names[i]}.json", "csv": f"{names[i]}.csv",
                        "groundtruth": f"groundTruth/{names[i]}.txt", "num_frames": len(seg.labels),
                        "num_segments": len(seg.segments), "decoder": seg.decoder})
        return seg

    segs = for_each_video(inputs.paths, work, failures)
    k = max([model.cfg.model.num_actions] + [int(s.labels.max()) + 1 for s in segs])
    namer = segs[0] if segs else None
    mapping = "".join(f"{a} {namer.label_name(a) if namer else f'action_{a}'}\n" for a in range(k))
    write_text_atomic(out / "mapping" / "mapping.txt", mapping)
    write_json_atomic(out / "index.json", {**_about(model), "action_names": {str(a): n for a, n in
                                                                             model.action_names.items()},
                                           "videos": entries, "failed": [f["source"] for f in failures]})
    return finish(out, failures, total, "vasot-segment")


# ------------------------------------------------------------------------------------------- align
def run_align(model: InferenceModel, a: str, items: list[str], out: Path) -> int:
    """``<out>/<a>__<b>/``: ``alignment.json`` (matches both ways with times, the re-timing), ``a_to_b.csv``,
    ``b_to_a.csv``, ``plan.png`` and ``side_by_side.mp4`` for video ``a`` and each video of ``items``."""
    from .render import write_plan_png, write_side_by_side

    inputs, failures, names, total = _videos(model, items)
    try:
        emb_a = embed_with_bar(model, a, "[A]")
    except Exception as err:  # nothing to align with: every pair fails
        failures.append({"source": a, "error": _describe(a, err)})
        return finish(out, failures, total + 1, "vasot-align")
    name_a = output_names([a])[0]

    def work(i: int, path: str) -> None:
        emb_b = embed_with_bar(model, path, f"[{i + 1}/{len(inputs.paths)}]")
        ali = model.align(emb_a, emb_b)
        folder = out / f"{name_a}__{names[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / "alignment.json", {**_about(model), **ali.to_json()})
        for direction in ("a_to_b", "b_to_a"):
            write_text_atomic(folder / f"{direction}.csv", ali.csv_text(direction))
        write_plan_png(ali.plan, folder / "plan.png", f"{Path(a).name} -> {Path(path).name}")
        if model.cfg.data.modality == "video":
            write_side_by_side(folder / "side_by_side.mp4", a, path, ali.retiming, fps=emb_a.fps,
                               times_a=emb_a.times, times_b=emb_b.times)

    for_each_video(inputs.paths, work, failures)
    return finish(out, failures, total + 1, "vasot-align")
