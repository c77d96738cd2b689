"""`macer`: certified-radius maximisation for randomized smoothing (Zhai et al., ICLR 2020).

Zhai, Dan, He, Zhang, Gong, Ravikumar, Hsieh, Wang, "MACER: Attack-free and
Scalable Robust Training via Maximizing Certified Radius", ICLR 2020,
arXiv 2001.02378. Each training input gets k Gaussian copies x + N(0,
sigma^2 I); their softmax average is a soft smoothed classifier. The loss is
its cross-entropy plus, for points the smoothed classifier (softmax at
inverse temperature beta, averaged) gets right, a hinge on the certified-
radius surrogate (sigma / 2) (Phi^-1(p_y) - Phi^-1(p_2nd)):

    CE + lam * (sigma / 2) * mean over the batch of max(0, gamma - (Phi^-1(p_y) - Phi^-1(p_2nd)))

where points whose gap is already above gamma, or infinite (a probability
of exactly 0 or 1), contribute nothing, as in the authors' code. Defaults
are the paper's CIFAR-10 settings (k = 16, beta = 16, gamma = 8, lam = 12).
The deployed model is the base classifier f (deterministic, as
`gaussian_augmentation`); randomized smoothing (``bench.certification``)
certifies it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig, param
from ..contract import DefendedModel
from ..data import Dataset
from ..registry import register_defense
from ..training import seed_everything, train_from_config
from .noise import noise_sigma
from .plain import build_plain


PROB_FLOOR = 1e-6  # float32 resolves 1 - 1e-6


def normal_icdf(p: torch.Tensor) -> torch.Tensor:
    """Phi^-1(p), differentiable (sqrt(2) erfinv(2p - 1)); +-inf at 1 and 0."""
    return math.sqrt(2.0) * torch.erfinv(2.0 * p - 1.0)


def radius_hinge(gap: torch.Tensor, correct: torch.Tensor, gamma: float) -> torch.Tensor:
    """sum of max(0, gamma - gap) over correct points whose gap is finite and at most gamma."""
    active = correct & torch.isfinite(gap) & (gap <= gamma)
    return (gamma - gap[active]).sum()


@dataclass
class MacerConfig(TrainConfig):
    sigma: Optional[float] = param(None, gt=0)  # None: the dataset's smoothing sigma (0.25 on MNIST-like data)
    samples: int = param(16, min=1)  # k, Gaussian copies per input
    beta: float = param(16.0, gt=0)  # inverse temperature of the soft classifier in the radius term
    gamma: float = param(8.0, gt=0)  # hinge on Phi^-1(p_y) - Phi^-1(p_2nd)
    lam: float = param(12.0, min=0)  # weight of the radius term
    epochs: int = param(10, min=1)


def macer_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float, config: MacerConfig) -> torch.Tensor:
    """Zhai et al.'s loss on one batch, from k noisy copies per input."""
    n, k = len(x), config.samples
    noisy = x.repeat_interleave(k, dim=0)
    noisy = noisy + sigma * torch.randn_like(noisy)
    logits = model(noisy).reshape(n, k, -1)
    smoothed = F.softmax(logits, dim=2).mean(1)
    loss = F.nll_loss(torch.log(smoothed + 1e-10), y)
    if config.lam > 0:
        sharp = F.softmax(config.beta * logits, dim=2).mean(1)
        top = sharp.topk(2, dim=1)
        # Clamped away from 0 and 1: Phi^-1 is infinite there and its derivative too, and the hinge's mask cannot
        # stop a 0 * inf = NaN in the backward pass (it did: the weights went NaN in the first epoch on mnist5k).
        probs = top.values.clamp(PROB_FLOOR, 1.0 - PROB_FLOOR)
        gap = normal_icdf(probs[:, 0]) - normal_icdf(probs[:, 1])
        robust = radius_hinge(gap, top.indices[:, 0] == y, config.gamma)
        loss = loss + config.lam * (sigma / 2.0) * robust / n
    return loss


@register_defense("macer", config=MacerConfig, build=build_plain)
def fit_macer(data: Dataset, config: MacerConfig) -> DefendedModel:
    """MACER (Zhai et al. 2020): soft smoothed CE plus a hinge on the radius, from k noisy samples."""
    sigma = noise_sigma(data, config)  # type: ignore[arg-type]
    seed_everything(config.seed)  # the weight init draws from the global generator
    model = build_plain(data, config).to(data.x_train.device)
    train_from_config(model, data.x_train, data.y_train, lambda m, x, y: macer_loss(m, x, y, sigma, config), config,
                      desc="macer")
    return model
