"""`example_blur`: a 3x3 box blur in front of a small MLP.

A deliberately small defense that shows everything a plugin needs: a config
dataclass, a ``build`` function for the model zoo, a DefendedModel that
declares its attack surface, and ``fit`` decorated with ``register_defense``.
The blur is an ordinary differentiable layer, so nothing is hidden from an
attacker: the model is deterministic, needs no BPDA surface and has no
detector, and the contract's defaults say exactly that.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.config import TrainConfig, param
from bench.contract import DefendedModel
from bench.data import Dataset
from bench.registry import register_defense
from bench.training import train_from_config


class BlurMLP(DefendedModel):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int) -> None:
        super().__init__(num_classes)
        channels = input_shape[0]
        self.channels = channels
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(int(torch.tensor(input_shape).prod()), hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blurred = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        return self.mlp(blurred)


@dataclass
class ExampleBlurConfig(TrainConfig):
    hidden: int = param(64, min=1)  # the valid range is checked before any training
    epochs: int = param(2, min=1)


def build_example_blur(data: Dataset, config: ExampleBlurConfig) -> BlurMLP:
    return BlurMLP(data.input_shape, data.num_classes, config.hidden)


@register_defense("example_blur", config=ExampleBlurConfig, build=build_example_blur)
def fit_example_blur(data: Dataset, config: ExampleBlurConfig) -> DefendedModel:
    """Example plugin: a 3x3 box blur in front of a small MLP (shows the plugin path, not a real defense)."""
    model = build_example_blur(data, config).to(data.x_train.device)
    train_from_config(model, data.x_train, data.y_train, lambda m, x, y: F.cross_entropy(m(x), y), config,
                      desc="example_blur")
    return model
