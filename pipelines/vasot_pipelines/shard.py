"""``vasot-shard``: a manifest of videos (or feature files) -> WebDataset shards + ``dataset.json``.

Examples::

    vasot-shard --manifest videos.jsonl --labels mapping.txt --out data/mine --fps 15 --workers 8 --verify
    vasot-shard --adapter breakfast --root /data/Breakfast --out data/bf_feats
    vasot-shard --adapter ikea_asm --root /data/ikea_asm --out data/ikea --fps 25 --adapter-arg camera=dev3

Video mode decodes each source with PyAV (files FFmpeg reads, or folders of images), turns it as a
player shows it (display matrix, pixel aspect ratio, EXIF orientation of images), resamples to
``--fps`` by nearest-frame selection (labels follow the same selection; default: keep the source
rate; a variable-frame-rate source is timed by its timestamps, and kept at its mean rate), resizes the shorter side to ``--short-side`` and encodes H.264 once (short GOP). The stored
``num_frames`` is what decord reads back from the written mp4. ``--verify`` decodes every stored
frame and compares frame 0 with the source's as a player shows it. Feature mode stores float32 ``(N, D)``
arrays; ``.txt`` features are transposed when their second axis, not their first, matches the
label count (Breakfast/YTI ship ``(N, D)``; some re-exports are ``(D, N)``), which is logged.

Inputs that cannot be used (missing or unreadable file, no frames, labels that do not fit, bad
manifest lines, duplicate keys) are written to ``<out>/failures.jsonl`` with the reason and skipped.
Exit status: the number of failures (capped at 100), 0 when all is well; 101 for a fatal error
(bad arguments, unreadable label map); 130 when stopped by ``--stop-after-shards``.

Resumable: shards listed in ``<out>/progress.json`` are kept and their samples skipped; a partial
shard (``.<shard>.tar.<hex>.tmp``) is discarded and redone.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import multiprocessing as mp
import os
import sys
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vasot_dist.data import format as fmt
from vasot_dist.runtime.files import write_jsonl_atomic

from .manifest import LabelMap, ManifestEntry, frame_labels, label_map_path, read_label_map, read_manifest
from .video import (
    DEFAULT_CRF,
    DEFAULT_GOP,
    DEFAULT_PRESET,
    VideoSource,
    measure_mp4,
    output_size,
    shown_image,
    transcode,
)
from .writer import DEFAULT_MAX_SHARD_BYTES, DEFAULT_MAX_SHARD_SAMPLES, DatasetWriter, Sample

log = logging.getLogger("vasot.shard")
FAILURES_JSONL = "failures.jsonl"
MAX_EXIT = 100
EXIT_FATAL = 101
EXIT_INTERRUPTED = 130
# --verify: mean |shard frame 0 - source frame 0 as shown| on 0..255. Two lossy encodes and a resize stay
# well under (real clips: below 4); a picture turned or mirrored the wrong way is far above.
MAX_SOURCE_DIFFERENCE = 12.0


@dataclass
class ShardOptions:
    """How each sample is encoded (all workers share one)."""

    modality: str = "video"
    dataset: str = "dataset"
    short_side: int = 256
    fps: float | None = None  # None: keep each source's rate (video); features: stored as given
    gop: int = DEFAULT_GOP
    crf: int = DEFAULT_CRF
    preset: str = DEFAULT_PRESET
    decode_threads: int = 0  # 0 = FFmpeg's choice; 1 inside a multi-worker pool
    tolerance: int = fmt.LABEL_TOLERANCE


@dataclass
class Failure:
    path: str
    reason: str
    key: str | None = None
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class ShardReport:
    index_path: Path | None
    failures: list[dict[str, Any]]
    written: int
    skipped: int
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return min(len(self.failures), MAX_EXIT)


# ------------------------------------------------------------------------------------- one sample
def load_features(path: str, num_labels: int | None, tolerance: int) -> np.ndarray:
    """A feature file as float32 (N, D). ``.txt`` may be (D, N): transposed when only its second axis
    matches ``num_labels`` (within ``tolerance``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    if path.endswith(".npy"):
        arr = np.load(path, allow_pickle=False)
    else:
        arr = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"features must be a non-empty 2-D array, got shape {arr.shape}")
    if num_labels is not None:
        d0, d1 = abs(arr.shape[0] - num_labels), abs(arr.shape[1] - num_labels)
        if d0 != 0 and (d1 == 0 or (d1 <= tolerance < d0)):
            log.info("%s: features stored (D, N) = %s; transposed to (N, D)", path, arr.shape)
            arr = arr.T
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("features contain NaN or inf")
    return arr


