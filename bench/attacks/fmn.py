"""Fast Minimum-Norm attacks (Pintor et al., NeurIPS 2021) through foolbox.

foolbox's ``L2FMNAttack`` (with its L2 projection repaired, see below) and
``LInfFMNAttack`` run on a ``StraightThrough``
module: the deployed forward for foolbox's own success test, the declared
surface (BPDA, EOT) for its gradients. The minimal adversarial example per
sample is returned unprojected, so ``Attack.perturb`` records its norm
(``inf`` where FMN found none) before projecting it onto the eps-ball and
re-judging it with the deployed model and detector.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from ..contract import DefendedModel
from ..perturbation import check_norm
from .base import Attack
from .surface import StraightThrough


def _fixed_l2_fmn():
    """foolbox 3.3.4's L2FMNAttack with its L2 projection repaired.

    Its ``project`` computes ``factor = minimum(1, norms / norms)``, i.e.
    always 1, so the adaptive norm constraint that defines FMN is never
    applied (measured here: on a linear model it returns 1.5x the exact
    minimal norm, however many steps). Only that method is replaced; the
    attack itself stays foolbox's.
    """
    import eagerpy as ep
    import foolbox as fb
    from foolbox.devutils import atleast_kd, flatten

    class L2FMN(fb.attacks.L2FMNAttack):
        def project(self, x, x0, epsilon):  # type: ignore[override]
            delta = x - x0
            norms = ep.maximum(flatten(delta).norms.l2(axis=-1), 1e-12)
            factor = ep.minimum(1, epsilon / norms)
            return x0 + delta * atleast_kd(factor, x.ndim)

    return L2FMN


class FMN(Attack):
    """Minimum-norm attack; accuracy at eps counts successes with ||delta|| <= eps."""

    minimum_norm = True

    def __init__(self, *, norm: str = "l2", steps: int = 100, gamma: float = 0.05, eot: int = 20) -> None:
        super().__init__()
        self.norm = check_norm(norm)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps, self.gamma, self.eot = steps, gamma, eot

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"fmn-{self.norm}"

    def params(self) -> dict[str, Any]:
        return {"norm": self.norm, "steps": self.steps, "gamma": self.gamma, "eot": self.eot, "library": "foolbox"}

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        import foolbox as fb

        surface = StraightThrough(model, eot=self.eot).eval()
        fmodel = fb.PyTorchModel(surface, bounds=(0.0, 1.0), device=x.device)
        cls = _fixed_l2_fmn() if self.norm == "l2" else fb.attacks.LInfFMNAttack
        attack = cls(steps=self.steps, gamma=self.gamma)
        # foolbox works on contiguous NCHW tensors; the result goes back to the caller's layout.
        xs = x.contiguous()
        criterion = fb.criteria.Misclassification(y)
        starts = adversarial_starts(model, xs, y)
        raw = None
        if starts is not None:
            try:
                raw, _, _ = attack(fmodel, xs, criterion, epsilons=None, starting_points=starts)
            except AssertionError:  # a stochastic model disagreed with itself about a start
                raw = None
        if raw is None:
            raw, _, _ = attack(fmodel, xs, criterion, epsilons=None)
        return raw.to(memory_format=torch.channels_last) if x.dim() == 4 else raw


@torch.no_grad()
def adversarial_starts(model: DefendedModel, x: torch.Tensor, y: torch.Tensor) -> Optional[torch.Tensor]:
    """Per sample, the nearest (L2) input of the batch that the model assigns another class.

    FMN started from the clean input projects each step onto a ball of its
    current norm estimate and *then* clips to [0, 1]; on images with many
    saturated pixels the clipped step falls short of the boundary, the norm
    estimate barely grows, and some samples are never broken (measured here:
    3 of 8 plain-MNIST samples, one with a 0.26 C&W distance). foolbox's FMN
    accepts adversarial starting points (Pintor et al. describe this
    initialisation): it binary-searches the segment to the boundary and
    minimises from there. None when some sample has no such partner.
    """
    if len(x) < 2:
        return None
    pred = model(x).argmax(1)
    already = pred != y
    flat = x.flatten(1)
    dist = torch.cdist(flat, flat)
    dist[pred[None, :] == y[:, None]] = float("inf")
    nearest = dist.argmin(dim=1)
    has_partner = torch.isfinite(dist.gather(1, nearest[:, None]).squeeze(1))
    if not bool((has_partner | already).all()):
        return None
    starts = x[nearest].clone()
    starts[already] = x[already]
    return starts
