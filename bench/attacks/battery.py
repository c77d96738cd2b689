"""The battery: which attacks run against a model, batched, resumable, worst-cased.

The attacks are chosen from what the model declares (the adaptive parts are
inside the attacks: BPDA through ``differentiable_forward``, EOT for
stochastic models, the detector-aware objective; see ``surface.py``).
Robust accuracy is the per-sample worst case: a sample counts as robust only
if it is clean-correct and survives every attack of the headline norm at the
headline eps that covered it.

Profiles: ``quick`` (the default) runs the whole battery on the embedded
data in minutes on 2 CPU cores by running the expensive attacks (AutoAttack,
Square, C&W, FMN, the convergence check and the eps sweep) on a seeded
subset of the points; every attack entry in the summary states its ``n``.
``full`` runs every attack on every point with the papers' settings.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from ..contract import DefendedModel
from ..data import ThreatModel
from ..perf import fast_layout
from ..progress import progress
from ..records import fingerprint, load_outcome, save_outcome
from ..results import atomic_write_json, read_json
from .autoattack_adapter import AutoAttack, Square
from .base import Attack, AttackOutcome
from .cw import CarliniWagnerL2
from .flags import BLACK_BOX, ENSEMBLE, TRANSFER, WHITE_BOX, masking_flags as _masking_flags, positions, probe_model
from .fmn import FMN
from .gradient import FGSM, PGD
from .surface import adaptive_techniques
from .transfer import Transfer


@dataclass(frozen=True)
class BatteryProfile:
    """How hard and on how many points each attack runs."""

    name: str
    description: str
    pgd_steps: int
    pgd_restarts: int
    strong_steps: int  # the convergence check: more steps and restarts than pgd-linf
    strong_restarts: int
    eot: int
    cw_search_steps: int
    cw_steps: int
    cw_lr: float
    fmn_steps: int
    square_queries: int
    transfer_steps: int
    sweep_factors: tuple[float, ...]  # multiples of the headline eps; L-inf eps 1.0 is always added
    subsets: dict[str, Optional[int]] = field(default_factory=dict)  # attack -> at most this many points


PROFILES: dict[str, BatteryProfile] = {
    "quick": BatteryProfile(
        name="quick",
        description="minutes on 2 CPU cores: expensive attacks on a seeded subset, fewer iterations",
        pgd_steps=40,
        pgd_restarts=1,
        strong_steps=100,
        strong_restarts=2,
        eot=20,
        cw_search_steps=5,
        cw_steps=100,
        cw_lr=0.1,  # 100 Adam steps at the paper's 0.01 cannot move saturated MNIST pixels in tanh space
        fmn_steps=100,
        square_queries=1000,
        transfer_steps=40,
        sweep_factors=(0.0, 1 / 6, 1 / 3, 2 / 3, 1.0, 5 / 3),
        subsets={"autoattack": 100, "square": 100, "cw-l2": 100, "fmn-l2": 200, "fmn-linf": 200,
                 "pgd-linf-strong": 200, "sweep": 200},
    ),
    "full": BatteryProfile(
        name="full",
        description="paper settings on every test point (PGD 100 steps x 5 restarts, C&W 9 x 1000, Square 5000 queries)",
        pgd_steps=100,
        pgd_restarts=5,
        strong_steps=400,
        strong_restarts=10,
        eot=20,
        cw_search_steps=9,
        cw_steps=1000,
        cw_lr=0.01,
        fmn_steps=1000,
        square_queries=5000,
        transfer_steps=100,
        sweep_factors=(0.0, 1 / 6, 1 / 3, 1 / 2, 2 / 3, 1.0, 4 / 3, 5 / 3),
        subsets={"pgd-linf-strong": 1000},
    ),
}

HEADLINE, SWEEP = "headline", "sweep"


def get_profile(name: str) -> BatteryProfile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid choices: {', '.join(PROFILES)}")
    return PROFILES[name]


@dataclass
class PlannedAttack:
    """One attack at one eps, on at most ``n`` points (None: all), under a name (``label``)."""

    attack: Attack
    eps: float
    n: Optional[int] = None
    role: str = HEADLINE
    label: Optional[str] = None
    kind: str = WHITE_BOX

    @property
    def name(self) -> str:
        return self.label or self.attack.name


def sweep_label(attack_name: str, eps: float) -> str:
    return f"{attack_name}@{eps:g}"


def plan_battery(
    model: DefendedModel,
    threat: ThreatModel,
    eps_linf: Optional[float] = None,
    profile: str = "quick",
    *,
    transfer_source: Optional[tuple[DefendedModel, str]] = None,
    seed: int = 0,
) -> list[PlannedAttack]:
    """The attacks run for this model, the eps sweep, and the defense's own extras."""
    p = get_profile(profile)
    eps = threat.linf if eps_linf is None else float(eps_linf)
    l2 = threat.l2
    sub = p.subsets.get

    def pgd(norm: str, loss: str = "ce", steps: int = p.pgd_steps, restarts: int = p.pgd_restarts) -> PGD:
        return PGD(norm=norm, steps=steps, restarts=restarts, loss=loss, eot=p.eot)

    plan = [
        PlannedAttack(FGSM(eot=p.eot), eps),
        PlannedAttack(pgd("linf"), eps),
        PlannedAttack(pgd("linf", "margin"), eps),
        PlannedAttack(pgd("l2"), l2),
    ]
    if transfer_source is not None:
        source, source_id = transfer_source
        plan.append(PlannedAttack(Transfer(source, source_id=source_id, steps=p.transfer_steps), eps, kind=TRANSFER))
    plan += [
        PlannedAttack(Square(queries=p.square_queries, seed=seed), eps, n=sub("square"), kind=BLACK_BOX),
        PlannedAttack(AutoAttack(seed=seed), eps, n=sub("autoattack"), kind=ENSEMBLE),
        PlannedAttack(CarliniWagnerL2(search_steps=p.cw_search_steps, steps=p.cw_steps, lr=p.cw_lr, eot=p.eot), l2, n=sub("cw-l2")),
        PlannedAttack(FMN(norm="l2", steps=p.fmn_steps, eot=p.eot), l2, n=sub("fmn-l2")),
        PlannedAttack(FMN(norm="linf", steps=p.fmn_steps, eot=p.eot), eps, n=sub("fmn-linf")),
        PlannedAttack(pgd("linf", steps=p.strong_steps, restarts=p.strong_restarts), eps,
                      n=sub("pgd-linf-strong"), label="pgd-linf-strong"),
    ]
    for extra in model.extra_attacks():
        if isinstance(extra, PlannedAttack):
            plan.append(extra)
        else:
            extra_eps = eps if extra.norm == "linf" else threat.eps(extra.norm)
            plan.append(PlannedAttack(extra, extra_eps, kind=getattr(extra, "kind", WHITE_BOX)))
    sweep_eps = sorted({round(f * eps, 6) for f in p.sweep_factors} | {1.0})
    for e in sweep_eps:
        if abs(e - eps) < 1e-9:
            continue  # the headline pgd-linf outcome serves this point
        plan.append(PlannedAttack(pgd("linf"), e, n=sub("sweep"), role=SWEEP, label=sweep_label("pgd-linf", e)))
    return plan


