"""Mean and covariance of a CNN's logits under Gaussian input noise, without sampling.

After Zhen, Chakraborty, Singh, "Simpler Certified Radius Maximization by
Propagating Covariances", CVPR 2021 (arXiv 2104.05888). The input is
N(x, sigma^2 I). A full covariance is out of reach (25,088 x 25,088 per
image after the first convolution of bench's CNN), so, as in the paper,
each image carries one channel x channel covariance shared by all spatial
positions, and different positions are treated as independent:

- convolution: mean through the layer; covariance sum over kernel taps
  W_t Sigma W_t^T. Exact for the first layer at interior positions (the
  input noise is independent per pixel); afterwards it drops the
  correlation that overlapping windows create, and counts border taps as if
  they were inside the image (both as in the paper);
- ReLU: the mean exactly for a Gaussian pre-activation,
  mu Phi(mu/s) + s phi(mu/s); the covariance linearised with the expected
  gate d = Phi(mu/s), D Sigma D, where a spatial layer averages d d^T over
  positions (the published code instead adds a constant to the covariance;
  the linearisation keeps it positive semi-definite and lets inactive units
  shed variance);
- 2x2 max-pooling (not in the paper, whose networks average-pool): the mean
  of the window element with the largest mean, covariance unchanged;
- flatten + linear: exact under the independence assumption, sum over
  positions p of W_p Sigma W_p^T. It is kept factored (a shared matrix and
  a per-image row scale) until a narrow layer makes it cheap, so the 3,136-
  wide flatten of bench's CNN never materialises a 3,136^2 matrix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import nn

from ..lipschitz.structure import leaves


@dataclass
class Spatial:
    mean: torch.Tensor  # (N, C, H, W)
    cov: torch.Tensor  # (N, C, C), shared by positions


@dataclass
class Factored:
    """mean (N, O); covariance diag(scale) left (I_P (x) cov_c) left^T diag(scale)."""

    mean: torch.Tensor  # (N, O)
    left: torch.Tensor  # (O, C, P), shared by the batch
    cov_c: torch.Tensor  # (N, C, C)
    scale: Optional[torch.Tensor]  # (N, O) or None


@dataclass
class Dense:
    mean: torch.Tensor  # (N, D)
    cov: torch.Tensor  # (N, D, D)


Moments = Union[Spatial, Factored, Dense]


def _gate(mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(E[relu(X)], P(X > 0)) for X ~ N(mean, var), element-wise."""
    s = var.clamp_min(1e-12).sqrt()
    r = mean / s
    cdf = 0.5 * (1.0 + torch.erf(r / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * r * r) / math.sqrt(2.0 * math.pi)
    return mean * cdf + s * pdf, cdf


def _conv(m: nn.Conv2d, state: Spatial) -> Spatial:
    if m.groups != 1:
        raise ValueError("covariance propagation supports ungrouped convolutions only")
    w = m.weight.flatten(2).permute(2, 0, 1)  # (taps, O, I)
    per_tap = w[None] @ state.cov[:, None] @ w.transpose(1, 2)[None]  # (N, taps, O, O)
    return Spatial(m(state.mean), per_tap.sum(1))


def _relu(state: Moments) -> Moments:
    if isinstance(state, Spatial):
        var = torch.diagonal(state.cov, dim1=1, dim2=2)[:, :, None, None]
        mean, gate = _gate(state.mean, var)
        g = gate.flatten(2)
        return Spatial(mean, state.cov * (g @ g.transpose(1, 2)) / g.shape[2])
    if isinstance(state, Factored):
        gram = state.left @ state.left.transpose(1, 2)  # (O, C, C): sum over positions
        var = state.cov_c.flatten(1) @ gram.flatten(1).T  # (N, O)
        if state.scale is not None:
            var = var * state.scale.pow(2)
        mean, gate = _gate(state.mean, var)
        scale = gate if state.scale is None else gate * state.scale
        return Factored(mean, state.left, state.cov_c, scale)
    mean, gate = _gate(state.mean, torch.diagonal(state.cov, dim1=1, dim2=2))
    return Dense(mean, state.cov * gate[:, :, None] * gate[:, None, :])


def _linear(m: nn.Linear, state: Moments) -> Moments:
    if isinstance(state, Dense):
        return Dense(m(state.mean), m.weight @ state.cov @ m.weight.T)
    if isinstance(state, Spatial):  # right after a Flatten: rows of W per (channel, position)
        channels, positions = state.mean.shape[1], state.mean.shape[2] * state.mean.shape[3]
        left = m.weight.reshape(m.out_features, channels, positions)
        return Factored(m(state.mean.flatten(1)), left, state.cov, None)
    if state.scale is None:  # two linear layers in a row: compose the shared factor
        left = (m.weight @ state.left.flatten(1)).reshape(-1, *state.left.shape[1:])
        return Factored(m(state.mean), left, state.cov_c, None)
    rows = (m.weight * state.scale[:, None, :]) @ state.left.flatten(1)  # (N, K, C * P)
    return Dense(m(state.mean), _position_sum(rows.reshape(len(rows), -1, *state.left.shape[1:]), state.cov_c))


def _position_sum(rows: torch.Tensor, cov_c: torch.Tensor) -> torch.Tensor:
    """sum_p rows[:, :, :, p] cov_c rows[:, :, :, p]^T for rows (N, K, C, P): explicit matmuls, no big intermediates."""
    n, k, c, p = rows.shape
    by_position = rows.permute(0, 1, 3, 2).reshape(n, k * p, c)  # (N, K P, C)
    weighted = (by_position @ cov_c).reshape(n, k, p * c)
    return weighted @ by_position.reshape(n, k, p * c).transpose(1, 2)


def propagate(net: nn.Module, x: torch.Tensor, sigma: float) -> Dense:
    """Approximate mean and covariance of net(x + N(0, sigma^2 I)) for bench's CNN-like networks."""
    n, channels = x.shape[:2]
    eye = torch.eye(channels, device=x.device, dtype=x.dtype)
    state: Moments = Spatial(x, (sigma ** 2) * eye.expand(n, channels, channels))
    flattened = False
    for m in leaves(net):
        if type(m) is nn.Conv2d and isinstance(state, Spatial) and not flattened:
            state = _conv(m, state)
        elif type(m) is nn.ReLU and not (isinstance(state, Spatial) and flattened):
            state = _relu(state)
        elif type(m) is nn.MaxPool2d and isinstance(state, Spatial) and not flattened:
            state = Spatial(m(state.mean), state.cov)
        elif type(m) is nn.Flatten and isinstance(state, Spatial) and not flattened:
            flattened = True  # the next Linear reads the (C, H, W) layout
        elif type(m) is nn.Linear and (flattened or not isinstance(state, Spatial)):
            state = _linear(m, state)
            flattened = False
        elif type(m) in (nn.Identity, nn.Dropout):
            continue
        else:
            raise ValueError(f"covariance propagation does not handle {type(m).__name__} at this point")
    if isinstance(state, Factored):
        rows = state.left.expand(len(state.mean), *state.left.shape)
        if state.scale is not None:
            rows = state.scale[:, :, None, None] * rows
        state = Dense(state.mean, _position_sum(rows, state.cov_c))
    if not isinstance(state, Dense) or flattened:
        raise ValueError("covariance propagation needs the network to end with a linear layer after a Flatten")
    return state
