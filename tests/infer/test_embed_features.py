"""``vasot-embed`` on feature files (an MLP run, fast): the evaluation's embeddings exactly, and a second run
over the same output folder embeds only what the first did not."""

from __future__ import annotations

import json

import numpy as np
import torch
from test_api import _raw_features

import vasot_dist
from vasot_dist.cli import embed_main
from vasot_dist.eval.runner import extract_embeddings
from vasot_dist.infer import InferenceModel
from vasot_dist.runtime.distributed import DistContext


def test_embed_command_on_feature_files_equals_evaluate_extraction_and_resumes(asot_feature_run, tmp_path,
                                                                                monkeypatch):
    model = vasot_dist.load(asot_feature_run)
    videos, _ = extract_embeddings(model.cfg, model.net, DistContext(0, 1, 0, torch.device("cpu"), False),
                                   model.cfg.data.eval_split)
    files = []
    for key, x in _raw_features(model.cfg).items():
        files.append(tmp_path / "feats" / f"{key}.npy")
        files[-1].parent.mkdir(exist_ok=True)
        np.save(files[-1], x)
    calls = []
    embed_clip = InferenceModel.embed_clip
    monkeypatch.setattr(InferenceModel, "embed_clip", lambda self, clip, progress=None: calls.append(clip.name)
                        or embed_clip(self, clip, progress))
    out = tmp_path / "out"
    assert embed_main([str(asot_feature_run), *map(str, files[:2]), "-o", str(out)]) == 0
    assert embed_main([str(asot_feature_run), str(tmp_path / "feats"), "-o", str(out)]) == 0
    assert calls == [str(f) for f in files[:2]] + sorted(str(f) for f in files[2:])  # the first two kept
    index = json.loads((out / "index.json").read_text())
    assert sorted(v["source"] for v in index["videos"]) == sorted(map(str, files))
    assert index["checkpoint"] == str(model.checkpoint) and index["failed"] == []
    for v in videos:
        np.testing.assert_array_equal(np.load(out / f"{v.key}.npy"), v.emb)
