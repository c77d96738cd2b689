"""`bench run --plan`: what a run would do and how long it would take, from a short calibration; writes nothing.

The plan lists the attacks (with their points and batches), the
certification (sigmas, sample sizes, points) and an estimated wall time.
The estimate comes from timing every attack on a few of its own points and
counting the rows it pushes through the model (``executors.calibrate``);
for more workers it is a projection: each attack's batches (Ray's shards)
shared among the workers, one attack after another, as ``run_battery`` runs
them. It is an estimate: attacks that stop early take as long as their
points are robust, and a shared machine's load changes every figure.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from .pipeline import RunOptions, evaluation_points, load_model, load_transfer_source, prepare

Log = Callable[[str], None]
PROBE_POINTS = 200  # as bench.attacks.summary probes
CERTIFY_CALIBRATION_N = 10_000  # samples per calibration point at most; the time scales with n0 + n


def calibration_points(n: int) -> int:
    """Points an attack is timed on: 2% of its points, at least 8 (all of them when fewer)."""
    return min(n, max(8, n // 50))


@dataclass
class AttackPlan:
    name: str
    norm: str
    eps: float
    points: int
    timing: Any  # executors.calibrate.Timing: the calibration batch
    costs: dict[int, Any]  # id(model) -> executors.calibrate.RowCost

    def batches(self, batch_size: int) -> list[float]:
        """Estimated seconds of each batch at ``batch_size``."""
        from .executors.calibrate import batch_seconds

        return batch_seconds(self.timing, self.points, batch_size, self.costs)


@dataclass
class CertifyPlan:
    sigma: float
    n0: int
    n: int
    alpha: float
    points: int
    seconds_per_point: float


@dataclass
class RunPlan:
    """A run's plan and its calibrated estimate (seconds), for one or more worker counts."""

    title: str
    batch_size: int
    attacks: list[AttackPlan] = field(default_factory=list)
    certification: list[CertifyPlan] = field(default_factory=list)
    other_seconds: float = 0.0  # clean accuracy, probes: in the driver, not sharded
    calibration_seconds: float = 0.0
    workers: tuple[int, ...] = (1,)
    shard_overhead: Optional[float] = None  # measured seconds per Ray task (None: not measured)
    notes: list[str] = field(default_factory=list)

    def attack_seconds(self, workers: int, batch_size: Optional[int] = None) -> float:
        """Attacks one after another, each one's batches shared among the workers."""
        from .executors.calibrate import wall_seconds

        size = batch_size or self.batch_size
        return sum(wall_seconds(a.batches(size), workers, self.shard_overhead or 0.0) for a in self.attacks)

    def certify_seconds(self, workers: int) -> float:
        """Each sigma's points: in one loop here, or in the Ray executor's shards among the workers."""
        from .executors.calibrate import wall_seconds
        from .executors.shards import certify_shards

        total = 0.0
        for c in self.certification:
            sizes = [c.points] if self.shard_overhead is None and workers == 1 else \
                [s.points for s in certify_shards(c.sigma, list(range(c.points)), workers)]
            total += wall_seconds([k * c.seconds_per_point for k in sizes], workers, self.shard_overhead or 0.0)
        return total

    def estimate(self, workers: int, batch_size: Optional[int] = None) -> float:
        return self.attack_seconds(workers, batch_size) + self.certify_seconds(workers) + self.other_seconds

    def batch_size_for(self, workers: int) -> int:
        """The largest batch size that gives every worker a shard of the largest attack."""
        most = max((a.points for a in self.attacks), default=1)
        return min(self.batch_size, max(1, math.ceil(most / workers)))

    def lines(self) -> list[str]:
        return plan_lines(self)


