"""Reading inputs for a trained model (``vasot_dist.infer.frames``): the evaluation's decoders, chunk by chunk,
turned upright as the sharding tool turns them; inputs that cannot be used are refused naming them."""

from __future__ import annotations

import numpy as np
import pytest
from infer_helpers import REAL_VIDEOS, moving_frames, write_mp4

from vasot_dist.data.decode import decode_frames
from vasot_dist.infer import UnreadableInput, open_clip
from vasot_dist.infer.commands import expand_inputs, output_names


def read_all(clip, chunk: int = 7) -> tuple[np.ndarray, np.ndarray | None]:
    parts = list(clip.chunks(chunk))
    assert all(len(v) == chunk for v, _ in parts[:-1]) and 0 < len(parts[-1][0]) <= chunk
    times = [t for _, t in parts]
    return np.concatenate([v for v, _ in parts]), None if times[0] is None else np.concatenate(times)


def test_an_mp4_decodes_in_chunks_as_the_evaluation_decoder_decodes_it(tmp_path):
    """decord, exactly as ``decode_frames`` on the whole file (the loaders); the PyAV path: the real avi below and
    the rotated videos of ``tests/pipelines/test_infer_orientation.py``."""
    path = write_mp4(tmp_path / "v.mp4", moving_frames(23, 40, 56), fps=12)
    frames, times = read_all(open_clip(path, modality="video", image_size=32))
    want = decode_frames(path.read_bytes(), np.arange(23), 32, backend="decord")
    assert frames.shape == (23, 32, 32, 3) and np.array_equal(frames, want)
    np.testing.assert_allclose(times, np.arange(23) / 12)


def test_arrays_are_scaled_to_the_model_size_and_keep_their_clock():
    frames = moving_frames(5, 20, 30)
    out, times = read_all(open_clip(frames, modality="video", image_size=16, fps=5.0), chunk=2)
    assert out.shape == (5, 16, 16, 3)
    np.testing.assert_allclose(times, [0, 0.2, 0.4, 0.6, 0.8])
    same, no_clock = read_all(open_clip(frames[:, :16, :16], modality="video", image_size=16))
    assert np.array_equal(same, frames[:, :16, :16]) and no_clock is None  # already at size: untouched


def test_features_are_standardised_over_the_whole_video_when_the_run_did():
    from vasot_dist.data.stages import standardize_features

    x = np.random.default_rng(0).normal(size=(11, 4)).astype(np.float32) * 3 + 1
    out, _ = read_all(open_clip(x, modality="features", image_size=224, standardize=True), chunk=4)
    np.testing.assert_array_equal(out, standardize_features(x))


def test_inputs_a_model_cannot_read_are_refused_naming_them(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 4)
    feats = tmp_path / "f.npy"
    np.save(feats, np.zeros((3, 4), np.float32))
    cases = [
        (tmp_path / "missing.mp4", "video", "missing.mp4: no such file"),
        (garbage, "video", "garbage.mp4: not a readable video"),
        (feats, "video", "f.npy: a features file, but this model reads video frames"),
        (write_mp4(tmp_path / "v.mp4", moving_frames(2, 16, 16)), "features", "v.mp4: this model reads features"),
        (np.zeros((3, 8, 8), np.uint8), "video", "array: a video model reads uint8 (T, H, W, 3)"),
        (np.zeros((3, 4), np.int64), "features", "array: a features model reads float (T, F)"),
    ]
    for video, modality, message in cases:
        with pytest.raises(UnreadableInput, match=message.replace("(", r"\(").replace(")", r"\)")):
            open_clip(video, modality=modality, image_size=16)


def test_inputs_expand_folders_and_globs_and_name_what_matches_nothing(tmp_path):
    for rel in ("a/x.mp4", "a/sub/y.MOV", "a/notes.txt", "b/x.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = expand_inputs([str(tmp_path / "a"), str(tmp_path / "b" / "*.mp4"), str(tmp_path / "c" / "*.mp4"),
                           str(tmp_path / "empty.mp4")], (".mp4", ".mov"))
    assert found.paths == [str(tmp_path / "a" / "sub" / "y.MOV"), str(tmp_path / "a" / "x.mp4"),
                           str(tmp_path / "b" / "x.mp4"), str(tmp_path / "empty.mp4")]
    assert [f["error"] for f in found.failures] == [f"{tmp_path / 'c' / '*.mp4'}: pattern matches no file"]
    assert output_names(found.paths) == ["y", "x", "x_2", "empty"]


@pytest.mark.skipif(not REAL_VIDEOS.is_dir(), reason="no real camera clips (../shared/data/videos)")
def test_real_clips_of_every_container_decode_as_the_loaders_decode_them():
    for path in sorted(REAL_VIDEOS.iterdir()):
        clip = open_clip(path, modality="video", image_size=64)
        frames, times = read_all(clip, chunk=64)
        backend = "decord" if path.suffix == ".mp4" else "pyav"
        want = decode_frames(path.read_bytes(), np.arange(len(frames)), 64, backend=backend)
        assert np.array_equal(frames, want), path.name
        assert clip.expected_frames in (len(frames), None) and times[0] == 0 and (np.diff(times) > 0).all()
