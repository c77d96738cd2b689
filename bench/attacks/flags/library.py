"""The libraries' own checks (AutoAttack's), explained in bench's words and given a severity.

pyautoattack's messages end by pointing to a ``flags_doc.md`` that bench
does not ship; each known message is replaced by what it means here and
what to do. Square beating the white-box attacks by less than the 95%
interval of an accuracy on that many points is noise (a note).
"""
from __future__ import annotations

import re

from ...schema import Flag
from .evidence import MASKING, NOTE, Evidence, beyond_noise, make_flag

EXPLANATIONS = (
    ("randomized defense", MASKING,
     "AutoAttack saw the outputs change between calls: the defense is random but runs as deterministic. Declare "
     "stochastic = True so every attack averages gradients over draws (EOT) and AutoAttack runs its 'rand' version."),
    ("probability distribution", MASKING,
     "the forward seems to return probabilities, not logits: margin and DLR losses then see compressed scores. "
     "Return logits from forward."),
    ("zero gradient", MASKING,
     "some points have exactly zero input gradient: gradient attacks cannot move them. Declare a differentiable "
     "surface (differentiable_forward) for non-differentiable parts, and trust the black-box attacks' figures."),
    ("dynamic defense", MASKING,
     "the forward changes between calls (state or adaptation at test time): AutoAttack's evaluation may be "
     "insufficient; declare what changes and attack it adaptively."),
    ("target classes", NOTE, "AutoAttack ran fewer target classes than configured (too few classes)."),
)


def _square_flag(name: str, message: str, n: int, accuracy: float) -> Flag:
    found = re.search(r"decreased the robust accuracy of ([0-9.]+)%", message)
    drop = float(found.group(1)) / 100 if found else 0.0
    severity = MASKING if beyond_noise(drop, accuracy, n) else NOTE
    within = "beyond" if severity == MASKING else "within"
    return make_flag(library_checks, severity,
                     f"{name} check: its black-box Square attack broke {drop:.1%} of the {n} points that its white-box "
                     f"attacks (APGD, FAB) had left robust ({within} the 95% interval at this n): if beyond noise, the "
                     "white-box gradients are misleading; run more Square queries or an adaptive attack")


def library_checks(e: Evidence) -> list[Flag]:
    """One flag per kind of library message (batches repeat them with other counts)."""
    flags, seen = [], set()
    for name, outcome in e.outcomes.items():
        for message in outcome.warnings:
            template = re.sub(r"\d+(\.\d+)?", "#", message)
            if template in seen:
                continue
            seen.add(template)
            if "Square Attack has decreased" in message:
                flags.append(_square_flag(name, message, outcome.n, outcome.accuracy))
                continue
            known = next(((sev, text) for key, sev, text in EXPLANATIONS if key in message), None)
            severity, text = known if known is not None else (MASKING, message.split(" See ")[0])
            flags.append(make_flag(library_checks, severity, f"{name} check: {text} (its message: "
                                   f"{message.split(' See ')[0]})"))
    return flags
