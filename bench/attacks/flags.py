"""Gradient-masking and evaluation flags, each a sentence carrying its evidence.

After Carlini et al. 2019 ("On Evaluating Adversarial Robustness") and
AutoAttack's checks: white-box must beat black-box and transfer; accuracy
must fall with eps and reach about 0 at eps 1 (L-inf); more steps or
restarts must not help; gradients must be non-zero and finite; a model
declared deterministic must be; unbounded minimum-norm attacks must succeed
on (nearly) every sample. Thresholds are named constants below, stated in
every flag.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping, Optional, Sequence

import torch

from ..contract import DefendedModel
from .base import AttackOutcome
from .surface import Objective, detector_aware

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

# How an attack reaches the model. AutoAttack is an ENSEMBLE: white-box APGD/FAB plus the
# black-box Square, so it counts on neither side of the "black-box beats white-box" check
# (its own check_square_sr covers its inside).
WHITE_BOX, BLACK_BOX, TRANSFER, ENSEMBLE = "white-box", "black-box", "transfer", "ensemble"


def _threshold(n: int) -> int:
    return max(1, int(SAMPLE_FRACTION * n))


def positions(outcome: AttackOutcome, where: Optional[Mapping[int, int]], total: int) -> torch.Tensor:
    """Positions in the evaluated set that ``outcome`` covers."""
    if outcome.indices is None:
        return torch.arange(total)
    if where is None:
        return torch.as_tensor(outcome.indices, dtype=torch.long)
    return torch.as_tensor([where[i] for i in outcome.indices], dtype=torch.long)


def _expand(outcome: AttackOutcome, where: Optional[Mapping[int, int]], total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(covered mask, correct) over the whole evaluated set; uncovered samples read as correct."""
    pos = positions(outcome, where, total)
    covered = torch.zeros(total, dtype=torch.bool)
    correct = torch.ones(total, dtype=torch.bool)
    covered[pos] = True
    correct[pos] = outcome.correct.cpu()
    return covered, correct


@torch.no_grad()
def _logit_change(model: DefendedModel, x: torch.Tensor) -> float:
    first, second = model(x), model(x)
    scale = first.abs().max().clamp_min(1e-12)
    return float((first - second).abs().max() / scale)


def probe_model(model: DefendedModel, x: torch.Tensor, y: torch.Tensor, *, eot: int = 20) -> dict[str, Any]:
    """Cheap diagnostics on clean inputs: gradient health per loss, observed randomness, detector rate."""
    probes: dict[str, Any] = {"n": len(x)}
    for loss in ("ce", "margin"):
        grad, _ = Objective(model, loss, eot).gradient(x, y)
        flat = grad.flatten(1)
        finite = torch.isfinite(flat).all(dim=1)
        probes[f"zero_gradient_{loss}"] = int(((flat.abs().sum(dim=1) == 0) & finite).sum())
        probes[f"nonfinite_gradient_{loss}"] = int((~finite).sum())
    probes["logit_change_between_forwards"] = _logit_change(model, x)
    return probes


