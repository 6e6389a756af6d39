"""A stand-in for torchvision's ResNet50_Weights.IMAGENET1K_V1 at a URL of our choosing (no 100 MB file)."""

from torchvision.models import Weights, WeightsEnum

from vasot_dist.models import resnet_encoder

UNREACHABLE = "http://127.0.0.1:9/resnet50-0676ba61.pth"  # the discard port: connection refused at once


def fake_imagenet(url: str) -> WeightsEnum:
    """A torchvision weights enum member like ResNet50_Weights.IMAGENET1K_V1 whose file lives at ``url``."""
    real = resnet_encoder.IMAGENET_WEIGHTS.value
    return WeightsEnum("FakeResNet50Weights", {"IMAGENET1K_V1": Weights(url, real.transforms, real.meta)}).IMAGENET1K_V1
