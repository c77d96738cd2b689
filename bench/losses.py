"""Per-sample classification losses that attacks ascend and `bench validate` probes.

The margin loss is scale-invariant, so a saturated softmax (defensive
distillation) cannot hide its gradient; cross-entropy is the usual one.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LOSSES = ("ce", "margin")


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample max_{i != y} z_i - z_y: scale-invariant, so a saturated softmax cannot hide it."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf"))
    return other.amax(1) - true


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "ce":
        return ce_loss
    if name == "margin":
        return margin_loss
    raise ValueError(f"unknown loss {name!r}; valid choices: {', '.join(LOSSES)}")
