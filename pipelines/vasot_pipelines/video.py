"""Video I/O for the writers: decode any source with PyAV, resample to a constant fps, encode H.264.

Resampling picks, for each output frame, the source frame nearest in time (:func:`resample_plan`). A constant
frame rate source is timed by its frame index at its stated rate; a source whose timestamps do not follow its
stated rate (variable frame rate: phone and screen recordings, streams cut without re-encoding, or a rate the
container misstates) is timed by its timestamps (:func:`timestamp_plan`), so that a clip of 2.4 s gives 2.4 s
of frames at any ``--fps`` whatever rate it claims.

Everything happens in memory: :class:`H264Encoder` writes an mp4 into an ``io.BytesIO`` that goes
straight into a shard. The encoder uses a short GOP (a keyframe every ``gop`` frames, no B-frames, no
scene-cut keyframes) so a reader seeking to a random frame decodes at most ``gop`` frames.

Sources are read as a player shows them: the display matrix (a phone's "rotation -90", any quarter
turn with or without a mirror), the sample aspect ratio (non-square pixels) and, for image folders,
the EXIF orientation are applied before resizing, so the stored frames are upright, square-pixel
and carry no display metadata of their own.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

DEFAULT_GOP = 8
DEFAULT_CRF = 23
DEFAULT_PRESET = "veryfast"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def as_rate(fps: float | Fraction) -> Fraction:
    """A frame rate as a small fraction (29.97 -> 30000/1001); raises ValueError unless positive."""
    r = Fraction(fps).limit_denominator(1001)
    if r <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return r


def output_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) with the shorter side = ``short_side`` and the aspect kept, both rounded to even (yuv420p)."""
    if short_side < 2:
        raise ValueError(f"short_side must be >= 2, got {short_side}")
    s = short_side / min(height, width)
    h, w = (short_side, width * s) if height <= width else (height * s, short_side)
    return max(2, int(round(h / 2)) * 2), max(2, int(round(w / 2)) * 2)


class H264Encoder:
    """Encode frames of one size into an in-memory mp4 (H.264, yuv420p, constant ``fps``).

    Feed ``av.VideoFrame`` (any format/size: reformatted here) or uint8 ``(H, W, 3)`` RGB arrays to
    :meth:`add`; :meth:`finish` returns the mp4 bytes.
    """

    def __init__(self, height: int, width: int, fps: float | Fraction, *, gop: int = DEFAULT_GOP,
                 crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET, threads: int = 1):
        if height % 2 or width % 2:
            raise ValueError(f"H.264 yuv420p needs even sizes, got {height}x{width}")
        if gop < 1:
            raise ValueError(f"gop must be >= 1, got {gop}")
        self.height, self.width, self.rate = height, width, as_rate(fps)
        self.num_frames = 0
        self._buf = io.BytesIO()
        self._out = av.open(self._buf, mode="w", format="mp4")
        s = self._out.add_stream("libx264", rate=self.rate)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {
            "crf": str(crf),
            "preset": preset,
            # fixed GOP, no B-frames: exact frame counts and cheap random access. mbtree=0: x264's
            # macroblock-tree rate control (its AVX-512 code) gives different bitstreams for identical
            # frames depending on what the process did before (e.g. frame-threaded decoding), which
            # breaks "a resumed run writes the same shards"; without it files are ~10 % larger.
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:mbtree=0",
        }
        s.codec_context.thread_count = threads
        self._stream = s

    def add(self, frame: av.VideoFrame | np.ndarray) -> None:
        if isinstance(frame, np.ndarray):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, dtype=np.uint8), format="rgb24")
        if frame.width != self.width or frame.height != self.height or frame.format.name != "yuv420p":
            frame = frame.reformat(width=self.width, height=self.height, format="yuv420p", interpolation="AREA")
        frame.pts = self.num_frames
        frame.time_base = 1 / self.rate
        self._out.mux(self._stream.encode(frame))
        self.num_frames += 1

    def finish(self) -> bytes:
        if self.num_frames == 0:
            self._out.close()
            raise ValueError("no frames were encoded")
        self._out.mux(self._stream.encode(None))
        self._out.close()
        return self._buf.getvalue()