def subset_positions(total: int, n: Optional[int], seed: int) -> list[int]:
    """A seeded subset of ``n`` positions out of ``total``, sorted; nested for growing ``n``."""
    if n is None or n >= total:
        return list(range(total))
    generator = torch.Generator().manual_seed(int(seed) + 7919)
    return sorted(torch.randperm(total, generator=generator)[:n].tolist())


def run_attack(
    planned: PlannedAttack,
    model: DefendedModel,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    seed: int,
    batch_size: int = 500,
    indices: Optional[Sequence[int]] = None,
    state_dir: Optional[Path] = None,
) -> AttackOutcome:
    """Run one attack over all given samples in batches, with a progress bar.

    With ``state_dir``, every finished batch is kept there, so an interrupted
    attack (AutoAttack on a full test set runs for hours) resumes at the
    first unfinished batch; batches are seeded by their first sample's index,
    so a resumed batch is the batch that would have run.
    """
    device = next(model.parameters()).device
    indices = list(range(len(x))) if indices is None else list(indices)
    attack = planned.attack
    attack.warnings = []
    correct, norms, warnings = [], [], []
    start = time.perf_counter()
    with progress(total=len(x), desc=f"{planned.name}", unit="pt") as bar:
        attack.bind(status=bar.set_postfix_str, state_dir=state_dir)
        try:
            for lo in range(0, len(x), batch_size):
                part = None if state_dir is None else Path(state_dir) / f"batch-{lo}-{min(len(x), lo + batch_size)}.json"
                if part is not None and part.exists():
                    done = read_json(part)
                    correct.append(torch.tensor(done["correct"], dtype=torch.bool))
                    if done["norms"] is not None:
                        norms.append(torch.tensor([float("inf") if v is None else v for v in done["norms"]]))
                    warnings += [w for w in done["warnings"] if w not in warnings]
                    bar.update(len(done["correct"]))
                    continue
                torch.manual_seed(seed * 1_000_003 + indices[lo])  # seeded by the batch's first sample index
                xb = fast_layout(x[lo : lo + batch_size].to(device))
                yb = y[lo : lo + batch_size].to(device)
                attack.warnings = []
                result = attack.perturb(model, xb, yb, eps=planned.eps)
                correct.append(result.correct.cpu())
                if result.norms is not None:
                    norms.append(result.norms.cpu())
                warnings += [w for w in attack.warnings if w not in warnings]
                if part is not None:
                    atomic_write_json(part, {
                        "correct": [bool(c) for c in result.correct.tolist()],
                        "norms": None if result.norms is None else [float(v) for v in result.norms.tolist()],
                        "warnings": list(attack.warnings),
                    })
                bar.update(len(xb))
        finally:
            attack.bind()
    return AttackOutcome(
        name=planned.attack.name if planned.role == SWEEP else planned.name,
        norm=attack.norm,
        eps=planned.eps,
        correct=torch.cat(correct) if correct else torch.zeros(0, dtype=torch.bool),
        seconds=time.perf_counter() - start,
        params=attack.params(),
        indices=indices,
        norms=torch.cat(norms) if norms else None,
        warnings=warnings,
    )


