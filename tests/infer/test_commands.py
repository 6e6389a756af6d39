"""``vasot-embed``, ``vasot-segment``, ``vasot-align`` on a tiny trained ResNet-50 run: real camera clips, the
evaluation split's videos, a synthetic video with known phases, feature shards that ``vasot-train`` reads;
outputs checked against independent computations. (A rotated clip: ``tests/pipelines/test_infer_orientation.py``,
beside the helpers that write display matrices.)"""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch
from infer_helpers import REAL_VIDEOS, moving_frames, write_mp4

import vasot_dist
from vasot_dist.cli import align_main, embed_main, segment_main
from vasot_dist.eval.runner import alignment_plan, extract_embeddings
from vasot_dist.runtime.distributed import DistContext

CPU = DistContext(0, 1, 0, torch.device("cpu"), owns_group=False)
needs_real = pytest.mark.skipif(not REAL_VIDEOS.is_dir(), reason="no real camera clips (../shared/data/videos)")


def frame_count(path) -> int:
    """Frames PyAV decodes from ``path`` (independent of the readers under test)."""
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def segments_per_frame(doc: dict) -> np.ndarray:
    """The per-frame action of a segment JSON; asserts the segments cover every frame once, in order."""
    segs = doc["segments"]
    covered = np.concatenate([np.arange(s["start_frame"], s["end_frame"] + 1) for s in segs])
    np.testing.assert_array_equal(covered, np.arange(doc["num_frames"]))
    return np.concatenate([[s["action"]] * (s["end_frame"] - s["start_frame"] + 1) for s in segs])