def encode_frames(frames: np.ndarray, fps: float, **kw) -> bytes:
    """uint8 (T, H, W, 3) RGB -> mp4 bytes (sizes must be even)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {frames.shape}")
    enc = H264Encoder(frames.shape[1], frames.shape[2], fps, **kw)
    for f in frames:
        enc.add(f)
    return enc.finish()


# ------------------------------------------------------------------------------ display orientation
@dataclass(frozen=True)
class Orientation:
    """How a player turns decoded pixels into what it shows, for the eight orientations a display
    matrix can hold with quarter turns and mirrors: transpose the axes first, then mirror
    left-right (``hflip``) and/or top-bottom (``vflip``)."""

    transpose: bool = False
    hflip: bool = False
    vflip: bool = False

    @property
    def identity(self) -> bool:
        return not (self.transpose or self.hflip or self.vflip)

    @classmethod
    def from_display_matrix(cls, m: Sequence[int]) -> Orientation:
        """Read FFmpeg's 3x3 display matrix ``(a, b, u, c, d, v, x, y, w)`` (libavutil/display.h): the
        decoded pixel at column p, row q is shown at column ``a·p + c·q`` and row ``b·p + d·q`` (plus a
        translation). ValueError unless it is a quarter turn with or without a mirror; the scale of
        the entries is ignored, as players ignore it."""
        a, b, c, d = int(m[0]), int(m[1]), int(m[3]), int(m[4])
        if b == c == 0 and a and d:
            return cls(False, a < 0, d < 0)
        if a == d == 0 and b and c:
            # shown column from the source row, shown row from the source column
            return cls(True, c < 0, b < 0)
        raise ValueError(f"display matrix {[int(v) for v in m]} is not a rotation by a multiple of 90 degrees "
                         "(with or without a mirror); re-encode the video upright first")

    @classmethod
    def of_frame(cls, frame: av.VideoFrame) -> Orientation:
        """The orientation of a decoded frame: FFmpeg attaches the stream's display matrix (mp4/mov
        ``tkhd`` matrix, or an H.264/HEVC display-orientation message) to every frame."""
        sd = frame.side_data.get("DISPLAYMATRIX")
        if sd is None:
            return cls()
        return cls.from_display_matrix(np.frombuffer(bytes(sd), dtype=np.int32))

    def shown_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of a decoded (height, width) picture as shown."""
        return (width, height) if self.transpose else (height, width)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """(H, W, C) decoded -> the shown picture ((W, H, C) when transposed), contiguous."""
        if self.transpose:
            image = image.swapaxes(0, 1)
        if self.hflip:
            image = image[:, ::-1]
        if self.vflip:
            image = image[::-1]
        return np.ascontiguousarray(image)


def shown_image(frame: av.VideoFrame, orientation: Orientation, size: tuple[int, int]) -> np.ndarray:
    """uint8 (h, w, 3) RGB: ``frame`` as a player shows it, scaled to ``size`` = (h, w).

    Scaled before it is turned (the turn is a copy; cheaper on the small picture)."""
    h, w = orientation.shown_size(*size)  # the decoded picture's (h, w) that turns into ``size``
    rgb = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
    return orientation.apply(rgb)


# ------------------------------------------------------------------------------------------ sources
@dataclass
class SourceInfo:
    """``height`` x ``width``: the picture as a player shows it (orientation and pixel aspect applied).

    ``times``: presentation time of each frame in seconds from the first, when the source's timestamps do not
    follow the constant rate ``fps`` (then ``fps`` is the mean rate); None for a constant-rate source, whose
    frame i is at ``i / fps``."""

    fps: Fraction
    height: int
    width: int
    orientation: Orientation = Orientation()
    times: tuple[Fraction, ...] | None = None

    @property
    def variable_rate(self) -> bool:
        return self.times is not None


def frame_times(path: str, index: int = 0) -> list[Fraction] | None:
    """Presentation times (seconds from the first frame, sorted) of the video stream ``index`` of ``path``,
    read from the container's packets without decoding; None when a packet has no timestamp."""
    with av.open(path) as container:
        stream = container.streams.video[index]
        pts = []
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's flush packet
                continue
            if packet.pts is None:
                return None
            pts.append(packet.pts)
        if not pts:
            return None
        pts.sort()
        return [Fraction(p - pts[0]) * stream.time_base for p in pts]


def follows_rate(times: Sequence[Fraction], rate: Fraction) -> bool:
    """Whether frame i of ``times`` is shown at ``i / rate`` to within half a frame, for every i (a constant
    rate source, up to the rounding of its time base)."""
    half = Fraction(1, 2) / rate
    return all(abs(t - i / rate) <= half for i, t in enumerate(times))


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | os.PathLike) -> list[str]:
    """Image files of a frame folder in natural order (``2.jpg`` before ``10.jpg``)."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTS)]
    return [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]


def _read_image(path: str) -> np.ndarray:
    """uint8 (H, W, 3) RGB of an image file, EXIF orientation applied (as image viewers do)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


