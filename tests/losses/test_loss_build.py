"""build_loss: every method name of the schema, the pair flag, a padded training step, and the error."""

from __future__ import annotations

import pytest
import torch
from loss_helpers import pad_batch, unit

from vasot_dist.config.methods import METHOD_SETTINGS
from vasot_dist.config.schema import ALIGNMENT_METHODS, METHODS, RunConfig
from vasot_dist.losses import LOSSES, MethodLoss, VAOTLoss, build_loss

OWN_PROTOTYPES = {"asot", "vasot", "clot"}


def test_registry_covers_exactly_the_schema_methods_each_with_its_settings():
    assert list(LOSSES) == list(METHODS)
    for name, cls in LOSSES.items():
        assert cls.Settings is METHOD_SETTINGS[name] and cls.__name__.lower() == f"{name}loss"


@pytest.mark.parametrize("name", METHODS)
def test_build_every_method_and_take_a_padded_step(name):
    cfg = RunConfig()
    cfg.method.name = name
    cfg.model.embed_dim, cfg.model.num_actions = 16, 3
    cfg.method.realign.align.n_iters = 3  # keeps REALIGN quick here
    loss_fn = build_loss(cfg)
    assert type(loss_fn) is LOSSES[name] and isinstance(loss_fn, MethodLoss)
    assert loss_fn.settings is getattr(cfg.method, name)  # the config's section itself, not a copy
    assert loss_fn.needs_pairs == (name in ALIGNMENT_METHODS) == cfg.method.needs_pairs
    assert (loss_fn.prototypes is not None) == (name in OWN_PROTOTYPES)
    if loss_fn.prototypes is not None:
        assert loss_fn.prototypes.weight.shape == (3, 16)
    gen = torch.Generator().manual_seed(0)
    emb, mask = pad_batch([unit(n, 16, gen=gen) for n in (8, 6, 7, 5)], 9)
    emb.requires_grad_()
    out = loss_fn(emb, mask, step=2)
    out.loss.backward()
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0
    assert out.metrics and all(v.dim() == 0 and not v.requires_grad for v in out.metrics.values())
    assert out.couplings and all(not c.requires_grad and c.dim() == 3 for c in out.couplings.values())
    labels = loss_fn.segment(emb.detach(), mask)
    if name in OWN_PROTOTYPES:
        assert labels.shape == mask.shape and (labels[~mask] == -1).all() and (labels[mask] >= 0).all()
    else:
        assert labels is None


def test_pair_methods_are_the_alignment_methods():
    assert set(ALIGNMENT_METHODS) == {"vaot", "vasot", "vava", "realign", "kot"}


def test_settings_of_another_method_are_refused():
    with pytest.raises(TypeError, match="VAOTLoss takes VAOTConfig, got ASOTConfig"):
        VAOTLoss(RunConfig().method.asot)


def test_unknown_method_name_lists_the_valid_ones():
    cfg = RunConfig()
    cfg.method.name = "vasott"
    with pytest.raises(
        ValueError,
        match=r"unknown method.name 'vasott'; valid names: asot, clot, kot, realign, vaot, vasot, vava",
    ):
        build_loss(cfg)
