"""build_encoder: config name → encoder."""

import pytest
import torch

from vasot_dist.models import AlignmentEncoder, MLPEncoder, build_encoder


def test_builds_both_encoders_with_their_options():
    mlp = build_encoder("mlp", layer_sizes=[10, 6, 4])
    assert isinstance(mlp, MLPEncoder) and mlp(torch.randn(1, 3, 10)).shape == (1, 3, 4)
    enc = build_encoder("resnet50", embed_dim=12, freeze_stem=True, dropout=0.0, weights="none")
    assert isinstance(enc, AlignmentEncoder) and enc.embed_dim == 12
    assert not enc.backbone.conv1.weight.requires_grad


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"'vit'.*mlp, resnet50"):
        build_encoder("vit")
