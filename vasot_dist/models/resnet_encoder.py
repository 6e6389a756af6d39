"""LAV / VAOT / VAVA video-alignment encoder: ResNet-50 cut after conv4c, 3D-conv context embedder.

Reproduces ``models.py`` of trquhuytin/LAV-CVPR21 (identical blob in VAOT-ICCV25;
``docs/methods.md#video-encoder``):

* backbone: torchvision ResNet-50 ``conv1, bn1, relu, maxpool, layer1, layer2, layer3[:3]`` (conv4c),
  1024 × 14 × 14 at 224 px (1024 × 4 × 4 at 64 px);
* each sampled frame t comes with ``S`` context frames (default 2: ``max(0, t − 15)`` and t, oldest first),
  stacked along a time axis of length S;
* Conv3d 1024→512 (k3, pad 1), BN, ReLU; Conv3d 512→512 (k3, pad 1), BN, ReLU; max over (S, h, w);
  [Dropout 0.1, Linear 512, ReLU] × 2; Linear ``embed_dim``; L2-normalise.

The reference applies ``BatchNorm1d`` to the (N·S·h·w, C) flattening of the 5-D activations; that is exactly
``BatchNorm3d`` (statistics over every axis but channels), which is what is used here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn
from torch.hub import HASH_REGEX
from torchvision.models import ResNet50_Weights, resnet50

log = logging.getLogger(__name__)

# What the papers used via ``pretrained=True``; ``model.weights=imagenet``.
IMAGENET_WEIGHTS = ResNet50_Weights.IMAGENET1K_V1
NAMED_WEIGHTS = ("imagenet", "none")  # any other model.weights value is a path
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONV4C_CHANNELS = 1024


def context_frame_indices(steps: torch.Tensor, num_context: int = 2, stride: int = 15) -> torch.Tensor:
    """Frame indices fed to the encoder for each sampled step (TCC/LAV ``get_context_steps``).

    steps: (...,) integer frame indices → (..., num_context) indices
    ``max(0, t − (num_context − 1 − j)·stride)`` for j = 0..num_context−1, oldest first (t last).
    """
    if num_context < 1:
        raise ValueError(f"num_context must be >= 1, got {num_context}")
    if stride < 0:
        raise ValueError(f"stride must be >= 0, got {stride}")
    offsets = torch.arange(num_context - 1, -1, -1, device=steps.device, dtype=steps.dtype) * stride
    return (steps.unsqueeze(-1) - offsets).clamp_min(0)


@functools.lru_cache(maxsize=16)
def _scaled_stats(mean: tuple, std: tuple, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """255·mean and 255·std on ``device``, built once: a per-call host→device copy would block the stream."""
    return (torch.tensor(mean, device=device, dtype=dtype) * 255.0, torch.tensor(std, device=device, dtype=dtype) * 255.0)


def normalize_frames(
    frames: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 frames (..., H, W, 3) → normalised float (..., 3, H, W), computed on ``frames.device``.

    The loader ships uint8 (4× less host→device traffic); this does /255, ImageNet mean/std and the
    channel move on the accelerator. The result is a permuted *view*: flattened to 4-D it has
    ``channels_last`` strides, which is what cuDNN prefers for the backbone (no copy is made).
    """
    if frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 (..., H, W, 3), got dtype {frames.dtype}")
    if frames.dim() < 3 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (..., H, W, 3), got {tuple(frames.shape)}")
    m, s = _scaled_stats(tuple(mean), tuple(std), frames.device, dtype)
    # (x/255 − mean)/std = (x − 255·mean)/(255·std): one fused pass.
    out = (frames.to(dtype) - m) / s
    return out.movedim(-1, -3)


class ResNet50Conv4c(nn.Module):
    """torchvision ResNet-50 up to conv4c: (N, 3, H, W) → (N, 1024, H/16, W/16).

    Attribute names equal torchvision's, so a ResNet-50 state dict loads by key (``layer3.0..2``).
    """

    def __init__(self) -> None:
        super().__init__()
        full = resnet50(weights=None)
        self.conv1 = full.conv1
        self.bn1 = full.bn1
        self.relu = full.relu
        self.maxpool = full.maxpool
        self.layer1 = full.layer1
        self.layer2 = full.layer2
        self.layer3 = nn.Sequential(*list(full.layer3.children())[:3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))


