"""`covariance_smoothing`: radius maximisation by propagating covariances (Zhen et al., CVPR 2021).

Zhen, Chakraborty, Singh, "Simpler Certified Radius Maximization by
Propagating Covariances", CVPR 2021, arXiv 2104.05888. Where MACER
estimates the smoothed classifier from k noisy copies per input, this
pushes the Gaussian N(x, sigma^2 I) itself through the network
(``moments.propagate``: exact through linear maps, the approximations
listed there through ReLU and pooling) and reads the radius off the
Gaussian it gives the logits: for the top class a and runner-up b,
P(z_a > z_b) = Phi((mu_a - mu_b) / s_ab) with s_ab^2 = Var(z_a - z_b), whose
Cohen radius is sigma (mu_a - mu_b) / s_ab. The loss is

    CE(f(x + noise), y) + lam * (sigma / 2) * mean over the batch of max(0, gamma - 2 (mu_y - mu_b) / s_yb)

on points whose propagated mean ranks y first: 2 (mu_a - mu_b) / s_ab is
MACER's Phi^-1(p_a) - Phi^-1(p_b) for two Gaussian classes, so gamma and
lam mean what they mean in `macer`. The cross-entropy is on one noisy copy
(what CERTIFY will sample) rather than on the propagated mean; the radius
term is differentiated through the mean *and* the covariance (the authors'
code detaches the weights in the covariance path). One noisy forward plus
one propagation per batch, instead of MACER's k forwards.

The deployed model is bench's small CNN (the architecture of `plain`,
`gaussian_augmentation` and `macer`, so the three compare on equal terms),
certified by randomized smoothing.
"""
from __future__ import annotations

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
from .macer import radius_hinge
from .moments import propagate
from .noise import noise_sigma
from .plain import build_plain


@dataclass
class CovarianceSmoothingConfig(TrainConfig):
    sigma: Optional[float] = param(None, gt=0)  # None: the dataset's smoothing sigma (0.25 on MNIST-like data)
    gamma: float = param(8.0, gt=0)  # hinge on 2 (mu_y - mu_b) / s_yb, as MACER's gamma
    lam: float = param(12.0, min=0)  # weight of the radius term, as MACER's lambda
    epochs: int = param(10, min=1)


def gaussian_gap(mean: torch.Tensor, cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(top index, 2 (mu_a - mu_b) / sqrt(Var(z_a - z_b))) for the top two propagated means."""
    top = mean.topk(2, dim=1).indices
    a, b = top[:, 0], top[:, 1]
    rows = torch.arange(len(mean), device=mean.device)
    var = cov[rows, a, a] + cov[rows, b, b] - 2.0 * cov[rows, a, b]
    return a, 2.0 * (mean[rows, a] - mean[rows, b]) / var.clamp_min(1e-12).sqrt()


def covariance_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float,
                    config: CovarianceSmoothingConfig) -> torch.Tensor:
    loss = F.cross_entropy(model(x + sigma * torch.randn_like(x)), y)
    if config.lam > 0:
        moments = propagate(model.net, x, sigma)
        top, gap = gaussian_gap(moments.mean, moments.cov)
        loss = loss + config.lam * (sigma / 2.0) * radius_hinge(gap, top == y, config.gamma) / len(x)
    return loss


@register_defense("covariance_smoothing", config=CovarianceSmoothingConfig, build=build_plain)
def fit_covariance_smoothing(data: Dataset, config: CovarianceSmoothingConfig) -> DefendedModel:
    """Zhen et al. 2021: noisy CE plus a radius hinge from propagated means and covariances, no sampling."""
    sigma = noise_sigma(data, config)  # type: ignore[arg-type]
    seed_everything(config.seed)  # the weight init draws from the global generator
    model = build_plain(data, config).to(data.x_train.device)
    train_from_config(model, data.x_train, data.y_train, lambda m, x, y: covariance_loss(m, x, y, sigma, config),
                      config, desc="covariance_smoothing")
    return model