def encode_entry(entry: ManifestEntry, opts: ShardOptions, label_map: LabelMap) -> Sample:
    """Turn one manifest entry into a sample (raises on any problem with the input)."""
    key = entry.key
    if opts.modality == "features":
        raw_n = None
        if entry.labels is not None:
            raw_n = len(entry.labels)
        elif entry.labels_file is not None:
            from .manifest import read_labels_file

            raw_n = len(read_labels_file(entry.labels_file))
        feats = load_features(entry.path, raw_n, opts.tolerance)
        fps = entry.fps if entry.fps is not None else opts.fps
        labels = frame_labels(entry, feats.shape[0], fps, label_map, opts.tolerance)
        meta = fmt.sample_meta(key=key, dataset=opts.dataset, activity=entry.activity, split=entry.split,
                               labels=labels.tolist(), fps=fps, feature_dim=int(feats.shape[1]),
                               source=os.fspath(entry.path))
        return Sample(meta, fmt.features_to_bytes(feats), fmt.FEATURES_EXT)
    # a folder of images has no time base: its images are consecutive frames at the output rate
    src_rate = entry.fps if entry.fps is not None or not os.path.isdir(entry.path) else opts.fps
    with VideoSource(entry.path, fps=src_rate, threads=opts.decode_threads) as src:
        src_fps, times = float(src.info.fps), src.info.times
        if times is not None:
            log.info("%s: variable frame rate (%d frames over %.2f s, mean %.3g fps); resampled by its timestamps",
                     entry.path, len(times), float(times[-1]), src_fps)
        mp4, plan, n_src, (h, w), rate = transcode(src, short_side=opts.short_side, fps=opts.fps, gop=opts.gop,
                                                   crf=opts.crf, preset=opts.preset)
    labels = frame_labels(entry, n_src, src_fps, label_map, opts.tolerance, times)[plan]
    n, mh, mw = measure_mp4(mp4)
    if n != len(plan) or (mh, mw) != (h, w):
        raise ValueError(f"decord reads {n} frames of {mh}x{mw} from the encoded mp4, {len(plan)} of {h}x{w} written")
    meta = fmt.sample_meta(key=key, dataset=opts.dataset, activity=entry.activity, split=entry.split,
                           labels=labels.tolist(), fps=float(rate), height=h, width=w,
                           source=os.fspath(entry.path))
    return Sample(meta, mp4, fmt.VIDEO_EXT)


def _describe(err: BaseException) -> str:
    msg = str(err).strip() or type(err).__name__
    return msg if type(err) is ValueError else f"{type(err).__name__}: {msg}"


def process_entry(entry: ManifestEntry, opts: ShardOptions, label_map: LabelMap) -> Sample | Failure:
    try:
        return encode_entry(entry, opts, label_map)
    except Exception as err:  # any unreadable input becomes a failure record, never a crash
        return Failure(os.fspath(entry.path), _describe(err), key=entry.key, line=entry.line)


_WORKER: dict[str, Any] = {}


def _init_worker(opts: ShardOptions, label_map: LabelMap) -> None:
    _WORKER["opts"], _WORKER["label_map"] = opts, label_map


def _work(entry: ManifestEntry) -> Sample | Failure:
    return process_entry(entry, _WORKER["opts"], _WORKER["label_map"])


