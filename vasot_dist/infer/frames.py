"""What a trained model reads from one input, in chunks: frames decoded as evaluation decodes them, or features.

An input is a video file, a decoded array (T, H, W, 3) uint8, a features file (``.npy`` / ``.txt``, read by
the sharding tool's :func:`vasot_pipelines.shard.load_features`) or a features array (T, F).

A video file is opened with the sharding tool's reader (:class:`vasot_pipelines.video.VideoSource`: the
container's frame rate, the display matrix of the first decoded frame) and decoded at the run's square
``data.image_size`` by the evaluation's decoder (:mod:`vasot_dist.data.decode`): decord for the ISO-BMFF
files it reads (mp4, mov, m4v, 3gp) that carry no display matrix, with the reader settings the loaders use, so
that a shard's mp4 gives the frames evaluation sees bit for bit; PyAV for any other file (avi, mkv, webm, ...,
and rotated or mirrored videos), scaled by the call of the evaluation's ``pyav`` backend and turned as a player
shows it by the sharding tool's :class:`vasot_pipelines.video.Orientation`, which is how the shards store it: a
phone video recorded with "rotation -90" reaches the model upright. A decoded array is taken as upright and
scaled by the same PyAV call when its size differs.

Frames stream: :meth:`Clip.chunks` yields ``chunk`` frames at a time, and nothing here holds more than one
chunk of decoded frames, whatever the video's length.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vasot_dist.data.decode import decord_reads, open_decord, pyav_rgb

FEATURE_SUFFIXES = (".npy", ".txt")


class UnreadableInput(ValueError):
    """An input that cannot be used; the message names it and says why."""


@dataclass
class Clip:
    """One opened input.

    name: what to call it in messages (the path, or ``"array"``); fps: frames per second (None: unknown);
    expected_frames: the count known before decoding (decord's index, an array's length; None for a stream
    whose container does not say); modality: ``"video"`` (uint8 frames (n, S, S, 3)) or ``"features"``
    (float32 (n, F)).
    """

    name: str
    fps: float | None
    expected_frames: int | None
    modality: str
    _chunks: Callable[[int], Iterator[np.ndarray]]

    def chunks(self, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """``(values, times)`` of consecutive frames, ``chunk`` at a time (the last may be shorter); ``times``
        (n,) seconds, ``frame / fps`` (None without an fps): frames are counted at the stated rate, as the
        sharding tool counts them (an AVI's packed B-frames, for one, carry presentation times out of order)."""
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        start = 0
        for values in self._chunks(chunk):
            n = len(values)
            yield values, None if self.fps is None else np.arange(start, start + n, dtype=np.float64) / self.fps
            start += n


def _rechunk(frames: Iterator[np.ndarray], chunk: int) -> Iterator[np.ndarray]:
    """Single frames -> stacks of ``chunk`` frames (the last may be shorter)."""
    images: list[np.ndarray] = []
    for image in frames:
        images.append(image)
        if len(images) == chunk:
            yield np.stack(images)
            images = []
    if images:
        yield np.stack(images)


# ------------------------------------------------------------------------------------------- video files
class _VideoFile:
    """The frames of a video file at ``size`` x ``size``, as shown (module docstring)."""

    def __init__(self, path: str, size: int):
        from vasot_pipelines.video import VideoSource

        self.path, self.size = path, size
        if not os.path.isfile(path):
            raise UnreadableInput(f"{path}: no such file" if not os.path.exists(path) else f"{path}: not a file")
        try:
            with VideoSource(path) as src:
                self.orientation = src.info.orientation
                self.fps = float(src.info.fps)
        except Exception as e:  # PyAV raises its own error types for unreadable files
            raise UnreadableInput(f"{path}: not a readable video ({type(e).__name__}: {e})") from None
        with open(path, "rb") as f:
            # decord turns a rotated video itself, but reads only the angle of its display matrix (no mirror):
            # such a file goes to PyAV and the sharding tool's Orientation, which reads the whole matrix
            use_decord = decord_reads(f.read(8)) and self.orientation.identity
        self.reader = None
        if use_decord:
            try:
                self.reader = open_decord(path, (size, size))
            except Exception as e:
                raise UnreadableInput(f"{path}: decord cannot open it ({type(e).__name__}: {e})") from None

    @property
    def expected_frames(self) -> int | None:
        """decord's count, else the count the container states (a progress bar's total; None if unstated)."""
        if self.reader is not None:
            return len(self.reader)
        import av

        with av.open(self.path) as c:
            return int(c.streams.video[0].frames) or None

    def chunks(self, chunk: int) -> Iterator[np.ndarray]:
        if self.reader is None:
            yield from _rechunk(self._pyav_frames(), chunk)
            return
        import decord

        n = len(self.reader)
        if n < 1:
            raise UnreadableInput(f"{self.path}: decord reports no frames")
        for s in range(0, n, chunk):
            idx = list(range(s, min(n, s + chunk)))
            try:
                frames = self.reader.get_batch(idx).asnumpy()
            except decord.DECORDError as e:
                # decord bug (dmlc/decord#336): output widths 16, 24, 48, 72 fail on every frame; PyAV reads them
                if s == 0 and "from_size == to_size" in str(e):
                    self.reader = None
                    yield from _rechunk(self._pyav_frames(), chunk)
                    return
                raise UnreadableInput(f"{self.path}: frames {idx[0]}-{idx[-1]} do not decode ({e})") from None
            yield frames

    def _pyav_frames(self) -> Iterator[np.ndarray]:
        from vasot_pipelines.video import VideoSource

        with VideoSource(self.path) as src:
            for frame in src:
                yield self.orientation.apply(pyav_rgb(frame, (self.size, self.size)))


# ------------------------------------------------------------------------------------------------ open
def open_clip(video: str | os.PathLike | np.ndarray, *, modality: str, image_size: int,
              fps: float | None = None, standardize: bool = False) -> Clip:
    """Open ``video`` for a model that reads ``modality`` (``data.modality``) at ``image_size``.

    ``standardize``: features are standardised over the whole video as the loaders do
    (:func:`vasot_dist.data.stages.standardize_features`, ``data.standardize``). ``fps``: the frame rate of
    an array (its times are then ``i / fps``), or one that overrides a container's (the frames stay the same).

    Raises:
        UnreadableInput: naming the input: missing or unreadable file, no frames, an array of the wrong shape
            or dtype for the model, a features file for a video model or the reverse.
    """
    if isinstance(video, np.ndarray):
        return _array_clip(video, modality=modality, image_size=image_size, fps=fps, standardize=standardize)
    path = os.fspath(video)
    if Path(path).suffix.lower() in FEATURE_SUFFIXES:
        if modality != "features":
            raise UnreadableInput(f"{path}: a features file, but this model reads video frames "
                                  "(data.modality=video)")
        from vasot_pipelines.shard import load_features

        if not os.path.isfile(path):
            raise UnreadableInput(f"{path}: no such file")
        try:
            feats = load_features(path, None, 0)
        except (OSError, ValueError) as e:
            raise UnreadableInput(f"{path}: unreadable features ({e})") from None
        return _array_clip(feats, modality=modality, image_size=image_size, fps=fps, standardize=standardize,
                           name=path)
    if modality != "video":
        raise UnreadableInput(f"{path}: this model reads features (data.modality=features): give a "
                              f"{' or '.join(FEATURE_SUFFIXES)} file or a (T, F) array, not a video")
    f = _VideoFile(path, image_size)
    return Clip(path, fps if fps is not None else f.fps, f.expected_frames, "video", f.chunks)


def _array_clip(arr: np.ndarray, *, modality: str, image_size: int, fps: float | None, standardize: bool = False,
                name: str = "array") -> Clip:
    if fps is not None and not fps > 0:
        raise UnreadableInput(f"{name}: fps must be positive, got {fps}")
    if len(arr) == 0:
        raise UnreadableInput(f"{name}: no frames")
    if modality == "features":
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
            raise UnreadableInput(f"{name}: a features model reads float (T, F) arrays, got {arr.dtype} {arr.shape}")
        feats = np.ascontiguousarray(arr, dtype=np.float32)
        if standardize:
            from vasot_dist.data.stages import standardize_features

            feats = standardize_features(feats)

        def chunks(chunk: int):
            for s in range(0, len(feats), chunk):
                yield feats[s:s + chunk]

        return Clip(name, fps, len(feats), "features", chunks)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise UnreadableInput(f"{name}: a video model reads uint8 (T, H, W, 3) RGB frames, got {arr.dtype} {arr.shape}")

    def frame_chunks(chunk: int):
        for s in range(0, len(arr), chunk):
            part = arr[s:s + chunk]
            if part.shape[1:3] != (image_size, image_size):
                part = np.stack([scale_to(f, (image_size, image_size)) for f in part])
            yield part

    return Clip(name, fps, len(arr), "video", frame_chunks)


def scale_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (H, W, 3) uint8 picture at ``size`` = (h, w), scaled by the PyAV call of the decoders."""
    import av

    return pyav_rgb(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24"), size)
