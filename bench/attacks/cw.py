"""Carlini-Wagner L2 (S&P 2017) on logits, through the defense's declared surface.

Written here rather than taken from foolbox or torchattacks because it must
differentiate ``differentiable_forward`` (BPDA), average over draws (EOT),
add the detector's ``detect_margin`` to the objective (Carlini & Wagner
2017, "Adversarial examples are not easily detected"), and judge success
with the deployed forward. The method: change of variables x = (tanh(w)+1)/2
keeps the box; minimise ||x - x0||^2 + c * f(x) with
f = max(Z_y - max_{i != y} Z_i, -kappa) on logits Z (scale-invariant, so a
saturated softmax cannot hide the gradient); Adam; a per-sample binary
search over c; the smallest successful perturbation is kept.
"""
from __future__ import annotations

from typing import Any

import torch

from ..contract import DefendedModel
from .base import Attack, evaluate_correct
from .surface import Objective, detector_aware


class CarliniWagnerL2(Attack):
    """Minimum-norm L2 attack; accuracy at eps counts successes with ||delta||_2 <= eps.

    Arguments: ``search_steps`` binary-search steps over c (paper: 9);
    ``steps`` Adam iterations per search step; ``lr`` Adam step size;
    ``initial_const`` first c; ``confidence`` kappa; ``abort_early`` stop a
    search step when the loss stops falling; ``eot`` draws for stochastic
    models.
    """

    name = "cw-l2"
    norm = "l2"
    minimum_norm = True

    def __init__(
        self,
        *,
        search_steps: int = 9,
        steps: int = 1000,
        lr: float = 0.01,
        initial_const: float = 0.1,
        confidence: float = 0.0,
        abort_early: bool = True,
        eot: int = 20,
    ) -> None:
        super().__init__()
        if search_steps < 1 or steps < 1:
            raise ValueError(f"search_steps and steps must be >= 1, got {search_steps} and {steps}")
        if not (lr > 0 and initial_const > 0 and confidence >= 0):
            raise ValueError(f"lr and initial_const must be > 0 and confidence >= 0, got {lr}, {initial_const}, {confidence}")
        self.search_steps, self.steps, self.lr = search_steps, steps, lr
        self.initial_const, self.confidence, self.abort_early, self.eot = initial_const, confidence, abort_early, eot

    def params(self) -> dict[str, Any]:
        return {
            "search_steps": self.search_steps,
            "steps": self.steps,
            "lr": self.lr,
            "initial_const": self.initial_const,
            "confidence": self.confidence,
            "abort_early": self.abort_early,
            "eot": self.eot,
        }

    def _f(self, model: DefendedModel, x_adv: torch.Tensor, y: torch.Tensor, draws: int, joint: bool):
        """The hinge on logits (plus the detector's hinge), averaged over draws; and the last logits."""
        total = 0.0
        for _ in range(draws):
            logits = model.differentiable_forward(x_adv)
            true = logits.gather(1, y[:, None]).squeeze(1)
            other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
            f = (true - other).clamp(min=-self.confidence)
            if joint:
                f = f + model.detect_margin(x_adv).clamp(min=-self.confidence)
            total = total + f
        return total / draws, logits

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        objective = Objective(model, "margin", self.eot)
        draws, joint, free_check = objective.draws, detector_aware(model), objective.surface_is_deployed
        n = len(x)
        w0 = torch.atanh((x * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
        const = torch.full((n,), self.initial_const, device=x.device, dtype=x.dtype)
        lower = torch.zeros_like(const)
        upper = torch.full_like(const, float("inf"))
        best_norm = torch.full_like(const, float("inf"))
        best = x.clone()
        check_every = max(1, self.steps // 10)
        for search in range(self.search_steps):
            self.report(f"c search {search + 1}/{self.search_steps}")
            w = w0.clone().requires_grad_(True)
            optimizer = torch.optim.Adam([w], lr=self.lr)
            succeeded = torch.zeros(n, dtype=torch.bool, device=x.device)
            previous = float("inf")
            for step in range(self.steps):
                x_adv = (torch.tanh(w) + 1) / 2
                dist = (x_adv - x).flatten(1).pow(2).sum(1)
                f, logits = self._f(model, x_adv, y, draws, joint)
                loss = dist + const * f
                # autograd.grad (not backward) so no gradient is computed for the model's weights
                (w.grad,) = torch.autograd.grad(loss.sum(), w)
                with torch.no_grad():
                    candidate = x_adv.detach()
                    if free_check:
                        wrong = logits.argmax(1) != y
                    else:
                        wrong = ~evaluate_correct(model, candidate, y)
                    norm = dist.detach().sqrt()
                    improved = wrong & (norm < best_norm)
                    if bool(improved.any()):
                        best_norm[improved] = norm[improved]
                        best[improved] = candidate[improved]
                    succeeded |= wrong
                optimizer.step()
                if self.abort_early and (step + 1) % check_every == 0:
                    current = float(loss.detach().sum())
                    if current > previous * 0.9999:
                        break
                    previous = current
            with torch.no_grad():  # binary search on c, per sample
                upper = torch.where(succeeded, torch.minimum(upper, const), upper)
                lower = torch.where(succeeded, lower, torch.maximum(lower, const))
                const = torch.where(torch.isinf(upper), const * 10, (lower + upper) / 2)
        return best
