"""A checkpoint holds the config it was trained with: evaluating it with a config of another model is refused
by name (not PyTorch's ``Error(s) in loading state_dict``, nor a silent run titled ``demo/None vava``), other
inputs are warned about, and the report names the run."""

from __future__ import annotations

import pytest
import torch
from trainutil import feature_overrides, tiny_config

from vasot_dist.cli import evaluate_main
from vasot_dist.config import ConfigError, load_config, save_config
from vasot_dist.runtime.ranklog import setup_logging
from vasot_dist.train import checkpoint as ckpt
from vasot_dist.train.evaluate import evaluate_checkpoint
from vasot_dist.train.loop import run
from vasot_dist.train.model import build_train_model


@pytest.fixture(scope="module")
def trained(feature_shards, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trained")
    run(tiny_config(feature_shards, tmp, **{"train.max_steps": 2, "train.ckpt_every": 0}))
    return tmp, tmp / "runs" / "t" / "r"


@pytest.mark.parametrize("change,listed", [
    (["model.embed_dim=8", "model.mlp_layers=[32,32,8]"],
     "model.embed_dim: 16 in the checkpoint, 8 here; model.mlp_layers: [32, 32, 16] in the checkpoint, [32, 32, 8] here"),
    (["method.name=vava"], "method.name: 'asot' in the checkpoint, 'vava' here"),
])
def test_a_config_of_another_model_is_refused_naming_the_keys(trained, feature_shards, capsys, change, listed):
    tmp, run_dir = trained
    config = save_config(tiny_config(feature_shards, tmp), tmp / "eval.yaml")
    with pytest.raises(SystemExit) as stop:
        evaluate_main(["--config", str(config), "--checkpoint", str(run_dir), "--out", str(tmp / "ev"), *change])
    assert stop.value.code == 2
    path = run_dir / "checkpoints" / "step_00000002.pt"
    assert capsys.readouterr().err == (f"error: {path} was trained with another model than this config describes "
                                       f"({listed}); evaluate it with the config it was trained with (--config "
                                       "<run>/config.yaml)\n")
    assert not (tmp / "ev").exists()


def test_weights_that_do_not_fit_are_named(trained, feature_shards):
    tmp, run_dir = trained
    path = run_dir / "checkpoints" / "step_00000002.pt"
    weights = dict(ckpt.load_file_checkpoint(path)["model"])
    weights["encoder.extra"] = torch.zeros(1)
    name = next(k for k in weights if k.endswith("weight"))
    weights[name] = torch.zeros(3, 3)
    model = build_train_model(tiny_config(feature_shards, tmp))
    with pytest.raises(ConfigError) as err:
        ckpt.load_model_weights(model, weights, path)
    own = tuple(model.state_dict()[name].shape)
    assert str(err.value) == (f"the weights of {path} do not fit the model of this config (other shapes: {name} (3, 3) "
                              f"in the checkpoint, {own} here; only in the checkpoint: encoder.extra); evaluate it "
                              "with the config it was trained with (--config <run>/config.yaml)")


def test_other_inputs_are_warned_about_and_the_report_names_the_run(trained, feature_shards, capsys):
    tmp, run_dir = trained
    # a config without a run id (a packaged one, say), with another image size than the training's
    cfg = load_config(None, [*feature_overrides(tmp, **{"data.shards": str(feature_shards)}), "train.run_id=null",
                             "data.image_size=112"])
    assert cfg.train.run_id is None
    setup_logging(0)
    evaluate_checkpoint(cfg, str(run_dir), out_dir=str(tmp / "ev2"))
    err = capsys.readouterr().err
    assert "with other inputs than it was trained on: data.image_size: 224 in training, 112 now" in err
    assert (tmp / "ev2" / "report.md").read_text().startswith("# t/r asot\n")
