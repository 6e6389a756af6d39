"""A model whose weights come from a checkpoint (``--resume``, ``vasot-evaluate``, ``vasot-compare``'s trained
side) is built with ``model.weights: none``: the configured pretrained weights would be overwritten at once, and
an ``imagenet`` config must evaluate on a machine without the cached ImageNet file."""

from __future__ import annotations

import pytest
from trainutil import tiny_config

from vasot_dist.config import load_config
from vasot_dist.train import evaluate, loop
from vasot_dist.train.model import build_encoder_from_config


def test_an_encoder_built_for_a_checkpoint_does_not_load_the_configured_weights(tmp_path):
    missing = tmp_path / "resnet50.pt"  # stands for weights this machine does not have
    cfg = load_config(None, ["data.modality=video", "model.encoder=resnet50", f"model.weights={missing}",
                             "model.embed_dim=8", "model.head_dim=16"])
    with pytest.raises(FileNotFoundError, match=f"no such file {missing}"):
        build_encoder_from_config(cfg)
    assert build_encoder_from_config(cfg, from_checkpoint=True).weights_source == {"weights": "none"}


def test_resume_evaluate_and_compare_build_their_models_for_a_checkpoint(feature_shards, tmp_path, monkeypatch):
    built: list[bool] = []

    def spy(build):
        def wrapped(cfg, *, from_checkpoint=False):
            built.append(from_checkpoint)
            return build(cfg, from_checkpoint=from_checkpoint)
        return wrapped

    monkeypatch.setattr(loop, "build_train_model", spy(loop.build_train_model))
    monkeypatch.setattr(evaluate, "build_train_model", spy(evaluate.build_train_model))
    cfg = tiny_config(feature_shards, tmp_path, **{"train.max_steps": 2, "train.ckpt_every": 2})
    loop.run(cfg)
    run_dir = tmp_path / "runs" / "t" / "r"
    loop.run(tiny_config(feature_shards, tmp_path, **{"train.max_steps": 3}), resume="auto")
    assert built == [False, True]  # a new run loads model.weights; a resumed one its checkpoint

    built.clear()
    evaluate.evaluate_checkpoint(cfg, str(run_dir), out_dir=str(tmp_path / "eval"))
    assert built == [True]

    built.clear()
    (run_dir / "eval" / "step_00000003" / "metrics.json").unlink()  # else compare reuses the run's final metrics
    evaluate.compare_with_untrained(run_dir)
    assert built == [False, True]  # the untrained side starts from model.weights, the trained one is loaded
