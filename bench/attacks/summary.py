"""What the battery adds to summary.json and per_sample.csv, from the plan and its outcomes alone.

Every accuracy carries its 95% Clopper-Pearson interval at the number of
points it was measured on (``bench.stats``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

import torch

from ..contract import DefendedModel
from ..perf import fast_layout
from ..schema import AttackEntry, Flag, SweepEntry
from ..stats import clopper_pearson
from .aggregate import covered_by_all, detector_rate, index_positions, positions, worst_case
from .base import AttackOutcome
from .execute import subset_positions
from .flags import masking_flags
from .plan import HEADLINE, SWEEP, PlannedAttack
from .probes import probe_model
from .profiles import get_profile
from .registry import WHITE_BOX
from .surface import adaptive_techniques

PROBE_POINTS = 200  # clean points the gradient and randomness probes look at
WORST_CASE_SWEEP = "worst-case"

WORST_CASE_RULE = ("robust = clean-correct and unbroken by every headline-norm attack at the headline eps "
                   "that ran on the sample; attacks on a subset only count on their subset; cascade attacks "
                   "run on every point the earlier attacks at their budget left robust")
DETECTOR_HANDLING = ("own attacks (pgd, fgsm, cw) optimise against detect_margin jointly; library attacks "
                     "(AutoAttack, APGD, Square, FMN) attack the classifier and every example is re-judged: "
                     "only misclassified AND undetected counts as a success")


def interval(mask: torch.Tensor) -> Optional[list[float]]:
    """The 95% interval of the fraction of True in ``mask`` (None for no points)."""
    return list(clopper_pearson(int(mask.sum()), len(mask))) if len(mask) else None


@dataclass
class BatteryReport:
    """The battery's part of summary.json, and per-sample columns for per_sample.csv."""

    robust: torch.Tensor
    robust_accuracy: float
    robust_interval: Optional[list[float]]
    attacks: dict[str, AttackEntry]
    sweeps: dict[str, SweepEntry]
    flags: list[Flag]
    battery: dict[str, Any]
    robust_by_norm: dict[str, dict[str, Any]]
    detector: Optional[dict[str, Any]]
    columns: dict[str, list[Any]]


def attack_entry(outcome: AttackOutcome, kind: str, clean_mask: torch.Tensor, cascade: bool) -> AttackEntry:
    correct = outcome.correct.cpu()
    entry = AttackEntry(norm=outcome.norm, eps=outcome.eps, accuracy=outcome.accuracy, n=outcome.n,
                        interval=interval(correct), attempted=outcome.n, broken=int((clean_mask & ~correct).sum()),
                        cascade=True if cascade else None, kind=kind, seconds=round(outcome.seconds, 3),
                        params=outcome.params)
    if outcome.norms is not None:
        found = torch.isfinite(outcome.norms[clean_mask]).float().mean()
        entry.median_norm = outcome.median_norm(clean_mask)
        entry.median_norm_among = "clean-correct samples; no adversarial example found counts as infinite"
        entry.mean_successful_norm = outcome.mean_successful_norm(clean_mask)
        entry.success_rate_unbounded = float(found) if int(clean_mask.sum()) else None
    return entry


def robust_by_norm(clean_correct: torch.Tensor, headline: dict[str, AttackOutcome], indices: Sequence[int],
                   linf_robust: torch.Tensor, linf: dict[str, AttackOutcome]) -> dict[str, dict[str, Any]]:
    """The worst case per threat model, and the L-inf worst case on the points every L-inf attack saw."""
    by_norm: dict[str, dict[str, Any]] = {}
    for norm in sorted({o.norm for o in headline.values()}):
        members = {k: o for k, o in headline.items() if o.norm == norm}
        rob = worst_case(clean_correct, members, indices)
        by_norm[norm] = {"eps": next(iter(members.values())).eps, "accuracy": float(rob.float().mean()),
                         "interval": interval(rob), "attacks": sorted(members)}
    covered = covered_by_all(linf, indices, len(clean_correct))
    if int(covered.sum()):
        by_norm.setdefault("linf", {})["accuracy_on_common_subset"] = float(linf_robust[covered].float().mean())
        by_norm["linf"]["common_subset_n"] = int(covered.sum())
    return by_norm


def worst_case_sweep(plan: list[PlannedAttack], outcomes: dict[str, AttackOutcome], headline: dict[str, AttackOutcome],
                     clean_correct: torch.Tensor, indices: Sequence[int]) -> list[AttackOutcome]:
    """Per eps, the per-sample worst case over the sweep's losses on the sweep's points (headline eps included)."""
    swept = [(pl, outcomes[pl.name]) for pl in plan if pl.role == SWEEP and pl.name in outcomes]
    if not swept:
        return []
    where, total = index_positions(indices), len(indices)
    mine = positions(swept[0][1], where, total)
    names = sorted({o.name for _, o in swept})
    by_eps: dict[float, list[AttackOutcome]] = {}
    for _, o in swept:
        by_eps.setdefault(o.eps, []).append(o)
    headline_eps = next(iter({o.eps for o in headline.values() if o.name in names}), None)
    if headline_eps is not None:
        by_eps[headline_eps] = [o for n, o in headline.items() if n in names and o.eps == headline_eps]
    points = []
    for eps in sorted(by_eps):
        robust = worst_case(clean_correct, {f"{o.name}@{i}": o for i, o in enumerate(by_eps[eps])}, indices)[mine]
        points.append(AttackOutcome(name=f"worst case of {', '.join(names)}", norm="linf", eps=eps, correct=robust,
                                    seconds=0.0, indices=[indices[q] for q in mine.tolist()]))
    return points


