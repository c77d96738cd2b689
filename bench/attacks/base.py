"""The attack call, foolbox-style: the base class owns clipping and the success check.

Subclasses implement ``run`` only. ``perturb`` (and ``__call__``) project
whatever ``run`` returns onto the eps-ball and [0, 1] and re-check success
with the model's *deployed* forward (and detector), so no attack can report
a success that the deployed model would not show. Minimum-norm attacks
(``minimum_norm = True``) also report, per sample, the norm of the smallest
adversarial perturbation they found before the projection.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Optional

import torch

from ..contract import DefendedModel
from ..perf import fast_layout
from ..perturbation import perturbation_norm, project

@contextmanager
def frozen_weights(*modules: Optional[torch.nn.Module]) -> Iterator[None]:
    """Switch off ``requires_grad`` on the weights while attacking, then restore it.

    Attacks need input gradients only; libraries that call ``loss.backward()``
    (foolbox via eagerpy) would otherwise also compute and accumulate every
    weight gradient, which costs time and leaves ``.grad`` on the model.
    """
    params = [p for m in modules if m is not None for p in m.parameters()]
    saved = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, saved):
            p.requires_grad_(flag)


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
    """Per-sample result of one attack: which samples stayed correct, at what eps.

    ``indices`` names the evaluated samples this outcome covers (None: all of
    them, in order); expensive attacks may cover a seeded subset. ``norms``
    holds, for minimum-norm attacks, the smallest adversarial perturbation
    found per sample (``inf`` where none was found). ``warnings`` carries the
    attack's own diagnostics (e.g. AutoAttack's checks) into the flags.
    """

    name: str
    norm: str
    eps: float
    correct: torch.Tensor  # bool (n,), True = attack failed on this sample
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    indices: Optional[list[int]] = None
    norms: Optional[torch.Tensor] = None
    warnings: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.correct)

    @property
    def accuracy(self) -> float:
        return float(self.correct.float().mean()) if len(self.correct) else float("nan")

    def median_norm(self, among: Optional[torch.Tensor] = None) -> float:
        """Median minimal perturbation norm (failures count as infinite), optionally among a mask."""
        if self.norms is None:
            return float("nan")
        norms = self.norms if among is None else self.norms[among]
        return float(norms.median()) if len(norms) else float("nan")

    def mean_successful_norm(self, among: Optional[torch.Tensor] = None) -> float:
        """Mean norm over samples where an adversarial example was found (the VUB paper's CW figure)."""
        if self.norms is None:
            return float("nan")
        norms = self.norms if among is None else self.norms[among]
        found = norms[torch.isfinite(norms)]
        return float(found.mean()) if len(found) else float("nan")


@dataclass
class AttackResult:
    """What one call of an attack returns for a batch."""

    x_adv: torch.Tensor
    correct: torch.Tensor
    norms: Optional[torch.Tensor] = None


class Attack:
    """Base class: ``attack(model, x, y, eps=...) -> (x_adv, correct)``."""

    name: ClassVar[str] = "attack"
    norm: str = "linf"
    # True when ``run`` returns minimal adversarial examples (not limited to eps).
    minimum_norm: ClassVar[bool] = False

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.status: Optional[Callable[[str], None]] = None
        self.state_dir: Optional[Path] = None

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {}

    def bind(self, *, status: Optional[Callable[[str], None]] = None, state_dir: Optional[Path] = None) -> None:
        """Attach a progress callback and a scratch folder (for attacks that resume mid-run)."""
        self.status, self.state_dir = status, state_dir

    def report(self, message: str) -> None:
        status = getattr(self, "status", None)
        if status is not None:
            status(message)

    def warn(self, message: str) -> None:
        """Record a diagnostic for the flags (once per distinct message)."""
        if not hasattr(self, "warnings"):
            self.warnings = []
        if message not in self.warnings:
            self.warnings.append(message)

    def perturb(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> AttackResult:
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0.0):
            raise ValueError(f"eps must be a finite non-negative number, got {eps!r}")
        x = fast_layout(x.detach())
        with frozen_weights(model, getattr(self, "source", None)):
            raw = self.run(model, x, y, eps).detach()
        norms = None
        if self.minimum_norm:
            norms = perturbation_norm(raw - x, self.norm)
            norms[evaluate_correct(model, raw, y)] = float("inf")
        x_adv = project(raw, x, self.norm, eps)
        return AttackResult(x_adv, evaluate_correct(model, x_adv, y), norms)

    def __call__(
        self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, *, eps: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        result = self.perturb(model, x, y, eps=eps)
        return result.x_adv, result.correct

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({inner})"
