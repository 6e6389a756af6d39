"""Model tests never touch the network nor the user's torch hub cache.

``TORCH_HOME`` points at an empty temporary folder and ``model.weights=imagenet`` resolves to a
stand-in for torchvision's IMAGENET1K_V1 whose URL is a closed local port: a test that asks for
ImageNet weights without placing a file in the temporary cache gets the real "cannot download" error
at once instead of fetching 100 MB.
"""

import pytest
import torch
from weights_helpers import UNREACHABLE, fake_imagenet

from vasot_dist.models import resnet_encoder


@pytest.fixture(autouse=True)
def torch_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("torch_home")
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(resnet_encoder, "IMAGENET_WEIGHTS", fake_imagenet(UNREACHABLE))
    assert torch.hub.get_dir() == str(home / "hub")
    return home