def run_battery(
    model: DefendedModel,
    x: torch.Tensor,
    y: torch.Tensor,
    plan: list[PlannedAttack],
    *,
    records_dir: Path,
    model_id: str,
    indices: list[int],
    seed: int,
    batch_size: int = 500,
    on_outcome: Optional[Callable[[AttackOutcome, bool], None]] = None,
) -> dict[str, AttackOutcome]:
    """Run (or reload from ``records_dir``) every planned attack; return outcomes by planned name."""
    outcomes: dict[str, AttackOutcome] = {}
    for planned in plan:
        chosen = subset_positions(len(x), planned.n, seed)
        chosen_indices = [indices[p] for p in chosen]
        fp = fingerprint(
            model=model_id, attack=repr(planned.attack), eps=planned.eps, indices=chosen_indices, seed=seed
        )
        outcome = load_outcome(records_dir, planned.name, fp)
        reused = outcome is not None
        if outcome is None:
            state_dir = Path(records_dir) / ".state" / f"{planned.name}-{fp}"
            pos = torch.as_tensor(chosen, dtype=torch.long)
            xs, ys = (x, y) if len(chosen) == len(x) else (x[pos], y[pos])
            outcome = run_attack(planned, model, xs, ys, seed=seed, batch_size=batch_size,
                                 indices=chosen_indices, state_dir=state_dir)
            save_outcome(records_dir, outcome, chosen_indices, fp, name=planned.name)
            shutil.rmtree(state_dir, ignore_errors=True)
        outcomes[planned.name] = outcome
        if on_outcome is not None:
            on_outcome(outcome, reused)
    return outcomes