def _calibrate_attacks(plan: list[Any], model: Any, x: Any, y: Any, indices: list[int], seed: int,
                       points: Optional[int], log: Log) -> list[AttackPlan]:
    """Time every planned attack on a few of its points; a cascade attack on the calibration points still robust
    after the earlier attacks at its budget, and planned on that fraction of its points (as the battery runs it)."""
    from .attacks.execute import subset_positions
    from .attacks.plan import HEADLINE
    from .executors.calibrate import models_of, row_cost, spread
    from .training import predict

    costs: dict[int, Any] = {}
    clean = (predict(model, x, 500) == y.cpu()).tolist()
    alive: dict[tuple[str, float], dict[int, bool]] = {}  # budget -> calibration position -> still robust
    planned_attacks = []
    for pl in plan:
        for m in models_of(model, pl.attack):
            if id(m) not in costs:
                costs[id(m)] = row_cost(m, x)
        chosen = subset_positions(len(x), pl.n, seed)
        cal = spread(chosen, min(len(chosen), points) if points else calibration_points(len(chosen)))
        budget = (pl.attack.norm, round(float(pl.eps), 9))
        robust = alive.setdefault(budget, {})
        count = len(chosen)
        if getattr(pl, "cascade", False):
            left = [q for q in cal if robust.get(q, clean[q])]
            count = round(len(chosen) * len(left) / len(cal)) if cal else 0
            cal = left
        timing, correct = _time_attack(pl, model, x, y, cal, indices, seed)
        if pl.role == HEADLINE:
            for q, ok in zip(cal, correct):
                robust[q] = robust.get(q, clean[q]) and bool(ok)
        log(f"  calibrated {pl.name:<18} on {len(cal)} points: {timing.seconds:.2f} s"
            + (f" (cascade: ~{count} of {len(chosen)} points still robust)" if getattr(pl, "cascade", False) else ""))
        planned_attacks.append(AttackPlan(pl.name, pl.attack.norm, pl.eps, count, timing, costs))
    return planned_attacks


def _time_attack(pl: Any, model: Any, x: Any, y: Any, cal: list[int], indices: list[int],
                 seed: int) -> tuple[Any, list[bool]]:
    """The timing of ``pl`` on positions ``cal`` and its per-point outcome (nothing to time: zero)."""
    from .attacks.execute import attack_batch
    from .executors.calibrate import Timing, models_of, time_work

    if not cal:
        return Timing(0, 0.0, {}), []
    out: list[Any] = []
    timing = time_work(lambda: out.append(attack_batch(pl, model, x[cal], y[cal], seed, indices[cal[0]])),
                       models_of(model, pl.attack), len(cal))
    return timing, out[0].correct.tolist()


