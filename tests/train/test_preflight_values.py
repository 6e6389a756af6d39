"""Every evaluation and data value is checked before a process group, a run directory or a W&B run exists: a
sweep trial with a wrong value fails in a second instead of after its whole training budget."""

from __future__ import annotations

import pytest
import torch
from trainutil import feature_overrides, tiny_config

from vasot_dist.cli import train_main
from vasot_dist.config import ConfigError
from vasot_dist.runtime.ranklog import setup_logging
from vasot_dist.train.loop import run
from vasot_dist.train.preflight import check_data

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


@pytest.mark.parametrize("override,expected", [
    ("eval.fractions=[0,2]", "invalid value [0.0, 2.0] for 'eval.fractions' in override 'eval.fractions=[0,2]': "
                             "expected a value in (0, 1]"),
    ("eval.retrieval_ks=[0]", "invalid value [0] for 'eval.retrieval_ks' in override 'eval.retrieval_ks=[0]': "
                              "expected a value in [1, inf]"),
    ("eval.max_videos=-1", "invalid value -1 for 'eval.max_videos' in override 'eval.max_videos=-1': expected a "
                           "value in [0, inf]"),
    ("data.shuffle_buffer=-5", "invalid value -5 for 'data.shuffle_buffer' in override 'data.shuffle_buffer=-5': "
                               "expected a value in [0, inf]"),
])
def test_values_wrong_on_their_own_stop_the_command(feature_shards, tmp_path, capsys, override, expected):
    args = [*feature_overrides(tmp_path, **{"data.shards": str(feature_shards)}), override]
    with pytest.raises(SystemExit) as stop:
        train_main(["--config", "demo", *args])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: {expected}\n"
    assert not (tmp_path / "runs").exists()


def _cases(shards) -> list[tuple[dict, str]]:
    index = shards / "dataset.json"
    cases = [
        ({"eval.exclude_cls": 9}, f"eval.exclude_cls=9 is not a label id of {index} (ids [0, 1, 2, 3, 4, 5, 6, 7, "
                                  "8]; the background is 0)"),
        # 4 test videos, 143 frames: no query frame has 1000 frames of other videos to rank
        ({"eval.retrieval_ks": "[5,1000]"}, "eval.retrieval_ks=[5, 1000]: AP@1000 needs 1000 frames of other videos "
                                            "for every frame of split 'test', which has 143 frames in 4 videos ("
                                            f"{index}): at most 103 besides its longest video; use values up to 103"),
        ({"data.batch_size": 3, "method.name": "vava"}, "data.batch_size=3: method.name=vava aligns pairs of videos "
                                                        "of one activity, two videos per pair, so data.batch_size "
                                                        "(videos per rank) must be even (2, 4, ...)"),
        ({"data.batch_size": 1, "data.pairs": "true"}, "data.batch_size=1: data.pairs=true of one activity, two "
                                                       "videos per pair"),
    ]
    if not torch.cuda.is_available():
        cases += [
            ({"dist.backend": "nccl"}, "dist.backend=nccl needs CUDA devices, but this run is on the CPU "
                                       "(train.device=auto, CUDA available: False); use dist.backend=gloo or auto"),
            ({"train.device": "cuda"}, "train.device=cuda but CUDA is not available on this machine"),
        ]
    return cases


def test_values_wrong_for_this_data_or_machine_stop_the_run_before_it_starts(feature_shards, tmp_path):
    for settings, expected in _cases(feature_shards):
        cfg = tiny_config(feature_shards, tmp_path, **settings)
        with pytest.raises(ConfigError) as err:
            run(cfg)
        assert str(err.value).startswith(expected), (settings, str(err.value))
        assert not (tmp_path / "runs").exists(), settings  # no run directory, no lock, no W&B run


def test_the_largest_retrieval_k_the_split_allows_passes(feature_shards, tmp_path):
    msg = None
    try:
        check_data(tiny_config(feature_shards, tmp_path, **{"eval.retrieval_ks": "[1000]"}))
    except ConfigError as e:
        msg = str(e)
    allowed = int(msg.rsplit("use values up to ", 1)[1])
    check_data(tiny_config(feature_shards, tmp_path, **{"eval.retrieval_ks": f"[5,{allowed}]"}))
    with pytest.raises(ConfigError):
        check_data(tiny_config(feature_shards, tmp_path, **{"eval.retrieval_ks": f"[{allowed + 1}]"}))


def test_frames_per_video_far_above_the_videos_is_a_warning(feature_shards, tmp_path, capsys):
    setup_logging(0)  # to this test's stderr
    check_data(tiny_config(feature_shards, tmp_path, **{"data.frames_per_video": 512}))
    err = capsys.readouterr().err
    assert "data.frames_per_video=512 is far above the " in err and "frames the videos of split 'train' have on " \
        "average" in err and "% of the sampled positions are padding" in err
    check_data(tiny_config(feature_shards, tmp_path, **{"data.frames_per_video": 16}))
    assert "frames_per_video" not in capsys.readouterr().err
