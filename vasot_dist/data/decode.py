"""Decode chosen frames of an in-memory video at the target size.

One interface, :func:`decode_frames`, over a small registry of backends. ``decord`` is the default:
it opens the mp4 bytes from memory, seeks to the keyframe before each requested frame and scales in
C (swscale) straight to the target size, so a 1080p source is never materialised as full-resolution
RGB in Python. ``pyav`` is a slower, dependency-free fallback (sequential decode). A torchcodec backend
can be added with :func:`register_decoder` (see the ``DecoderFn`` contract).

decord is unmaintained, so the default backend follows the rules that keep it safe in DataLoader
workers: one decoding thread per reader (``num_threads=0`` spawns one per core and oversubscribes the
workers), a ``fault_tol`` so a video with many undecodable frames raises instead of silently
returning duplicates, ``.asnumpy()`` (its torch bridge is per-thread state), and indices clamped to
the frame count measured at sharding time (``get_batch`` can hang when the container over-reports
its length).

The frame count of the sample JSON must equal the container's, both ways (:func:`_check_count`): a sample
whose count is off is corrupt, skipped and counted with a warning naming its key and shard, never decoded
against labels that describe another length.
"""

from __future__ import annotations

import io
from typing import Protocol

import numpy as np

# decord: > this fraction of frames recovered by its error concealment raises DECORDLimitReachedError.
DECORD_FAULT_TOL = 0.1
# Exception text from decord can embed the whole input (it prints the "file name", i.e. the bytes).
_MAX_REASON = 300


class CorruptSample(Exception):
    """A sample that cannot be used: undecodable video, bad JSON, missing member, zero frames.

    ``key`` and ``shard`` are filled in by the pipeline stage that saw it (None when decoding outside
    a pipeline). The loader logs, counts and skips these; they are never fatal.
    """

    def __init__(self, reason: str, *, key: str | None = None, shard: str | None = None):
        reason = reason if len(reason) <= _MAX_REASON else reason[:_MAX_REASON] + "..."
        super().__init__(reason)
        self.reason = reason
        self.key = key
        self.shard = shard

    def __str__(self) -> str:
        where = f"{self.key or '?'} in {self.shard or '?'}"
        return f"corrupt sample {where}: {self.reason}"

    def __reduce__(self):  # keep key/shard when sent from a worker process
        return (_rebuild_corrupt, (self.reason, self.key, self.shard))


def _rebuild_corrupt(reason: str, key: str | None, shard: str | None) -> CorruptSample:
    return CorruptSample(reason, key=key, shard=shard)


class DecoderFn(Protocol):
    """Backend contract.

    Args:
        data: the encoded video (whole file bytes).
        indices: (U,) int64, sorted, unique, all in ``[0, num_frames)`` when ``num_frames`` is given.
        size: (height, width) to decode at, or None for the native size.
        num_frames: frame count measured at sharding time; a container that reports another count is corrupt
            (:func:`_check_count`).

    Returns:
        uint8 (U, H, W, 3) RGB. Raise any exception on undecodable input; it becomes CorruptSample.
    """

    def __call__(self, data: bytes, indices: np.ndarray, size: tuple[int, int] | None,
                 num_frames: int | None) -> np.ndarray: ...


_DECODERS: dict[str, DecoderFn] = {}


