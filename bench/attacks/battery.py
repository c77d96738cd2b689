"""The battery: which attacks run against a model, batched, resumable, worst-cased.

The attacks are chosen from what the model declares (the adaptive parts are
inside the attacks: BPDA through ``differentiable_forward``, EOT for
stochastic models, the detector in the success check). Robust accuracy is
the per-sample worst case: a sample counts as robust only if it is clean-
correct and survives every attack at the headline eps.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from ..contract import DefendedModel
from ..data import ThreatModel
from ..perf import fast_layout
from ..progress import progress
from ..records import fingerprint, load_outcome, save_outcome
from .base import Attack, AttackOutcome
from .gradient import FGSM, PGD


@dataclass
class PlannedAttack:
    attack: Attack
    eps: float

    @property
    def name(self) -> str:
        return self.attack.name


PROFILES = ("quick", "full")


def plan_battery(
    model: DefendedModel, threat: ThreatModel, eps_linf: Optional[float] = None, profile: str = "quick"
) -> list[PlannedAttack]:
    """The attacks run for this model at the headline eps, plus the defense's own extras."""
    eps = threat.linf if eps_linf is None else eps_linf
    plan = [
        PlannedAttack(FGSM(), eps),
        PlannedAttack(PGD(norm="linf", steps=40, random_start=True), eps),
    ]
    for extra in model.extra_attacks():
        plan.append(extra if isinstance(extra, PlannedAttack) else PlannedAttack(extra, threat.eps(extra.norm)))
    return plan


def run_attack(
    planned: PlannedAttack,
    model: DefendedModel,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    seed: int,
    batch_size: int = 500,
) -> AttackOutcome:
    """Run one attack over all samples in batches, with a progress bar."""
    device = next(model.parameters()).device
    correct = []
    start = time.perf_counter()
    for lo in progress(range(0, len(x), batch_size), desc=planned.name, unit="batch"):
        torch.manual_seed(seed * 1_000_003 + lo)  # per-batch seed keyed by sample index
        xb = fast_layout(x[lo : lo + batch_size].to(device))
        yb = y[lo : lo + batch_size].to(device)
        _, ok = planned.attack(model, xb, yb, eps=planned.eps)
        correct.append(ok.cpu())
    return AttackOutcome(
        name=planned.name,
        norm=planned.attack.norm,
        eps=planned.eps,
        correct=torch.cat(correct),
        seconds=time.perf_counter() - start,
        params=planned.attack.params(),
    )


def run_battery(
    model: DefendedModel,
    x: torch.Tensor,
    y: torch.Tensor,
    plan: list[PlannedAttack],
    *,
    records_dir: Path,
    model_id: str,
    indices: list[int],
    seed: int,
    batch_size: int = 500,
    on_outcome: Optional[Callable[[AttackOutcome, bool], None]] = None,
) -> dict[str, AttackOutcome]:
    """Run (or reload from ``records_dir``) every planned attack; return outcomes by name."""
    outcomes: dict[str, AttackOutcome] = {}
    for planned in plan:
        fp = fingerprint(
            model=model_id, attack=repr(planned.attack), eps=planned.eps, indices=indices, seed=seed
        )
        outcome = load_outcome(records_dir, planned.name, fp)
        reused = outcome is not None
        if outcome is None:
            outcome = run_attack(planned, model, x, y, seed=seed, batch_size=batch_size)
            save_outcome(records_dir, outcome, indices, fp)
        outcomes[planned.name] = outcome
        if on_outcome is not None:
            on_outcome(outcome, reused)
    return outcomes


def masking_flags(clean_correct: torch.Tensor, outcomes: dict[str, AttackOutcome]) -> list[str]:
    """Evaluation warnings with their evidence (Carlini et al. 2019's checklist)."""
    flags: list[str] = []
    n = len(clean_correct)
    if "fgsm" in outcomes and "pgd-linf" in outcomes:
        only_fgsm = int((~outcomes["fgsm"].correct & outcomes["pgd-linf"].correct & clean_correct).sum())
        if only_fgsm > max(1, 0.01 * n):
            flags.append(
                f"single-step beats iterative: fgsm breaks {only_fgsm} samples that pgd-linf does not "
                "(gradient masking or a non-converged attack)"
            )
    return flags


def worst_case(clean_correct: torch.Tensor, outcomes: dict[str, AttackOutcome]) -> torch.Tensor:
    """Per-sample robustness: clean-correct and unbroken by every given (headline-eps) attack."""
    robust = clean_correct.clone()
    for outcome in outcomes.values():
        robust &= outcome.correct
    return robust
