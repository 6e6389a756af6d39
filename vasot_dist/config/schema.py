"""The typed schema of a whole run: one dataclass per section, defaults = the papers' settings.

Every field here is a valid dotted override key (``optim.lr=3e-4``). Range checks live next to the
fields in ``_RULES`` so that the validator can name the key that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

METHODS = ("asot", "vaot", "vasot", "vava", "clot", "realign", "kot")
ALIGNMENT_METHODS = ("vaot", "vasot", "vava", "realign", "kot")  # need pairs of videos of one activity


@dataclass
class SyntheticConfig:
    """The built-in procedural benchmark (``vasot_pipelines.synthetic``), written when ``data.shards`` is missing."""

    num_activities: int = 2
    steps_per_activity: int = 4
    videos_per_activity: int = 8
    test_videos_per_activity: int = 2
    frames_min: int = 48
    frames_max: int = 96
    size: int = 64  # square frame side of the generated videos
    feature_dim: int = 64  # feature mode only
    p_time_warp: float = 0.5
    p_background: float = 0.3
    p_redundant: float = 0.2
    p_repeat: float = 0.1
    p_permute: float = 0.0
    seed: int = 0


@dataclass
class DataConfig:
    name: str = ""  # the dataset's name; "synthetic" writes the built-in benchmark into data.shards when missing
    modality: str = "video"  # video | features
    shards: str = "data/synthetic/video"  # a folder holding dataset.json (or the dataset.json path itself)
    train_split: str = "train"
    eval_split: str = "test"
    frames_per_video: int = 32  # T sampled frames per video during training
    sampler: str = "bins"  # bins (one random frame per uniform bin) | tcc (random sorted frames)
    context_frames: int = 2  # frames stacked per sampled frame (t - stride*k), 1 = none
    context_stride: int = 15
    image_size: int = 224  # frames are decoded at this square size
    pairs: bool = False  # yield videos in pairs of one activity (alignment methods force this on)
    batch_size: int = 2  # videos per rank per step (pairs count as 2)
    num_workers: int = 2
    shuffle_buffer: int = 64
    resampled: bool = False  # draw shards with replacement (infinite stream); allows shards < ranks*workers
    augment: bool = True  # colour jitter + flip, identical over the frames of a video
    timeout_s: float = 300.0  # DataLoader timeout: a hung decoder becomes an error
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class ModelConfig:
    encoder: str = "resnet50"  # resnet50 | mlp
    embed_dim: int = 128
    weights: str | None = None  # local ResNet-50 state dict; else torch hub cache; else random init
    allow_download: bool = False
    freeze_stem: bool = False
    freeze_bn: bool = False
    dropout: float = 0.1
    head_dim: int = 512  # width of the 3D-conv / FC head (512 in LAV/VAOT; the CPU demo uses less)
    mlp_layers: list[int] = field(default_factory=lambda: [64, 128, 40])  # in, hidden..., out
    num_actions: int = 4  # K prototypes (segmentation methods)
    prototype_init: str = "kmeans"  # kmeans | random
    channels_last: bool = True


@dataclass
class MethodConfig:
    name: str = "vasot"
    tau: float = 0.1  # softmax temperature of the pseudo-label cross-entropy
    beta: float = 1.0  # VASOT weight on the alignment term
    virtual_cost: float = 0.5  # zeta, cost of the virtual frame (VAOT, VAVA, REALIGN)
    symmetric: bool = False  # VAOT: also the y -> x direction
    contrastive_weight: float = 0.0  # VAOT optional intra-video contrastive term
    gamma: float = 0.5  # VAVA weight of the contrastive terms
    vava_sigma: float = 2.0
    vava_window: int = 15
    vava_margin: float = 2.0
    vava_temperature: float = 0.5
    sw_weight: float = 1.0  # CLOT sliced-Wasserstein cost weight
    sw_projections: int = 150
    clot_queries_delta: int = 0  # n_seg = K + delta
    clot_decoder_layers: int = 2
    clot_decoder_dropout: float = 0.5
    realign_contrastive_weight: float = 1.0
    realign_temperature: float = 0.5  # best-vs-worst match temperature of REALIGN's inter-sequence term
    idm_window: float = 0.05  # contrastive-IDM positive window, fraction of the video (VAOT option, REALIGN)
    idm_margin: float = 2.0
    vava_lambda1: float = 1.0  # times (N + M)
    vava_lambda2: float = 0.1  # times N·M/4
    vava_virtual_distance: float = 5.0
    vava_sinkhorn_iters: int = 20
    sw_radius: float = 2.0  # CLOT circular projections g(x) = |x - radius·theta|
    clot_refine_temperature: float = 0.1
    clot_decode_level: str = "refined"  # refined | frames: which frames CLOT decodes at evaluation


@dataclass
class OTConfig:
    """Solver settings; training values, with the decoding values used at evaluation."""

    eps: float = 0.07
    alpha: float = 0.3
    radius: float = 0.04
    temporal_prior: float = 0.2  # rho
    lambda_frames: float = 0.1
    lambda_actions: float = 0.05
    unbalanced_frames: bool = False
    unbalanced_actions: bool = True
    n_iters: int = 25
    inner_iters: int = 1
    align_radius: float = 0.02  # VAOT's r
    align_temporal_prior: float = 0.35  # VAOT's rho
    mass: float = 0.8  # REALIGN transported mass
    partial_n_iters: int = 20  # REALIGN outer mirror-descent iterations
    partial_inner_iters: int = 100  # Bregman projection passes per outer iteration
    sinkhorn_iters: int = 200  # KOT baseline
    eval_eps: float = 0.04
    eval_alpha: float = 0.6
    eval_lambda_actions: float = 0.01
    eval_temporal_prior: bool = True  # reference adds rho R at decoding too


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | adamw
    lr: float = 1e-4
    weight_decay: float = 1e-5
    warmup_steps: int = 0
    schedule: str = "cosine"  # cosine | constant
    min_lr_ratio: float = 0.0
    grad_clip: float = 0.0  # 0 disables
    grad_accum: int = 1


@dataclass
class TrainConfig:
    max_steps: int = 1000
    seed: int = 0
    output_dir: str = "runs"
    experiment: str = "default"
    run_id: str | None = None  # default: a time-stamped id; fixed ids make --resume auto find the run
    log_every: int = 10
    ckpt_every: int = 200
    keep_last: int = 3
    eval_every: int = 0  # 0: only at the end
    plot_every: int = 0
    bf16: bool = True  # autocast on CUDA; OT solves stay float32
    compile: bool = False  # torch.compile the encoder and the loss, OT solves included (compile_for_training)
    deterministic: bool = False
    device: str = "auto"  # auto | cpu | cuda


@dataclass
class DistConfig:
    engine: str = "ddp"  # ddp | deepspeed
    backend: str = "auto"  # auto: nccl on GPU, gloo on CPU
    find_unused_parameters: bool = False
    ds_config: dict[str, Any] = field(default_factory=dict)  # passed to deepspeed.initialize


@dataclass
class LogConfig:
    wandb: str = "auto"  # auto (on when a key or WANDB_MODE is set) | online | offline | disabled
    project: str = "vasot_dist"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class EvalConfig:
    protocol: str = "tcc"  # tcc: fit SVM on train, score test | lav: fit and score on test
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.5, 1.0])
    kendall_stride: int = 5
    retrieval_ks: list[int] = field(default_factory=lambda: [5, 10, 15])
    segmentation_mode: str = "full"  # full | per_video
    exclude_cls: int | None = None
    max_videos: int = 0  # 0: all
    batch_frames: int = 64  # frames per encoder forward when extracting embeddings


@dataclass
class TuneConfig:
    workers_per_trial: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    storage_path: str | None = None
    max_failures: int = 1


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    ot: OTConfig = field(default_factory=OTConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)


def _choice(*values: str):
    return ("in", values)


# key -> rule; rules: ("in", choices) | ("range", lo, hi, lo_open, hi_open)
_RULES: dict[str, tuple] = {
    "data.modality": _choice("video", "features"),
    "data.sampler": _choice("bins", "tcc"),
    "data.frames_per_video": ("range", 1, None, False, False),
    "data.context_frames": ("range", 1, None, False, False),
    "data.context_stride": ("range", 0, None, False, False),
    "data.image_size": ("range", 16, None, False, False),
    "data.batch_size": ("range", 1, None, False, False),
    "data.num_workers": ("range", 0, None, False, False),
    "data.timeout_s": ("range", 0, None, True, False),
    "model.encoder": _choice("resnet50", "mlp"),
    "model.embed_dim": ("range", 1, None, False, False),
    "model.dropout": ("range", 0, 1, False, True),
    "model.head_dim": ("range", 1, None, False, False),
    "model.num_actions": ("range", 1, None, False, False),
    "model.prototype_init": _choice("kmeans", "random"),
    "method.name": _choice(*METHODS),
    "method.tau": ("range", 0, None, True, False),
    "method.beta": ("range", 0, None, False, False),
    "method.gamma": ("range", 0, None, False, False),
    "method.realign_temperature": ("range", 0, None, True, False),
    "method.idm_window": ("range", 0, 1, True, False),
    "method.vava_sinkhorn_iters": ("range", 1, None, False, False),
    "method.clot_decode_level": _choice("refined", "frames"),
    "ot.partial_n_iters": ("range", 1, None, False, False),
    "ot.partial_inner_iters": ("range", 1, None, False, False),
    "ot.sinkhorn_iters": ("range", 1, None, False, False),
    "ot.eps": ("range", 0, None, True, False),
    "ot.eval_eps": ("range", 0, None, True, False),
    "ot.alpha": ("range", 0, 1, False, False),
    "ot.eval_alpha": ("range", 0, 1, False, False),
    "ot.radius": ("range", 0, 1, True, False),
    "ot.align_radius": ("range", 0, 1, True, False),
    "ot.temporal_prior": ("range", 0, None, False, False),
    "ot.align_temporal_prior": ("range", 0, None, False, False),
    "ot.lambda_frames": ("range", 0, None, False, False),
    "ot.lambda_actions": ("range", 0, None, False, False),
    "ot.eval_lambda_actions": ("range", 0, None, False, False),
    "ot.n_iters": ("range", 1, None, False, False),
    "ot.inner_iters": ("range", 1, None, False, False),
    "ot.mass": ("range", 0, 1, True, False),
    "optim.name": _choice("adam", "adamw"),
    "optim.lr": ("range", 0, None, True, False),
    "optim.weight_decay": ("range", 0, None, False, False),
    "optim.warmup_steps": ("range", 0, None, False, False),
    "optim.schedule": _choice("cosine", "constant"),
    "optim.min_lr_ratio": ("range", 0, 1, False, False),
    "optim.grad_clip": ("range", 0, None, False, False),
    "optim.grad_accum": ("range", 1, None, False, False),
    "train.max_steps": ("range", 1, None, False, False),
    "train.log_every": ("range", 1, None, False, False),
    "train.ckpt_every": ("range", 0, None, False, False),
    "train.keep_last": ("range", 1, None, False, False),
    "train.eval_every": ("range", 0, None, False, False),
    "train.plot_every": ("range", 0, None, False, False),
    "train.device": _choice("auto", "cpu", "cuda"),
    "dist.engine": _choice("ddp", "deepspeed"),
    "dist.backend": _choice("auto", "nccl", "gloo"),
    "log.wandb": _choice("auto", "online", "offline", "disabled"),
    "eval.protocol": _choice("tcc", "lav"),
    "eval.segmentation_mode": _choice("full", "per_video"),
    "eval.kendall_stride": ("range", 1, None, False, False),
    "eval.batch_frames": ("range", 1, None, False, False),
    "tune.workers_per_trial": ("range", 1, None, False, False),
    "tune.max_failures": ("range", 0, None, False, False),
    "data.synthetic.steps_per_activity": ("range", 1, None, False, False),
    "data.synthetic.videos_per_activity": ("range", 2, None, False, False),
    "data.synthetic.frames_min": ("range", 4, None, False, False),
}
for _p in ("p_time_warp", "p_background", "p_redundant", "p_repeat", "p_permute"):
    _RULES[f"data.synthetic.{_p}"] = ("range", 0, 1, False, False)
