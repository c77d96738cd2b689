"""The plan: which attacks run against a model, at which eps, on how many points.

The battery is every registered attack (``registry.attack_specs``, in
order) configured by the profile, the defense's own ``extra_attacks()``, and
the eps sweep of ``pgd-linf``. The adaptive parts live inside the attacks
(BPDA through ``differentiable_forward``, EOT for stochastic models, the
detector-aware objective; see ``surface.py``); the plan only chooses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Optional

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
    only: Optional[Collection[str]] = None,
) -> list[PlannedAttack]:
    """The attacks run for this model, the defense's own extras, and the eps sweep.

    ``only`` (registry names, plus ``"extras"`` for the defense's own attacks
    and ``"sweep"`` for the pgd-linf eps sweep) keeps just those; None keeps all.
    """
    p = get_profile(profile)
    eps = threat.linf if eps_linf is None else float(eps_linf)
    context = PlanContext(seed=seed, transfer_source=transfer_source, model=model)
    plan = []
    for spec in attack_specs():
        if only is not None and spec.name not in only:
            continue
        attack = spec.build(p, context)
        if attack is None:
            continue
        label = spec.name if spec.name != attack.name else None
        plan.append(PlannedAttack(attack, eps if spec.norm == "linf" else threat.eps(spec.norm),
                                  n=p.subsets.get(spec.name), label=label, kind=spec.kind, cascade=spec.cascade))
    if only is None or "extras" in only:
        plan += _extras(model, eps, threat)
    if only is not None and "sweep" not in only:
        return plan
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


