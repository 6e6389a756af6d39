"""``vasot_dist.load`` and ``model.embed / segment / align`` on tiny trained feature runs, against independent
computations: evaluation's own extraction, the method's decoder, the run's alignment solve, a known time warp."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vasot_dist
from vasot_dist.eval.runner import alignment_plan, extract_embeddings
from vasot_dist.infer import Embeddings, UnreadableInput
from vasot_dist.runtime.distributed import DistContext

CPU = DistContext(0, 1, 0, torch.device("cpu"), owns_group=False)


def test_features_embed_as_evaluation_extracts_them(asot_feature_run, feature_root):
    """The test split's features through the API equal evaluation's extraction of the same checkpoint exactly."""
    model = vasot_dist.load(asot_feature_run)
    videos, _ = extract_embeddings(model.cfg, model.net, CPU, model.cfg.data.eval_split)
    raw = _raw_features(model.cfg)
    assert len(videos) == len(raw) == 4
    for v in videos:
        emb = model.embed(raw[v.key], fps=15.0)
        np.testing.assert_array_equal(emb.vectors, v.emb)
        np.testing.assert_allclose(emb.times, np.arange(len(v.emb)) / 15.0)


def _raw_features(cfg) -> dict[str, np.ndarray]:
    """{key: (T, F) stored features} of the evaluation split, read from the shards without the loaders."""
    from vasot_pipelines.shard import iter_shard_samples

    from vasot_dist.data import format as fmt
    from vasot_dist.data import resolve_shards

    out = {}
    for url in resolve_shards(cfg.data.shards, cfg.data.eval_split).urls:
        for key, members in iter_shard_samples(url):
            out[key] = fmt.features_from_bytes(members["npy"])
    return out


def test_segments_cover_every_frame_once_and_are_the_decoders_argmax(asot_feature_run):
    model = vasot_dist.load(asot_feature_run, device="cpu")
    x = next(iter(_raw_features(model.cfg).values()))
    seg = model.segment(x)
    frames = np.concatenate([np.arange(s.start_frame, s.end_frame + 1) for s in seg.segments])
    np.testing.assert_array_equal(frames, np.arange(len(x)))  # every frame once, in order
    emb = torch.from_numpy(model.embed(x).vectors)[None]
    decoded = model.net.loss.segment(emb, torch.ones(1, len(x), dtype=torch.bool))[0].numpy()
    per_frame = np.concatenate([[s.action] * (s.end_frame - s.start_frame + 1) for s in seg.segments])
    np.testing.assert_array_equal(per_frame, decoded)
    assert all(a.action != b.action for a, b in zip(seg.segments, seg.segments[1:]))  # maximal runs
    assert seg.decoder.startswith("asot's decoder: ASOT structured OT")
    assert all(0 < s.confidence <= 1 for s in seg.segments) and seg.times is None and seg.segments[0].start_s is None


def test_a_method_without_a_decoder_takes_the_nearest_prototype(asot_feature_run, monkeypatch):
    model = vasot_dist.load(asot_feature_run)
    x = next(iter(_raw_features(model.cfg).values()))
    monkeypatch.setattr(model.net.loss, "segment", lambda emb, mask: None)
    seg = model.segment(x, fps=10.0)
    protos = model.net.loss.prototypes().detach().numpy()
    np.testing.assert_array_equal(seg.labels, (model.embed(x).vectors @ protos.T).argmax(1))
    assert seg.decoder == "nearest prototype"
    last = seg.segments[-1]
    assert last.end_s == pytest.approx((len(x)) / 10.0) and seg.segments[0].start_s == 0


def test_alignment_methods_segment_by_kmeans_and_cannot_name_actions(vaot_feature_run):
    from vasot_dist.eval.procedure import cluster_keysteps

    model = vasot_dist.load(vaot_feature_run)
    x = next(iter(_raw_features(model.cfg).values()))
    seg = model.segment(x)
    k = model.cfg.model.num_actions
    np.testing.assert_array_equal(seg.labels, cluster_keysteps(model.embed(x).vectors, k=k, seed=model.cfg.train.seed))
    assert seg.decoder == f"k-means over the video's embeddings (k={k}): vaot has no action prototypes"
    with pytest.raises(ValueError, match="vaot has no action prototypes"):
        model.match_actions()


def test_match_actions_names_the_prototypes_by_the_evaluation_matching(asot_feature_run):
    from vasot_dist.eval.hungarian import hungarian_mapping

    model = vasot_dist.load(asot_feature_run)
    names = model.match_actions()
    videos, _ = extract_embeddings(model.cfg, model.net, CPU, model.cfg.data.eval_split)
    mapping = hungarian_mapping(np.concatenate([v.segmentation for v in videos]),
                                np.concatenate([v.labels for v in videos]))
    assert names == {k: model.label_names[g] for k, g in mapping.items()} and len(set(names.values())) == len(names)
    seg = model.segment(next(iter(_raw_features(model.cfg).values())))
    assert all(s.name == names.get(s.action) for s in seg.segments)
    assert {seg.label_name(s.action) for s in seg.segments} <= set(names.values()) | {
        f"action_{s.action}" for s in seg.segments}


def _warp(m: int, n: int) -> np.ndarray:
    """(m,) frames of an n-frame video played slow, then fast: w(j) = round((n - 1) (j / (m - 1))^1.6)."""
    return np.round((n - 1) * (np.arange(m) / (m - 1)) ** 1.6).astype(np.int64)


def test_aligning_a_video_with_a_time_warped_copy_recovers_the_warp(asot_feature_run):
    model = vasot_dist.load(asot_feature_run)
    x = max(_raw_features(model.cfg).values(), key=len)
    w = _warp(len(x) + 7, len(x))
    ali = model.align(x, x[w])
    err = np.abs(ali.b_to_a - w).mean()
    assert err <= 1.5, err  # mean frame error of B's matches in A (the synthetic features: about 0.3)
    emb_a, emb_b = (torch.from_numpy(model.embed(v).vectors)[None] for v in (x, x[w]))
    plan = alignment_plan(model.cfg, emb_a, emb_b)[0].numpy()
    np.testing.assert_array_equal(ali.plan, plan)
    np.testing.assert_array_equal(ali.a_to_b, plan.argmax(1))
    assert (np.diff(ali.retiming) >= 0).all() and np.abs(ali.retiming - ali.a_to_b).mean() <= 2


def test_embeddings_pass_through_and_bad_inputs_name_themselves(asot_feature_run, tmp_path):
    model = vasot_dist.load(asot_feature_run)
    emb = Embeddings(np.zeros((3, 16), np.float32), None, None, "given")
    assert model.embed(emb) is emb
    with pytest.raises(UnreadableInput, match=r"array: features of dimension 5, but the model reads 32"):
        model.embed(np.zeros((4, 5), np.float32))
    with pytest.raises(FileNotFoundError, match="is neither a checkpoint file nor a run directory"):
        vasot_dist.load(tmp_path)