def masking_flags(
    clean_correct: torch.Tensor,
    outcomes: Mapping[str, AttackOutcome],
    *,
    indices: Optional[Sequence[int]] = None,
    kinds: Optional[Mapping[str, str]] = None,
    sweep: Optional[Sequence[AttackOutcome]] = None,
    probes: Optional[Mapping[str, Any]] = None,
    model: Optional[DefendedModel] = None,
) -> list[str]:
    """Evaluation warnings with their evidence; ``outcomes`` are the headline-eps attacks by name."""
    flags: list[str] = []
    total = len(clean_correct)
    clean_correct = clean_correct.cpu().bool()
    where = {int(i): p for p, i in enumerate(indices)} if indices is not None else None
    kinds = dict(kinds or {})

    def acc_on(name: str, pos: torch.Tensor) -> Optional[float]:
        if name not in outcomes:
            return None
        covered, correct = _expand(outcomes[name], where, total)
        if not bool(covered[pos].all()):
            return None
        return float(correct[pos].float().mean())

    # single-step beats iterative
    if "fgsm" in outcomes and "pgd-linf" in outcomes:
        c1, fg = _expand(outcomes["fgsm"], where, total)
        c2, pg = _expand(outcomes["pgd-linf"], where, total)
        only_fgsm = int((c1 & c2 & ~fg & pg & clean_correct).sum())
        if only_fgsm > _threshold(int((c1 & c2).sum())):
            flags.append(
                f"single-step beats iterative: fgsm breaks {only_fgsm} samples that pgd-linf does not "
                "(gradient masking or a non-converged attack)"
            )

    # black-box or transfer succeeds where every white-box attack failed
    for name, outcome in outcomes.items():
        kind = kinds.get(name, WHITE_BOX)
        if kind not in (BLACK_BOX, TRANSFER):
            continue
        covered, correct = _expand(outcome, where, total)
        white_covered = torch.zeros(total, dtype=torch.bool)
        white_survived = torch.ones(total, dtype=torch.bool)
        for other, o in outcomes.items():
            if kinds.get(other, WHITE_BOX) != WHITE_BOX or o.norm != outcome.norm:
                continue
            c, ok = _expand(o, where, total)
            white_covered |= c
            white_survived &= ok
        compared = covered & white_covered & clean_correct
        beaten = compared & ~correct & white_survived
        count = int(beaten.sum())
        needed = _threshold(int(compared.sum()))
        if model is not None and model.stochastic:  # one draw per verdict: allow for lucky draws
            needed = max(needed, int(STOCHASTIC_FRACTION * int(compared.sum())))
        if count > needed:
            examples = ", ".join(str(indices[p] if indices is not None else p) for p in beaten.nonzero().flatten()[:5].tolist())
            flags.append(
                f"{kind} attack {name} breaks {count} of {int(compared.sum())} samples that every white-box "
                f"{outcome.norm} attack failed on (e.g. samples {examples}): white-box gradients are misleading "
                "(gradient masking) or the white-box attacks are too weak"
            )

    # convergence: more steps and restarts
    if "pgd-linf-strong" in outcomes and "pgd-linf" in outcomes:
        pos = positions(outcomes["pgd-linf-strong"], where, total)
        base = acc_on("pgd-linf", pos)
        strong = float(outcomes["pgd-linf-strong"].correct.float().mean())
        if base is not None and base - strong > STEPS_GAP:
            p = outcomes["pgd-linf-strong"].params
            flags.append(
                f"not converged: pgd-linf with {p.get('steps')} steps x {p.get('restarts')} restarts gives "
                f"{strong:.3f} vs {base:.3f} with the standard setting on the same {len(pos)} samples "
                f"(more than {STEPS_GAP:.0%} lower)"
            )

    # CE against margin loss: vanishing CE gradients (saturated softmax)
    if "pgd-linf" in outcomes and "pgd-linf-margin" in outcomes:
        ce, margin = outcomes["pgd-linf"].accuracy, outcomes["pgd-linf-margin"].accuracy
        if ce - margin > STEPS_GAP:
            flags.append(
                f"cross-entropy PGD is weaker than margin-loss PGD ({ce:.3f} vs {margin:.3f}): the softmax "
                "saturates or CE gradients vanish (as in defensive distillation); trust the margin-loss figure"
            )

    # minimum-norm attacks are unbounded: they should find an adversarial example for every sample
    # (not checked for stochastic models: a minimal example sits on the boundary, so a fresh draw
    # undoes it about half the time; nor for FMN against a detector it does not see)
    detector = model is not None and getattr(model, "detect", None) is not None
    stochastic = model is not None and model.stochastic
    for name, outcome in outcomes.items():
        if outcome.norms is None or stochastic or (detector and name.startswith("fmn")):
            continue
        pos = positions(outcome, where, total)
        mask = clean_correct[pos]
        failed = int((~torch.isfinite(outcome.norms.cpu()) & mask).sum())
        if failed > max(_threshold(int(mask.sum())), LARGE_EPS_ACCURACY * int(mask.sum())):
            flags.append(
                f"unbounded attack {name} found no adversarial example at any size for {failed} of "
                f"{int(mask.sum())} clean-correct samples (should be about 0)"
            )

    # the eps sweep: about 0 at eps >= 1 (L-inf), and monotone
    if sweep:
        ordered = sorted(sweep, key=lambda o: o.eps)
        accs = [o.accuracy for o in ordered]
        big = [o for o in ordered if o.norm == "linf" and o.eps >= 1.0]
        if big and big[-1].accuracy > LARGE_EPS_ACCURACY:
            flags.append(
                f"accuracy does not fall to about 0 at a very large eps: {big[-1].name} gives "
                f"{big[-1].accuracy:.3f} at L-inf eps {big[-1].eps:g} (any image can be reached there; "
                f"expected <= {LARGE_EPS_ACCURACY:.2f})"
            )
        tolerance = MONOTONE_GAP
        if model is not None and model.stochastic:  # two binomial estimates from one draw each
            tolerance += 2 * math.sqrt(2 * 0.25 / max(1, ordered[0].n))
        worst = None
        for i in range(len(ordered)):
            for j in range(i + 1, len(ordered)):
                rise = accs[j] - accs[i]
                if rise > tolerance and (worst is None or rise > worst[0]):
                    worst = (rise, ordered[i], ordered[j])
        if worst is not None:
            rise, lo, hi = worst
            flags.append(
                f"accuracy is not monotone in eps: {lo.accuracy:.3f} at eps {lo.eps:g} but {hi.accuracy:.3f} "
                f"at eps {hi.eps:g} ({rise:.1%} higher at the larger eps)"
            )

    # gradient health and declared randomness
    if probes:
        n = int(probes.get("n", 0))
        for loss in ("ce", "margin"):
            bad = int(probes.get(f"nonfinite_gradient_{loss}", 0))
            if bad:
                flags.append(f"non-finite input gradients ({loss} loss) on {bad} of {n} clean samples")
            zero = int(probes.get(f"zero_gradient_{loss}", 0))
            if zero > _threshold(n):
                hint = (" (the softmax saturates; the margin-loss attacks do not depend on it)"
                        if loss == "ce" and int(probes.get("zero_gradient_margin", 0)) <= _threshold(n) else
                        " (a non-differentiable or flat forward: declare differentiable_forward for BPDA)")
                flags.append(f"zero input gradients ({loss} loss) on {zero} of {n} clean samples{hint}")
        change = float(probes.get("logit_change_between_forwards", 0.0))
        if model is not None and not model.stochastic and change > RANDOMNESS_TOLERANCE:
            flags.append(
                f"randomness observed where none was declared: two forwards of the same inputs differ by "
                f"{change:.2g} (relative max logit change); declare stochastic = True so attacks use EOT"
            )

    if model is not None and getattr(model, "detect", None) is not None and not detector_aware(model):
        flags.append(
            "the defense has a detector but no detect_margin: attacks cannot optimise against it jointly, "
            "so the reported robustness to detector-aware attacks is an upper bound"
        )

    # AutoAttack's own checks (one flag per kind of message; batches repeat them with other counts)
    seen: set[str] = set()
    for name, outcome in outcomes.items():
        for message in outcome.warnings:
            template = re.sub(r"\d+(\.\d+)?", "#", message)
            if template not in seen:
                seen.add(template)
                flags.append(f"{name} check: {message}")
    return flags
