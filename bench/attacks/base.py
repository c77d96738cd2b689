"""The attack call, foolbox-style: the base class owns clipping and the success check.

Subclasses implement ``run`` only. ``__call__`` projects whatever ``run``
returns onto the eps-ball and [0, 1] and re-checks success with the model's
*deployed* forward (and detector), so no attack can report a success that
the deployed model would not show.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..contract import DefendedModel
from ..perf import fast_layout

NORMS = ("linf", "l2")


def project(x_adv: torch.Tensor, x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """Project ``x_adv`` onto the ``norm`` ball of radius ``eps`` around ``x``, then onto [0, 1]."""
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    elif norm == "l2":
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        factor = (eps / norms).clamp(max=1.0)
        delta = delta * factor.view(-1, *([1] * (delta.dim() - 1)))
    else:
        raise ValueError(f"unknown norm {norm!r}; valid choices: {', '.join(NORMS)}")
    return (x + delta).clamp(0.0, 1.0)


@torch.no_grad()
def evaluate_correct(model: DefendedModel, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample robustness under the deployed model: correct, or caught by the detector.

    An adversarial input counts as an attack success only when it is
    misclassified *and* the detector (if any) does not flag it.
    """
    logits = model(x)
    correct = logits.argmax(1) == y
    if model.detect is not None:
        correct = correct | model.detect(x).bool()
    return correct


@dataclass
class AttackOutcome:
    """Per-sample result of one attack: which samples stayed correct, at what eps."""

    name: str
    norm: str
    eps: float
    correct: torch.Tensor  # bool (N,), True = attack failed on this sample
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return float(self.correct.float().mean()) if len(self.correct) else float("nan")


class Attack:
    """Base class: ``attack(model, x, y, eps=...) -> (x_adv, correct)``."""

    name: ClassVar[str] = "attack"
    norm: str = "linf"

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {}

    def __call__(
        self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, *, eps: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0.0 <= eps:
            raise ValueError(f"eps must be non-negative, got {eps}")
        x = fast_layout(x.detach())
        x_adv = project(self.run(model, x, y, eps).detach(), x, self.norm, eps)
        return x_adv, evaluate_correct(model, x_adv, y)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({inner})"
