"""FGSM and PGD (L-inf and L2) that adapt to what the defense declares.

Gradients flow through ``differentiable_forward`` (BPDA where the deployed
forward is not differentiable) and are averaged over ``eot`` draws when the
model is stochastic (EOT, Athalye et al. 2018). Written here rather than
taken from a library because they must call the contract's surfaces, and
keep per-sample best iterates; foolbox's LinfPGD serves as the reference in
the tests.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..contract import DefendedModel
from .base import Attack, evaluate_correct, project

LOSSES = ("ce", "margin")


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample max_{i != y} z_i - z_y: scale-invariant, so a saturated softmax cannot hide it."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return other.max(1).values - true


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "ce":
        return ce_loss
    if name == "margin":
        return margin_loss
    raise ValueError(f"unknown loss {name!r}; valid choices: {', '.join(LOSSES)}")


def input_gradient(
    model: DefendedModel, x: torch.Tensor, y: torch.Tensor, loss: str = "ce", eot: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the summed loss w.r.t. the input, averaged over ``eot`` draws.

    Returns (gradient, logits of the last draw).
    """
    fn = loss_function(loss)
    draws = eot if model.stochastic else 1
    x = x.detach().requires_grad_(True)
    grad = torch.zeros_like(x)
    logits = None
    for _ in range(draws):
        logits = model.differentiable_forward(x)
        (g,) = torch.autograd.grad(fn(logits, y).sum(), x)
        grad += g
    return grad / draws, logits.detach()


class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al. 2015): one L-inf step of size eps."""

    name = "fgsm"
    norm = "linf"

    def __init__(self, *, loss: str = "ce", eot: int = 20) -> None:
        loss_function(loss)
        self.loss, self.eot = loss, eot

    def params(self) -> dict[str, Any]:
        return {"loss": self.loss, "eot": self.eot}

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        grad, _ = input_gradient(model, x, y, self.loss, self.eot)
        return x + eps * grad.sign()


class PGD(Attack):
    """Projected gradient descent (Madry et al. 2018) with random start and restarts.

    Random starts draw from torch's global generator, which the battery seeds
    per batch from the run seed and the batch's first sample index, so a
    shard of indices reproduces wherever it runs.

    Step size defaults to 2.5 * eps / steps. For deterministic models the
    per-sample best iterate is kept (any iterate that fools the deployed model
    is a valid adversarial example); for stochastic ones the last iterate is
    returned and judged by a fresh deployed forward.
    """

    def __init__(
        self,
        *,
        norm: str = "linf",
        steps: int = 40,
        restarts: int = 1,
        step_size: float | None = None,
        random_start: bool = True,
        loss: str = "ce",
        eot: int = 20,
    ) -> None:
        if norm not in ("linf", "l2"):
            raise ValueError(f"unknown norm {norm!r}; valid choices: linf, l2")
        if steps < 1 or restarts < 1:
            raise ValueError(f"steps and restarts must be >= 1, got {steps} and {restarts}")
        loss_function(loss)
        self.norm, self.steps, self.restarts = norm, steps, restarts
        self.step_size, self.random_start, self.loss, self.eot = step_size, random_start, loss, eot

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"pgd-{self.norm}"

    def params(self) -> dict[str, Any]:
        return {
            "norm": self.norm,
            "steps": self.steps,
            "restarts": self.restarts,
            "step_size": self.step_size,
            "random_start": self.random_start,
            "loss": self.loss,
            "eot": self.eot,
        }

    def _start(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        if not self.random_start:
            return x.clone()
        noise = torch.rand_like(x) * 2 - 1
        if self.norm == "linf":
            return project(x + eps * noise, x, "linf", eps)
        flat = noise.flatten(1)
        radius = torch.rand(len(x), dtype=x.dtype, device=x.device)
        direction = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return project(x + (eps * radius[:, None] * direction).view_as(x), x, "l2", eps)

    def _step(self, x_adv: torch.Tensor, grad: torch.Tensor, alpha: float) -> torch.Tensor:
        if self.norm == "linf":
            return x_adv + alpha * grad.sign()
        norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        return x_adv + alpha * grad / norms.view(-1, *([1] * (grad.dim() - 1)))

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        alpha = self.step_size if self.step_size is not None else 2.5 * eps / self.steps
        keep_best = not model.stochastic
        surface_is_deployed = not model.describe_surface()["bpda"] and model.detect is None
        best = x.clone()
        fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for _ in range(self.restarts):
            x_adv = self._start(x, eps)
            for _ in range(self.steps):
                grad, logits = input_gradient(model, x_adv, y, self.loss, self.eot)
                if keep_best:
                    # The gradient's logits are the deployed ones unless the model has a
                    # BPDA surface or a detector; then ask the deployed model itself.
                    wrong = (logits.argmax(1) != y) if surface_is_deployed else ~evaluate_correct(model, x_adv, y)
                    now = wrong & ~fooled
                    best[now] = x_adv[now]
                    fooled |= now
                x_adv = project(self._step(x_adv, grad, alpha), x, self.norm, eps)
            if keep_best:
                now = ~evaluate_correct(model, x_adv, y) & ~fooled
                best[now] = x_adv[now]
                fooled |= now
                best[~fooled] = x_adv[~fooled]
            else:
                best = x_adv
        return best
