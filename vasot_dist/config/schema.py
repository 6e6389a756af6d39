"""The typed schema of a whole run: one dataclass per section, defaults = the papers' settings.

Every field here is a valid dotted override key (``optim.lr=3e-4``).  A field with a range or a set of choices
declares it where it is defined (``lr: float = positive(1e-4)``, :mod:`.rules`), so that the loader can name the
key that is wrong.  Each method's hyper-parameters, defaults and reasons are in :mod:`.methods`, under
``method.<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .methods import METHODS, MethodConfig
from .registry import on_change
from .rules import Rule, a_name, at_least, field_rules, fraction, in_range, non_negative, one_of, positive

__all__ = ["COLLAPSE_COS", "METHODS", "MethodConfig", "RunConfig"]

# train.collapse_cos's default (vasot_dist.train.collapse): a log row whose mean cosine between the frames of a
# video is at or above this shows a collapsed encoder. Measured on the demo (VAOT, ResNet-50 from random
# weights): the plateau sat at 0.998-0.999, while runs that learned stayed below 0.9 after their first steps
# (docs/benchmark.md, "The demo").
COLLAPSE_COS = 0.97


@dataclass
class SyntheticConfig:
    """The built-in procedural benchmark (``vasot_pipelines.synthetic``; presets and their statistics in
    docs/benchmark.md). Timelines are shared by both modalities; the ``*_scale`` fields shape feature mode only."""

    num_activities: int = 2
    steps_per_activity: int = 4  # K; with min_steps > 0, the largest K
    min_steps: int = 0  # > 0: activity a draws its K uniformly from [min_steps, steps_per_activity]
    activities: list[int] = field(default_factory=list)  # write only these activities (default all)
    videos_per_activity: int = 8
    test_videos_per_activity: int = 2
    frames_min: int = 48
    frames_max: int = 96
    size: int = 64  # square frame side of the generated videos
    feature_dim: int = 64  # feature mode only
    duration_sigma: float = 0.25  # canonical step durations proportional to exp(sigma * N(0, 1))
    optional_steps: float = 0.0  # share of an activity's steps that are optional (each missing from 20-40 % of videos)
    p_time_warp: float = 0.5
    p_background: float = 0.3
    background_share: float = 0.2  # expected share of background frames in a video that has background
    background_placement: str = "anywhere"  # anywhere (between any steps) | ends (before the first, after the last)
    p_redundant: float = 0.2
    p_repeat: float = 0.1
    p_swap: float = 0.0  # per adjacent pair of steps: done in the other order
    p_permute: float = 0.0
    step_scale: float = 2.0  # norm of the step means
    noise_scale: float = 0.5  # norm of the per-frame isotropic noise
    offset_scale: float = 1.4  # per-video constant offset in a fixed 4-dim subspace
    drift_scale: float = 0.0  # per-video slow drift (smooth, a few cycles per video) in a fixed 4-dim subspace
    distractor_scale: float = 0.0  # per-frame fluctuation (AR(1), rho 0.9) in 8 fixed distractor dimensions
    seed: int = 0


@dataclass
class DataConfig:
    name: str = ""  # the dataset's name; "synthetic" writes the built-in benchmark into data.shards when missing
    modality: str = one_of("video", ("video", "features"))
    shards: str = "data/synthetic/video"  # a folder holding dataset.json (or the dataset.json path itself)
    train_split: str = "train"
    eval_split: str = "test"
    frames_per_video: int = at_least(1, 32)  # T sampled frames per video during training
    sampler: str = one_of("bins", ("bins", "tcc"))  # bins: one random frame per uniform bin | tcc: random sorted
    context_frames: int = at_least(1, 2)  # frames stacked per sampled frame (t - stride*k), 1 = none
    context_stride: int = non_negative(15)
    image_size: int = at_least(16, 224)  # frames are decoded at this square size
    pairs: bool = False  # yield videos in pairs of one activity (alignment methods force this on)
    batch_size: int = at_least(1, 2)  # videos per rank per step (pairs count as 2)
    num_workers: int = non_negative(2)
    shuffle_buffer: int = non_negative(64)  # videos held for shuffling per worker; 0 or 1: none
    resampled: bool = False  # draw shards with replacement (infinite stream); allows shards < ranks*workers
    augment: bool = True  # colour jitter + flip, identical over the frames of a video
    standardize: bool = False  # features: per-video zero mean, unit variance per dimension, / sqrt(D) (ASOT's -s)
    timeout_s: float = positive(300.0)  # DataLoader timeout: a hung decoder becomes an error
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class ModelConfig:
    encoder: str = one_of("resnet50", ("resnet50", "mlp"))
    embed_dim: int = at_least(1, 128)
    # resnet50: imagenet (torchvision IMAGENET1K_V1: hub cache, else download) | none (random) | <state dict path>
    weights: str = "imagenet"
    freeze_stem: bool = False
    freeze_bn: bool = False
    dropout: float = in_range(0.1, 0, 1, hi_open=True)
    head_dim: int = at_least(1, 512)  # width of the 3D-conv / FC head (512 in LAV/VAOT; the CPU demo uses less)
    mlp_layers: list[int] = field(default_factory=lambda: [64, 128, 40])  # in, hidden..., out
    # K prototypes (segmentation methods); None: the number of actions of dataset.json's label map (background
    # excluded), filled in before the model is built (vasot_dist.train.preflight.fill_from_data)
    num_actions: int | None = at_least(1, None)
    prototype_init: str = one_of("kmeans", ("kmeans", "random"))
    channels_last: bool = True


@dataclass
class OptimConfig:
    name: str = one_of("adam", ("adam", "adamw"))
    lr: float = positive(1e-4)
    weight_decay: float = non_negative(1e-5)
    warmup_steps: int = non_negative(0)
    schedule: str = one_of("cosine", ("cosine", "constant"))  # ASOT's code keeps Adam constant
    min_lr_ratio: float = fraction(0.0)
    grad_clip: float = non_negative(0.0)  # 0 disables
    grad_accum: int = at_least(1, 1)


@dataclass
class TrainConfig:
    max_steps: int = at_least(1, 1000)
    seed: int = 0
    output_dir: str = "runs"
    experiment: str = a_name("default")  # a folder name, as run_id
    # default: a time-stamped id; fixed ids make --resume auto find the run. A name, never a path: the run
    # directory is <output_dir>/<experiment>/<run_id>, and --overwrite deletes it
    run_id: str | None = a_name(None)
    log_every: int = at_least(1, 10)
    ckpt_every: int = non_negative(200)
    keep_last: int = at_least(1, 3)
    # stop after this many optimiser steps in a row with a non-finite loss or gradient norm (each is skipped)
    max_nonfinite_steps: int = at_least(1, 5)
    # the collapse monitor (docs/training.md#collapse-monitor): a log row whose collapse/emb_cos is at or above
    # collapse_cos shows a collapsed encoder; warn logs it once per episode, stop also checkpoints and exits
    collapse_cos: float = in_range(COLLAPSE_COS, 0, 1, lo_open=True)
    on_collapse: str = one_of("warn", ("warn", "stop"))
    eval_every: int = non_negative(0)  # 0: only at the end
    plot_every: int = non_negative(0)
    bf16: bool = True  # autocast on CUDA; OT solves stay float32
    compile: bool = False  # torch.compile the encoder and the loss, OT solves included (compile_for_training)
    deterministic: bool = False
    device: str = one_of("auto", ("auto", "cpu", "cuda"))


@dataclass
class DistConfig:
    engine: str = one_of("ddp", ("ddp", "deepspeed"))
    backend: str = one_of("auto", ("auto", "nccl", "gloo"))  # auto: nccl on GPU, gloo on CPU
    find_unused_parameters: bool = False
    ds_config: dict[str, Any] = field(default_factory=dict)  # passed to deepspeed.initialize


@dataclass
class LogConfig:
    # auto: on when a key or WANDB_MODE is set
    wandb: str = one_of("auto", ("auto", "online", "offline", "disabled"))
    project: str = "vasot_dist"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class EvalConfig:
    protocol: str = one_of("tcc", ("tcc", "lav"))  # tcc: fit SVM on train, score test | lav: fit and score on test
    # shares of the fitting videos the phase classifier is trained on, each in (0, 1]
    fractions: list[float] = in_range([0.1, 0.5, 1.0], 0, 1, lo_open=True)
    kendall_stride: int = at_least(1, 5)
    retrieval_ks: list[int] = at_least(1, [5, 10, 15])  # AP@K; the preflight checks K against the split's frames
    segmentation_mode: str = one_of("full", ("full", "per_video"))
    exclude_cls: int | None = None  # a label id of the dataset's label map (checked in the preflight)
    max_videos: int = non_negative(0)  # 0: all
    batch_frames: int = at_least(1, 64)  # frames per encoder forward when extracting embeddings
    alignment_metrics: bool = True  # phase classification, tau, AP@K, align_acc (slow on long videos; off for segmentation)
    # share of the split's videos that must be scored (corrupt ones are skipped), else the evaluation fails
    min_scored_fraction: float = fraction(1.0)
    # an evaluation that yields no quality metric (only the video counts: one label class, no progress, one
    # video) is an error unless this is true
    allow_no_metrics: bool = False


@dataclass
class TuneConfig:
    workers_per_trial: int = at_least(1, 1)
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    storage_path: str | None = None
    # true: the storage path is on storage every node sees, though the multi-node check cannot tell (a filesystem
    # it does not know, nodes on one host); false: a local disk is refused on a cluster of several nodes
    shared_storage: bool = False
    max_failures: int = non_negative(1)


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)


# dotted key -> rule, for the loader; SyntheticConfig's rules are listed here rather than on its fields
_SYNTHETIC_RULES: dict[str, Rule] = {
    "data.synthetic.steps_per_activity": ("range", 1, None, False, False),
    "data.synthetic.min_steps": ("range", 0, None, False, False),
    "data.synthetic.videos_per_activity": ("range", 2, None, False, False),
    "data.synthetic.frames_min": ("range", 4, None, False, False),
    "data.synthetic.duration_sigma": ("range", 0, None, False, False),
    "data.synthetic.optional_steps": ("range", 0, 1, False, True),
    "data.synthetic.background_share": ("range", 0, 1, False, True),
    "data.synthetic.background_placement": ("in", ("anywhere", "ends")),
}
for _p in ("p_time_warp", "p_background", "p_redundant", "p_repeat", "p_swap", "p_permute"):
    _SYNTHETIC_RULES[f"data.synthetic.{_p}"] = ("range", 0, 1, False, False)
for _p in ("step_scale", "noise_scale", "offset_scale", "drift_scale", "distractor_scale"):
    _SYNTHETIC_RULES[f"data.synthetic.{_p}"] = ("range", 0, None, False, False)

_RULES: dict[str, Rule] = {}


def _collect_rules() -> None:
    """(Re)fill :data:`_RULES` in place: at import, and whenever a method joins or leaves the schema."""
    _RULES.clear()
    _RULES.update({**field_rules(RunConfig), **_SYNTHETIC_RULES})


_collect_rules()
on_change(_collect_rules)
