"""FGSM and PGD (L-inf and L2) that adapt to what the defense declares.

Gradients come from ``surface.Objective``: through ``differentiable_forward``
(BPDA), averaged over ``eot`` draws for stochastic models (EOT), and jointly
against a detector. Written here rather than taken from a library because
they must call the contract's surfaces, keep per-sample best iterates and
stop early on samples already fooled; foolbox's LinfPGD serves as the
reference in the tests.

The PGD loop is kept lean because everything else in the battery is built on
it (measured against a bare PyTorch loop in tests/benchmarks): one forward
and one backward per step, the step and projection done in place, the box
and eps-ball bounds precomputed once, and samples already fooled dropped
from the batch (deterministic models only).
"""
from __future__ import annotations

from typing import Any

import torch

from ..contract import DefendedModel
from ..perf import fast_layout
from ..losses import loss_function
from ..perturbation import check_norm, project
from .base import Attack, evaluate_correct
from .surface import Objective

__all__ = ["FGSM", "PGD", "input_gradient"]


def input_gradient(
    model: DefendedModel, x: torch.Tensor, y: torch.Tensor, loss: str = "ce", eot: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the summed loss w.r.t. the input (EOT-averaged); returns (gradient, adversarial-now)."""
    return Objective(model, loss, eot).gradient(x, y)


class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al. 2015): one L-inf step of size eps."""

    name = "fgsm"
    norm = "linf"

    def __init__(self, *, loss: str = "ce", eot: int = 20) -> None:
        super().__init__()
        loss_function(loss)
        self.loss, self.eot = loss, eot

    def params(self) -> dict[str, Any]:
        return {"loss": self.loss, "eot": self.eot}

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        grad, _ = Objective(model, self.loss, self.eot).gradient(x, y)
        return x + eps * grad.sign()


def _view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


class PGD(Attack):
    """Projected gradient descent (Madry et al. 2018) with random start and restarts.

    Arguments: ``norm`` linf or l2; ``steps`` per restart; ``restarts``
    (later restarts only attack samples not yet fooled); ``step_size``
    (default 2.5 * eps / steps); ``random_start``; ``loss`` ce or margin;
    ``eot`` gradient draws for stochastic models; ``keep_best`` return, per
    sample, the first iterate that fools the deployed model (deterministic
    models; stochastic ones always return the last iterate, judged by a
    fresh deployed forward); ``early_stop`` drop fooled samples from the
    batch (only with ``keep_best``).

    Random starts draw from torch's global generator, which the battery seeds
    per batch from the run seed and the batch's first sample index, so a
    shard of indices reproduces wherever it runs.
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
        keep_best: bool = True,
        early_stop: bool = True,
    ) -> None:
        super().__init__()
        check_norm(norm)
        if steps < 1 or restarts < 1:
            raise ValueError(f"steps and restarts must be >= 1, got {steps} and {restarts}")
        loss_function(loss)
        self.norm, self.steps, self.restarts = norm, steps, restarts
        self.step_size, self.random_start, self.loss, self.eot = step_size, random_start, loss, eot
        self.keep_best, self.early_stop = keep_best, early_stop

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"pgd-{self.norm}" + ("-margin" if self.loss == "margin" else "")

    def params(self) -> dict[str, Any]:
        return {
            "norm": self.norm,
            "steps": self.steps,
            "restarts": self.restarts,
            "step_size": self.step_size,
            "random_start": self.random_start,
            "loss": self.loss,
            "eot": self.eot,
            "keep_best": self.keep_best,
            "early_stop": self.early_stop,
        }

    def _start(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        if not self.random_start:
            return x.clone()
        noise = torch.rand_like(x).mul_(2).sub_(1)
        if self.norm == "linf":
            return project(x + eps * noise, x, "linf", eps)
        radius = torch.rand(len(x), dtype=x.dtype, device=x.device)
        direction = noise / _view(noise.flatten(1).norm(dim=1).clamp_min(1e-12), x)
        return project(x + eps * _view(radius, x) * direction, x, "l2", eps)

    def _step_(self, x_adv: torch.Tensor, grad: torch.Tensor, alpha: float, x: torch.Tensor, eps: float,
               lo: torch.Tensor, hi: torch.Tensor) -> None:
        """One ascent step and projection, in place on ``x_adv``."""
        if self.norm == "linf":
            x_adv.add_(grad.sign_(), alpha=alpha)
            torch.maximum(x_adv, lo, out=x_adv)
            torch.minimum(x_adv, hi, out=x_adv)
            return
        x_adv.add_(grad.div_(_view(grad.flatten(1).norm(dim=1).clamp_min_(1e-12), grad)), alpha=alpha)
        delta = x_adv.sub_(x)  # x_adv now holds delta
        factor = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp_(max=1.0)
        delta.mul_(_view(factor, delta)).add_(x).clamp_(0.0, 1.0)

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        objective = Objective(model, self.loss, self.eot)
        alpha = self.step_size if self.step_size is not None else 2.5 * eps / self.steps
        keep_best = self.keep_best and not model.stochastic
        early_stop = keep_best and self.early_stop
        best = x.clone()
        fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for restart in range(self.restarts):
            active = (~fooled).nonzero().squeeze(1) if early_stop else None
            if active is not None and len(active) == 0:
                break
            xs, ys = (x, y) if active is None else (fast_layout(x[active]), y[active])
            lo = (xs - eps).clamp_(min=0.0) if self.norm == "linf" else None
            hi = (xs + eps).clamp_(max=1.0) if self.norm == "linf" else None
            x_adv = self._start(xs, eps)
            for step in range(self.steps + 1):
                last = step == self.steps
                if not last:
                    grad, wrong = objective.gradient(x_adv, ys)
                elif keep_best and restart < self.restarts - 1:
                    # judge the final iterate before the next restart replaces it (after the
                    # last restart, ``perturb`` judges what ``run`` returns anyway)
                    wrong = ~evaluate_correct(model, x_adv, ys)
                else:
                    break
                if keep_best:
                    now = wrong if active is not None else wrong & ~fooled
                    if bool(now.any()):
                        where = active[now] if active is not None else now.nonzero().squeeze(1)
                        best[where] = x_adv[now]
                        fooled[where] = True
                        if active is not None and not last:  # drop fooled samples from the batch
                            keep = ~now
                            if not bool(keep.any()):
                                active = active[keep]
                                break
                            active, xs, ys = active[keep], fast_layout(xs[keep]), ys[keep]
                            x_adv, grad = fast_layout(x_adv[keep]), fast_layout(grad[keep])
                            if lo is not None:
                                lo, hi = fast_layout(lo[keep]), fast_layout(hi[keep])
                        elif active is not None:
                            active = active[~now]
                            x_adv = x_adv[~now]
                if not last:
                    self._step_(x_adv, grad, alpha, xs, eps, lo, hi)
            if keep_best:
                # samples never fooled return their last iterate
                if active is None:
                    best[~fooled] = x_adv[~fooled]
                elif len(active):
                    best[active] = x_adv
            elif restart == 0:
                best = x_adv
                if self.restarts > 1:
                    fooled = ~evaluate_correct(model, best, y)
            else:  # stochastic: keep a later restart's iterate only where it fooled a deployed draw
                better = ~evaluate_correct(model, x_adv, y) & ~fooled
                best[better] = x_adv[better]
                fooled |= better
        return best