def imagenet_cache_path() -> str:
    """Where torchvision's weights API keeps IMAGENET1K_V1: ``torch.hub.get_dir()/checkpoints/<file of the URL>``
    (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(IMAGENET_WEIGHTS.url).path))


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _assign_backbone_state(backbone: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load the conv4c subset of a full ResNet-50 state dict; extra keys (fc, layer4, layer3.3+) are ignored."""
    if not isinstance(state, Mapping):
        raise ValueError(f"{source}: expected a ResNet-50 state dict (mapping of tensors), got {type(state)}")
    own = backbone.state_dict()
    missing, mismatched = [], []
    for key, value in own.items():
        if key not in state:
            # Pre-2018 torchvision files carry no BN step counters; BatchNorm fills them in itself.
            if not key.endswith("num_batches_tracked"):
                missing.append(key)
        elif tuple(state[key].shape) != tuple(value.shape):
            mismatched.append(f"{key}: file {tuple(state[key].shape)} vs model {tuple(value.shape)}")
    if missing or mismatched:
        raise ValueError(
            f"{source} is not a torchvision ResNet-50 state dict: "
            f"{len(missing)} missing keys {missing[:5]}, {len(mismatched)} shape mismatches {mismatched[:5]}"
        )
    backbone.load_state_dict({k: state[k] for k in own if k in state}, strict=False)


def _load_imagenet(backbone: nn.Module) -> dict[str, str]:
    url, cached = IMAGENET_WEIGHTS.url, imagenet_cache_path()
    was_cached = os.path.isfile(cached)
    try:
        # torchvision's weights API: the hub cache, else a download checked against the hash in the name.
        state = IMAGENET_WEIGHTS.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # network and file errors come in many types; all mean "not available"
        if was_cached:
            raise RuntimeError(
                f"model.weights=imagenet: {cached}, torchvision's cached ResNet50_Weights.IMAGENET1K_V1, cannot be "
                f"read ({type(err).__name__}: {err}); delete it to download it again from {url}"
            ) from err
        raise RuntimeError(
            f"model.weights=imagenet: the ResNet-50 ImageNet weights (torchvision ResNet50_Weights.IMAGENET1K_V1) "
            f"are not available: they are not in the torch hub cache ({cached}) and the download from {url} "
            f"failed ({type(err).__name__}: {err}). Put the file at that path ($TORCH_HOME moves it), set "
            "model.weights to a local ResNet-50 state dict, or model.weights=none for a random initialisation"
        ) from err
    # torch.hub checks the hash only when it downloads; a damaged or foreign file in the cache is caught here.
    digest = _sha256(cached)
    expected = HASH_REGEX.search(os.path.basename(cached))
    if expected and not digest.startswith(expected.group(1)):
        raise RuntimeError(
            f"model.weights=imagenet: {cached} has sha256 {digest[:16]}..., its name says {expected.group(1)}: "
            "not the IMAGENET1K_V1 file (damaged or replaced); delete it to download it again"
        )
    _assign_backbone_state(backbone, state, cached)
    return {"weights": "imagenet", "name": "ResNet50_Weights.IMAGENET1K_V1", "url": url, "file": cached,
            "sha256": digest}


def load_backbone_weights(model: nn.Module, weights: str) -> dict[str, str]:
    """Initialise the conv4c backbone of ``model`` as ``weights`` says; returns where the weights came from.

    model: a :class:`ResNet50Conv4c` or anything with a ``backbone`` attribute holding one.
    weights:
      * ``"imagenet"``: torchvision's ``ResNet50_Weights.IMAGENET1K_V1`` (what the papers used) through its
        weights API: the torch hub cache (:func:`imagenet_cache_path`), else a download;
      * ``"none"``: keep the random initialisation;
      * anything else: the path of a torchvision ResNet-50 state dict (fc/layer4 keys allowed).
    Weights that are asked for and cannot be had raise (RuntimeError naming the cache path and the URL
    tried; FileNotFoundError for a path that does not exist; ValueError for a file that is not a ResNet-50
    state dict). Never falls back to random weights.

    Returns a JSON-able record for the run directory: ``{"weights": "none"}``,
    ``{"weights": "imagenet", "name", "url", "file", "sha256"}`` or ``{"weights": "file", "file", "sha256"}``.
    """
    backbone = getattr(model, "backbone", model)
    if not isinstance(backbone, ResNet50Conv4c):
        raise ValueError(
            f"model must be a ResNet50Conv4c or hold one as .backbone, got {type(model).__name__}"
        )
    if not isinstance(weights, str) or not weights:
        raise ValueError(f"weights must be 'imagenet', 'none' or the path of a ResNet-50 state dict, got {weights!r}")
    if weights == "none":
        source = {"weights": "none"}
    elif weights == "imagenet":
        source = _load_imagenet(backbone)
    else:
        path = os.path.abspath(os.path.expanduser(weights))
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"model.weights={weights!r}: no such file {path} (expected 'imagenet', 'none' or the path of a "
                "torchvision ResNet-50 state dict)"
            )
        _assign_backbone_state(backbone, torch.load(path, map_location="cpu", weights_only=True), path)
        source = {"weights": "file", "file": path, "sha256": _sha256(path)}
    log.info("ResNet-50 backbone weights: %s", json.dumps(source))
    return source


