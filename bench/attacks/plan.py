"""The plan: which attacks run against a model, at which eps, on how many points.

The battery is every registered attack (``registry.attack_specs``, in
order) configured by the profile, the defense's own ``extra_attacks()``, and
the eps sweep of ``pgd-linf``. The adaptive parts live inside the attacks
(BPDA through ``differentiable_forward``, EOT for stochastic models, the
detector-aware objective; see ``surface.py``); the plan only chooses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ..contract import DefendedModel
from ..data import ThreatModel
from .base import Attack
from .factories import PlanContext
from .gradient import PGD
from .profiles import BatteryProfile, get_profile
from .registry import PGD_LINF, PGD_LINF_MARGIN, WHITE_BOX, attack_specs

HEADLINE, SWEEP = "headline", "sweep"
SWEEP_LOSSES = ((PGD_LINF, "ce"), (PGD_LINF_MARGIN, "margin"))


@dataclass
class PlannedAttack:
    """One attack at one eps, on at most ``n`` points (None: all), under a name (``label``)."""

    attack: Attack
    eps: float
    n: Optional[int] = None
    role: str = HEADLINE
    label: Optional[str] = None
    kind: str = WHITE_BOX
    cascade: bool = False  # run only on the points still robust after the earlier attacks at this budget

    @property
    def name(self) -> str:
        return self.label or self.attack.name


def sweep_label(attack_name: str, eps: float) -> str:
    return f"{attack_name}@{eps:g}"


def _extras(model: DefendedModel, eps: float, threat: ThreatModel) -> list[PlannedAttack]:
    """The defense's own attacks (an Attack at the threat model's budget, or a ready PlannedAttack)."""
    planned = []
    for extra in model.extra_attacks():
        if isinstance(extra, PlannedAttack):
            planned.append(extra)
        else:
            extra_eps = eps if extra.norm == "linf" else threat.eps(extra.norm)
            planned.append(PlannedAttack(extra, extra_eps, kind=getattr(extra, "kind", WHITE_BOX)))
    return planned


def plan_battery(
    model: DefendedModel,
    threat: ThreatModel,
    eps_linf: Optional[float] = None,
    profile: str = "quick",
    *,
    transfer_source: Optional[tuple[DefendedModel, str]] = None,
    seed: int = 0,
) -> list[PlannedAttack]:
    """The attacks run for this model, the defense's own extras, and the eps sweep."""
    p = get_profile(profile)
    eps = threat.linf if eps_linf is None else float(eps_linf)
    context = PlanContext(seed=seed, transfer_source=transfer_source, model=model)
    plan = []
    for spec in attack_specs():
        attack = spec.build(p, context)
        if attack is None:
            continue
        label = spec.name if spec.name != attack.name else None
        plan.append(PlannedAttack(attack, eps if spec.norm == "linf" else threat.eps(spec.norm),
                                  n=p.subsets.get(spec.name), label=label, kind=spec.kind, cascade=spec.cascade))
    plan += _extras(model, eps, threat)
    return plan + sweep_plan(p, eps)


def sweep_plan(p: BatteryProfile, eps: float) -> list[PlannedAttack]:
    """PGD with each loss the battery runs (cross-entropy and margin) at every sweep eps but the headline's.

    The sweep reports the per-sample worst case over them: cross-entropy alone makes a saturated
    softmax (defensive distillation) look robust up to large eps.
    """
    planned = []
    for e in sorted({round(f * eps, 6) for f in p.sweep_factors} | {1.0}):
        if abs(e - eps) < 1e-9:
            continue  # the headline outcomes serve this point
        for name, loss in SWEEP_LOSSES:
            attack = PGD(norm="linf", steps=p.pgd_steps, restarts=p.pgd_restarts, loss=loss, eot=p.eot)
            planned.append(PlannedAttack(attack, e, n=p.subsets.get("sweep"), role=SWEEP, label=sweep_label(name, e)))
    return planned


def select_attacks(plan: list[PlannedAttack], names: Optional[Sequence[str]]) -> list[PlannedAttack]:
    """The planned attacks named in ``names`` (the sweep's PGD at other eps goes with pgd-linf and
    pgd-linf-margin); the whole plan when None."""
    if names is None:
        return plan
    known = sorted({pl.name for pl in plan if pl.role != SWEEP})
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"unknown attack(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"valid choices: {', '.join(known)}")
    return [pl for pl in plan if (pl.name in names if pl.role != SWEEP else pl.attack.name in names)]
