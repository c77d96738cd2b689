"""Checks on the model and the eps sweep: accuracy must fall with eps and reach about 0 at eps 1,
gradients must be finite and non-zero, declared randomness and detectors must be what they say."""
from __future__ import annotations

import math

from ...schema import Flag
from ..surface import detector_aware
from .evidence import (
    LARGE_EPS_ACCURACY, MASKING, MONOTONE_GAP, RANDOMNESS_TOLERANCE, Evidence, make_flag, threshold,
)


def large_eps_not_zero(e: Evidence) -> list[Flag]:
    big = [o for o in sorted(e.sweep, key=lambda o: o.eps) if o.norm == "linf" and o.eps >= 1.0]
    if not big or big[-1].accuracy <= LARGE_EPS_ACCURACY:
        return []
    return [make_flag(large_eps_not_zero, MASKING,
                      f"accuracy does not fall to about 0 at a very large eps: {big[-1].name} gives "
                      f"{big[-1].accuracy:.3f} at L-inf eps {big[-1].eps:g} (any image can be reached there; "
                      f"expected <= {LARGE_EPS_ACCURACY:.2f})")]


def not_monotone(e: Evidence) -> list[Flag]:
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
    return [make_flag(not_monotone, MASKING,
                      f"accuracy is not monotone in eps: {lo.accuracy:.3f} at eps {lo.eps:g} but {hi.accuracy:.3f} "
                      f"at eps {hi.eps:g} ({rise:.1%} higher at the larger eps)")]


def gradient_health(e: Evidence) -> list[Flag]:
    flags: list[Flag] = []
    if not e.probes:
        return flags
    n = int(e.probes.get("n", 0))
    for loss in ("ce", "margin"):
        bad = int(e.probes.get(f"nonfinite_gradient_{loss}", 0))
        if bad:
            flags.append(make_flag(gradient_health, MASKING,
                                   f"non-finite input gradients ({loss} loss) on {bad} of {n} clean samples"))
        zero = int(e.probes.get(f"zero_gradient_{loss}", 0))
        if zero > threshold(n):
            hint = (" (the softmax saturates; the margin-loss attacks do not depend on it)"
                    if loss == "ce" and int(e.probes.get("zero_gradient_margin", 0)) <= threshold(n) else
                    " (a non-differentiable or flat forward: declare differentiable_forward for BPDA)")
            flags.append(make_flag(gradient_health, MASKING,
                                   f"zero input gradients ({loss} loss) on {zero} of {n} clean samples{hint}"))
    return flags


def undeclared_randomness(e: Evidence) -> list[Flag]:
    change = float(e.probes.get("logit_change_between_forwards", 0.0)) if e.probes else 0.0
    if e.model is None or e.stochastic or change <= RANDOMNESS_TOLERANCE:
        return []
    return [make_flag(undeclared_randomness, MASKING,
                      f"randomness observed where none was declared: two forwards of the same inputs differ by "
                      f"{change:.2g} (relative max logit change); declare stochastic = True so attacks use EOT")]


def detector_without_margin(e: Evidence) -> list[Flag]:
    if not e.has_detector or detector_aware(e.model):
        return []
    return [make_flag(detector_without_margin, MASKING,
                      "the defense has a detector but no detect_margin: attacks cannot optimise against it jointly, "
                      "so the reported robustness to detector-aware attacks is an upper bound")]