def worst_case(
    clean_correct: torch.Tensor,
    outcomes: dict[str, AttackOutcome],
    indices: Optional[Sequence[int]] = None,
    norm: Optional[str] = None,
) -> torch.Tensor:
    """Per-sample robustness: clean-correct and unbroken by every given attack that covered the sample.

    ``norm`` restricts the worst case to attacks of one threat model.
    """
    robust = clean_correct.clone().cpu().bool()
    where = {int(i): p for p, i in enumerate(indices)} if indices is not None else None
    for outcome in outcomes.values():
        if norm is not None and outcome.norm != norm:
            continue
        pos = positions(outcome, where, len(robust))
        robust[pos] &= outcome.correct.cpu()
    return robust


def masking_flags(clean_correct: torch.Tensor, outcomes: dict[str, AttackOutcome], **evidence: Any) -> list[str]:
    """Evaluation warnings with their evidence (see ``flags.masking_flags``)."""
    return _masking_flags(clean_correct, outcomes, **evidence)


@torch.no_grad()
def detector_rate(model: DefendedModel, x: torch.Tensor, batch_size: int = 500) -> Optional[float]:
    """Fraction of (clean) inputs the detector flags: its false-positive rate on clean data."""
    if getattr(model, "detect", None) is None or not len(x):
        return None
    device = next(model.parameters()).device
    flagged = [model.detect(fast_layout(x[i : i + batch_size].to(device))).bool().cpu() for i in range(0, len(x), batch_size)]
    return float(torch.cat(flagged).float().mean())


@dataclass
class BatteryReport:
    """What the battery adds to summary.json, and per-sample columns for per_sample.csv."""

    robust: torch.Tensor
    robust_accuracy: float
    attacks: dict[str, dict[str, Any]]
    sweeps: dict[str, dict[str, Any]]
    flags: list[str]
    battery: dict[str, Any]
    robust_by_norm: dict[str, dict[str, Any]]
    detector: Optional[dict[str, Any]]
    columns: dict[str, list[Any]]

    def summary_fields(self) -> dict[str, Any]:
        return {
            "robust_accuracy": self.robust_accuracy,
            "robust_accuracy_by_norm": self.robust_by_norm,
            "attacks": self.attacks,
            "sweeps": self.sweeps,
            "flags": self.flags,
            "battery": self.battery,
            "detector": self.detector,
        }


