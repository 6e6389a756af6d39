"""ResNet-50 conv4c alignment encoder (LAV / VAOT): structure, weight lookup, freezing, masks, precision."""

import hashlib
import logging
import os
import re
from pathlib import Path

import pytest
import torch
import torchvision.transforms.functional as TF
from torch import nn
from torchvision.models import resnet50
from weights_helpers import UNREACHABLE, fake_imagenet

from vasot_dist.config import load_config
from vasot_dist.models import resnet_encoder as re_mod
from vasot_dist.models.resnet_encoder import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AlignmentEncoder,
    ResNet50Conv4c,
    context_frame_indices,
    load_backbone_weights,
    normalize_frames,
)

torch.set_num_threads(1)
HW = 64  # conv4c is 1024 × 4 × 4 at 64 px


@pytest.fixture(scope="module")
def tv_state(tmp_path_factory):
    """A random torchvision ResNet-50 (full model: fc and layer4 included) saved as a state dict."""
    torch.manual_seed(123)
    model = resnet50(weights=None).eval()
    path = tmp_path_factory.mktemp("w") / "resnet50_random.pth"
    torch.save(model.state_dict(), path)
    return model, str(path)


def frames(b=2, t=3, s=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, s, 3, HW, HW, generator=g)


def embed_loss(out, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (out * torch.randn(out.shape, generator=g)).sum()


def test_shapes_and_unit_norm():
    enc = AlignmentEncoder(embed_dim=16, weights="none").eval()
    with torch.no_grad():
        out = enc(frames())
        assert enc.backbone(torch.zeros(1, 3, HW, HW)).shape == (1, 1024, 4, 4)
        assert enc.backbone(torch.zeros(1, 3, 224, 224)).shape == (1, 1024, 14, 14)
    assert out.shape == (2, 3, 16) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2, 3))


