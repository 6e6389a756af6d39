"""``vasot-synthetic``: the built-in procedural benchmark (videos or features with known alignment).

Each activity is a canonical sequence of K steps (K drawn per activity in ``[min_steps,
steps_per_activity]`` when ``min_steps`` > 0) with long-tailed canonical durations
(``duration_sigma``); a share ``optional_steps`` of the steps are optional, each missing from 20-40 % of
the videos. A step is a visual motif: a **shape** with a **texture** moving with a **motion**
(left-right, up-down, orbit, spin, grow, diagonal); motion is driven by the frame's progress within the
step, so the pose also says *where* in the step a frame is. The motif's colours are drawn per video, so
colour never identifies a step; the scene has a random textured background with static clutter, drifting
distractor blobs, camera jitter, brightness flicker and pixel noise. Each video draws, with the
configured probabilities:

- ``p_time_warp``: speed changes: step durations scaled by random factors and a non-linear pace
  inside each step (otherwise durations are proportional to the activity's canonical durations);
- ``p_background``: background segments (no step motif) covering about ``background_share`` of the
  video, between any steps (``background_placement: anywhere``) or before the first and after the last
  step (``ends``, like Breakfast's SIL);
- ``p_redundant``: a redundant step: a motif of no step of the activity, present in this video only
  (labelled background: it matches nothing in another video);
- ``p_repeat``: a step done again later, after at least one other step;
- ``p_swap``: per adjacent pair of steps, the two done in the other order (local order variations);
- ``p_permute``: the step order shuffled (non-monotonic).

Labels are global over the activities: background is 0, then the steps of activity 0, 1, ... are numbered
consecutively from 1. Per frame the sample JSON stores
``labels``, ``steps`` (k, -1 on background) and ``progress``: the frame's canonical position in [0, 1]
along the activity (canonical step durations; -1 on background), so two frames of two videos of one
activity correspond when their progress is equal.

Feature mode writes ``(N, D)`` arrays with the same timelines (:func:`synth_features`): step means + a
within-step progress direction, plus nuisance an encoder must learn to ignore: a per-video offset, a slow
per-video drift and fast per-frame distractors, each in a fixed low-dimensional subspace, and
isotropic noise. Everything is a pure function of (seed, activity, split, video index): same seed,
same bytes of every array. The presets that mimic real datasets are configs (``configs/synthetic/``).
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
SKIP_RANGE = (0.2, 0.4)  # an optional step is missing from this share of the videos (drawn per step)
PLACEMENTS = ("anywhere", "ends")
_OFFSET_DIMS, _DRIFT_DIMS, _DISTRACTOR_DIMS = 4, 4, 8


# ------------------------------------------------------------------------------------ planning
@dataclass(frozen=True)
class Motif:
    shape: str
    texture: str
    motion: str


@dataclass
class ActivityPlan:
    """The canonical step sequence of one activity: motifs (K,), durations (K,) summing to 1, the
    probability (K,) that each step is missing from a video (0: mandatory), and the label id of step 0."""

    motifs: list[Motif]
    durations: np.ndarray
    skip: np.ndarray
    first_label: int

    @property
    def num_steps(self) -> int:
        return len(self.motifs)

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


def num_steps(cfg: SyntheticConfig, a: int) -> int:
    """K of activity ``a``: ``steps_per_activity``, or drawn in ``[min_steps, steps_per_activity]``."""
    if cfg.min_steps <= 0:
        return cfg.steps_per_activity
    return int(np.random.default_rng([cfg.seed, 5, a]).integers(cfg.min_steps, cfg.steps_per_activity + 1))


def background_id(cfg: SyntheticConfig) -> int:
    """The label id of background frames: 0, whatever the activities (Breakfast's SIL and EgoProceL's
    background are 0 too), so a config can name it (``eval.exclude_cls: 0``) for any seed."""
    return 0


def total_steps(cfg: SyntheticConfig) -> int:
    """The number of step classes over all activities."""
    return sum(num_steps(cfg, a) for a in range(cfg.num_activities))


def label_map(cfg: SyntheticConfig) -> dict[str, int]:
    """``background`` -> 0 and ``activity{a}_step{k}`` -> 1, 2, ... consecutively over the activities."""
    m, nxt = {BACKGROUND_NAME: background_id(cfg)}, 1
    for a in range(cfg.num_activities):
        for s in range(num_steps(cfg, a)):
            m[f"{activity_name(a)}_step{s}"] = nxt
            nxt += 1
    return m


def selected_activities(cfg: SyntheticConfig) -> list[int]:
    """``cfg.activities`` (checked), or every activity."""
    return list(cfg.activities) if cfg.activities else list(range(cfg.num_activities))


def _max_background_segments(n_other: int, placement: str) -> int:
    return 2 if placement == "ends" else max(2, (n_other + 1) // 2)


def _max_segments(cfg: SyntheticConfig) -> int:
    """An upper bound on the segments of one video (each needs a frame)."""
    n_other = cfg.steps_per_activity + 2  # every step, a repeat, a redundant step
    return n_other + _max_background_segments(n_other, cfg.background_placement)


def validate_config(cfg: SyntheticConfig, *, index_overlay: bool = False) -> None:
    """ValueError naming the SyntheticConfig field that cannot work."""
    if cfg.num_activities < 1 or cfg.steps_per_activity < 1:
        raise ValueError("synthetic.num_activities and synthetic.steps_per_activity must be >= 1")
    if not 0 <= cfg.min_steps <= cfg.steps_per_activity:
        raise ValueError(f"synthetic.min_steps={cfg.min_steps} must be in [0, steps_per_activity="
                         f"{cfg.steps_per_activity}]")
    bad = [a for a in cfg.activities if not 0 <= a < cfg.num_activities]
    if bad:
        raise ValueError(f"synthetic.activities {bad} not in [0, num_activities={cfg.num_activities})")
    if cfg.videos_per_activity < 0 or cfg.test_videos_per_activity < 0:
        raise ValueError("synthetic.videos_per_activity / test_videos_per_activity must be >= 0")
    need = _max_segments(cfg)
    if cfg.frames_min < need:
        raise ValueError(f"synthetic.frames_min={cfg.frames_min} must be >= {need}, the most segments a video "
                         f"can have with steps_per_activity={cfg.steps_per_activity} (one frame per segment)")
    if cfg.frames_max < cfg.frames_min:
        raise ValueError(f"synthetic.frames_max={cfg.frames_max} < frames_min={cfg.frames_min}")
    if cfg.size < 16 or cfg.size % 2:
        raise ValueError(f"synthetic.size={cfg.size} must be even and >= 16 (H.264 yuv420p)")
    if cfg.feature_dim < 1:
        raise ValueError("synthetic.feature_dim must be >= 1")
    for name in ("p_time_warp", "p_background", "p_redundant", "p_repeat", "p_swap", "p_permute"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"synthetic.{name}={getattr(cfg, name)} must be in [0, 1]")
    for name in ("optional_steps", "background_share"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise ValueError(f"synthetic.{name}={getattr(cfg, name)} must be in [0, 1)")
    if cfg.background_placement not in PLACEMENTS:
        raise ValueError(f"synthetic.background_placement={cfg.background_placement!r} must be one of {PLACEMENTS}")
    for name in ("duration_sigma", "step_scale", "noise_scale", "offset_scale", "drift_scale", "distractor_scale"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"synthetic.{name}={getattr(cfg, name)} must be >= 0")
    if total_steps(cfg) > len(SHAPES) * len(TEXTURES) * len(MOTIONS):
        raise ValueError("too many steps over all activities for distinct motifs")
    if index_overlay:
        if cfg.size < 60:  # blocks of size / 10 px: >= 6 px survive H.264 reliably
            raise ValueError(f"synthetic.size={cfg.size}: the frame-index overlay needs size >= 60")
        if cfg.frames_max > fmt.OVERLAY_MAX_INDEX + 1:
            raise ValueError(f"synthetic.frames_max={cfg.frames_max}: overlay encodes indices < "
                             f"{fmt.OVERLAY_MAX_INDEX + 1}")


def _split_code(split: str) -> int:
    return zlib.crc32(split.encode())


def activity_plan(cfg: SyntheticConfig, a: int) -> ActivityPlan:
    """Motifs, canonical durations and optional steps of activity ``a``; motifs are distinct over all activities."""
    taken: set[Motif] = set()
    plan = None
    first = 1  # label 0 is background
    for b in range(a + 1):  # earlier activities first, so motifs never repeat across activities
        rng = np.random.default_rng([cfg.seed, 0, b])
        k = num_steps(cfg, b)
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
        w = np.exp(cfg.duration_sigma * rng.standard_normal(k))
        skip = np.zeros(k)
        n_opt = int(round(cfg.optional_steps * k))
        if n_opt:
            skip[rng.choice(k, size=min(n_opt, k - 1), replace=False)] = rng.uniform(*SKIP_RANGE, size=min(n_opt, k - 1))
        if b < a:
            first += k
        plan = ActivityPlan(motifs, w / w.sum(), skip, first)
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


def _insert_background(cfg: SyntheticConfig, rng: np.random.Generator, segs: list[Segment],
                       weights: list[float]) -> None:
    """Background segments (in place) whose weights total about ``background_share`` of the video."""
    share = float(np.clip(cfg.background_share * rng.uniform(0.75, 1.25), 0.02, 0.95))
    total = sum(weights) * share / (1.0 - share)
    if cfg.background_placement == "ends":
        split = rng.uniform(0.3, 0.7)
        segs.insert(0, Segment("background", -1, 0))
        weights.insert(0, total * split)
        segs.append(Segment("background", -1, 0))
        weights.append(total * (1.0 - split))
        return
    count = int(rng.integers(1, _max_background_segments(len(segs), "anywhere") + 1))
    gaps = np.sort(rng.choice(len(segs) + 1, size=min(count, len(segs) + 1), replace=False))[::-1]
    parts = rng.dirichlet(np.ones(len(gaps)))
    for g, part in zip(gaps, parts):  # right to left: earlier gap indices stay valid
        segs.insert(int(g), Segment("background", -1, 0))
        weights.insert(int(g), total * float(part))


def video_timeline(cfg: SyntheticConfig, a: int, split: str, v: int) -> Timeline:
    """The segment structure and per-frame ground truth of video ``v`` of activity ``a`` in ``split``."""
    plan = activity_plan(cfg, a)
    k = plan.num_steps
    rng = np.random.default_rng([cfg.seed, 1, a, _split_code(split), v])
    flags = {name: bool(rng.random() < getattr(cfg, f"p_{name}"))
             for name in ("permute", "repeat", "redundant", "background", "time_warp")}
    order = [s for s in range(k) if rng.random() >= plan.skip[s]]
    if not order:  # every optional step missed: keep the most common one
        order = [int(np.argmin(plan.skip))]
    flags["missing"] = len(order) < k
    if flags["permute"] and len(order) > 1:
        canonical = list(order)
        while order == canonical:
            order = [canonical[i] for i in rng.permutation(len(canonical))]
    else:
        flags["permute"] = False
    flags["swap"] = False
    i = 0
    while i + 1 < len(order):
        if rng.random() < cfg.p_swap:
            order[i], order[i + 1] = order[i + 1], order[i]
            flags["swap"] = True
            i += 2
        else:
            i += 1
    segs = [Segment("step", s, 0) for s in order]
    weights = [float(plan.durations[s]) for s in order]
    if flags["repeat"] and len(segs) > 1:
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
    if flags["background"] and cfg.background_share > 0:
        _insert_background(cfg, rng, segs, weights)
    else:
        flags["background"] = False
    weights_arr = np.asarray(weights)
    if flags["time_warp"]:
        weights_arr = weights_arr * np.exp(rng.uniform(-0.7, 0.7, size=len(weights_arr)))
        for s in segs:
            s.gamma = float(np.exp(rng.uniform(-0.6, 0.6)))
    n = int(rng.integers(cfg.frames_min, cfg.frames_max + 1))
    lengths = _allocate(n, weights_arr)
    bg = background_id(cfg)
    labels, steps, progress, within = [], [], [], []
    for s, length in zip(segs, lengths):
        s.length = int(length)
        u = ((np.arange(length) + 0.5) / length) ** s.gamma
        within.append(u)
        if s.kind == "step":
            labels.append(np.full(length, plan.first_label + s.step))
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


def _orthonormal_rows(rng: np.random.Generator, rows: int, d: int) -> np.ndarray:
    """(min(rows, d), d) orthonormal directions."""
    q, _ = np.linalg.qr(rng.standard_normal((d, min(rows, d))))
    return q.T


def _slow_drift(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    """(n, dims) smooth curves of unit RMS over the video: three sinusoids of 0.3-2 cycles per video each."""
    s = (np.arange(n) + 0.5) / n
    freq = rng.uniform(0.3, 2.0, size=(3, dims))
    phase = rng.uniform(0, 2 * np.pi, size=(3, dims))
    amp = rng.standard_normal((3, dims))
    w = (amp[None] * np.sin(2 * np.pi * freq[None] * s[:, None, None] + phase[None])).sum(axis=1)
    return w / np.sqrt((w * w).mean(axis=0, keepdims=True) + 1e-12)


def _ar1(rng: np.random.Generator, n: int, dims: int, rho: float = 0.9) -> np.ndarray:
    """(n, dims) stationary AR(1) processes of unit variance (correlation ``rho`` between frames)."""
    e = rng.standard_normal((n, dims))
    out = np.empty_like(e)
    out[0] = e[0]
    c = np.sqrt(1.0 - rho * rho)
    for t in range(1, n):
        out[t] = rho * out[t - 1] + c * e[t]
    return out


def synth_features(cfg: SyntheticConfig, a: int, split: str, v: int) -> tuple[np.ndarray, Timeline]:
    """Features float32 (N, D) with the same timeline as :func:`render_video` for the same arguments.

    ``x_t = s mu_{a,k} + (s / 2)(u_t - 1/2) delta_{a,k} + o + drift(t) + distractor(t) + noise_t`` on a step frame
    (s = ``step_scale``; mu (a random direction of norm ~1) and the unit delta fixed per (activity, step); u_t the
    frame's progress inside its segment). Nuisance, each in its own fixed subspace: the per-video offset
    ``o`` (4 dims, norm ~ 2 ``offset_scale``), the slow drift (4 dims, 0.3-2 cycles per video, RMS norm
    2 ``drift_scale``), the distractors (8 dims, AR(1) with correlation 0.9 between frames, RMS norm
    ~2.8 ``distractor_scale``), and isotropic noise of norm ~ ``noise_scale``. Background segments are a
    shared background mean plus a per-segment part (background is diverse) with 1.5 x the noise; a redundant
    step is a per-video mean.
    """
    tl = video_timeline(cfg, a, split, v)
    d, sc = cfg.feature_dim, cfg.step_scale
    g = np.random.default_rng([cfg.seed, 3])
    mu_bg = g.standard_normal(d) / np.sqrt(d) * sc
    offset_dirs = _orthonormal_rows(g, _OFFSET_DIMS, d)
    drift_dirs = _orthonormal_rows(g, _DRIFT_DIMS, d)
    distractor_dirs = _orthonormal_rows(g, _DISTRACTOR_DIMS, d)
    ga = np.random.default_rng([cfg.seed, 6, a])
    k = num_steps(cfg, a)
    mus = ga.standard_normal((k, d)) / np.sqrt(d) * sc
    deltas = ga.standard_normal((k, d))
    deltas /= np.linalg.norm(deltas, axis=-1, keepdims=True)
    rng = np.random.default_rng([cfg.seed, 4, a, _split_code(split), v])
    n = tl.num_frames
    x = rng.standard_normal(len(offset_dirs)) @ offset_dirs * cfg.offset_scale
    x = x + _slow_drift(rng, n, len(drift_dirs)) @ drift_dirs * cfg.drift_scale
    x = x + _ar1(rng, n, len(distractor_dirs)) @ distractor_dirs * cfg.distractor_scale
    noise = rng.standard_normal((n, d)) * (cfg.noise_scale / np.sqrt(d))
    start = 0
    for seg in tl.segments:
        sl = slice(start, start + seg.length)
        if seg.kind == "step":
            x[sl] += mus[seg.step] + (0.5 * sc) * (tl.within[sl, None] - 0.5) * deltas[seg.step] + noise[sl]
        elif seg.kind == "redundant":
            x[sl] += rng.standard_normal(d) / np.sqrt(d) * sc + noise[sl]
        else:
            x[sl] += mu_bg + rng.standard_normal(d) / np.sqrt(d) * (0.7 * sc) + 1.5 * noise[sl]
        start += seg.length
    return x.astype(np.float32), tl


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
        for a in selected_activities(cfg):
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
        flag = "--" + f.name.replace("_", "-")
        if f.name == "activities":
            p.add_argument(flag, type=int, nargs="*", default=[], help="write only these activities (default all)")
        else:
            p.add_argument(flag, type=type(f.default), default=f.default)
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
