"""``vasot-synthetic``: the built-in procedural benchmark (videos or features with known alignment).

Each activity is a canonical sequence of K steps. A step is a visual motif: a **shape** with a
**texture** moving with a **motion** (left-right, up-down, orbit, spin, grow, diagonal); motion is
driven by the frame's progress within the step, so the pose also says *where* in the step a frame
is. The motif's colours are drawn per video, so colour never identifies a step; the scene has a
random textured background with static clutter, drifting distractor blobs, camera jitter, brightness
flicker and pixel noise. Each video draws, with the configured probabilities:

- ``p_time_warp``: speed changes: step durations scaled by random factors and a non-linear pace
  inside each step (otherwise durations are proportional to the activity's canonical durations);
- ``p_background``: one or two background/distractor segments (no step motif);
- ``p_redundant``: a redundant step: a motif of no step of the activity, present in this video only
  (labelled background: it matches nothing in another video);
- ``p_repeat``: a step done again later, after at least one other step;
- ``p_permute``: the step order shuffled (non-monotonic).

Per frame the sample JSON stores ``labels`` (global step id ``a * K + k``, background ``A * K``),
``steps`` (k, -1 on background) and ``progress``: the frame's canonical position in [0, 1] along the
activity (canonical step durations; -1 on background), so two frames of two videos of one activity
correspond when their progress is equal.

Feature mode writes ``(N, D)`` arrays with the same timelines: step means + a within-step progress
direction + per-video nuisance offsets (in a few fixed directions) + noise. Everything is a pure
function of (seed, activity, split, video index): same seed, same bytes of every array.
"""

from __future__ import annotations

import argparse
import colorsys
import dataclasses
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vasot_dist.config.schema import SyntheticConfig
from vasot_dist.data import format as fmt

from .video import encode_frames, measure_mp4
from .writer import DatasetWriter, Sample

SYNTHETIC_FPS = 15.0  # SyntheticConfig has no fps field; proposed as an addition
SHAPES = ("circle", "ring", "square", "diamond", "triangle", "cross", "bar", "frame")
TEXTURES = ("solid", "stripes", "checker", "dots")
MOTIONS = ("left_right", "up_down", "orbit", "spin", "grow", "diagonal")
BACKGROUND_NAME = "background"
_MAX_EXTRA_SEGMENTS = 4  # 1 repeat + 1 redundant + 2 background


# ------------------------------------------------------------------------------------ planning
@dataclass(frozen=True)
class Motif:
    shape: str
    texture: str
    motion: str


@dataclass
class ActivityPlan:
    """The canonical step sequence of one activity: motifs (K,) and durations (K,) summing to 1."""

    motifs: list[Motif]
    durations: np.ndarray

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(self.durations)[:-1]])


@dataclass
class Segment:
    kind: str  # step | background | redundant
    step: int  # canonical step index, -1 otherwise
    length: int
    gamma: float = 1.0  # pace inside the segment: u = ((i + 0.5) / L) ** gamma


@dataclass
class Timeline:
    """Per-frame ground truth of one video; arrays have one entry per frame."""

    segments: list[Segment]
    labels: np.ndarray  # int64 (N,)
    steps: np.ndarray  # int64 (N,), -1 background
    progress: np.ndarray  # float64 (N,), -1 background
    within: np.ndarray  # float64 (N,), progress inside the frame's segment in (0, 1)
    flags: dict[str, bool] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.labels)


def activity_name(a: int) -> str:
    return f"activity{a}"


def label_map(cfg: SyntheticConfig) -> dict[str, int]:
    """``activity{a}_step{k}`` -> a * K + k, and ``background`` -> A * K."""
    k = cfg.steps_per_activity
    m = {f"{activity_name(a)}_step{s}": a * k + s for a in range(cfg.num_activities) for s in range(k)}
    m[BACKGROUND_NAME] = cfg.num_activities * k
    return m


