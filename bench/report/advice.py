"""What each evaluation flag means for the reader and what to do about it.

The battery's checks (``bench.attacks.flags``, after Carlini et al. 2019,
"On Evaluating Adversarial Robustness", arXiv 1902.06705, and Athalye,
Carlini & Wagner, ICML 2018, arXiv 1802.00420) write a sentence with its
evidence; the reporter matches the sentence's opening words and adds the
explanation and the remedy. A flag no rule knows gets a general remedy.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Advice:
    title: str
    meaning: str
    action: str


_DECLARE = "declare the defense's attack surface (see CONTRIBUTING.md): "
RULES: tuple[tuple[str, Advice], ...] = (
    ("single-step beats iterative", Advice(
        "gradient masking: one step beats many",
        "FGSM breaks points iterative PGD does not, so PGD's gradients lead it astray (masked or noisy gradients).",
        _DECLARE + "differentiable_forward for non-differentiable parts (BPDA), stochastic = True for randomness "
        "(EOT); then rerun. The worst case already counts FGSM's successes.")),
    ("black-box attack", Advice(
        "gradient masking: a black-box attack beats white-box ones",
        "A query-only attack succeeds where every gradient attack failed: white-box gradients are misleading.",
        _DECLARE + "differentiable_forward (BPDA) or stochastic = True (EOT); trust the worst case, which counts the "
        "black-box successes, and rerun with --profile full for more queries.")),
    ("transfer attack", Advice(
        "gradient masking: transferred examples beat white-box ones",
        "Examples crafted on an independent plain model fool this one where its own gradients failed.",
        _DECLARE + "differentiable_forward (BPDA); the worst case already counts the transfer successes.")),
    ("not converged", Advice(
        "the attack had not converged",
        "PGD with more steps and restarts finds noticeably more adversarial examples than the standard setting.",
        "rerun with --profile full (more steps and restarts); the worst case already includes the stronger attack.")),
    ("cross-entropy PGD is weaker than margin-loss PGD", Advice(
        "saturated softmax",
        "Cross-entropy gradients vanish (as in defensive distillation); the margin loss still finds examples.",
        "read the margin-loss figure (pgd-linf-margin), which the worst case already uses; nothing to rerun.")),
    ("unbounded attack", Advice(
        "an unbounded attack failed",
        "A minimum-norm attack found no adversarial example at any size for some points, which only masked or "
        "clipped gradients explain.",
        _DECLARE + "differentiable_forward (BPDA); check for clamping or rounding inside the forward.")),
    ("accuracy does not fall to about 0", Advice(
        "accuracy does not vanish at a huge eps",
        "At L-inf eps 1 any image is reachable, so accuracy should be about 0; gradients are not guiding the attack.",
        _DECLARE + "differentiable_forward (BPDA) or stochastic = True (EOT); do not trust the robust accuracy until "
        "this flag is gone.")),
    ("accuracy is not monotone in eps", Advice(
        "accuracy rises with eps",
        "A larger budget can only help an attacker; a rise means the attack is not finding the optimum.",
        "rerun with --profile full (more steps and restarts); check for masked gradients as above.")),
    ("non-finite input gradients", Advice(
        "non-finite gradients",
        "Some input gradients are NaN or infinite, so gradient attacks cannot use them.",
        "fix the numerics (log of 0, division by 0) or declare differentiable_forward with a finite surrogate.")),
    ("zero input gradients", Advice(
        "zero gradients",
        "The loss is flat at some clean points: a non-differentiable step or a saturated output hides the gradient.",
        _DECLARE + "differentiable_forward (BPDA) for non-differentiable parts; a saturated softmax is handled by "
        "the margin-loss attacks.")),
    ("randomness observed where none was declared", Advice(
        "undeclared randomness",
        "Two forwards of the same input differ, but the model says it is deterministic, so attacks used no EOT.",
        "set stochastic = True on the model so attacks average gradients over draws (EOT), then rerun.")),
    ("the defense has a detector but no detect_margin", Advice(
        "detector without a margin",
        "Attacks cannot optimise against the detector jointly, so detector-aware robustness is an upper bound.",
        "implement detect_margin (a differentiable score > 0 exactly where detect flags), then rerun.")),
    ("white-box attacks disagree", Advice(
        "white-box attacks disagree at the same budget",
        "Two gradient attacks at the same eps leave very different fractions of the same points robust: the weaker one "
        "did not converge (often cross-entropy PGD against a saturated softmax, or a too-small step).",
        "read the robust figure from the stronger attack (the worst case already does); rerun with --profile full; "
        "if it is the L2 column on a subset-only strong attack, treat that column as an upper bound.")),
    ("reduced battery", Advice(
        "a reduced battery",
        "Only the attacks chosen with --attacks ran, so the robust figure is an upper bound of the whole battery's.",
        "rerun without --attacks before comparing with other rows (the leaderboard ranks reduced runs apart).")),
    ("autoattack check", Advice(
        "AutoAttack's own reliability check",
        "AutoAttack reports that its components disagree (e.g. Square lowered accuracy after the gradient attacks), "
        "a sign of gradient masking or of too small a budget.",
        "rerun with --profile full (Square with more queries, all points) and consider an adaptive attack.")),
)
GENERAL = Advice("evaluation warning", "The battery's checks raised this warning about the evaluation.",
                 "read the evidence in the flag; rerun with --profile full; see CONTRIBUTING.md on declaring the "
                 "attack surface.")


def advise(flag: str) -> Advice:
    """The advice for one flag sentence (by its opening words; black-box/transfer checks name their kind first)."""
    text = flag.strip()
    for opening, advice in RULES:
        if text.startswith(opening):
            return advice
    return GENERAL
