"""ResNet-50 conv4c alignment encoder (LAV / VAOT): structure, weight lookup, freezing, masks, precision."""

import logging
import os

import pytest
import torch
import torchvision.transforms.functional as TF
from torch import nn
from torchvision.models import resnet50

from vasot_dist.models import resnet_encoder as re_mod
from vasot_dist.models.resnet_encoder import (
    IMAGENET1K_V1_FILE,
    IMAGENET1K_V1_URL,
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
    enc = AlignmentEncoder(embed_dim=16).eval()
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
    assert enc.weights_source == path
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


def test_missing_file_warns_names_paths_and_keeps_random_init(tmp_path, caplog, _isolated_hub):
    backbone = ResNet50Conv4c()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    missing = str(tmp_path / "nowhere.pth")
    with caplog.at_level(logging.WARNING, logger=re_mod.__name__):
        source = load_backbone_weights(backbone, missing, allow_download=False)
    assert source is None
    text = caplog.text
    assert missing in text
    assert os.path.join(str(_isolated_hub), "checkpoints", IMAGENET1K_V1_FILE) in text
    assert IMAGENET1K_V1_URL in text and "allow_download=False" in text and "RANDOM" in text
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_hub_cache_is_second_choice(tmp_path, tv_state, _isolated_hub):
    tv, path = tv_state
    cache = _isolated_hub / "checkpoints" / IMAGENET1K_V1_FILE
    cache.parent.mkdir(parents=True, exist_ok=True)
    other = resnet50(weights=None)
    torch.save(other.state_dict(), cache)
    b = ResNet50Conv4c()
    assert load_backbone_weights(b, str(tmp_path / "absent.pth")) == str(cache)
    assert torch.equal(b.layer2[0].conv1.weight, other.layer2[0].conv1.weight)
    b = ResNet50Conv4c()
    assert load_backbone_weights(b, path) == path  # the configured file wins over the cache
    assert torch.equal(b.layer2[0].conv1.weight, tv.layer2[0].conv1.weight)


def test_download_only_when_allowed(monkeypatch, caplog, tv_state):
    tv, _ = tv_state
    calls = []

    def fake_download(url, **kwargs):
        calls.append(url)
        return tv.state_dict()

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    assert load_backbone_weights(ResNet50Conv4c(), None, allow_download=False) is None
    assert calls == []
    b = ResNet50Conv4c()
    assert load_backbone_weights(b, None, allow_download=True) == IMAGENET1K_V1_URL
    assert calls == [IMAGENET1K_V1_URL]
    assert torch.equal(b.layer1[0].conv2.weight, tv.layer1[0].conv2.weight)

    def failing(url, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", failing)
    with caplog.at_level(logging.WARNING, logger=re_mod.__name__):
        assert load_backbone_weights(ResNet50Conv4c(), None, allow_download=True) is None
    assert "no route to host" in caplog.text


def test_encoder_never_downloads_by_default():
    # the conftest makes any download raise AssertionError; the default must not try
    assert AlignmentEncoder(embed_dim=8).weights_source is None


def test_freeze_bn_keeps_statistics_and_blocks_bn_grads():
    enc = AlignmentEncoder(embed_dim=8, freeze_bn=True).train()
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
    enc = AlignmentEncoder(embed_dim=8, freeze_stem=True).train()
    embed_loss(enc(frames(b=1))).backward()
    assert enc.backbone.conv1.weight.grad is None and enc.backbone.bn1.weight.grad is None
    assert enc.backbone.layer1[0].conv1.weight.grad is not None


def test_gradients_reach_every_trainable_parameter():
    enc = AlignmentEncoder(embed_dim=8).train()
    embed_loss(enc(frames(b=1))).backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        if p.dim() > 1:
            assert p.grad.abs().sum() > 0, name


def test_padded_frames_do_not_change_real_embeddings_in_train_mode():
    """Train-mode BN couples frames; with a mask the real ones are embedded exactly as if alone."""
    enc = AlignmentEncoder(embed_dim=8, dropout=0.0).train()
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
    enc = AlignmentEncoder(embed_dim=8).eval()
    x = frames(b=2, t=2)
    with torch.no_grad():
        full = enc(x)
        enc.chunk_size = 3  # 8 images in chunks of 3, 3, 2
        chunked = enc(x)
    torch.testing.assert_close(chunked, full)


def test_bf16_autocast_forward_on_cpu():
    enc = AlignmentEncoder(embed_dim=16).eval()
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
    enc = AlignmentEncoder(embed_dim=8).eval()
    torch.manual_seed(0)
    enc_cl = AlignmentEncoder(embed_dim=8, channels_last=True).eval()
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
    enc = AlignmentEncoder(embed_dim=8).eval()
    with pytest.raises(ValueError, match=r"\(B, T, S, 3, H, W\)"):
        enc(torch.zeros(1, 2, 3, HW, HW))
    with pytest.raises(ValueError, match="mask"):
        enc(frames(b=1, t=2), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="chunk_size"):
        AlignmentEncoder(chunk_size=0)
    with pytest.raises(ValueError, match="ResNet50Conv4c"):
        load_backbone_weights(nn.Linear(2, 2), None)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_channels_last_matches_fp32():
    enc = AlignmentEncoder(embed_dim=16, channels_last=True).cuda().eval()
    raw = torch.randint(0, 256, (2, 3, 2, 224, 224, 3), dtype=torch.uint8, device="cuda")
    x = normalize_frames(raw)
    with torch.no_grad():
        ref = enc(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = enc(x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (out * ref).sum(-1).min() > 0.95
