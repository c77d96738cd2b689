"""The attack surface: what gradient attacks differentiate, built from what the defense declares.

Two views of one DefendedModel:

- ``Objective`` for our own attacks (FGSM, PGD, C&W): the loss on
  ``differentiable_forward`` (BPDA), averaged over ``eot`` draws for stochastic
  models (EOT), and, where the defense has a detector with a differentiable
  ``detect_margin``, the joint objective "misclassified *and* undetected".
- ``StraightThrough`` for library attacks (AutoAttack, foolbox's FMN) that
  only accept an ``nn.Module``: its forward *value* is the deployed forward
  and its *gradient* is that of ``differentiable_forward`` (averaged over
  ``eot`` draws if asked). The libraries' own success checks therefore see
  the deployed prediction, while their gradients follow the declared
  surface.

Detectors and library attacks, the choice made here: the libraries' models
return class logits only, and their success test is ``argmax != y``; there
is no label-free way to turn "detected" into "not a success" inside those
logits (an extra "adversarial" class would count detection *as* success).
So AutoAttack, Square and FMN attack the classifier through the straight-
through module, and every example they return is re-judged by
``base.evaluate_correct`` (misclassified *and* undetected). The detector-
aware objective lives in our own PGD/FGSM/C&W, which always run too.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..contract import DefendedModel
from ..losses import loss_function
from .base import evaluate_correct

def declares_bpda(model: DefendedModel) -> bool:
    return type(model).differentiable_forward is not DefendedModel.differentiable_forward


def detector_aware(model: DefendedModel) -> bool:
    """True when attacks can optimise against the detector jointly."""
    return getattr(model, "detect", None) is not None and getattr(model, "detect_margin", None) is not None


def adaptive_techniques(model: DefendedModel, eot: int) -> list[str]:
    """Names of the adaptive parts the battery switches on for this model (for the summary)."""
    used = ["margin-loss"]
    if declares_bpda(model):
        used.append("bpda")
    if model.stochastic:
        used.append(f"eot({eot})")
    if detector_aware(model):
        used.append("detector-aware")
    elif getattr(model, "detect", None) is not None:
        used.append("detector-in-success-check-only")
    if model.extra_attacks():
        used.append("extra-attacks")
    return used


def _unit(g: torch.Tensor) -> torch.Tensor:
    """Per-sample L2-normalised gradient (zero stays zero)."""
    norms = g.flatten(1).norm(dim=1).clamp_min(1e-12)
    return g / norms.view(-1, *([1] * (g.dim() - 1)))


class Objective:
    """The quantity our gradient attacks ascend, and the success test they keep best iterates by.

    ``gradient(x, y)`` returns the input gradient and a per-sample bool
    "already adversarial" for the *current* x. When the surface is exactly the
    deployed deterministic forward, that bool comes free from the gradient's
    own logits; otherwise it is a separate deployed forward (and detector).

    With a detector, the ascent direction is the sum of two per-sample unit
    vectors: the class loss while the sample is still classified correctly,
    and the negated ``detect_margin`` while it is still detected (Carlini &
    Wagner 2017, "Adversarial examples are not easily detected"). Normalising
    each makes the combination independent of the two scores' scales.
    """

    def __init__(self, model: DefendedModel, loss: str = "ce", eot: int = 20) -> None:
        self.model = model
        self.loss = loss_function(loss)
        self.draws = max(1, int(eot)) if model.stochastic else 1
        self.joint = detector_aware(model)
        self.surface_is_deployed = (
            not declares_bpda(model) and getattr(model, "detect", None) is None and not model.stochastic
        )

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.detach().requires_grad_(True)
        model = self.model
        if not self.joint:
            grad: Optional[torch.Tensor] = None
            for _ in range(self.draws):
                logits = model.differentiable_forward(x)
                (g,) = torch.autograd.grad(self.loss(logits, y).sum(), x)
                grad = g if grad is None else grad.add_(g)
            if self.draws > 1:
                grad.div_(self.draws)
            if self.surface_is_deployed:
                return grad, logits.detach().argmax(1) != y
            return grad, ~evaluate_correct(model, x.detach(), y)
        g_class = torch.zeros_like(x)
        g_detect = torch.zeros_like(x)
        for _ in range(self.draws):
            logits = model.differentiable_forward(x)
            g_class += torch.autograd.grad(self.loss(logits, y).sum(), x)[0]
            score = model.detect_margin(x)
            g_detect -= torch.autograd.grad(score.sum(), x)[0]
        with torch.no_grad():
            still_right = (logits.argmax(1) == y).view(-1, *([1] * (x.dim() - 1)))
            still_detected = (score > 0).view(-1, *([1] * (x.dim() - 1)))
            grad = _unit(g_class) * still_right + _unit(g_detect) * still_detected
        return grad, ~evaluate_correct(model, x.detach(), y)


class StraightThrough(nn.Module):
    """A module whose forward is the deployed forward and whose gradient is the declared surface.

    ``eot`` > 1 averages the surface gradient over that many draws (for
    libraries without their own EOT). Without a gradient request, or when
    the surface *is* the deployed forward, it simply calls the deployed model.
    """

    def __init__(self, model: DefendedModel, eot: int = 1) -> None:
        super().__init__()
        self.model = model
        self.eot = max(1, int(eot)) if model.stochastic else 1
        self.bpda = declares_bpda(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad) or (not self.bpda and self.eot == 1):
            return self.model(x)
        with torch.no_grad():
            deployed = self.model(x)
        surface = self.model.differentiable_forward(x)
        for _ in range(self.eot - 1):
            surface = surface + self.model.differentiable_forward(x)
        if self.eot > 1:
            surface = surface / self.eot
        return surface + (deployed - surface).detach()
