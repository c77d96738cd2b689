"""The battery's built-in attacks, configured from a profile: one factory per registered name.

``bench.attacks.registry`` names each factory; ``plan.plan_battery`` calls
them. A factory returns None when its attack does not apply (no transfer
source was prepared).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..contract import DefendedModel
from .apgd import APGD, APGDTargeted
from .autoattack_adapter import AutoAttack, Square
from .base import Attack
from .cw import CarliniWagnerL2
from .fmn import FMN
from .gradient import FGSM, PGD
from .profiles import BatteryProfile
from .quantized import RelaxedPGD, applies_to
from .transfer import Transfer


@dataclass(frozen=True)
class PlanContext:
    """What factories need besides the profile: the run's seed and the prepared transfer source."""

    seed: int = 0
    transfer_source: Optional[tuple[DefendedModel, str]] = None  # (model, id), prepared by the pipeline
    model: Optional[DefendedModel] = None  # the attacked model: adaptive attacks apply only to what it declares


def _pgd(p: BatteryProfile, norm: str, loss: str = "ce", steps: Optional[int] = None,
         restarts: Optional[int] = None) -> PGD:
    return PGD(norm=norm, steps=steps or p.pgd_steps, restarts=restarts or p.pgd_restarts, loss=loss, eot=p.eot)


def fgsm(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return FGSM(eot=p.eot)


def pgd_linf(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return _pgd(p, "linf")


def pgd_linf_margin(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return _pgd(p, "linf", "margin")


def pgd_l2(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return _pgd(p, "l2")


def pgd_linf_strong(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return _pgd(p, "linf", steps=p.strong_steps, restarts=p.strong_restarts)


def transfer(p: BatteryProfile, ctx: PlanContext) -> Optional[Attack]:
    if ctx.transfer_source is None:
        return None
    source, source_id = ctx.transfer_source
    return Transfer(source, source_id=source_id, steps=p.transfer_steps)


def square(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return Square(queries=p.square_queries, seed=ctx.seed)


def autoattack(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return AutoAttack(seed=ctx.seed)


def cw_l2(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return CarliniWagnerL2(search_steps=p.cw_search_steps, steps=p.cw_steps, lr=p.cw_lr, eot=p.eot)


def fmn_l2(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return FMN(norm="l2", steps=p.fmn_steps, eot=p.eot)


def fmn_linf(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return FMN(norm="linf", steps=p.fmn_steps, eot=p.eot)


def apgd_ce(p: BatteryProfile, ctx: PlanContext) -> Attack:
    return APGD(loss="ce", n_iter=p.apgd_iter, n_restarts=p.apgd_ce_restarts, seed=ctx.seed, eot=p.eot)


def apgd_t(p: BatteryProfile, ctx: PlanContext) -> Optional[Attack]:
    classes = ctx.model.num_classes if ctx.model is not None else 10
    if classes < 4:
        return None  # the targeted DLR loss needs at least 4 classes; APGD-CE still runs
    return APGDTargeted(n_iter=p.apgd_iter, n_restarts=p.apgd_restarts, n_target_classes=min(p.apgd_targets, classes - 1),
                        seed=ctx.seed, eot=p.eot)


def pgd_linf_relaxed(p: BatteryProfile, ctx: PlanContext) -> Optional[Attack]:
    if ctx.model is None or not applies_to(ctx.model):
        return None  # only for deterministic models that declare input_transform()
    return RelaxedPGD(steps=p.relaxed_steps, restarts=p.relaxed_restarts, evade_steps=p.relaxed_evade_steps)