class AlignmentEncoder(nn.Module):
    """Frames with context → per-frame L2-normalised embeddings (LAV/VAOT/VAVA encoder).

    Args:
        embed_dim: output dimension (128 in LAV/VAOT).
        dropout: dropout before each of the two hidden FC layers (0.1).
        weights: ``"imagenet"`` (torchvision IMAGENET1K_V1, the papers' choice), ``"none"`` (random) or the
            path of a ResNet-50 state dict; see :func:`load_backbone_weights`. Where they came from is
            :attr:`weights_source` (a JSON-able dict, for the run directory).
        freeze_stem: no gradient for conv1/bn1 (the reference trains everything).
        freeze_bn: every backbone BatchNorm stays in eval mode (ImageNet running statistics, unchanged by
            training) and its affine parameters get no gradient — for few videos per GPU. The embedder's
            BatchNorm3d layers are randomly initialised and keep training.
        channels_last: run the backbone in ``torch.channels_last`` (faster convolutions on GPU, esp. bf16).
        chunk_size: run the backbone on at most this many images at a time to bound activation memory.
            With BN in train mode each chunk has its own batch statistics; results equal the unchunked
            forward in eval mode or with ``freeze_bn``.
        hidden_dim: width of the 3D convs and FC layers (512).
    """

    def __init__(
        self,
        embed_dim: int = 128,
        dropout: float = 0.1,
        weights: str = "imagenet",
        freeze_stem: bool = False,
        freeze_bn: bool = False,
        channels_last: bool = False,
        chunk_size: int | None = None,
        hidden_dim: int = 512,
    ) -> None:
        super().__init__()
        if embed_dim < 1 or hidden_dim < 1:
            raise ValueError(f"embed_dim and hidden_dim must be >= 1, got {embed_dim}, {hidden_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
        self.embed_dim = embed_dim
        self.freeze_stem = freeze_stem
        self.freeze_bn = freeze_bn
        self.channels_last = channels_last
        self.chunk_size = chunk_size

        self.backbone = ResNet50Conv4c()
        self.weights_source = load_backbone_weights(self.backbone, weights)

        self.conv1 = nn.Conv3d(CONV4C_CHANNELS, hidden_dim, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm3d(hidden_dim)
        self.conv2 = nn.Conv3d(hidden_dim, hidden_dim, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm3d(hidden_dim)
        self.dropout1 = nn.Dropout(dropout)
        self.fc1 = nn.Linear(hidden_dim, hidden_dim)
        self.dropout2 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.embedding_layer = nn.Linear(hidden_dim, embed_dim)

        if freeze_stem:
            for p in (*self.backbone.conv1.parameters(), *self.backbone.bn1.parameters()):
                p.requires_grad_(False)
        if freeze_bn:
            for m in self._backbone_bns():
                for p in m.parameters():
                    p.requires_grad_(False)
        if channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        self.train()

    def _backbone_bns(self) -> list[nn.Module]:
        # _BatchNorm also covers SyncBatchNorm after convert_sync_batchnorm.
        return [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> AlignmentEncoder:
        super().train(mode)
        if self.freeze_bn:
            for m in self._backbone_bns():
                m.eval()
        return self

    def _run_backbone(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.chunk_size is None or images.shape[0] <= self.chunk_size:
            return self.backbone(images)
        return torch.cat([self.backbone(c) for c in images.split(self.chunk_size)], dim=0)

    def _embed(self, clips: torch.Tensor) -> torch.Tensor:
        """clips: (n, S, 3, H, W) → (n, embed_dim) unit vectors."""
        feats = self._run_backbone(rearrange(clips, "n s c h w -> (n s) c h w"))
        # the context frames of a clip become the time axis of the 3D convolutions
        feats = rearrange(feats, "(n s) c h w -> n c s h w", n=clips.shape[0])
        if feats.device.type == "cpu":
            # CPU Conv3d re-lays-out a channels-last input and its 56 MB weight on every call (25 % of a step).
            feats = feats.contiguous()
        x = F.relu(self.bn1(self.conv1(feats)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = reduce(x, "n c s h w -> n c", "max")
        x = F.relu(self.fc1(self.dropout1(x)))
        x = F.relu(self.fc2(self.dropout2(x)))
        x = self.embedding_layer(x)
        # Normalise in float32: under bf16 autocast the norm of a 128-vector loses ~3 digits otherwise.
        return F.normalize(x.float(), dim=-1)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """frames: float (B, T, S, 3, H, W), normalised (see :func:`normalize_frames`);
        mask: optional bool (B, T), True for real frames → embeddings (B, T, embed_dim), float32.

        With a mask only the real frames go through the network (padded ones cost nothing and cannot
        enter BatchNorm statistics); padded positions come back as zeros.
        """
        if frames.dim() != 6 or frames.shape[3] != 3:
            raise ValueError(f"frames must have shape (B, T, S, 3, H, W), got {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        if mask is None:
            return rearrange(self._embed(rearrange(frames, "b t ... -> (b t) ...")), "(b t) d -> b t d", b=b)
        if mask.shape != (b, t) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool of shape {(b, t)}, got {mask.dtype} {tuple(mask.shape)}")
        out = frames.new_zeros(b, t, self.embed_dim, dtype=torch.float32)
        if bool(mask.any()):
            out[mask] = self._embed(frames[mask])
        return out