def validate_config(cfg: SyntheticConfig, *, index_overlay: bool = False) -> None:
    """ValueError naming the SyntheticConfig field that cannot work."""
    if cfg.num_activities < 1 or cfg.steps_per_activity < 1:
        raise ValueError("synthetic.num_activities and synthetic.steps_per_activity must be >= 1")
    if cfg.videos_per_activity < 0 or cfg.test_videos_per_activity < 0:
        raise ValueError("synthetic.videos_per_activity / test_videos_per_activity must be >= 0")
    need = cfg.steps_per_activity + _MAX_EXTRA_SEGMENTS
    if cfg.frames_min < need:
        raise ValueError(f"synthetic.frames_min={cfg.frames_min} must be >= steps_per_activity + 4 = {need} "
                         "(one frame per segment at least)")
    if cfg.frames_max < cfg.frames_min:
        raise ValueError(f"synthetic.frames_max={cfg.frames_max} < frames_min={cfg.frames_min}")
    if cfg.size < 16 or cfg.size % 2:
        raise ValueError(f"synthetic.size={cfg.size} must be even and >= 16 (H.264 yuv420p)")
    if cfg.feature_dim < 1:
        raise ValueError("synthetic.feature_dim must be >= 1")
    for name in ("p_time_warp", "p_background", "p_redundant", "p_repeat", "p_permute"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"synthetic.{name}={getattr(cfg, name)} must be in [0, 1]")
    if cfg.num_activities * cfg.steps_per_activity > len(SHAPES) * len(TEXTURES) * len(MOTIONS):
        raise ValueError("too many steps for distinct motifs")
    if index_overlay:
        if cfg.size < 60:  # blocks of size / 10 px: >= 6 px survive H.264 reliably
            raise ValueError(f"synthetic.size={cfg.size}: the frame-index overlay needs size >= 60")
        if cfg.frames_max > fmt.OVERLAY_MAX_INDEX + 1:
            raise ValueError(f"synthetic.frames_max={cfg.frames_max}: overlay encodes indices < "
                             f"{fmt.OVERLAY_MAX_INDEX + 1}")


def _split_code(split: str) -> int:
    return zlib.crc32(split.encode())


def activity_plan(cfg: SyntheticConfig, a: int) -> ActivityPlan:
    """Motifs and canonical durations of activity ``a``; motifs are distinct over all activities."""
    taken: set[Motif] = set()
    plan = None
    for b in range(a + 1):  # earlier activities first, so motifs never repeat across activities
        rng = np.random.default_rng([cfg.seed, 0, b])
        k = cfg.steps_per_activity
        # permutations: shapes, textures and motions differ between the steps of one activity as far
        # as their counts allow, so no single attribute is constant over an activity
        shapes = [SHAPES[i] for i in rng.permutation(len(SHAPES))]
        textures = [TEXTURES[i] for i in rng.permutation(len(TEXTURES))]
        motions = [MOTIONS[i] for i in rng.permutation(len(MOTIONS))]
        motifs: list[Motif] = []
        for s in range(k):
            m = Motif(shapes[s % len(shapes)], textures[s % len(textures)], motions[s % len(motions)])
            while m in taken:
                m = Motif(SHAPES[rng.integers(len(SHAPES))], TEXTURES[rng.integers(len(TEXTURES))],
                          MOTIONS[rng.integers(len(MOTIONS))])
            taken.add(m)
            motifs.append(m)
        w = rng.uniform(0.6, 1.4, size=k)
        plan = ActivityPlan(motifs, w / w.sum())
    assert plan is not None
    return plan


def _allocate(n: int, weights: np.ndarray) -> np.ndarray:
    """Split n frames over segments in proportion to weights (largest remainder), each >= 1."""
    w = np.asarray(weights, dtype=np.float64)
    raw = (n - len(w)) * w / w.sum()
    base = np.floor(raw).astype(int)
    rest = (n - len(w)) - base.sum()
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:rest]] += 1
    return base + 1