# ------------------------------------------------------------------------------------- the run
def shard_manifest(manifest: str | os.PathLike, label_map: LabelMap | str | os.PathLike, out_dir: str | os.PathLike,
                   *, opts: ShardOptions | None = None, workers: int = 1,
                   max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
                   max_shard_samples: int = DEFAULT_MAX_SHARD_SAMPLES, verify: bool = False,
                   progress: bool = True, stop_after_shards: int | None = None) -> ShardReport:
    """Shard every entry of ``manifest`` into ``out_dir`` (resuming what is there); see the module doc."""
    opts = opts or ShardOptions()
    if not isinstance(label_map, LabelMap):
        label_map = read_label_map(label_map)
    entries, failures = read_manifest(manifest)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo: list[ManifestEntry] = []
    seen: dict[str, ManifestEntry] = {}
    for e in entries:
        if e.key in seen:
            failures.append(Failure(e.path, f"duplicate key {e.key!r} (first at manifest line {seen[e.key].line})",
                                    key=e.key, line=e.line).to_json())
            continue
        seen[e.key] = e
        todo.append(e)
    writer = DatasetWriter(
        out_dir, name=opts.dataset, modality=opts.modality, label_map=label_map.ids,
        background_id=label_map.background_id, fps=opts.fps,
        short_side=opts.short_side if opts.modality == "video" else None,
        max_shard_bytes=max_shard_bytes, max_shard_samples=max_shard_samples,
        settings={"gop": opts.gop, "crf": opts.crf, "preset": opts.preset, "tolerance": opts.tolerance})
    done = writer.done_keys
    skipped = sum(e.key in done for e in todo)
    todo = [e for e in todo if e.key not in done]
    if skipped:
        log.info("resuming: %d samples already in %d shards", skipped, writer.num_completed_shards)
    written = 0
    interrupted = False
    results: Iterable[Sample | Failure]
    pool = None
    if workers > 1 and len(todo) > 1:
        wopts = ShardOptions(**{**asdict(opts), "decode_threads": 1})
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(wopts, label_map))
        results = pool.imap(_work, todo, chunksize=1)  # ordered: shard contents do not depend on timing
    else:
        results = (process_entry(e, opts, label_map) for e in todo)
    try:
        from tqdm import tqdm

        bar = tqdm(results, total=len(todo), desc="shard", unit="video", disable=not progress, file=sys.stderr)
        start_shards = writer.num_completed_shards
        for res in bar:
            if isinstance(res, Failure):
                failures.append(res.to_json())
                bar.set_postfix(failed=len(failures))
                continue
            writer.add(res)
            written += 1
            if stop_after_shards is not None and writer.num_completed_shards - start_shards >= stop_after_shards:
                interrupted = True
                break
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if interrupted:
        writer.abandon()
        return ShardReport(None, failures, written, skipped, interrupted=True)
    index_path = writer.finish()
    if verify:
        failures.extend(verify_dataset(out_dir, progress=progress))
    write_jsonl_atomic(out_dir / FAILURES_JSONL, failures)
    if failures:
        log.warning("%d inputs failed; see %s", len(failures), out_dir / FAILURES_JSONL)
    return ShardReport(index_path, failures, written, skipped)


# ------------------------------------------------------------------------------------- verify
def iter_shard_samples(path: str | os.PathLike) -> Iterable[tuple[str, dict[str, bytes]]]:
    """(key, {ext: bytes}) for each sample of a tar shard, grouping consecutive members by key."""
    with tarfile.open(path, "r") as tar:
        key, group = None, {}
        for m in tar:
            if not m.isfile():
                continue
            k, _, ext = m.name.partition(".")
            if k != key and key is not None:
                yield key, group
                group = {}
            key = k
            group[ext] = tar.extractfile(m).read()
        if key is not None:
            yield key, group