class VideoSource:
    """Frames of a video file (anything FFmpeg reads: mp4, avi, webm, ...) or of a folder of images.

    ``fps`` overrides the container's rate (required for image folders). Iterate (once) to get
    ``av.VideoFrame`` in presentation order, as decoded: turn them with :func:`shown_image` and
    ``info.orientation``. ``info`` is known after construction, which decodes the first frame (the
    display matrix comes with the frames) and raises ValueError when there is none.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None, threads: int = 0):
        self.path = os.fspath(path)
        self._container = None
        if os.path.isdir(self.path):
            self._files = list_frame_files(self.path)
            if not self._files:
                raise ValueError(f"frame folder {self.path} holds no {'/'.join(IMAGE_EXTS)} images")
            if fps is None:
                raise ValueError(f"frame folder {self.path} needs an fps (manifest field 'fps' or --source-fps)")
            h, w = _read_image(self._files[0]).shape[:2]
            self.info = SourceInfo(as_rate(fps), h, w)
            return
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no such file: {self.path}")
        self._files = None
        self._container = av.open(self.path)
        try:
            self._open_stream(fps, threads)
        except BaseException:
            self.close()
            raise

    def _open_stream(self, fps: float | None, threads: int) -> None:
        if not self._container.streams.video:
            raise ValueError(f"{self.path} has no video stream")
        s = self._container.streams.video[0]
        s.thread_type = "AUTO"
        if threads:
            s.codec_context.thread_count = threads
        rate = fps if fps is not None else (s.average_rate or s.guessed_rate or s.base_rate)
        if not rate:
            raise ValueError(f"{self.path}: the container states no frame rate; give one with 'fps'")
        times = None
        if fps is None:  # an explicit rate (the manifest's 'fps') is the user's word; else ask the timestamps
            found = frame_times(self.path, s.index)
            if found is not None and len(found) > 1 and not follows_rate(found, as_rate(rate)):
                times = tuple(found)
                rate = Fraction(len(found) - 1) / found[-1] if found[-1] > 0 else rate
        self._frames = self._container.decode(s)
        self._first = next(self._frames, None)
        if self._first is None:
            raise ValueError("no decodable frames")
        orientation = Orientation.of_frame(self._first)
        sar = s.sample_aspect_ratio or s.codec_context.sample_aspect_ratio
        width = self._first.width
        if sar and sar > 0 and sar != 1:  # non-square pixels: a player stretches the width
            width = max(1, round(width * sar))
        h, w = orientation.shown_size(self._first.height, width)
        self.info = SourceInfo(as_rate(rate), h, w, orientation, times)

    def __iter__(self) -> Iterator[av.VideoFrame]:
        if self._files is not None:
            for p in self._files:
                yield av.VideoFrame.from_ndarray(_read_image(p), format="rgb24")
            return
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._frames

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def resample_plan(num_src: int, src_fps: float | Fraction, dst_fps: float | Fraction) -> np.ndarray:
    """Nearest-frame selection: for each output frame j (time j/dst_fps), the source frame index.

    Source frame i covers [(i - 1/2)/src_fps, (i + 1/2)/src_fps); output frames run while their
    time falls inside the source's last frame. Identity when the rates are equal. Returns int (M,).
    """
    if num_src < 1:
        raise ValueError("num_src must be >= 1")
    ratio = Fraction(src_fps) / Fraction(dst_fps)  # source frames per output frame
    # j * ratio < num_src - 1/2  <=>  j < (num_src - 1/2) / ratio
    limit = (Fraction(num_src) - Fraction(1, 2)) / ratio
    m = int(limit) + (0 if limit == int(limit) else 1)
    j = np.arange(m, dtype=np.int64)
    # round half up: floor(j * ratio + 1/2), exact in integer arithmetic
    src = (2 * j * ratio.numerator + ratio.denominator) // (2 * ratio.denominator)
    return np.minimum(src, num_src - 1)


def timestamp_plan(times: Sequence[Fraction], dst_fps: float | Fraction) -> np.ndarray:
    """Nearest-frame selection by timestamps: for each output frame j (time ``j / dst_fps``), the index of the
    source frame whose time in ``times`` (seconds from the first, increasing) is nearest, ties to the later one.

    Output frames run while their time falls inside the last source frame, which lasts as long as the interval
    before it. With ``times[i] = i / src_fps`` this is :func:`resample_plan` exactly. Returns int (M,).
    """
    if not times:
        raise ValueError("times is empty")
    t = [Fraction(v) for v in times]
    if any(b <= a for a, b in zip(t, t[1:])):
        raise ValueError("times must increase")
    last = t[-1] - t[-2] if len(t) > 1 else Fraction(1) / as_rate(dst_fps)
    end = t[-1] + last / 2  # output times below this are inside the last frame
    mids = [(a + b) / 2 for a, b in zip(t, t[1:])]  # frame i is nearest on [mids[i-1], mids[i])
    step = 1 / as_rate(dst_fps)
    out, j, i = [], 0, 0
    while j * step < end:
        while i < len(mids) and mids[i] <= j * step:
            i += 1
        out.append(i)
        j += 1
    return np.asarray(out, dtype=np.int64)


def transcode(source: VideoSource, *, short_side: int, fps: float | Fraction | None, gop: int = DEFAULT_GOP,
              crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET, threads: int = 1
              ) -> tuple[bytes, np.ndarray, int, tuple[int, int], Fraction]:
    """Decode ``source``, resample to ``fps`` (None: keep the source rate), resize, encode H.264.

    Frames are stored as a player shows them (``source.info``: orientation, pixel aspect). A variable-rate
    source (``source.info.times``) is resampled by its timestamps (:func:`timestamp_plan`; None: to its mean
    rate), a constant-rate one by frame index (:func:`resample_plan`). Streams: frames are never all held in
    memory. Returns (mp4 bytes, src_index (M,) the source frame behind each output frame, number of decoded
    source frames, (height, width), output rate).
    Raises ValueError when no frame decodes, or when a variable-rate source decodes to another number of frames
    than it has timestamps; decoder errors propagate.
    """
    src_rate = source.info.fps
    orientation = source.info.orientation
    out_rate = src_rate if fps is None else as_rate(fps)
    ratio = src_rate / out_rate
    times = source.info.times
    planned = None if times is None else timestamp_plan(times, out_rate)
    h, w = output_size(source.info.height, source.info.width, short_side)
    enc = H264Encoder(h, w, out_rate, gop=gop, crf=crf, preset=preset, threads=threads)
    src_index: list[int] = []
    n_src = 0
    j = 0
    for i, frame in enumerate(source):
        n_src = i + 1
        # emit every output frame whose nearest source frame is i (see resample_plan / timestamp_plan)
        if not orientation.identity:
            frame = shown_image(frame, orientation, (h, w))
        while (j < len(planned) and planned[j] <= i) if planned is not None else \
                (2 * j * ratio.numerator + ratio.denominator) // (2 * ratio.denominator) <= i:
            enc.add(frame)
            src_index.append(i)
            j += 1
    if n_src == 0:
        enc._out.close()
        raise ValueError("no decodable frames")
    if planned is not None:
        if n_src != len(times):
            enc._out.close()
            raise ValueError(f"variable frame rate: {n_src} frames decode but the container has {len(times)} "
                             "timestamps; re-encode the source at a constant rate first")
        return enc.finish(), planned, n_src, (h, w), out_rate
    # frames after the last decoded one would exceed the source: drop them (matches resample_plan)
    plan = resample_plan(n_src, src_rate, out_rate)
    if len(src_index) != len(plan) or not np.array_equal(np.array(src_index), plan):
        raise AssertionError("streaming resampler disagrees with resample_plan")  # pragma: no cover
    return enc.finish(), plan, n_src, (h, w), out_rate


def measure_mp4(data: bytes) -> tuple[int, int, int]:
    """Open mp4 bytes with decord (the loaders' decoder) and decode the last frame.

    Returns (num_frames, height, width); raises ValueError if decord cannot read it.
    """
    import decord

    try:
        vr = decord.VideoReader(io.BytesIO(data), num_threads=1)
        n = len(vr)
        if n < 1:
            raise ValueError("decord reports zero frames")
        last = vr[n - 1].asnumpy()
    except decord.DECORDError as e:  # pragma: no cover - depends on the file
        raise ValueError(f"decord cannot read the encoded mp4: {e}") from e
    return n, int(last.shape[0]), int(last.shape[1])
