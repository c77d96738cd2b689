"""Gradient-masking and evaluation flags: a list of small checks, each a sentence carrying its evidence.

After Carlini et al. 2019 ("On Evaluating Adversarial Robustness") and
AutoAttack's checks: white-box must beat black-box and transfer; accuracy
must fall with eps and reach about 0 at eps 1 (L-inf); more steps or
restarts must not help; gradients must be non-zero and finite; a model
declared deterministic must be; unbounded minimum-norm attacks must succeed
on (nearly) every sample. Thresholds are named constants below, stated in
every flag. A new check is one more function in ``FLAG_CHECKS``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

from ..contract import DefendedModel
from .aggregate import expand, index_positions, positions
from .base import AttackOutcome
from .registry import BLACK_BOX, FGSM, PGD_LINF, PGD_LINF_MARGIN, PGD_LINF_STRONG, TRANSFER, WHITE_BOX
from .surface import detector_aware

# A flag needs more than this fraction of the compared samples (and at least 2 samples).
SAMPLE_FRACTION = 0.01
# Accuracy gaps (fractions) that count as "not converged" or "not monotone".
STEPS_GAP = 0.02
MONOTONE_GAP = 0.01
# Stochastic models are judged on one draw per sample: a larger share before a flag.
STOCHASTIC_FRACTION = 0.05
# "About 0" at L-inf eps >= 1.
LARGE_EPS_ACCURACY = 0.02
# Relative logit change between two forwards that counts as randomness.
RANDOMNESS_TOLERANCE = 1e-4


def _threshold(n: int) -> int:
    return max(1, int(SAMPLE_FRACTION * n))


@dataclass
class Evidence:
    """What the checks look at: the headline outcomes by name, their kinds, the sweep, the probes, the model."""

    clean_correct: torch.Tensor
    outcomes: Mapping[str, AttackOutcome]
    indices: Optional[Sequence[int]] = None
    kinds: Mapping[str, str] = field(default_factory=dict)
    sweep: Sequence[AttackOutcome] = ()
    probes: Mapping[str, Any] = field(default_factory=dict)
    model: Optional[DefendedModel] = None

    @property
    def total(self) -> int:
        return len(self.clean_correct)

    @property
    def where(self) -> Optional[dict[int, int]]:
        return index_positions(self.indices)

    def expand(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return expand(self.outcomes[name], self.where, self.total)

    @property
    def stochastic(self) -> bool:
        return self.model is not None and bool(self.model.stochastic)

    @property
    def has_detector(self) -> bool:
        return self.model is not None and getattr(self.model, "detect", None) is not None


def single_step_beats_iterative(e: Evidence) -> list[str]:
    if FGSM not in e.outcomes or PGD_LINF not in e.outcomes:
        return []
    (c1, fg), (c2, pg) = e.expand(FGSM), e.expand(PGD_LINF)
    only_fgsm = int((c1 & c2 & ~fg & pg & e.clean_correct).sum())
    if only_fgsm <= _threshold(int((c1 & c2).sum())):
        return []
    return [f"single-step beats iterative: fgsm breaks {only_fgsm} samples that pgd-linf does not "
            "(gradient masking or a non-converged attack)"]


def _white_box_survivors(e: Evidence, norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    covered = torch.zeros(e.total, dtype=torch.bool)
    survived = torch.ones(e.total, dtype=torch.bool)
    for other, o in e.outcomes.items():
        if e.kinds.get(other, WHITE_BOX) == WHITE_BOX and o.norm == norm:
            c, ok = e.expand(other)
            covered |= c
            survived &= ok
    return covered, survived


def black_box_beats_white_box(e: Evidence) -> list[str]:
    flags = []
    for name, outcome in e.outcomes.items():
        kind = e.kinds.get(name, WHITE_BOX)
        if kind not in (BLACK_BOX, TRANSFER):
            continue
        covered, correct = e.expand(name)
        white_covered, white_survived = _white_box_survivors(e, outcome.norm)
        compared = covered & white_covered & e.clean_correct
        beaten = compared & ~correct & white_survived
        count, needed = int(beaten.sum()), _threshold(int(compared.sum()))
        if e.stochastic:  # one draw per verdict: allow for lucky draws
            needed = max(needed, int(STOCHASTIC_FRACTION * int(compared.sum())))
        if count > needed:
            picked = beaten.nonzero().flatten()[:5].tolist()
            examples = ", ".join(str(e.indices[p] if e.indices is not None else p) for p in picked)
            flags.append(
                f"{kind} attack {name} breaks {count} of {int(compared.sum())} samples that every white-box "
                f"{outcome.norm} attack failed on (e.g. samples {examples}): white-box gradients are misleading "
                "(gradient masking) or the white-box attacks are too weak"
            )
    return flags


def not_converged(e: Evidence) -> list[str]:
    if PGD_LINF_STRONG not in e.outcomes or PGD_LINF not in e.outcomes:
        return []
    strong_outcome = e.outcomes[PGD_LINF_STRONG]
    pos = positions(strong_outcome, e.where, e.total)
    covered, correct = e.expand(PGD_LINF)
    if not bool(covered[pos].all()):
        return []
    base, strong = float(correct[pos].float().mean()), float(strong_outcome.correct.float().mean())
    if base - strong <= STEPS_GAP:
        return []
    p = strong_outcome.params
    return [f"not converged: pgd-linf with {p.get('steps')} steps x {p.get('restarts')} restarts gives "
            f"{strong:.3f} vs {base:.3f} with the standard setting on the same {len(pos)} samples "
            f"(more than {STEPS_GAP:.0%} lower)"]


def ce_weaker_than_margin(e: Evidence) -> list[str]:
    if PGD_LINF not in e.outcomes or PGD_LINF_MARGIN not in e.outcomes:
        return []
    ce, margin = e.outcomes[PGD_LINF].accuracy, e.outcomes[PGD_LINF_MARGIN].accuracy
    if ce - margin <= STEPS_GAP:
        return []
    return [f"cross-entropy PGD is weaker than margin-loss PGD ({ce:.3f} vs {margin:.3f}): the softmax "
            "saturates or CE gradients vanish (as in defensive distillation); trust the margin-loss figure"]


def unbounded_attack_fails(e: Evidence) -> list[str]:
    """Minimum-norm attacks are unbounded: they should find an adversarial example for every sample.

    Not checked for stochastic models (a minimal example sits on the boundary, so a fresh draw
    undoes it about half the time), nor for FMN against a detector it does not see.
    """
    flags = []
    for name, outcome in e.outcomes.items():
        if outcome.norms is None or e.stochastic or (e.has_detector and name.startswith("fmn")):
            continue
        mask = e.clean_correct[positions(outcome, e.where, e.total)]
        failed = int((~torch.isfinite(outcome.norms.cpu()) & mask).sum())
        if failed > max(_threshold(int(mask.sum())), LARGE_EPS_ACCURACY * int(mask.sum())):
            flags.append(f"unbounded attack {name} found no adversarial example at any size for {failed} of "
                         f"{int(mask.sum())} clean-correct samples (should be about 0)")
    return flags


def large_eps_not_zero(e: Evidence) -> list[str]:
    big = [o for o in sorted(e.sweep, key=lambda o: o.eps) if o.norm == "linf" and o.eps >= 1.0]
    if not big or big[-1].accuracy <= LARGE_EPS_ACCURACY:
        return []
    return [f"accuracy does not fall to about 0 at a very large eps: {big[-1].name} gives "
            f"{big[-1].accuracy:.3f} at L-inf eps {big[-1].eps:g} (any image can be reached there; "
            f"expected <= {LARGE_EPS_ACCURACY:.2f})"]


def not_monotone(e: Evidence) -> list[str]:
    ordered = sorted(e.sweep, key=lambda o: o.eps)
    if not ordered:
        return []
    tolerance = MONOTONE_GAP
    if e.stochastic:  # two binomial estimates from one draw each
        tolerance += 2 * math.sqrt(2 * 0.25 / max(1, ordered[0].n))
    worst = None
    for i, lo in enumerate(ordered):
        for hi in ordered[i + 1:]:
            rise = hi.accuracy - lo.accuracy
            if rise > tolerance and (worst is None or rise > worst[0]):
                worst = (rise, lo, hi)
    if worst is None:
        return []
    rise, lo, hi = worst
    return [f"accuracy is not monotone in eps: {lo.accuracy:.3f} at eps {lo.eps:g} but {hi.accuracy:.3f} "
            f"at eps {hi.eps:g} ({rise:.1%} higher at the larger eps)"]


def gradient_health(e: Evidence) -> list[str]:
    flags: list[str] = []
    if not e.probes:
        return flags
    n = int(e.probes.get("n", 0))
    for loss in ("ce", "margin"):
        bad = int(e.probes.get(f"nonfinite_gradient_{loss}", 0))
        if bad:
            flags.append(f"non-finite input gradients ({loss} loss) on {bad} of {n} clean samples")
        zero = int(e.probes.get(f"zero_gradient_{loss}", 0))
        if zero > _threshold(n):
            hint = (" (the softmax saturates; the margin-loss attacks do not depend on it)"
                    if loss == "ce" and int(e.probes.get("zero_gradient_margin", 0)) <= _threshold(n) else
                    " (a non-differentiable or flat forward: declare differentiable_forward for BPDA)")
            flags.append(f"zero input gradients ({loss} loss) on {zero} of {n} clean samples{hint}")
    return flags


def undeclared_randomness(e: Evidence) -> list[str]:
    change = float(e.probes.get("logit_change_between_forwards", 0.0)) if e.probes else 0.0
    if e.model is None or e.stochastic or change <= RANDOMNESS_TOLERANCE:
        return []
    return [f"randomness observed where none was declared: two forwards of the same inputs differ by "
            f"{change:.2g} (relative max logit change); declare stochastic = True so attacks use EOT"]


def detector_without_margin(e: Evidence) -> list[str]:
    if not e.has_detector or detector_aware(e.model):
        return []
    return ["the defense has a detector but no detect_margin: attacks cannot optimise against it jointly, "
            "so the reported robustness to detector-aware attacks is an upper bound"]


def library_checks(e: Evidence) -> list[str]:
    """The libraries' own checks (AutoAttack's): one flag per kind of message; batches repeat them."""
    flags, seen = [], set()
    for name, outcome in e.outcomes.items():
        for message in outcome.warnings:
            template = re.sub(r"\d+(\.\d+)?", "#", message)
            if template not in seen:
                seen.add(template)
                flags.append(f"{name} check: {message}")
    return flags


FLAG_CHECKS: list[Callable[[Evidence], list[str]]] = [
    single_step_beats_iterative, black_box_beats_white_box, not_converged, ce_weaker_than_margin,
    unbounded_attack_fails, large_eps_not_zero, not_monotone, gradient_health, undeclared_randomness,
    detector_without_margin, library_checks,
]


def masking_flags(clean_correct: torch.Tensor, outcomes: Mapping[str, AttackOutcome], **evidence: Any) -> list[str]:
    """Every check's flags, in order; ``outcomes`` are the headline-eps attacks by name."""
    e = Evidence(clean_correct.cpu().bool(), outcomes, **{k: v for k, v in evidence.items() if v is not None})
    return [flag for check in FLAG_CHECKS for flag in check(e)]
