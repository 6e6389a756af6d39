"""Checks that need more than the config file: run before a process group, a run directory, a checkpoint or
a W&B run exists, so a wrong path or a mismatched dataset costs nothing and leaves nothing behind."""

from __future__ import annotations

from vasot_dist.config import ConfigError, RunConfig
from vasot_dist.data import resolve_shards

_ENCODER_FOR = {"video": "resnet50", "features": "mlp"}


def check_model_fits_data(cfg: RunConfig) -> None:
    """``model.encoder`` must read what ``data.modality`` yields (frames: resnet50; features: mlp)."""
    want = _ENCODER_FOR.get(cfg.data.modality)
    if want is not None and cfg.model.encoder != want:
        raise ConfigError(f"data.modality={cfg.data.modality!r} needs model.encoder={want!r}, "
                          f"got {cfg.model.encoder!r}")


def splits_read(cfg: RunConfig, *, training: bool) -> list[str]:
    """The splits a run reads: training's split (when ``training``), the evaluation split, and for the TCC
    protocol the train split again (its phase classifier is fitted there)."""
    splits = [cfg.data.train_split] if training or cfg.eval.protocol == "tcc" else []
    if cfg.data.eval_split not in splits:
        splits.append(cfg.data.eval_split)
    return splits


def check_data(cfg: RunConfig, *, training: bool = True) -> None:
    """Every split the run reads is there, and holds what the config expects.

    Raises:
        ConfigError: naming ``data.shards`` and the path for missing shards or splits, ``data.modality``
            and the dataset for a modality mismatch, ``model.encoder`` for an encoder that cannot read it.
    """
    check_model_fits_data(cfg)
    for split in splits_read(cfg, training=training):
        try:
            source = resolve_shards(cfg.data.shards, split)
        except ValueError as e:
            raise ConfigError(f"{e} (data.name={cfg.data.name!r}; only data.name=synthetic writes missing "
                              "shards, with vasot-train / vasot-tune)") from None
        if source.modality is not None and source.modality != cfg.data.modality:
            raise ConfigError(f"data.modality={cfg.data.modality!r} but {source.index.path} holds "
                              f"{source.modality!r} shards; set data.modality={source.modality}")
