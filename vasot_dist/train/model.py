"""Encoder + method loss in one module, so DDP and DeepSpeed see (and synchronise) every parameter."""

from __future__ import annotations

import torch
from torch import nn

from vasot_dist.config import ConfigError, RunConfig
from vasot_dist.losses import build_loss
from vasot_dist.losses.base import LossOutput, MethodLoss
from vasot_dist.models import build_encoder, normalize_frames
from vasot_dist.train.collapse import embedding_collapse_stats, plan_entropy_ratio
from vasot_dist.train.preflight import check_model_fits_data


def build_encoder_from_config(cfg: RunConfig, *, from_checkpoint: bool = False) -> nn.Module:
    """The encoder ``cfg.model`` describes; ``from_checkpoint``: its weights are about to be replaced by a
    checkpoint's, so ``model.weights`` is not loaded (an ``imagenet`` config evaluates on a machine without the
    cached ImageNet file, and nothing is downloaded to be overwritten at once)."""
    m = cfg.model
    if m.encoder == "resnet50":
        return build_encoder(
            "resnet50", embed_dim=m.embed_dim, dropout=m.dropout, weights="none" if from_checkpoint else m.weights,
            freeze_stem=m.freeze_stem, freeze_bn=m.freeze_bn,
            channels_last=m.channels_last, hidden_dim=m.head_dim,
        )
    layers = list(m.mlp_layers)
    if layers[-1] != m.embed_dim:
        raise ValueError(f"model.mlp_layers ends with {layers[-1]} but model.embed_dim is {m.embed_dim}; make them equal")
    return build_encoder("mlp", layer_sizes=layers)


class TrainModel(nn.Module):
    """``forward(inputs, mask, step) -> LossOutput``; ``embed(inputs, mask) -> (B, T, D)``.

    inputs: uint8 frames (B, T, S, H, W, 3) for the ResNet encoder (normalised here, on the device) or
    float features (B, T, F) for the MLP encoder; mask: (B, T) bool, or None when every frame is real
    (:attr:`Batch.padded` is False): the encoder then takes its dense path, which never waits on the device.
    """

    def __init__(self, encoder: nn.Module, loss: MethodLoss, *, video: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.loss = loss
        self.video = video

    def embed(self, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # Match the parameters' dtype: DeepSpeed's bf16 mode keeps the weights themselves in bf16.
        dtype = next(self.encoder.parameters()).dtype
        if self.video:
            return self.encoder(normalize_frames(inputs, dtype=dtype), mask)
        emb = self.encoder(inputs.to(dtype))
        return emb if mask is None else emb * mask.unsqueeze(-1).to(emb.dtype)

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None, step: int = 0) -> LossOutput:
        emb = self.embed(inputs, mask)
        if mask is None:
            mask = torch.ones(emb.shape[:2], dtype=torch.bool, device=emb.device)
        # OT solves and the loss run in float32 whatever autocast says (the solvers enforce it too).
        with torch.autocast(device_type=emb.device.type, enabled=False):
            out = self.loss(emb.float(), mask, step=step)
        # the collapse monitor's inputs, logged per row (detached: the loss and its gradient are untouched)
        out.metrics.update(embedding_collapse_stats(emb, mask))
        main = self.loss.main_plan(out, mask)
        if main is not None:
            out.metrics["collapse/plan_entropy_ratio"] = plan_entropy_ratio(*main)
        return out


def compile_for_training(model: TrainModel, **compile_kwargs) -> None:
    """``torch.compile`` the encoder and the loss in place (``train.compile``); kwargs go to ``torch.compile``.

    In place (``nn.Module.compile``) keeps the state_dict keys, so checkpoints move between compiled and eager
    runs.  Every method's loss, OT solves included, is captured as one graph (no host reads, no data-dependent
    branches: tests/train/test_compile_loss.py), so inductor fuses each solver iteration's elementwise chain and
    ``mode="reduce-overhead"`` can replay it as a CUDA graph.  Two calls run eagerly between two graphs: CLOT's
    seeded projection draw (a torch.Generator cannot be traced) and REALIGN's 2,000-iteration solve (not worth
    unrolling).  Shapes are static in training; the first step of each new shape pays the compilation.
    """
    model.encoder.compile(**compile_kwargs)
    model.loss.compile(**compile_kwargs)


def build_train_model(cfg: RunConfig, *, from_checkpoint: bool = False) -> TrainModel:
    """Encoder + loss of ``cfg``; ``from_checkpoint=True`` when a checkpoint will be loaded into it (resume,
    evaluation): the encoder starts random instead of from ``model.weights``."""
    check_model_fits_data(cfg)
    if cfg.model.num_actions is None:
        raise ConfigError("model.num_actions is not set: run(cfg) and vasot-evaluate take it from dataset.json's "
                          "label map (vasot_dist.train.preflight.fill_from_data); set it to build a model directly")
    return TrainModel(build_encoder_from_config(cfg, from_checkpoint=from_checkpoint), build_loss(cfg),
                      video=cfg.data.modality == "video")