def decoder_labels(model, emb: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(emb)[None]
    return model.net.loss.segment(x, torch.ones(1, len(emb), dtype=torch.bool))[0].numpy()


@pytest.mark.slow
@needs_real
def test_the_three_commands_on_real_clips(vasot_run, tmp_path, capsys):
    clips = [str(REAL_VIDEOS / "windowsill_short.mp4"), str(REAL_VIDEOS / "eye_makeup.avi")]
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes((REAL_VIDEOS / "windowsill_short.mp4").read_bytes()[:3000])
    model = vasot_dist.load(vasot_run)
    out = tmp_path / "emb"
    # one clip unreadable, one pattern matching nothing: both named, the others done, exit status 1
    assert embed_main([str(vasot_run), *clips, str(corrupt), str(tmp_path / "none" / "*.mp4"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "vasot-embed: 2 of 4 inputs failed" in err and f"{corrupt}: " in err and "pattern matches no file" in err
    failed = [json.loads(line)["source"] for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failed == [str(tmp_path / "none" / "*.mp4"), str(corrupt)]
    index = json.loads((out / "index.json").read_text())
    assert [v["source"] for v in index["videos"]] == clips and index["method"] == "vasot"
    embs = {}
    for v in index["videos"]:
        emb = np.load(out / v["file"])
        assert emb.shape == (frame_count(v["source"]), 64) == (v["num_frames"], v["dim"])
        np.testing.assert_array_equal(emb, model.embed(v["source"]).vectors)  # the API gives the same
        np.testing.assert_allclose(v["times"], np.arange(len(emb)) / v["fps"], atol=1e-6)
        embs[v["source"]] = emb

    seg_out = tmp_path / "seg"
    assert segment_main([str(vasot_run), *clips, "-o", str(seg_out)]) == 0
    for clip, name in zip(clips, ("windowsill_short", "eye_makeup")):
        doc = json.loads((seg_out / f"{name}.json").read_text())
        per_frame = segments_per_frame(doc)
        np.testing.assert_array_equal(per_frame, decoder_labels(model, embs[clip]))  # the decoder's argmax
        gt = (seg_out / "groundTruth" / f"{name}.txt").read_text().splitlines()
        assert gt == [f"action_{a}" for a in per_frame]  # MS-TCN: a label per frame (no names matched)
        rows = (seg_out / f"{name}.csv").read_text().splitlines()
        assert rows[0] == "start_frame,end_frame,start_s,end_s,action,name,confidence"
        assert len(rows) == len(doc["segments"]) + 1 and doc["decoder"].startswith("vasot's decoder")
    mapping = (seg_out / "mapping" / "mapping.txt").read_text().splitlines()
    assert mapping == [f"{a} action_{a}" for a in range(3)]

    ali_out = tmp_path / "ali"
    assert align_main([str(vasot_run), clips[0], clips[1], "-o", str(ali_out)]) == 0
    pair = ali_out / "windowsill_short__eye_makeup"
    doc = json.loads((pair / "alignment.json").read_text())
    a, b = (torch.from_numpy(embs[c])[None] for c in clips)
    plan = alignment_plan(model.cfg, a, b)[0].numpy()
    assert [r["match"] for r in doc["a_to_b"]] == plan.argmax(1).tolist()
    assert [r["match"] for r in doc["b_to_a"]] == plan.argmax(0).tolist()
    assert doc["b_to_a"][10]["time_s"] == pytest.approx(10 / 25) and (np.diff(doc["retiming"]) >= 0).all()
    assert (pair / "a_to_b.csv").read_text().splitlines()[0] == "frame,time_s,match,match_time_s"
    assert (pair / "plan.png").stat().st_size > 5000
    with av.open(str(pair / "side_by_side.mp4")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    assert len(frames) == len(embs[clips[0]]) and frames[0].shape == (240, 320 + 320, 3)  # 320x240 and 320x240


@pytest.mark.slow
def test_embed_command_equals_evaluate_extraction(vasot_run, tmp_path):
    """The evaluation split's mp4s through ``vasot-embed`` give evaluation's embeddings bit for bit (2 chunks of
    16 frames each, 2 context frames 3 apart: the second chunk reads the end of the first)."""
    from vasot_pipelines.shard import iter_shard_samples

    from vasot_dist.data import resolve_shards

    model = vasot_dist.load(vasot_run)
    videos, _ = extract_embeddings(model.cfg, model.net, CPU, model.cfg.data.eval_split)
    files = []
    for url in resolve_shards(model.cfg.data.shards, model.cfg.data.eval_split).urls:
        for key, members in iter_shard_samples(url):
            files.append(tmp_path / "videos" / f"{key}.mp4")
            files[-1].parent.mkdir(exist_ok=True)
            files[-1].write_bytes(members["mp4"])
    assert embed_main([str(vasot_run), str(tmp_path / "videos"), "-o", str(tmp_path / "out")]) == 0
    assert len(videos) == len(files) == 2 and all(len(v.emb) > 16 for v in videos)
    for v in videos:
        np.testing.assert_array_equal(np.load(tmp_path / "out" / f"{v.key}.npy"), v.emb)


def phases_video(n: int = 36, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, size, size, 3): three phases of n/3 frames, each a black and white pattern of its own
    (horizontal stripes, vertical stripes, a checkerboard: the untrained encoder tells patterns apart better than
    colours); and the (n,) phases."""
    phase = np.arange(n) * 3 // n
    yy, xx = np.mgrid[0:size, 0:size]
    patterns = [(yy // 4) % 2, (xx // 8) % 2, (xx // 16 + yy // 16) % 2]
    return np.stack([np.repeat(255 * patterns[p][..., None], 3, -1).astype(np.uint8) for p in phase]), phase


@pytest.mark.slow
def test_a_synthetic_video_with_known_phases(vasot_run, vaot_video_run, tmp_path):
    """Written as an mp4 and segmented by the command: VASOT's segments cover every frame once and are its
    decoder's argmax; VAOT (no prototypes) clusters the embeddings with k-means into the three phases."""
    from vasot_dist.eval.hungarian import hungarian_mapping

    frames, phase = phases_video()
    path = write_mp4(tmp_path / "phases.mp4", frames, fps=12)
    for run in (vasot_run, vaot_video_run):
        out = tmp_path / run.name
        assert segment_main([str(run), str(path), "-o", str(out)]) == 0
        doc = json.loads((out / "phases.json").read_text())
        labels = segments_per_frame(doc)
        model = vasot_dist.load(run)
        if run is vasot_run:
            np.testing.assert_array_equal(labels, decoder_labels(model, model.embed(path).vectors))
        else:
            assert doc["decoder"].startswith("k-means over the video's embeddings (k=3)")
            mapping = hungarian_mapping(labels, phase)
            found = np.array([mapping.get(int(k), -1) for k in labels])
            # the first frames of a phase see a context frame (3 frames back) still in the previous phase
            mixed = np.zeros(len(phase), bool)
            for start in np.flatnonzero(np.diff(phase)) + 1:
                mixed[start:start + model.cfg.data.context_stride] = True
            np.testing.assert_array_equal(found[~mixed], phase[~mixed])
        assert doc["segments"][-1]["end_s"] == pytest.approx(len(frames) / 12)


@pytest.mark.slow
def test_feature_shards_from_vasot_embed_train_with_vasot_train(vasot_run, tmp_path):
    from vasot_dist.cli import train_main

    videos = tmp_path / "videos" / "stir"
    videos.mkdir(parents=True)
    for i in range(5):
        write_mp4(videos / f"v{i}.mp4", moving_frames(20 + 4 * i, 48, 64, seed=i), fps=10)
    shards = tmp_path / "feats"
    files = [str(p) for p in sorted(videos.iterdir())]
    for split, chosen in (("train", files[:3]), ("test", files[3:])):  # the second run adds a split to the folder
        assert embed_main([str(vasot_run), *chosen, "-o", str(tmp_path / "emb"), "--shards", str(shards),
                           "--split", split]) == 0
    index = json.loads((shards / "dataset.json").read_text())
    assert index["modality"] == "features" and index["label_map"] == {"unlabelled": 0}
    assert {k: v["num_samples"] for k, v in index["splits"].items()} == {"test": 2, "train": 3}
    assert index["splits"]["train"]["activities"] == {"stir": 3}
    # the samples hold the command's .npy embeddings
    from vasot_pipelines.shard import iter_shard_samples

    from vasot_dist.data import format as fmt

    for rec in index["shards"]:
        for key, members in iter_shard_samples(shards / rec["path"]):
            stem = key.split("__", 1)[1]
            np.testing.assert_array_equal(fmt.features_from_bytes(members["npy"]), np.load(tmp_path / "emb" / f"{stem}.npy"))
    assert train_main(["--config", "demo", f"data.shards={shards}", "data.name=embeddings", "data.modality=features",
                       "model.encoder=mlp", "model.mlp_layers=[64,32,16]", "model.embed_dim=16", "method.name=asot",
                       "model.num_actions=2", "data.frames_per_video=8", "data.num_workers=0", "train.max_steps=2",
                       "train.ckpt_every=0", f"train.output_dir={tmp_path / 'runs'}", "train.run_id=f",
                       "log.wandb=disabled", "eval.alignment_metrics=false"]) == 0
    assert (tmp_path / "runs" / "demo" / "f" / "checkpoints" / "step_00000002.pt").is_file()


def test_commands_refuse_a_missing_checkpoint_naming_it(tmp_path, capsys):
    for main in (embed_main, segment_main):
        with pytest.raises(SystemExit) as stop:
            main([str(tmp_path / "nothing"), "x.mp4", "-o", str(tmp_path / "o")])
        assert stop.value.code == 2
        assert f"cannot load {tmp_path / 'nothing'}: checkpoint {tmp_path / 'nothing'} does not exist" in \
            capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        align_main([str(tmp_path), "a.mp4", "b.mp4", "-o", str(tmp_path / "o")])
    assert stop.value.code == 2 and "is neither a checkpoint file nor a run directory" in capsys.readouterr().err