def video_timeline(cfg: SyntheticConfig, a: int, split: str, v: int) -> Timeline:
    """The segment structure and per-frame ground truth of video ``v`` of activity ``a`` in ``split``."""
    plan = activity_plan(cfg, a)
    k = cfg.steps_per_activity
    rng = np.random.default_rng([cfg.seed, 1, a, _split_code(split), v])
    flags = {name: bool(rng.random() < getattr(cfg, f"p_{name}"))
             for name in ("permute", "repeat", "redundant", "background", "time_warp")}
    order = list(range(k))
    if flags["permute"] and k > 1:
        while order == sorted(order):
            order = [int(i) for i in rng.permutation(k)]
    else:
        flags["permute"] = False
    segs = [Segment("step", s, 0) for s in order]
    weights = [plan.durations[s] for s in order]
    if flags["repeat"] and k > 1:
        p = int(rng.integers(0, len(segs) - 1))
        q = int(rng.integers(p + 2, len(segs) + 1))
        segs.insert(q, Segment("step", segs[p].step, 0))
        weights.insert(q, 0.6 * weights[p])
    else:
        flags["repeat"] = False
    mean_w = 1.0 / k
    if flags["redundant"]:
        q = int(rng.integers(0, len(segs) + 1))
        segs.insert(q, Segment("redundant", -1, 0))
        weights.insert(q, mean_w * rng.uniform(0.5, 1.0))
    if flags["background"]:
        for _ in range(int(rng.integers(1, 3))):
            q = int(rng.integers(0, len(segs) + 1))
            segs.insert(q, Segment("background", -1, 0))
            weights.insert(q, mean_w * rng.uniform(0.4, 1.0))
    weights = np.asarray(weights)
    if flags["time_warp"]:
        weights = weights * np.exp(rng.uniform(-0.7, 0.7, size=len(weights)))
        for s in segs:
            s.gamma = float(np.exp(rng.uniform(-0.6, 0.6)))
    n = int(rng.integers(cfg.frames_min, cfg.frames_max + 1))
    lengths = _allocate(n, weights)
    bg = cfg.num_activities * k
    labels, steps, progress, within = [], [], [], []
    for s, length in zip(segs, lengths):
        s.length = int(length)
        u = ((np.arange(length) + 0.5) / length) ** s.gamma
        within.append(u)
        if s.kind == "step":
            labels.append(np.full(length, a * k + s.step))
            steps.append(np.full(length, s.step))
            progress.append(plan.starts[s.step] + u * plan.durations[s.step])
        else:
            labels.append(np.full(length, bg))
            steps.append(np.full(length, -1))
            progress.append(np.full(length, -1.0))
    return Timeline(segs, np.concatenate(labels).astype(np.int64), np.concatenate(steps).astype(np.int64),
                    np.concatenate(progress), np.concatenate(within), flags)


