"""build_loss: every registered method, the pair flag, a padded training step, and the errors."""

from __future__ import annotations

import pytest
import torch
from loss_helpers import pad_batch, padding_effect, unit

from vasot_dist.config import METHODS, RunConfig
from vasot_dist.losses import MethodLoss, PrototypeLoss, VAOTLoss, build_loss, method_loss


def test_every_registered_method_has_its_loss_on_its_settings():
    for name, method in METHODS.items():
        assert method.loss is not None, name
        assert method.loss.method == name and method.loss.Settings is method.settings
        assert issubclass(method.loss, MethodLoss) and method.loss.__name__.lower() == f"{name}loss"


def small_config(name: str) -> RunConfig:
    """The method's defaults, D = 16, K = 3."""
    cfg = RunConfig()
    cfg.method.name = name
    cfg.model.embed_dim, cfg.model.num_actions = 16, 3
    cfg.method.realign.align.n_iters = 3  # keeps REALIGN quick here
    return cfg


@pytest.mark.parametrize("name", METHODS)
def test_build_every_method_and_take_a_padded_step(name):
    cfg = small_config(name)
    loss_fn = build_loss(cfg)
    assert type(loss_fn) is METHODS[name].loss and isinstance(loss_fn, MethodLoss)
    assert loss_fn.settings is getattr(cfg.method, name)  # the config's section itself, not a copy
    assert loss_fn.needs_pairs == METHODS[name].needs_pairs == cfg.method.needs_pairs
    assert (loss_fn.prototypes is not None) == isinstance(loss_fn, PrototypeLoss)
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
    if loss_fn.segments():
        assert labels.shape == mask.shape and (labels[~mask] == -1).all() and (labels[mask] >= 0).all()
    else:
        assert labels is None


@pytest.mark.parametrize("name", METHODS)
def test_padding_does_not_change_the_loss(name):
    """A batch padded further gives the same loss: every method averages over real frames and solves each padded
    problem as the video alone (docs/methods.md, Notation)."""
    loss_fn = build_loss(small_config(name)).eval()  # eval: CLOT's decoder without dropout
    gen = torch.Generator().manual_seed(2)
    assert padding_effect(loss_fn, [unit(9, 16, gen=gen), unit(8, 16, gen=gen)], 14, step=3) < 1e-5


def test_the_pair_methods_and_the_segmentation_methods():
    assert {n for n, m in METHODS.items() if m.needs_pairs} == {"vaot", "vasot", "vava", "realign", "kot"}
    assert {n for n, m in METHODS.items() if m.loss.segments()} == {"asot", "vasot", "clot"}
    assert {n for n, m in METHODS.items() if issubclass(m.loss, PrototypeLoss)} == {"asot", "vasot", "clot"}


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


def test_a_loss_for_an_unregistered_method_or_a_second_loss_is_refused():
    with pytest.raises(ValueError, match=r"@method_loss\('vaott'\) on Typo: no method 'vaott' is registered"):
        method_loss("vaott")(type("Typo", (MethodLoss,), {}))
    with pytest.raises(ValueError, match="method 'vaot' already has the loss VAOTLoss"):
        method_loss("vaot")(type("Other", (MethodLoss,), {}))
    assert METHODS["vaot"].loss is VAOTLoss