def _attack_entry(outcome: AttackOutcome, kind: str, clean_mask: torch.Tensor) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "norm": outcome.norm,
        "eps": outcome.eps,
        "accuracy": outcome.accuracy,
        "n": outcome.n,
        "kind": kind,
        "seconds": round(outcome.seconds, 3),
        "params": outcome.params,
    }
    if outcome.norms is not None:
        entry["median_norm"] = outcome.median_norm(clean_mask)
        entry["median_norm_among"] = "clean-correct samples; no adversarial example found counts as infinite"
        entry["mean_successful_norm"] = outcome.mean_successful_norm(clean_mask)
        entry["success_rate_unbounded"] = float(torch.isfinite(outcome.norms[clean_mask]).float().mean()) if int(clean_mask.sum()) else None
    return entry


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
    total = len(clean_correct)
    where = {int(i): q for q, i in enumerate(indices)}
    headline = {pl.name: outcomes[pl.name] for pl in plan if pl.role == HEADLINE and pl.name in outcomes}
    kinds = {pl.name: pl.kind for pl in plan}

    robust_by_norm: dict[str, dict[str, Any]] = {}
    for norm in sorted({o.norm for o in headline.values()}):
        members = {k: o for k, o in headline.items() if o.norm == norm}
        rob = worst_case(clean_correct, members, indices)
        robust_by_norm[norm] = {
            "eps": next(iter(members.values())).eps,
            "accuracy": float(rob.float().mean()),
            "attacks": sorted(members),
        }
    linf = {k: o for k, o in headline.items() if o.norm == "linf" and abs(o.eps - eps) < 1e-9}
    robust = worst_case(clean_correct, linf, indices)

    # the worst case where every headline L-inf attack ran (the smallest subset)
    covered = torch.ones(total, dtype=torch.bool)
    for o in linf.values():
        mask = torch.zeros(total, dtype=torch.bool)
        mask[positions(o, where, total)] = True
        covered &= mask
    if int(covered.sum()):
        robust_by_norm.setdefault("linf", {})["accuracy_on_common_subset"] = float(robust[covered].float().mean())
        robust_by_norm["linf"]["common_subset_n"] = int(covered.sum())

    attacks = {}
    for name, o in headline.items():
        pos = positions(o, where, total)
        attacks[name] = _attack_entry(o, kinds.get(name, WHITE_BOX), clean_correct[pos])

    sweep_outcomes: list[AttackOutcome] = []
    sweep_plan = [pl for pl in plan if pl.role == SWEEP]
    if sweep_plan and "pgd-linf" in headline:
        first = outcomes[sweep_plan[0].name]
        for pl in sweep_plan:
            sweep_outcomes.append(outcomes[pl.name])
        # the headline point, restricted to the sweep's samples
        base = headline["pgd-linf"]
        mine = positions(first, where, total)
        full_correct = torch.ones(total, dtype=torch.bool)
        full_correct[positions(base, where, total)] = base.correct.cpu()
        sweep_outcomes.append(AttackOutcome(name=base.name, norm=base.norm, eps=base.eps, correct=full_correct[mine],
                                            seconds=0.0, params=base.params, indices=list(first.indices or [])))
        sweep_outcomes.sort(key=lambda o: o.eps)
    sweeps = {}
    if sweep_outcomes:
        sweeps["pgd-linf"] = {
            "norm": "linf",
            "eps": [o.eps for o in sweep_outcomes],
            "accuracy": [o.accuracy for o in sweep_outcomes],
            "n": sweep_outcomes[0].n,
            "params": sweep_outcomes[0].params,
        }

    probe_pos = torch.as_tensor(subset_positions(total, min(total, 200), seed), dtype=torch.long)
    device = next(model.parameters()).device
    probes = probe_model(model, fast_layout(x[probe_pos].to(device)), y[probe_pos].to(device), eot=p.eot)
    flags = masking_flags(clean_correct, headline, indices=indices, kinds=kinds, sweep=sweep_outcomes,
                          probes=probes, model=model)

    fpr = detector_rate(model, x, batch_size)
    detector = None if fpr is None else {"false_positive_rate": fpr, "n": total}

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

    battery = {
        "profile": asdict(p),
        "adaptive": adaptive_techniques(model, p.eot),
        "subsets": {name: {"n": o.n, "of": total} for name, o in headline.items() if o.n < total},
        "subset_rule": "a seeded random subset of the evaluated points (nested: smaller subsets lie inside larger ones)",
        "worst_case_rule": "robust = clean-correct and unbroken by every headline-norm attack at the headline eps "
                           "that ran on the sample; attacks on a subset only count on their subset",
        "probes": probes,
        "detector_handling": "own attacks (pgd, fgsm, cw) optimise against detect_margin jointly; library attacks "
                             "(AutoAttack, Square, FMN) attack the classifier and every example is re-judged: "
                             "only misclassified AND undetected counts as a success",
    }
    return BatteryReport(
        robust=robust,
        robust_accuracy=float(robust.float().mean()) if total else float("nan"),
        attacks=attacks,
        sweeps=sweeps,
        flags=flags,
        battery=battery,
        robust_by_norm=robust_by_norm,
        detector=detector,
        columns=columns,
    )