# ------------------------------------------------------------------------------------- drawing
def _shape_mask(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of a unit-size shape in object coordinates (x, y in units of the object radius)."""
    ax, ay = np.abs(x), np.abs(y)
    if shape == "circle":
        return x * x + y * y < 1.0
    if shape == "ring":
        r2 = x * x + y * y
        return (r2 < 1.0) & (r2 > 0.36)
    if shape == "square":
        return np.maximum(ax, ay) < 0.85
    if shape == "diamond":
        return ax + ay < 1.1
    if shape == "triangle":
        return (y < 0.75) & (y > 1.7 * ax - 1.0)
    if shape == "cross":
        return ((ax < 0.3) & (ay < 1.0)) | ((ay < 0.3) & (ax < 1.0))
    if shape == "bar":
        return (ax < 1.1) & (ay < 0.35)
    if shape == "frame":
        m = np.maximum(ax, ay)
        return (m < 0.9) & (m > 0.55)
    raise ValueError(f"unknown shape {shape!r}")


def _texture(texture: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1 where the motif shows its primary colour, 0 where its secondary."""
    if texture == "solid":
        return np.ones_like(x, dtype=bool)
    if texture == "stripes":
        return np.sin(np.pi * 2.5 * x) > 0
    if texture == "checker":
        return (np.floor(1.6 * x) + np.floor(1.6 * y)) % 2 == 0
    if texture == "dots":
        fx, fy = np.mod(1.6 * x, 1.0) - 0.5, np.mod(1.6 * y, 1.0) - 0.5
        return fx * fx + fy * fy > 0.09
    raise ValueError(f"unknown texture {texture!r}")


def _motion(motion: str, u: np.ndarray, size: int, off: np.ndarray) -> tuple[np.ndarray, ...]:
    """Centre (cx, cy) in px, rotation (rad) and scale of a motif at within-step progress u (T,)."""
    s = float(size)
    cx, cy = np.full_like(u, 0.5 * s), np.full_like(u, 0.55 * s)
    theta, scale = np.zeros_like(u), np.ones_like(u)
    if motion == "left_right":
        cx = s * (0.22 + 0.56 * u)
    elif motion == "up_down":
        cy = s * (0.22 + 0.56 * u)
    elif motion == "orbit":
        cx = s * (0.5 + 0.24 * np.cos(2 * np.pi * u))
        cy = s * (0.55 + 0.24 * np.sin(2 * np.pi * u))
    elif motion == "spin":
        theta = np.pi * u
    elif motion == "grow":
        scale = 0.55 + 0.9 * u
    elif motion == "diagonal":
        cx, cy = s * (0.22 + 0.56 * u), s * (0.78 - 0.56 * u)
    else:
        raise ValueError(f"unknown motion {motion!r}")
    return cx + off[0] * s, cy + off[1] * s, theta, scale


def _random_colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
    return np.array([r, g, b], dtype=np.float32) * 255.0


def _draw_motif(frames: np.ndarray, motif: Motif, u: np.ndarray, rng: np.random.Generator,
                jx: np.ndarray, jy: np.ndarray) -> None:
    """Draw one motif over frames (T, S, S, 3) float32 in place; u (T,) progress in the segment."""
    t, size = frames.shape[:2]
    off = rng.uniform(-0.06, 0.06, size=2)
    radius = size * 0.17 * rng.uniform(0.85, 1.15)
    c1 = _random_colour(rng, (0.5, 1.0), (0.65, 1.0))
    c2 = c1 * rng.uniform(0.25, 0.45)
    cx, cy, theta, scale = _motion(motif.motion, u, size, off)
    cx, cy = cx - jx, cy - jy  # the camera moves, the scene does not
    grid = np.arange(size, dtype=np.float32) + 0.5
    dx = grid[None, None, :] - cx[:, None, None].astype(np.float32)
    dy = grid[None, :, None] - cy[:, None, None].astype(np.float32)
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    r = (radius * scale)[:, None, None]
    x = ((dx * cos + dy * sin) / r).astype(np.float32)
    y = ((-dx * sin + dy * cos) / r).astype(np.float32)
    mask = _shape_mask(motif.shape, x, y)
    primary = _texture(motif.texture, x[mask], y[mask])
    frames[mask] = np.where(primary[:, None], c1, c2)


def _draw_blobs(frames: np.ndarray, rng: np.random.Generator, count: int, jx: np.ndarray, jy: np.ndarray) -> None:
    """Small drifting distractor discs/squares with random colours."""
    t, size = frames.shape[:2]
    grid = np.arange(size, dtype=np.float32) + 0.5
    steps = np.arange(t, dtype=np.float32)
    for _ in range(count):
        p0 = rng.uniform(0.1, 0.9, size=2) * size
        vel = rng.normal(0, 0.012 * size, size=2)
        rad = size * rng.uniform(0.04, 0.08)
        colour = _random_colour(rng, (0.0, 0.7), (0.2, 0.95))
        cx = (p0[0] + vel[0] * steps) % size - jx
        cy = (p0[1] + vel[1] * steps) % size - jy
        dx = np.abs(grid[None, None, :] - cx[:, None, None])
        dy = np.abs(grid[None, :, None] - cy[:, None, None])
        mask = (dx * dx + dy * dy < rad * rad) if rng.random() < 0.5 else (np.maximum(dx, dy) < rad)
        np.copyto(frames, colour, where=mask[..., None])


def _background(rng: np.random.Generator, size: int, margin: int) -> np.ndarray:
    """A textured scene larger than the frame by ``margin`` on each side: (S+2m, S+2m, 3) float32."""
    n = size + 2 * margin
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / size
    field_ = np.zeros((n, n), dtype=np.float32)
    for _ in range(3):
        f = rng.uniform(0.5, 3.0, size=2)
        field_ += np.sin(2 * np.pi * (f[0] * xx + f[1] * yy) + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    field_ = (field_ - field_.min()) / (np.ptp(field_) + 1e-6)
    ca = _random_colour(rng, (0.0, 0.4), (0.25, 0.6))
    cb = _random_colour(rng, (0.0, 0.4), (0.45, 0.85))
    scene = ca * field_[..., None] + cb * (1.0 - field_[..., None])
    for _ in range(int(rng.integers(2, 5))):  # static clutter
        y0, x0 = rng.integers(0, n - size // 6, size=2)
        h, w = rng.integers(size // 12, size // 5, size=2)
        scene[y0:y0 + h, x0:x0 + w] = _random_colour(rng, (0.0, 0.5), (0.2, 0.8))
    return scene


def render_video(cfg: SyntheticConfig, a: int, split: str, v: int, *, index_overlay: bool = False
                 ) -> tuple[np.ndarray, Timeline]:
    """Frames uint8 (N, S, S, 3) and the timeline of video ``v`` of activity ``a`` in ``split``."""
    tl = video_timeline(cfg, a, split, v)
    plan = activity_plan(cfg, a)
    rng = np.random.default_rng([cfg.seed, 2, a, _split_code(split), v])
    size, n = cfg.size, tl.num_frames
    margin = max(2, size // 16)
    scene = _background(rng, size, margin)
    # camera jitter: a clipped random walk of the crop window
    walk = np.clip(np.cumsum(rng.normal(0, 0.6, size=(n, 2)), axis=0), -margin, margin)
    walk = np.round(walk).astype(int)
    jx, jy = walk[:, 0].astype(np.float32), walk[:, 1].astype(np.float32)
    rows = (margin + walk[:, 1])[:, None] + np.arange(size)[None, :]
    cols = (margin + walk[:, 0])[:, None] + np.arange(size)[None, :]
    frames = scene[rows[:, :, None], cols[:, None, :]]  # (N, S, S, 3)
    _draw_blobs(frames, rng, int(rng.integers(0, 3)), jx, jy)
    used = set(plan.motifs)
    start = 0
    for seg in tl.segments:
        sl = slice(start, start + seg.length)
        u = tl.within[sl]
        if seg.kind == "step":
            _draw_motif(frames[sl], plan.motifs[seg.step], u, rng, jx[sl], jy[sl])
        elif seg.kind == "redundant":
            while True:
                m = Motif(SHAPES[rng.integers(len(SHAPES))], TEXTURES[rng.integers(len(TEXTURES))],
                          MOTIONS[rng.integers(len(MOTIONS))])
                if m not in used:
                    break
            _draw_motif(frames[sl], m, u, rng, jx[sl], jy[sl])
        else:
            _draw_blobs(frames[sl], rng, int(rng.integers(2, 4)), jx[sl], jy[sl])
        start += seg.length
    frames *= (1.0 + rng.normal(0, 0.04, size=(n, 1, 1, 1))).astype(np.float32)  # flicker
    noise = rng.standard_normal(frames.shape, dtype=np.float32)
    noise *= 6.0
    frames += noise
    np.clip(frames, 0, 255, out=frames)
    out = frames.astype(np.uint8)
    if index_overlay:
        fmt.draw_frame_index(out)
    return out, tl


def synth_features(cfg: SyntheticConfig, a: int, split: str, v: int) -> tuple[np.ndarray, Timeline]:
    """Features float32 (N, D) with the same timeline as :func:`render_video` for the same arguments.

    x_t = mu_step + (u_t - 1/2) * delta_step + o_video + 0.5 * noise, where mu/delta are fixed per
    (activity, step), o_video lies in a 4-dim nuisance subspace; background frames are a shared mean
    with twice the noise, redundant frames a per-video mean.
    """
    tl = video_timeline(cfg, a, split, v)
    d, k = cfg.feature_dim, cfg.steps_per_activity
    g = np.random.default_rng([cfg.seed, 3])
    scale = 2.0 / np.sqrt(d)
    mus = g.standard_normal((cfg.num_activities, k, d)) * scale
    deltas = g.standard_normal((cfg.num_activities, k, d))
    deltas /= np.linalg.norm(deltas, axis=-1, keepdims=True)
    mu_bg = g.standard_normal(d) * scale
    nuisance = g.standard_normal((min(4, d), d)) * scale
    rng = np.random.default_rng([cfg.seed, 4, a, _split_code(split), v])
    offset = rng.standard_normal(len(nuisance)) @ nuisance * 0.7
    noise = rng.standard_normal((tl.num_frames, d)) * (0.5 / np.sqrt(d))
    x = np.empty((tl.num_frames, d))
    start = 0
    for seg in tl.segments:
        sl = slice(start, start + seg.length)
        if seg.kind == "step":
            x[sl] = mus[a, seg.step] + (tl.within[sl, None] - 0.5) * deltas[a, seg.step] + noise[sl]
        elif seg.kind == "redundant":
            x[sl] = rng.standard_normal(d) * scale + noise[sl]
        else:
            x[sl] = mu_bg + 2.0 * noise[sl]
        start += seg.length
    return (x + offset).astype(np.float32), tl


# ------------------------------------------------------------------------------------- writing
def make_sample(cfg: SyntheticConfig, a: int, split: str, v: int, modality: str = "video",
                index_overlay: bool = False) -> Sample:
    """One synthetic video (or feature array) encoded as a shard sample."""
    common = dict(key=fmt.make_key(activity_name(a), f"{split}{v:04d}"), dataset="synthetic",
                  activity=activity_name(a), split=split, fps=SYNTHETIC_FPS, source=f"synthetic:{cfg.seed}")
    if modality == "features":
        x, tl = synth_features(cfg, a, split, v)
        meta = fmt.sample_meta(**common, labels=tl.labels.tolist(), feature_dim=cfg.feature_dim,
                               progress=tl.progress.tolist(), steps=tl.steps.tolist())
        return Sample(meta, fmt.features_to_bytes(x), fmt.FEATURES_EXT)
    frames, tl = render_video(cfg, a, split, v, index_overlay=index_overlay)
    mp4 = encode_frames(frames, SYNTHETIC_FPS, preset="veryfast")
    n, h, w = measure_mp4(mp4)
    if n != tl.num_frames or (h, w) != (cfg.size, cfg.size):
        raise RuntimeError(f"decord reads {n} frames of {h}x{w}, {tl.num_frames} of {cfg.size}^2 written")
    meta = fmt.sample_meta(**common, labels=tl.labels.tolist(), height=h, width=w,
                           progress=tl.progress.tolist(), steps=tl.steps.tolist())
    return Sample(meta, mp4, fmt.VIDEO_EXT)


def _make_sample_star(args: tuple) -> Sample:
    return make_sample(*args)


def generate_synthetic(out_dir: str | Path, cfg: SyntheticConfig | None = None, *, modality: str = "video",
                       splits: Sequence[str] = ("train", "test"), workers: int = 1, index_overlay: bool = False,
                       max_shard_samples: int = 1, progress: bool = False) -> Path:
    """Write the synthetic benchmark as shards + ``dataset.json`` into ``out_dir``; returns the json path.

    ``train`` holds ``videos_per_activity`` videos per activity, any other split
    ``test_videos_per_activity``. Shards hold ``max_shard_samples`` videos (default 1, so that even
    the small default set has at least ranks x workers shards). Re-running with the same arguments
    keeps what is there (resumable writer) and rewrites only ``dataset.json``.
    """
    cfg = cfg or SyntheticConfig()
    validate_config(cfg, index_overlay=index_overlay and modality == "video")
    if modality not in fmt.MODALITIES:
        raise ValueError(f"modality must be one of {fmt.MODALITIES}, got {modality!r}")
    lm = label_map(cfg)
    writer = DatasetWriter(
        out_dir, name="synthetic", modality=modality, label_map=lm, background_id=lm[BACKGROUND_NAME],
        fps=SYNTHETIC_FPS, short_side=cfg.size if modality == "video" else None,
        max_shard_samples=max_shard_samples,
        settings={"synthetic": dataclasses.asdict(cfg), "index_overlay": bool(index_overlay)})
    jobs = []
    for split in splits:
        fmt.check_split(split)
        count = cfg.videos_per_activity if split == "train" else cfg.test_videos_per_activity
        for a in range(cfg.num_activities):
            for v in range(count):
                if fmt.make_key(activity_name(a), f"{split}{v:04d}") not in writer.done_keys:
                    jobs.append((cfg, a, split, v, modality, index_overlay))
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.imap(_make_sample_star, jobs)
            for s in _progress(results, len(jobs), progress):
                writer.add(s)
    else:
        for s in _progress(map(_make_sample_star, jobs), len(jobs), progress):
            writer.add(s)
    return writer.finish()


def _progress(it, total: int, enabled: bool):
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc="synthetic", unit="video", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vasot-synthetic", description="Write the synthetic procedural benchmark.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--modality", choices=fmt.MODALITIES, default="video")
    p.add_argument("--splits", default="train,test")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--index-overlay", action="store_true", help="draw each frame's index (test mode)")
    p.add_argument("--max-shard-samples", type=int, default=1)
    for f in dataclasses.fields(SyntheticConfig):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    args = p.parse_args(argv)
    cfg = SyntheticConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticConfig)})
    try:
        path = generate_synthetic(args.out, cfg, modality=args.modality, splits=args.splits.split(","),
                                  workers=args.workers, index_overlay=args.index_overlay,
                                  max_shard_samples=args.max_shard_samples, progress=True)
    except ValueError as err:
        print(f"vasot-synthetic: error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