def _calibrate_certification(model: Any, x: Any, y: Any, profile: str, threat: Any, seed: int,
                             log: Log, sigmas: Optional[tuple[float, ...]] = None) -> list[CertifyPlan]:
    from .certification.certify import CertifySettings, certify_row, spread_indices
    from .certification.profiles import PROFILES, get_profile, profile_sigmas
    from .certification.smoothing import SmoothedClassifier

    profile = profile if profile in PROFILES else "quick"  # as certify_for_run
    prof = get_profile(profile)
    points = spread_indices(len(x), prof.points)
    plans = []
    for sigma in sorted(set(sigmas)) if sigmas else profile_sigmas(profile, threat):
        n_cal = min(prof.n, CERTIFY_CALIBRATION_N)
        settings = CertifySettings(sigma=sigma, n0=prof.n0, n=n_cal, alpha=prof.alpha, seed=seed)
        smoothed = SmoothedClassifier(model, sigma)
        smoothed.batch_size(x[points[0]].unsqueeze(0))  # the one-off batch-size tuning, outside the timing
        sample = [points[len(points) // 3], points[2 * len(points) // 3]]
        start = time.perf_counter()
        for index in sample:
            certify_row(smoothed, x[index], int(y[index]), index, settings, "plan")
        per_point = (time.perf_counter() - start) / len(sample) * (prof.n0 + prof.n) / (prof.n0 + n_cal)
        log(f"  calibrated certify sigma={sigma:g} on {len(sample)} points (n={n_cal}): {per_point:.2f} s per point")
        plans.append(CertifyPlan(sigma, prof.n0, prof.n, prof.alpha, len(points), per_point))
    return plans


def _other_seconds(model: Any, x: Any, y: Any, batch_size: int, eot: int) -> float:
    """Clean accuracy (measured: one pass) and the gradient probes (calibrated on a few points)."""
    from .attacks.probes import probe_model
    from .executors.calibrate import row_cost, time_work
    from .perf import fast_layout
    from .training import predict

    start = time.perf_counter()
    predict(model, x, batch_size)
    clean = time.perf_counter() - start
    probe_x, probe_y = fast_layout(x[:8]), y[:8]
    timing = time_work(lambda: probe_model(model, probe_x, probe_y, eot=eot), [model], 8)
    return clean + timing.estimate(min(len(x), PROBE_POINTS), {id(model): row_cost(model, x)})


@contextmanager
def _threads(count: Optional[int]) -> Iterator[None]:
    """Torch's intra-op threads set to ``count`` for a while (None: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def plan_run(opts: RunOptions, *, workers: Optional[tuple[int, ...]] = None, log: Log = print,
             calibration: Optional[int] = None) -> RunPlan:
    """Plan ``opts``'s run and calibrate its estimate here; nothing is written (models are cached as usual).

    ``calibration``: points each attack is timed on (default: 2% of its points, at least 8).
    """
    from .attacks.plan import plan_battery
    from .attacks.profiles import get_profile
    from .attacks.registry import TRANSFER_ATTACK
    from .runspec import check_attack_selection

    battery_profile = get_profile(opts.profile)
    p = prepare(opts.defense, opts.dataset, seed=opts.seed, device=opts.device, config=opts.config,
                data_dir=opts.data_dir, home=opts.home, out=opts.out)
    loaded = load_model(p, opts.retrain, log)
    x, y, indices = evaluation_points(p, opts.n_test)
    eps = p.data.threat.linf if opts.eps is None else float(opts.eps)
    only = check_attack_selection(opts.attacks)
    wanted = only is None or TRANSFER_ATTACK in only
    plan = plan_battery(loaded.model, p.data.threat, eps, opts.profile,
                        transfer_source=load_transfer_source(p, log) if wanted else None, seed=p.seed, only=only)
    start = time.perf_counter()
    result = RunPlan(title=(f"plan: {p.defense.name} on {p.data.name}, profile {opts.profile}, seed {p.seed}: "
                            f"{len(indices)} test points, batch size {opts.batch_size}, executor {opts.executor}"),
                     batch_size=opts.batch_size)
    with _threads(1 if opts.executor == "ray" else None):  # a Ray task has one CPU (num_cpus=1): time it so
        result.attacks = _calibrate_attacks(plan, loaded.model, x, y, indices, p.seed, calibration, log)
        result.certification = (_calibrate_certification(loaded.model, x, y, opts.profile, p.data.threat, p.seed, log,
                                                         opts.sigmas) if opts.certify else [])
    result.other_seconds = _other_seconds(loaded.model, x, y, opts.batch_size, battery_profile.eot)
    result.calibration_seconds = time.perf_counter() - start
    result.workers = workers or (1,)
    if opts.executor == "ray":
        _measure_ray(opts, result, workers, log)
    return result


def _measure_ray(opts: RunOptions, result: RunPlan, workers: Optional[tuple[int, ...]], log: Log) -> None:
    from .executors import open_executor

    with open_executor("ray", address=opts.ray_address) as executor:
        result.shard_overhead = executor.shard_overhead()
        if not workers:
            result.workers = (executor.workers,)
    log(f"  ray: {result.shard_overhead * 1000:.0f} ms per shard (a no-op task's round trip)")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def plan_lines(plan: RunPlan) -> list[str]:
    """The plan as text: attacks, certification, the estimate per worker count, what it leaves out."""
    lines = [plan.title, f"{'attack':<20} {'norm':<4} {'eps':>7} {'points':>6} {'batches':>7} {'est. s':>9}"]
    for a in plan.attacks:
        batches = a.batches(plan.batch_size)
        lines.append(f"{a.name:<20} {a.norm:<4} {a.eps:>7.4g} {a.points:>6} {len(batches):>7} {sum(batches):>9.1f}")
    lines.append(f"{'certification sigma':<20} {'n0':>6} {'n':>8} {'alpha':>7} {'points':>6} {'est. s':>9}")
    for c in plan.certification:
        lines.append(f"{c.sigma:<20g} {c.n0:>6} {c.n:>8} {c.alpha:>7g} {c.points:>6} "
                     f"{c.points * c.seconds_per_point:>9.1f}")
    lines.append(f"{'clean accuracy and gradient probes':<49} {plan.other_seconds:>9.1f}")
    for w in plan.workers:
        how = "this process" if plan.shard_overhead is None and w == 1 else f"{w} worker{'s' * (w > 1)}"
        lines.append(f"estimated wall time on {how}: {_duration(plan.estimate(w))} "
                     f"(attacks {_duration(plan.attack_seconds(w))}, certification {_duration(plan.certify_seconds(w))})")
        size = plan.batch_size_for(w)
        if size < plan.batch_size:
            lines.append(f"  with --batch-size {size} (a shard for every worker): {_duration(plan.estimate(w, size))}; "
                         f"batches are seeded, so a different batch size gives different (equally valid) draws")
    overhead = ("Ray's per-shard overhead not included (plan with --executor ray to measure it)"
                if plan.shard_overhead is None else f"Ray's overhead {plan.shard_overhead * 1000:.0f} ms per shard included")
    lines.append(f"calibration took {_duration(plan.calibration_seconds)}; an estimate, not a measurement: early-"
                 f"stopping attacks take as long as the points resist, and other load on the machine changes it; "
                 f"{overhead}; model training and Ray start-up not included")
    lines.append("nothing was run or written (--plan)")
    return lines
