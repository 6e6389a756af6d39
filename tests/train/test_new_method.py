"""An 8th method declared in-process, as a new method's author would: its settings (``register_method``) and its
loss (``@method_loss``) are all it takes to be configured, trained, decoded and scored with its evaluation hooks;
the docs test then demands its section of docs/methods.md and the learning guard its row.

The toy method is a self-labelled prototype classifier: each frame's target is its nearest prototype (a hard
pseudo-label), the loss the cross-entropy of ``x A^T / tau`` against it; decoding is the same argmax.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from methods_doc import DOC, doc_problems, section_title
from test_learning_guard import guard_config, guard_row
from trainutil import tiny_config

from vasot_dist.config import (
    METHODS,
    SCHEMA_KEYS,
    ConfigError,
    config_to_dict,
    load_config,
    register_method,
    unregister_method,
)
from vasot_dist.config.rules import positive
from vasot_dist.losses import LossOutput, PrototypeLoss, build_loss, method_loss
from vasot_dist.losses.common import check_batch, masked_argmax_labels, soft_cross_entropy


@dataclass
class ToyConfig:
    """The toy method's settings: one temperature."""

    needs_pairs: ClassVar[bool] = False

    tau: float = positive(0.1)


class ToyLoss(PrototypeLoss):
    """Cross-entropy of the prototype logits against each frame's nearest prototype."""

    def forward(self, emb: torch.Tensor, mask: torch.Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        logits = self.prototypes.logits(emb.float(), self.settings.tau)  # (B, T, K)
        target = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
        loss = soft_cross_entropy(target, logits, mask)
        return LossOutput(loss=loss, metrics={"toy/ce": loss.detach()}, couplings={"seg": target[:1].detach()})

    @torch.no_grad()
    def segment(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_argmax_labels(self.prototypes.logits(emb.float(), self.settings.tau), mask)


@pytest.fixture
def toy_method():
    """The toy method registered (settings with REALIGN's key-step metrics as its extra evaluation, its loss),
    and removed again afterwards."""
    register_method("toy", metrics=("keystep",))(ToyConfig)
    method_loss("toy")(ToyLoss)
    try:
        yield METHODS["toy"]
    finally:
        unregister_method("toy")


def test_a_method_registered_in_process_is_configured_trained_and_evaluated(toy_method, feature_shards, tmp_path):
    from vasot_dist.train.loop import run

    assert toy_method.loss is ToyLoss and ToyLoss.Settings is ToyConfig and not toy_method.needs_pairs
    # its section is a config section: dotted overrides, YAML files, the same range checks as every key
    cfg = load_config(None, ["method.name=toy", "method.toy.tau=0.2", "model.num_actions=3"])
    assert type(cfg.method.settings) is ToyConfig and cfg.method.settings.tau == 0.2
    (tmp_path / "toy.yaml").write_text("method:\n  name: toy\n  toy:\n    tau: 0.3\n")
    assert load_config(tmp_path / "toy.yaml").method.toy.tau == 0.3
    with pytest.raises(ConfigError, match=r"invalid value -1.0 for 'method.toy.tau' in override 'method.toy.tau=-1'"):
        load_config(None, ["method.toy.tau=-1"])
    with pytest.raises(ConfigError, match="unknown key 'method.toy.tauu' in command-line override; did you mean "
                                          "'method.toy.tau'"):
        load_config(None, ["method.toy.tauu=1"])
    loss_fn = build_loss(cfg)
    assert type(loss_fn) is ToyLoss and loss_fn.settings is cfg.method.toy and loss_fn.segments()

    # trained for two steps and evaluated by the trainer: decoded segmentations and the key-step hook scored
    cfg = tiny_config(feature_shards, tmp_path, **{"method.name": "toy", "train.max_steps": 2,
                                                   "train.ckpt_every": 0})
    out = run(cfg)
    assert out["status"] == "completed" and out["step"] == 2
    rows = [json.loads(line) for line in (Path(out["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "toy/ce" in r] == [1, 2]
    assert all(0 < r["toy/ce"] < 10 for r in rows if "toy/ce" in r)
    metrics = out["metrics"]
    assert 0 <= metrics["seg/MoF"] <= 100 and 0 <= metrics["keystep/F1"] <= 100 and "align_acc" in metrics
    saved = (Path(out["run_dir"]) / "config.yaml").read_text()
    assert "toy:\n    tau: 0.1" in saved and config_to_dict(cfg)["method"]["toy"] == {"tau": 0.1}


def test_the_docs_test_and_the_learning_guard_demand_a_registered_method(toy_method):
    text = DOC.read_text()
    assert doc_problems(text) == ["lacks the section '## TOY'", "lacks the row method.toy.tau"]
    documented = f"{text}\n{section_title('toy')}\n\n| key | default | why |\n|---|---|---|\n| `method.toy.tau` | 0.1 | t |\n"
    assert doc_problems(documented) == []
    with pytest.raises(pytest.fail.Exception, match="method 'toy' is not in the learning guard: add its training "
                                                    "steps to STEPS"):
        guard_row("toy")
    with pytest.raises(pytest.fail.Exception, match="method 'toy' is not in the learning guard"):
        guard_config(Path("unused"), "toy")


def test_a_removed_method_leaves_the_schema():
    register_method("toy", metrics=("keystep",))(ToyConfig)
    assert "method.toy.tau" in SCHEMA_KEYS
    unregister_method("toy")
    assert "toy" not in METHODS and "method.toy.tau" not in SCHEMA_KEYS and not hasattr(load_config(None).method, "toy")
    with pytest.raises(ConfigError, match="unknown key 'method.toy.tau'"):
        load_config(None, ["method.toy.tau=0.2"])
    with pytest.raises(ConfigError, match=r"invalid value 'toy' for 'method.name'.*expected one of \['asot'"):
        load_config(None, ["method.name=toy"])


def test_a_name_is_registered_once_and_settings_must_say_whether_they_train_on_pairs():
    with pytest.raises(ValueError, match=r"method 'vaot' is already registered \(settings VAOTConfig\)"):
        register_method("vaot")(ToyConfig)

    @dataclass
    class NoPairs:
        tau: float = 0.1

    with pytest.raises(ValueError, match="expected a dataclass with a class variable 'needs_pairs"):
        register_method("nopairs")(NoPairs)
    with pytest.raises(ValueError, match="expected a lowercase identifier"):
        register_method("Toy-2")(ToyConfig)
    assert "nopairs" not in METHODS and "Toy-2" not in METHODS