def verify_sample(key: str, members: dict[str, bytes], index: dict[str, Any], split: str) -> None:
    """Re-read one sample completely; ValueError says what does not match."""
    modality = index["modality"]
    payload_ext = fmt.VIDEO_EXT if modality == "video" else fmt.FEATURES_EXT
    if set(members) != {fmt.META_EXT, payload_ext}:
        raise ValueError(f"members {sorted(members)}, expected {sorted({fmt.META_EXT, payload_ext})}")
    meta = json.loads(members[fmt.META_EXT])
    fmt.validate_sample_meta(meta, modality)
    if meta["key"] != key or meta["split"] != split:
        raise ValueError(f"json key/split {meta['key']}/{meta['split']} do not match member {key} in split {split}")
    ids = set(index["label_map"].values())
    bad = sorted(set(meta["labels"]) - ids)
    if bad:
        raise ValueError(f"label ids {bad} are not in the label map")
    n = meta["num_frames"]
    if modality == "features":
        arr = fmt.features_from_bytes(members[payload_ext])
        if arr.dtype != np.float32 or arr.shape != (n, meta["feature_dim"]):
            raise ValueError(f"features {arr.dtype} {arr.shape}, json says float32 ({n}, {meta['feature_dim']})")
        return
    import decord

    vr = decord.VideoReader(io.BytesIO(members[payload_ext]), num_threads=1)
    if len(vr) != n:
        raise ValueError(f"decord reads {len(vr)} frames, json says {n}")
    decoded = 0
    for start in range(0, n, 32):
        batch = vr.get_batch(list(range(start, min(n, start + 32)))).asnumpy()
        if batch.shape[1:] != (meta["height"], meta["width"], 3):
            raise ValueError(f"frames {batch.shape[1:]}, json says {meta['height']}x{meta['width']}")
        if start == 0:
            compare_with_source(batch[0], meta["source"], index["short_side"], meta["fps"])
        decoded += len(batch)
    if decoded != n:
        raise ValueError(f"decoded {decoded} frames, json says {n}")


def compare_with_source(frame: np.ndarray, source: str, short_side: int, fps: float) -> None:
    """The shard's frame 0 (uint8 (h, w, 3)) against frame 0 of ``source`` as a player shows it (display
    matrix, pixel aspect, EXIF orientation applied): same size at ``short_side``, same picture up to two
    lossy encodes. ValueError says what differs (a video stored sideways, say)."""
    with VideoSource(source, fps=fps, threads=1) as src:
        shown_h, shown_w = src.info.height, src.info.width
        expected = output_size(shown_h, shown_w, short_side)
        if frame.shape[:2] != expected:
            raise ValueError(f"frames are {frame.shape[0]}x{frame.shape[1]}, but {source} as a player shows it is "
                             f"{shown_h}x{shown_w}, which gives {expected[0]}x{expected[1]} at short side {short_side}")
        shown = shown_image(next(iter(src)), src.info.orientation, expected)
    diff = float(np.abs(shown.astype(np.int16) - frame).mean())
    if diff > MAX_SOURCE_DIFFERENCE:
        raise ValueError(f"frame 0 differs from {source} as a player shows it: mean absolute difference {diff:.1f} "
                         f"> {MAX_SOURCE_DIFFERENCE} (of 255)")


def verify_dataset(path: str | os.PathLike, progress: bool = False) -> list[dict[str, Any]]:
    """Re-read every sample of every shard listed in ``dataset.json``; returns failure records."""
    index = fmt.read_dataset_index(path)
    root = Path(path) if Path(path).is_dir() else Path(path).parent
    failures: list[dict[str, Any]] = []
    from tqdm import tqdm

    for rec in tqdm(index["shards"], desc="verify", unit="shard", disable=not progress, file=sys.stderr):
        shard = root / rec["path"]
        n = 0
        try:
            for key, members in iter_shard_samples(shard):
                n += 1
                try:
                    verify_sample(key, members, index, rec["split"])
                except Exception as err:
                    failures.append({"path": f"{rec['path']}:{key}", "key": key,
                                     "reason": f"verify: {_describe(err)}"})
        except (OSError, tarfile.TarError) as err:
            failures.append({"path": rec["path"], "reason": f"verify: unreadable shard: {_describe(err)}"})
            continue
        if n != rec["num_samples"]:
            failures.append({"path": rec["path"],
                             "reason": f"verify: {n} samples in the shard, dataset.json says {rec['num_samples']}"})
    return failures


