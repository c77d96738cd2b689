"""Checks that compare attacks with each other (Carlini et al. 2019: white-box must beat black-box and
transfer, iterative must beat single-step, more steps must not help, losses must not saturate)."""
from __future__ import annotations

import torch

from ...schema import Flag
from ..aggregate import positions
from ..registry import BLACK_BOX, FGSM, PGD_LINF, PGD_LINF_MARGIN, PGD_LINF_STRONG, TRANSFER, WHITE_BOX
from .evidence import (
    DISAGREEMENT_GAP, LARGE_EPS_ACCURACY, MASKING, NOTE, STEPS_GAP, STOCHASTIC_FRACTION, Evidence, beyond_noise,
    make_flag, threshold,
)


def single_step_beats_iterative(e: Evidence) -> list[Flag]:
    if FGSM not in e.outcomes or PGD_LINF not in e.outcomes:
        return []
    (c1, fg), (c2, pg) = e.expand(FGSM), e.expand(PGD_LINF)
    only_fgsm = int((c1 & c2 & ~fg & pg & e.clean_correct).sum())
    if only_fgsm <= threshold(int((c1 & c2).sum())):
        return []
    return [make_flag(single_step_beats_iterative, MASKING,
                      f"single-step beats iterative: fgsm breaks {only_fgsm} samples that pgd-linf does not "
                      "(gradient masking or a non-converged attack)")]


def _white_box_survivors(e: Evidence, norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    covered = torch.zeros(e.total, dtype=torch.bool)
    survived = torch.ones(e.total, dtype=torch.bool)
    for other, o in e.outcomes.items():
        if e.kinds.get(other, WHITE_BOX) == WHITE_BOX and o.norm == norm:
            c, ok = e.expand(other)
            covered |= c
            survived &= ok
    return covered, survived


def black_box_beats_white_box(e: Evidence) -> list[Flag]:
    flags = []
    for name, outcome in e.outcomes.items():
        kind = e.kinds.get(name, WHITE_BOX)
        if kind not in (BLACK_BOX, TRANSFER):
            continue
        covered, correct = e.expand(name)
        white_covered, white_survived = _white_box_survivors(e, outcome.norm)
        compared = covered & white_covered & e.clean_correct
        beaten = compared & ~correct & white_survived
        count, n = int(beaten.sum()), int(compared.sum())
        needed = threshold(n)
        if e.stochastic:  # one draw per verdict: allow for lucky draws
            needed = max(needed, int(STOCHASTIC_FRACTION * n))
        if count <= needed:
            continue
        picked = beaten.nonzero().flatten()[:5].tolist()
        examples = ", ".join(str(e.indices[p] if e.indices is not None else p) for p in picked)
        white = float(white_survived[compared].float().mean()) if n else 0.0
        severity = MASKING if beyond_noise(count / max(n, 1), white, n) else NOTE
        flags.append(make_flag(black_box_beats_white_box, severity,
                               f"{kind} attack {name} breaks {count} of {n} samples that every white-box "
                               f"{outcome.norm} attack failed on (e.g. samples {examples}): white-box gradients are "
                               "misleading (gradient masking) or the white-box attacks are too weak"))
    return flags


def not_converged(e: Evidence) -> list[Flag]:
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
    severity = MASKING if beyond_noise(base - strong, strong, len(pos)) else NOTE
    return [make_flag(not_converged, severity,
                      f"not converged: pgd-linf with {p.get('steps')} steps x {p.get('restarts')} restarts gives "
                      f"{strong:.3f} vs {base:.3f} with the standard setting on the same {len(pos)} samples "
                      f"(more than {STEPS_GAP:.0%} lower)")]


def ce_weaker_than_margin(e: Evidence) -> list[Flag]:
    if PGD_LINF not in e.outcomes or PGD_LINF_MARGIN not in e.outcomes:
        return []
    ce, margin = e.outcomes[PGD_LINF].accuracy, e.outcomes[PGD_LINF_MARGIN].accuracy
    if ce - margin <= STEPS_GAP:
        return []
    severity = MASKING if beyond_noise(ce - margin, margin, e.outcomes[PGD_LINF_MARGIN].n) else NOTE
    return [make_flag(ce_weaker_than_margin, severity,
                      f"cross-entropy PGD is weaker than margin-loss PGD ({ce:.3f} vs {margin:.3f}): the softmax "
                      "saturates or CE gradients vanish (as in defensive distillation); trust the margin-loss figure")]


def unbounded_attack_fails(e: Evidence) -> list[Flag]:
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
        if failed > max(threshold(int(mask.sum())), LARGE_EPS_ACCURACY * int(mask.sum())):
            flags.append(make_flag(unbounded_attack_fails, MASKING,
                                   f"unbounded attack {name} found no adversarial example at any size for {failed} "
                                   f"of {int(mask.sum())} clean-correct samples (should be about 0)"))
    return flags


def white_box_disagreement(e: Evidence) -> list[Flag]:
    """Two white-box attacks at one budget that disagree strongly: the weaker one failed to converge.

    The worst case already takes the stronger, so this is a note; attacks of the cascade are left
    out (they only see points the earlier ones failed on).
    """
    flags = []
    names = [n for n, o in e.outcomes.items() if e.kinds.get(n, WHITE_BOX) == WHITE_BOX and n not in e.cascade]
    for norm in sorted({e.outcomes[n].norm for n in names}):
        worst = None
        members = [n for n in names if e.outcomes[n].norm == norm]
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if abs(e.outcomes[a].eps - e.outcomes[b].eps) > 1e-9:
                    continue
                (ca, ra), (cb, rb) = e.expand(a), e.expand(b)
                common = ca & cb & e.clean_correct
                n = int(common.sum())
                if n < 2:
                    continue
                acc_a, acc_b = float(ra[common].float().mean()), float(rb[common].float().mean())
                gap = abs(acc_a - acc_b)
                if gap > DISAGREEMENT_GAP and (worst is None or gap > worst[0]):
                    worst = (gap, (a, acc_a), (b, acc_b), n, e.outcomes[a].eps)
        if worst is not None:
            gap, (a, acc_a), (b, acc_b), n, eps = worst
            weak, strong = ((a, acc_a), (b, acc_b)) if acc_a > acc_b else ((b, acc_b), (a, acc_a))
            flags.append(make_flag(white_box_disagreement, NOTE,
                                   f"white-box attacks disagree at {norm} eps {eps:g}: {weak[0]} leaves {weak[1]:.3f} "
                                   f"but {strong[0]} {strong[1]:.3f} of the same {n} clean-correct samples robust; "
                                   f"{weak[0]} did not converge here (the worst case uses the stronger attack)"))
    return flags