def per_sample_columns(headline: dict[str, AttackOutcome], indices: Sequence[int]) -> dict[str, list[Any]]:
    """``<attack>_correct`` (and ``<attack>_norm``) per evaluated sample; None where the attack did not run."""
    where, total = index_positions(indices), len(indices)
    columns: dict[str, list[Any]] = {}
    for name, o in headline.items():
        col: list[Any] = [None] * total
        norms_col: list[Any] = [None] * total
        for k, q in enumerate(positions(o, where, total).tolist()):
            col[q] = bool(o.correct[k])
            if o.norms is not None:
                norms_col[q] = float(o.norms[k])
        columns[f"{name}_correct"] = col
        if o.norms is not None:
            columns[f"{name}_norm"] = norms_col
    return columns


def _sweep_entry(sweep: list[AttackOutcome], plan: list[PlannedAttack]) -> SweepEntry:
    swept = sorted({pl.attack.name for pl in plan if pl.role == SWEEP})
    return SweepEntry(norm="linf", eps=[o.eps for o in sweep], accuracy=[o.accuracy for o in sweep], n=sweep[0].n,
                      params=next(pl.attack.params() for pl in plan if pl.role == SWEEP),
                      interval=[interval(o.correct) for o in sweep], attacks=swept)


def summarize_battery(
    model: DefendedModel,
    x: torch.Tensor,
    y: torch.Tensor,
    clean_correct: torch.Tensor,
    plan: list[PlannedAttack],
    outcomes: dict[str, AttackOutcome],
    *,
    indices: Sequence[int],
    eps: float,
    profile: str,
    seed: int,
    batch_size: int = 500,
) -> BatteryReport:
    """Worst case, per-attack entries, the eps sweep, flags and the battery's settings."""
    p = get_profile(profile)
    clean_correct = clean_correct.cpu().bool()
    total, where = len(clean_correct), index_positions(indices)
    headline = {pl.name: outcomes[pl.name] for pl in plan if pl.role == HEADLINE and pl.name in outcomes}
    kinds = {pl.name: pl.kind for pl in plan}
    cascade = frozenset(pl.name for pl in plan if pl.cascade)
    linf = {k: o for k, o in headline.items() if o.norm == "linf" and abs(o.eps - eps) < 1e-9}
    robust = worst_case(clean_correct, linf, indices)
    attacks = {name: attack_entry(o, kinds.get(name, WHITE_BOX), clean_correct[positions(o, where, total)],
                                  name in cascade) for name, o in headline.items()}
    sweep = worst_case_sweep(plan, outcomes, headline, clean_correct, indices)
    probe_pos = torch.as_tensor(subset_positions(total, min(total, PROBE_POINTS), seed), dtype=torch.long)
    device = next(model.parameters()).device
    probes = probe_model(model, fast_layout(x[probe_pos].to(device)), y[probe_pos].to(device), eot=p.eot)
    flags = masking_flags(clean_correct, headline, indices=indices, kinds=kinds, sweep=sweep, probes=probes,
                          model=model, cascade=cascade)
    fpr = detector_rate(model, x, batch_size)
    battery = {
        "profile": asdict(p),
        "adaptive": adaptive_techniques(model, p.eot),
        "cascade": [pl.name for pl in plan if pl.cascade],
        "subsets": {name: {"n": o.n, "of": total} for name, o in headline.items() if o.n < total},
        "subset_rule": "a seeded random subset of the evaluated points (nested: smaller subsets lie inside larger ones)",
        "worst_case_rule": WORST_CASE_RULE,
        "probes": probes,
        "detector_handling": DETECTOR_HANDLING,
    }
    detector = None
    if fpr is not None:
        detector = {"false_positive_rate": fpr, "n": total,
                    "interval": list(clopper_pearson(round(fpr * total), total))}
    return BatteryReport(
        robust=robust,
        robust_accuracy=float(robust.float().mean()) if total else float("nan"),
        robust_interval=interval(robust),
        attacks=attacks,
        sweeps={WORST_CASE_SWEEP: _sweep_entry(sweep, plan)} if sweep else {},
        flags=flags,
        battery=battery,
        robust_by_norm=robust_by_norm(clean_correct, headline, indices, robust, linf),
        detector=detector,
        columns=per_sample_columns(headline, indices),
    )