# ----------------------------------------------------------------------------------------- CLI
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors must not look like "2 failed inputs"
        self.print_usage(sys.stderr)
        self.exit(EXIT_FATAL, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vasot-shard", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("input (a manifest + label map, or an adapter + dataset root)")
    src.add_argument("--manifest", help="JSONL manifest, one video per line (see pipelines/README.md)")
    src.add_argument("--labels", help="label map: JSON {name: id} or 'id name' lines (mapping.txt)")
    src.add_argument("--adapter", help="write the manifest from a dataset's published layout first "
                                       "(see --list-adapters)")
    src.add_argument("--layout", choices=["features"], help="shorthand for --adapter features "
                     "(features/, groundTruth/, mapping/mapping.txt)")
    src.add_argument("--root", help="dataset root for --adapter/--layout")
    src.add_argument("--adapter-arg", action="append", default=[], metavar="KEY=VALUE",
                     help="extra keyword for the adapter (repeatable), e.g. granularity=eval")
    src.add_argument("--list-adapters", action="store_true", help="print the adapters and exit")
    p.add_argument("--out", help="output folder (shards, dataset.json, failures.jsonl, progress.json)")
    p.add_argument("--name", help="dataset name stored in dataset.json (default: adapter name or out folder)")
    p.add_argument("--modality", choices=fmt.MODALITIES, help="default: the adapter's, else video")
    p.add_argument("--background", help="label name of background frames (default: auto: SIL, background, NA, ...)")
    p.add_argument("--short-side", type=int, default=256)
    p.add_argument("--fps", type=float, default=None, help="constant output fps (default: keep each source's)")
    p.add_argument("--gop", type=int, default=DEFAULT_GOP, help="keyframe interval in frames")
    p.add_argument("--crf", type=int, default=DEFAULT_CRF)
    p.add_argument("--preset", default=DEFAULT_PRESET)
    p.add_argument("--max-shard-bytes", type=int, default=DEFAULT_MAX_SHARD_BYTES)
    p.add_argument("--max-shard-samples", type=int, default=DEFAULT_MAX_SHARD_SAMPLES)
    p.add_argument("--workers", type=int, default=1, help="decode/encode processes (one writer)")
    p.add_argument("--verify", action="store_true", help="re-read every sample of every shard at the end")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--stop-after-shards", type=int, default=None, help=argparse.SUPPRESS)  # crash simulation
    return p


def _adapter_kwargs(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in pairs:
        if "=" not in kv:
            raise ValueError(f"--adapter-arg {kv!r} must be KEY=VALUE")
        k, v = kv.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from .adapters import ADAPTERS

    if args.list_adapters:
        for name, ad in sorted(ADAPTERS.items()):
            print(f"{name:18s} {ad.modality:8s} {ad.summary}")
        return 0
    try:
        if not args.out:
            raise ValueError("--out is required")
        out = Path(args.out)
        adapter_name = "features" if args.layout else args.adapter
        modality = args.modality
        if adapter_name:
            if adapter_name not in ADAPTERS:
                raise ValueError(f"unknown adapter {adapter_name!r}; known: {sorted(ADAPTERS)}")
            if not args.root:
                raise ValueError("--adapter/--layout need --root")
            if args.manifest:
                raise ValueError("give either --manifest or --adapter, not both")
            ad = ADAPTERS[adapter_name]
            manifest = out / "manifest.jsonl"
            out.mkdir(parents=True, exist_ok=True)
            n = ad.write_manifest(args.root, manifest, **_adapter_kwargs(args.adapter_arg))
            log.info("%s: %d videos listed in %s", adapter_name, n, manifest)
            labels = args.labels or label_map_path(manifest)
            modality = modality or ad.modality
        else:
            if not args.manifest or not args.labels:
                raise ValueError("give --manifest and --labels (or --adapter/--layout with --root)")
            manifest, labels = args.manifest, args.labels
        label_map = read_label_map(labels, background=args.background)
        opts = ShardOptions(modality=modality or "video", dataset=args.name or adapter_name or out.resolve().name,
                            short_side=args.short_side, fps=args.fps, gop=args.gop, crf=args.crf, preset=args.preset)
        report = shard_manifest(manifest, label_map, out, opts=opts, workers=args.workers,
                                max_shard_bytes=args.max_shard_bytes, max_shard_samples=args.max_shard_samples,
                                verify=args.verify, progress=not args.no_progress,
                                stop_after_shards=args.stop_after_shards)
    except ValueError as err:
        print(f"vasot-shard: error: {err}", file=sys.stderr)
        return EXIT_FATAL
    if not report.interrupted:
        print(f"wrote {report.written} samples ({report.skipped} kept from a previous run), "
              f"{len(report.failures)} failures -> {report.index_path}", file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