def register_decoder(name: str, fn: DecoderFn) -> None:
    """Make ``fn`` available as ``decode_frames(..., backend=name)``. Must be a module-level function
    (workers pickle the pipeline)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"decoder name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise ValueError(f"decoder {name!r} must be callable, got {type(fn).__name__}")
    _DECODERS[name] = fn


def available_decoders() -> list[str]:
    return sorted(_DECODERS)


def _as_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        hw = (int(size[0]), int(size[1]))
    else:
        raise ValueError(f"size must be an int (square side), a (height, width) pair or None, got {size!r}")
    if hw[0] < 1 or hw[1] < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return hw


def decode_frames(video_bytes: bytes, indices: np.ndarray, size: int | tuple[int, int] | None, *,
                  num_frames: int | None = None, backend: str = "decord") -> np.ndarray:
    """Decode the frames ``indices`` of an encoded video, scaled to ``size``.

    Args:
        video_bytes: the encoded file (e.g. ``<key>.mp4`` from a shard).
        indices: (T,) frame indices in any order, duplicates allowed; clamped to ``[0, num_frames - 1]``.
        size: square side, ``(height, width)``, or None for the native size. Scaling happens inside the
            decoder (no full-resolution RGB copy).
        num_frames: the true frame count (the sample JSON's ``num_frames``, measured at sharding time).
        backend: a name from :func:`available_decoders`.

    Returns:
        uint8 (T, H, W, 3) RGB, row t is frame ``clamp(indices[t])``.

    Raises:
        ValueError: bad arguments (not the data's fault).
        CorruptSample: the bytes cannot be decoded.
    """
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
    if idx.size == 0:
        raise ValueError("indices is empty: request at least one frame")
    hw = _as_size(size)
    if backend not in _DECODERS:
        raise ValueError(f"unknown decoder backend {backend!r}; available: {available_decoders()}")
    if num_frames is not None:
        if num_frames < 1:
            raise CorruptSample(f"video has num_frames={num_frames}")
        idx = np.clip(idx, 0, num_frames - 1)
    else:
        idx = np.maximum(idx, 0)
    unique, inverse = np.unique(idx.astype(np.int64), return_inverse=True)
    if not isinstance(video_bytes, (bytes, bytearray, memoryview)) or len(video_bytes) == 0:
        raise CorruptSample("empty video bytes")
    try:
        out = _DECODERS[backend](bytes(video_bytes), unique, hw, num_frames)
    except CorruptSample:
        raise
    except Exception as exc:  # backends raise assorted C-library errors on bad input
        raise CorruptSample(f"{backend} could not decode: {type(exc).__name__}: {exc}") from exc
    out = np.asarray(out)
    if out.dtype != np.uint8 or out.ndim != 4 or out.shape[0] != unique.size or out.shape[-1] != 3:
        raise CorruptSample(f"{backend} returned {out.dtype} {out.shape}, expected uint8 ({unique.size}, H, W, 3)")
    if hw is not None and out.shape[1:3] != hw:
        raise CorruptSample(f"{backend} returned frames of {out.shape[1:3]}, expected {hw}")
    return out[inverse]


# ------------------------------------------------------------------------------------------ backends
def _check_count(reported: int, num_frames: int | None) -> None:
    """The frame count of the sample JSON (measured by ``vasot-shard``, one label per frame) must be the
    container's, both ways: fewer frames in the container means damage (clamping would return frames that do
    not match their labels), more means the labels describe only the first part of the video (sampling would
    silently train on that part). Either way the sample is corrupt: skipped, counted, named in a warning."""
    if num_frames is not None and reported != num_frames:
        raise CorruptSample(f"container reports {reported} frames, the sample JSON says num_frames={num_frames}: "
                            "its labels do not describe this video")


_decord_quiet = False
# Types of the first box of an ISO-BMFF file (mp4, mov, m4v, 3gp): what decord is given.
_ISO_BMFF_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def decord_reads(head: bytes) -> bool:
    """Whether the decord backend opens a file that starts with ``head`` (its first 8 bytes or more).

    decord's "ERROR opening: <file name>" names an in-memory file by its bytes, printed to stderr up to the
    first zero byte and past any log level: for garbage that is the raw data. An ISO-BMFF file (mp4, mov,
    m4v, 3gp) starts with a zero (the top byte of its first box size), so only those go to decord; anything
    else goes to PyAV, which decodes any container and fails on garbage with a short message.
    """
    return bytes(head[4:8]) in _ISO_BMFF_FIRST_BOXES


def open_decord(source: str | bytes, size: tuple[int, int] | None):
    """A ``decord.VideoReader`` of a file path or the bytes of a file, scaling to ``size`` = (h, w) (None:
    native), with the settings of the module docstring (one thread, ``fault_tol``, ffmpeg's log quiet)."""
    global _decord_quiet
    import decord

    if not _decord_quiet:  # ffmpeg's own log would print every corrupt file's parse errors
        decord.logging.set_level(decord.logging.QUIET)
        _decord_quiet = True
    h, w = size if size is not None else (-1, -1)
    src = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    return decord.VideoReader(src, ctx=decord.cpu(0), width=w, height=h, num_threads=1, fault_tol=DECORD_FAULT_TOL)


def _decode_decord(data: bytes, indices: np.ndarray, size: tuple[int, int] | None,
                   num_frames: int | None) -> np.ndarray:
    if not decord_reads(data):
        return _decode_pyav(data, indices, size, num_frames)
    import decord

    vr = open_decord(data, size)
    if len(vr) < 1:
        raise CorruptSample("decord reports no frames")
    _check_count(len(vr), num_frames)
    idx = np.minimum(indices, len(vr) - 1)
    try:
        return vr.get_batch(idx.tolist()).asnumpy()
    except decord.DECORDError as exc:
        # decord bug (dmlc/decord#336): output widths 16, 24, 48, 72 (others are fine) make it copy a
        # padded row stride into an unpadded array. The data is good; let PyAV do this one.
        if "from_size == to_size" not in str(exc):
            raise
        return _decode_pyav(data, indices, size, num_frames)


def pyav_rgb(frame, size: tuple[int, int] | None) -> np.ndarray:
    """uint8 (h, w, 3) RGB of a decoded ``av.VideoFrame``, scaled to ``size`` = (h, w) (None: native)."""
    kw = {} if size is None else {"height": size[0], "width": size[1]}
    return frame.to_ndarray(format="rgb24", **kw)


def _decode_pyav(data: bytes, indices: np.ndarray, size: tuple[int, int] | None,
                 num_frames: int | None) -> np.ndarray:
    """Sequential decode up to the last requested frame; for short clips and as a cross-check."""
    import av

    wanted = indices.tolist()
    out: list[np.ndarray] = []
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        if stream.frames > 0:  # the container's own count (mp4: its sample table); 0 when it states none
            _check_count(stream.frames, num_frames)
        stream.thread_type = "SLICE"
        last = None
        pos = 0
        k = 0
        for frame in container.decode(stream):
            if num_frames is not None and pos >= num_frames:
                break
            while k < len(wanted) and wanted[k] == pos:
                if last is None or last[0] != pos:
                    last = (pos, pyav_rgb(frame, size))
                out.append(last[1])
                k += 1
            if k == len(wanted):
                break
            pos += 1
    if not out:
        raise CorruptSample("pyav decoded no frames")
    if len(out) < len(wanted):
        if num_frames is not None:
            _check_count(pos, num_frames)
        while len(out) < len(wanted):  # no measured count: clamp to the container's last frame
            out.append(out[-1])
    return np.stack(out)


register_decoder("decord", _decode_decord)
register_decoder("pyav", _decode_pyav)
