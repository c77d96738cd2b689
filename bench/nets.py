"""Architectures shared by the defenses.

Every defense that trains a classifier builds it from a *feature trunk*
(image -> feature vector) and a head, so that plain, bottleneck and other
defenses differ only where their method differs.
"""
from __future__ import annotations

import torch
from torch import nn


class SmallConvTrunk(nn.Module):
    """Two conv layers and one hidden linear layer for small grey images (28x28)."""

    def __init__(self, in_channels: int = 1, image_size: int = 28, features: int = 256) -> None:
        super().__init__()
        side = image_size // 4
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * side * side, features),
            nn.ReLU(),
        )
        self.out_features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ResNetTrunk(nn.Module):
    """torchvision's ResNet-18 adapted to 32x32 inputs (3x3 stem, no max-pool)."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        import torchvision

        net = torchvision.models.resnet18(num_classes=10)
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.out_features = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_trunk(input_shape: tuple[int, ...]) -> nn.Module:
    """The default feature trunk for an input shape (C, H, W)."""
    channels, height, _ = input_shape
    if channels == 1 and height <= 32:
        return SmallConvTrunk(in_channels=channels, image_size=height)
    return ResNetTrunk(in_channels=channels)


def make_classifier(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Trunk plus a linear head: the `plain` network (two conv, two linear layers on MNIST)."""
    trunk = make_trunk(input_shape)
    return nn.Sequential(trunk, nn.Linear(trunk.out_features, num_classes))