def test_backbone_equals_lav_cut_of_torchvision(tv_state):
    """Oracle: LAV's own construction, children()[:-3] with layer3 cut to its first 3 bottlenecks."""
    tv, path = tv_state
    enc = AlignmentEncoder(weights=path).eval()
    assert enc.weights_source == {"weights": "file", "file": path,
                                  "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}
    for key, value in enc.backbone.state_dict().items():
        torch.testing.assert_close(value, tv.state_dict()[key], rtol=0, atol=0)
    layers = list(tv.children())[:-3]
    layers[-1] = nn.Sequential(*list(layers[-1].children())[:-3])
    lav = nn.Sequential(*layers).eval()
    x = torch.randn(3, 3, HW, HW)
    with torch.no_grad():
        torch.testing.assert_close(enc.backbone(x), lav(x))
    assert len(enc.backbone.layer3) == 3 and len(tv.layer3) == 6


def test_weights_with_wrong_shape_or_missing_keys_raise(tmp_path, tv_state):
    tv, _ = tv_state
    state = dict(tv.state_dict())
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(ValueError, match=r"conv1\.weight.*\(64, 3, 3, 3\)"):
        load_backbone_weights(ResNet50Conv4c(), str(bad))
    state = {k: v for k, v in tv.state_dict().items() if not k.startswith("layer3.2.")}
    torch.save(state, bad)
    with pytest.raises(ValueError, match=r"missing keys.*layer3\.2\."):
        load_backbone_weights(ResNet50Conv4c(), str(bad))


def tiny_state() -> dict[str, torch.Tensor]:
    """A complete conv4c state dict whose tensors are expanded scalars (value i/100 for the i-th key):
    a file of a few hundred kB instead of 100 MB, every key and shape right."""
    own = ResNet50Conv4c().state_dict()
    return {k: torch.full((1,), i / 100, dtype=v.dtype).reshape([1] * v.dim()).expand(v.shape)
            for i, (k, v) in enumerate(own.items())}


def _cache_file(torch_home, state: dict, prefix: str | None = None) -> tuple[Path, str]:
    """Save ``state`` where torchvision's weights API looks, named like torchvision's files
    (``resnet50-<first 8 hex digits of its sha256>.pth``, or ``prefix``)."""
    tmp = torch_home / "state.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = torch_home / "hub" / "checkpoints" / f"resnet50-{prefix or digest[:8]}.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(path)
    return path, digest


def test_imagenet_weights_come_from_the_torchvision_cache(torch_home, monkeypatch, caplog):
    state = tiny_state()
    path, digest = _cache_file(torch_home, state)
    assert path.stat().st_size < 2**20
    monkeypatch.setattr(re_mod, "IMAGENET_WEIGHTS", fake_imagenet(f"http://127.0.0.1:9/{path.name}"))
    with caplog.at_level(logging.INFO, logger=re_mod.__name__):
        enc = AlignmentEncoder(embed_dim=8, weights="imagenet")
    for key, value in enc.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert enc.weights_source == {"weights": "imagenet", "name": "ResNet50_Weights.IMAGENET1K_V1",
                                  "url": f"http://127.0.0.1:9/{path.name}", "file": str(path), "sha256": digest}
    assert str(path) in caplog.text and digest in caplog.text  # the resolved source is logged


def test_imagenet_weights_that_cannot_be_had_are_an_error_naming_what_was_tried(torch_home):
    # empty TORCH_HOME, and the download fails (here: a closed port; on a user's machine: no network)
    with pytest.raises(RuntimeError) as err:
        AlignmentEncoder(embed_dim=8)  # the default is imagenet
    text = str(err.value)
    assert "model.weights=imagenet" in text and "IMAGENET1K_V1" in text
    assert os.path.join(str(torch_home), "hub", "checkpoints", "resnet50-0676ba61.pth") in text
    assert UNREACHABLE in text and "model.weights=none" in text


def test_imagenet_cache_file_with_the_wrong_hash_is_refused(torch_home):
    path, digest = _cache_file(torch_home, tiny_state(), prefix="0676ba61")
    assert not digest.startswith("0676ba61")  # a file that is not the one its name promises
    with pytest.raises(RuntimeError, match=rf"{re.escape(str(path))} has sha256 {digest[:16]}.*delete it"):
        AlignmentEncoder(embed_dim=8, weights="imagenet")


def test_unreadable_imagenet_cache_file_is_an_error_saying_to_delete_it(torch_home, monkeypatch):
    path, _ = _cache_file(torch_home, tiny_state())
    path.write_bytes(path.read_bytes()[:1000])  # an interrupted copy
    monkeypatch.setattr(re_mod, "IMAGENET_WEIGHTS", fake_imagenet(f"http://127.0.0.1:9/{path.name}"))
    with pytest.raises(RuntimeError, match=rf"{re.escape(str(path))}, torchvision's cached .* cannot be read "
                                           r"\(.*\); delete it to download it again"):
        AlignmentEncoder(embed_dim=8, weights="imagenet")


def test_weights_file_that_does_not_exist_is_an_error(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match=rf"model.weights='{re.escape(str(missing))}': no such file"):
        AlignmentEncoder(embed_dim=8, weights=str(missing))
    with pytest.raises(ValueError, match="weights must be 'imagenet', 'none' or the path"):
        load_backbone_weights(ResNet50Conv4c(), None)


def test_weights_none_keeps_the_random_initialisation(caplog):
    torch.manual_seed(5)
    ref = ResNet50Conv4c().state_dict()
    torch.manual_seed(5)
    with caplog.at_level(logging.INFO, logger=re_mod.__name__):
        enc = AlignmentEncoder(embed_dim=8, weights="none")
    assert enc.weights_source == {"weights": "none"} and '{"weights": "none"}' in caplog.text
    for key, value in enc.backbone.state_dict().items():
        assert torch.equal(value, ref[key]), key


def test_configs_name_their_weights():
    # ResNet-50 configs start from ImageNet (the papers' choice); the CPU demo says none
    repo = Path(__file__).resolve().parents[2]
    for path in sorted((repo / "configs").glob("*.yaml")):
        cfg = load_config(path)
        if cfg.model.encoder == "resnet50":
            assert cfg.model.weights == ("none" if path.name == "demo.yaml" else "imagenet"), path.name


def test_freeze_bn_keeps_statistics_and_blocks_bn_grads():
    enc = AlignmentEncoder(embed_dim=8, freeze_bn=True, weights="none").train()
    bns = [m for m in enc.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns) and enc.bn1.training
    stats = [(m.running_mean.clone(), m.running_var.clone()) for m in bns]
    head_mean = enc.bn1.running_mean.clone()
    embed_loss(enc(frames(b=1))).backward()
    for m, (mean, var) in zip(bns, stats):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert m.weight.grad is None and m.bias.grad is None
    assert not torch.equal(enc.bn1.running_mean, head_mean)  # the 3D head's BN still trains
    assert enc.backbone.layer1[0].conv1.weight.grad is not None


def test_freeze_stem_blocks_conv1_grads():
    enc = AlignmentEncoder(embed_dim=8, freeze_stem=True, weights="none").train()
    embed_loss(enc(frames(b=1))).backward()
    assert enc.backbone.conv1.weight.grad is None and enc.backbone.bn1.weight.grad is None
    assert enc.backbone.layer1[0].conv1.weight.grad is not None


def test_gradients_reach_every_trainable_parameter():
    enc = AlignmentEncoder(embed_dim=8, weights="none").train()
    embed_loss(enc(frames(b=1))).backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        if p.dim() > 1:
            assert p.grad.abs().sum() > 0, name


def test_padded_frames_do_not_change_real_embeddings_in_train_mode():
    """Train-mode BN couples frames; with a mask the real ones are embedded exactly as if alone."""
    enc = AlignmentEncoder(embed_dim=8, dropout=0.0, weights="none").train()
    x = frames(b=2, t=3)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = enc(x, mask)
    x2 = x.clone()
    x2[~mask] = 100.0 * torch.randn_like(x2[~mask])
    out2 = enc(x2, mask)
    torch.testing.assert_close(out[mask], out2[mask])
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
    alone = enc(x[mask].unsqueeze(0))[0]  # the three real frames as one unpadded batch
    torch.testing.assert_close(out[mask], alone)
    unmasked = enc(x2)  # without the mask the padding leaks into BN statistics
    assert not torch.allclose(unmasked[mask], out[mask], atol=1e-4)


def test_chunked_backbone_equals_unchunked_in_eval():
    enc = AlignmentEncoder(embed_dim=8, weights="none").eval()
    x = frames(b=2, t=2)
    with torch.no_grad():
        full = enc(x)
        enc.chunk_size = 3  # 8 images in chunks of 3, 3, 2
        chunked = enc(x)
    torch.testing.assert_close(chunked, full)


def test_bf16_autocast_forward_on_cpu():
    enc = AlignmentEncoder(embed_dim=16, weights="none").eval()
    x = frames(b=1, t=2)
    with torch.no_grad():
        ref = enc(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = enc(x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(1, 2))
    assert (out * ref).sum(-1).min() > 0.95  # same directions up to bf16 rounding


def test_channels_last_matches_contiguous():
    raw = torch.randint(0, 256, (1, 2, 2, HW, HW, 3), dtype=torch.uint8)
    x_cl = normalize_frames(raw)  # permuted view: channels-last strides once flattened to 4-D
    assert x_cl.flatten(0, 2).is_contiguous(memory_format=torch.channels_last)
    x = x_cl.contiguous()
    torch.manual_seed(0)
    enc = AlignmentEncoder(embed_dim=8, weights="none").eval()
    torch.manual_seed(0)
    enc_cl = AlignmentEncoder(embed_dim=8, channels_last=True, weights="none").eval()
    assert enc_cl.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = enc(x)
        torch.testing.assert_close(enc(x_cl), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(enc_cl(x), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(enc_cl(x_cl), ref, rtol=1e-4, atol=1e-5)


def test_normalize_frames_matches_torchvision():
    raw = torch.randint(0, 256, (2, 5, 7, 3), dtype=torch.uint8)
    ref = TF.normalize(raw.permute(0, 3, 1, 2).float() / 255.0, IMAGENET_MEAN, IMAGENET_STD)
    out = normalize_frames(raw)
    assert out.shape == (2, 3, 5, 7)
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match="uint8"):
        normalize_frames(raw.float())
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 3\)"):
        normalize_frames(raw[..., :2])


def test_context_frame_indices_hand_worked():
    steps = torch.tensor([0, 10, 20, 40])
    assert context_frame_indices(steps).tolist() == [[0, 0], [0, 10], [5, 20], [25, 40]]
    assert context_frame_indices(steps, num_context=3, stride=5).tolist()[2] == [10, 15, 20]
    with pytest.raises(ValueError, match="num_context"):
        context_frame_indices(steps, num_context=0)


def test_bad_inputs_raise():
    enc = AlignmentEncoder(embed_dim=8, weights="none").eval()
    with pytest.raises(ValueError, match=r"\(B, T, S, 3, H, W\)"):
        enc(torch.zeros(1, 2, 3, HW, HW))
    with pytest.raises(ValueError, match="mask"):
        enc(frames(b=1, t=2), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="chunk_size"):
        AlignmentEncoder(chunk_size=0, weights="none")
    with pytest.raises(ValueError, match="ResNet50Conv4c"):
        load_backbone_weights(nn.Linear(2, 2), "none")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_channels_last_matches_fp32():
    enc = AlignmentEncoder(embed_dim=16, channels_last=True, weights="none").cuda().eval()
    raw = torch.randint(0, 256, (2, 3, 2, 224, 224, 3), dtype=torch.uint8, device="cuda")
    x = normalize_frames(raw)
    with torch.no_grad():
        ref = enc(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = enc(x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (out * ref).sum(-1).min() > 0.95
