"""`gaussian_augmentation`: the plain network trained on inputs with Gaussian noise added.

This is the base classifier randomized smoothing needs (Cohen, Rosenfeld,
Kolter 2019): the smoothed classifier g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c)
is only accurate if f was trained under the same noise. As deployed here
(without smoothing) it is an ordinary deterministic classifier evaluated on
clean inputs; certification wraps it in the noise. As in Cohen et al.'s
code the noisy inputs are not clipped to [0, 1], because the certifier does
not clip either.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..config import TrainConfig, param
from ..contract import DefendedModel
from ..data import Dataset
from ..registry import DefenseConfigError, register_defense
from ..training import seed_everything, train_from_config
from .plain import build_plain, cross_entropy


@dataclass
class GaussianAugmentationConfig(TrainConfig):
    sigma: Optional[float] = param(None, min=0)  # None: the dataset's smoothing sigma (0.25 on MNIST-like data)


def noise_sigma(data: Dataset, config: GaussianAugmentationConfig) -> float:
    sigma = data.threat.sigma if config.sigma is None else float(config.sigma)
    if sigma < 0:
        raise DefenseConfigError(f"bad sigma {sigma}; valid choices: a number >= 0")
    return sigma


@register_defense("gaussian_augmentation", config=GaussianAugmentationConfig, build=build_plain)
def fit_gaussian_augmentation(data: Dataset, config: GaussianAugmentationConfig) -> DefendedModel:
    """Trained under Gaussian noise (Cohen et al. 2019): the base classifier for randomized smoothing."""
    sigma = noise_sigma(data, config)
    seed_everything(config.seed)  # the weight init draws from the global generator
    model = build_plain(data, config).to(data.x_train.device)
    train_from_config(model, data.x_train, data.y_train, cross_entropy, config, desc="gaussian_augmentation",
                      transform=lambda x, y: x + sigma * torch.randn_like(x))
    return model
