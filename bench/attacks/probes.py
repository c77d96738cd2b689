"""Cheap diagnostics on clean inputs that the masking flags read: gradient health and observed randomness."""
from __future__ import annotations

from typing import Any

import torch

from ..contract import DefendedModel
from .surface import Objective


@torch.no_grad()
def _logit_change(model: DefendedModel, x: torch.Tensor) -> float:
    first, second = model(x), model(x)
    scale = first.abs().max().clamp_min(1e-12)
    return float((first - second).abs().max() / scale)


def probe_model(model: DefendedModel, x: torch.Tensor, y: torch.Tensor, *, eot: int = 20) -> dict[str, Any]:
    """Per loss: how many samples have zero or non-finite input gradients; and two forwards' logit change."""
    probes: dict[str, Any] = {"n": len(x)}
    for loss in ("ce", "margin"):
        grad, _ = Objective(model, loss, eot).gradient(x, y)
        flat = grad.flatten(1)
        finite = torch.isfinite(flat).all(dim=1)
        probes[f"zero_gradient_{loss}"] = int(((flat.abs().sum(dim=1) == 0) & finite).sum())
        probes[f"nonfinite_gradient_{loss}"] = int((~finite).sum())
    probes["logit_change_between_forwards"] = _logit_change(model, x)
    return probes
