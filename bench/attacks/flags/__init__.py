"""Gradient-masking and evaluation flags: a list of small checks, each a sentence carrying its evidence.

After Carlini et al. 2019 ("On Evaluating Adversarial Robustness") and
AutoAttack's checks: white-box must beat black-box and transfer; accuracy
must fall with eps and reach about 0 at eps 1 (L-inf); more steps or
restarts must not help; gradients must be non-zero and finite; a model
declared deterministic must be; unbounded minimum-norm attacks must succeed
on (nearly) every sample. Each flag has a severity: ``masking`` (the robust
accuracy may reflect hidden gradients or a failed evaluation) or ``note``.
Thresholds are named constants in ``evidence.py``, stated in every flag. A
new check is one more function in ``FLAG_CHECKS``.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from ...schema import Flag
from ..base import AttackOutcome
from .evidence import MASKING, NOTE, Evidence
from .library import library_checks
from .model import detector_without_margin, gradient_health, large_eps_not_zero, not_monotone, undeclared_randomness
from .outcomes import (
    black_box_beats_white_box, ce_weaker_than_margin, not_converged, single_step_beats_iterative,
    unbounded_attack_fails, white_box_disagreement,
)

__all__ = ["FLAG_CHECKS", "MASKING", "NOTE", "Evidence", "masking_flags"]

FLAG_CHECKS: list[Callable[[Evidence], list[Flag]]] = [
    single_step_beats_iterative, black_box_beats_white_box, not_converged, ce_weaker_than_margin,
    unbounded_attack_fails, white_box_disagreement, large_eps_not_zero, not_monotone, gradient_health,
    undeclared_randomness, detector_without_margin, library_checks,
]


def masking_flags(clean_correct: torch.Tensor, outcomes: Mapping[str, AttackOutcome], **evidence: Any) -> list[Flag]:
    """Every check's flags, in order; ``outcomes`` are the headline-budget attacks by name."""
    e = Evidence(clean_correct.cpu().bool(), outcomes, **{k: v for k, v in evidence.items() if v is not None})
    return [flag for check in FLAG_CHECKS for flag in check(e)]
