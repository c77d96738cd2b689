"""Comparing the sweep's cells: spread over training seeds, and paired tests on the same test points.

For each method and grid point, every metric is summarised over the training
seeds (mean, sample standard deviation, range). Methods are then compared at
the same grid point on the same test points, which is far more powerful than
comparing two accuracies (Dietterich, Neural Computation 1998):

* accuracies (clean, FGSM, the battery's worst case, the worst-case sweep at
  each eps up to the headline): McNemar's exact test on the discordant points
  (``bench.stats.mcnemar_pvalue``);
* minimal perturbations (FMN L2 and L-inf, C&W-L2): Wilcoxon's signed-rank
  test (scipy) on the per-point differences, over points both models classify
  correctly and for which both attacks found an adversarial example.

Seeds are paired with seeds (the same seed evaluates the same points and
attack subsets) and pooled: the discordant counts, or the differences, of
all seeds enter one test (a stratified McNemar test: summing discordant
pairs over strata). Pooling keeps the direction, which Fisher's combination
of two-sided p-values would lose; the number of seeds agreeing in direction
is reported beside each test. The unit of the test is the test point, so the
spread over seeds shows separately how much training noise there is. Every
test on the page is one comparison in a family corrected with Holm's
step-down method (statsmodels), and a conclusion is stated only where the
corrected p-value is below alpha = 0.05. No torch.
"""
from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..stats import mcnemar_pvalue
from .collect import CellData, eps_key
from .grid import Cell

ALPHA = 0.05


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    test: str  # "mcnemar", "wilcoxon" or "" (not tested per sample)
    unit: str = "accuracy"  # accuracy, norm or radius
    short: str = ""  # the headline table's column (the label when empty)

    @property
    def column(self) -> str:
        return self.short or self.label


def metrics_for(cells: Sequence[CellData]) -> list[Metric]:
    """The compared metrics: papers' own first, then the worst case and the sweep up to the headline eps."""
    headline = next((c.headline_eps for c in cells if c.headline_eps is not None), None)
    eps = sorted({e for c in cells for e, _ in c.sweep if e > 0 and (headline is None or e <= headline + 1e-9)})
    return [
        Metric("clean", "clean accuracy", "mcnemar", short="clean"),
        Metric("fgsm", "FGSM accuracy", "mcnemar", short="FGSM"),
        *[Metric(eps_key(e), f"robust accuracy at eps {e:g}", "mcnemar", short=f"eps {e:g}") for e in eps],
        Metric("robust", "robust accuracy (worst case of the battery)", "mcnemar", short="battery worst case"),
        Metric("cw-l2", "C&W-L2 mean L2 of successful attacks", "wilcoxon", "norm", "C&W-L2 mean L2"),
        Metric("fmn-l2", "median minimal L2 (FMN)", "wilcoxon", "norm", "FMN median L2"),
        Metric("fmn-linf", "median minimal L-inf (FMN)", "wilcoxon", "norm", "FMN median L-inf"),
        Metric("acr", "certified ACR (randomized smoothing)", "", "radius", "ACR"),
    ]


@dataclass(frozen=True)
class Stat:
    """One metric over the seeds that measured it."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> Optional[float]:
        return statistics.fmean(self.values) if self.values else None  # inf when any value is inf

    @property
    def sd(self) -> Optional[float]:
        finite = all(math.isfinite(v) for v in self.values)
        return statistics.stdev(self.values) if self.n > 1 and finite else None

    @property
    def low(self) -> Optional[float]:
        return min(self.values) if self.values else None

    @property
    def high(self) -> Optional[float]:
        return max(self.values) if self.values else None


@dataclass
class Group:
    """One method at one grid point, over its seeds."""

    defense: str
    point: tuple[tuple[str, str], ...]
    seeds: list[int]
    cells: list[CellData]
    stats: dict[str, Stat] = field(default_factory=dict)


def group_cells(pairs: Sequence[tuple[Cell, CellData]], metrics: Sequence[Metric]) -> list[Group]:
    """Cells grouped by (defense, grid point), in the order they first appear; stats over seeds."""
    groups: dict[tuple, Group] = {}
    for cell, data in pairs:
        g = groups.setdefault((cell.point, cell.defense), Group(cell.defense, cell.point, [], []))
        g.seeds.append(cell.seed)
        g.cells.append(data)
    for g in groups.values():
        g.stats = {m.key: Stat(tuple(c.values[m.key] for c in g.cells if c.values.get(m.key) is not None))
                   for m in metrics}
    return list(groups.values())


@dataclass
class PairedTest:
    """One method against another at one grid point on one metric, pooled over the seeds both have."""

    point: tuple[tuple[str, str], ...]
    a: str
    b: str
    metric: Metric
    n_pairs: int  # paired points (accuracies) or points with both norms finite (norms)
    a_wins: int  # points where a is robust and b is not (or a's norm is larger)
    b_wins: int
    seeds: int  # seeds both methods have
    seeds_for_a: int  # seeds where a wins more points than b
    seeds_for_b: int
    p: Optional[float]  # None: nothing to test (no paired points, or every pair tied)
    p_holm: Optional[float] = None

    @property
    def favours(self) -> Optional[str]:
        return self.a if self.a_wins > self.b_wins else self.b if self.b_wins > self.a_wins else None

    @property
    def significant(self) -> bool:
        return self.p_holm is not None and self.p_holm < ALPHA and self.favours is not None


def _binary(a: dict[int, bool], b: dict[int, bool]) -> tuple[list[bool], list[bool]]:
    common = sorted(set(a) & set(b))
    return [a[i] for i in common], [b[i] for i in common]


def _norm_pairs(a: dict[int, float], b: dict[int, float]) -> list[float]:
    """a's minus b's norm on points where both attacks found an adversarial example."""
    return [a[i] - b[i] for i in sorted(set(a) & set(b)) if math.isfinite(a[i]) and math.isfinite(b[i])]


def _wilcoxon(diffs: list[float]) -> Optional[float]:
    """Two-sided Wilcoxon signed-rank p-value (zero differences dropped); None when no pair differs."""
    from scipy.stats import wilcoxon

    if not any(d != 0 for d in diffs):
        return None
    return float(wilcoxon(diffs, zero_method="wilcox", alternative="two-sided").pvalue)


def paired_test(ga: Group, gb: Group, metric: Metric) -> PairedTest:
    """Pool ``metric``'s paired per-point outcomes of every seed both groups have; test them."""
    by_seed_b = dict(zip(gb.seeds, gb.cells))
    wins_a = wins_b = n = seeds = seeds_a = seeds_b = 0
    pooled_a: list[bool] = []
    pooled_b: list[bool] = []
    diffs: list[float] = []
    for seed, ca in zip(ga.seeds, ga.cells):
        cb = by_seed_b.get(seed)
        if cb is None:
            continue
        if metric.test == "mcnemar":
            xa, xb = _binary(ca.outcomes.get(metric.key, {}), cb.outcomes.get(metric.key, {}))
            pooled_a += xa
            pooled_b += xb
            wa, wb, k = sum(x and not y for x, y in zip(xa, xb)), sum(y and not x for x, y in zip(xa, xb)), len(xa)
        else:
            d = _norm_pairs(ca.norms.get(metric.key, {}), cb.norms.get(metric.key, {}))
            diffs += d
            wa, wb, k = sum(v > 0 for v in d), sum(v < 0 for v in d), len(d)
        if k:
            seeds, n, wins_a, wins_b = seeds + 1, n + k, wins_a + wa, wins_b + wb
            seeds_a, seeds_b = seeds_a + (wa > wb), seeds_b + (wb > wa)
    if metric.test == "mcnemar":
        p = mcnemar_pvalue(pooled_a, pooled_b) if wins_a + wins_b else None
    else:
        p = _wilcoxon(diffs)
    return PairedTest(ga.point, ga.defense, gb.defense, metric, n, wins_a, wins_b, seeds, seeds_a, seeds_b, p)


def holm(tests: list[PairedTest]) -> int:
    """Holm-adjust every test's p-value in place (one family); returns the number of comparisons."""
    from statsmodels.stats.multitest import multipletests

    tested = [t for t in tests if t.p is not None]
    if tested:
        adjusted = multipletests([t.p for t in tested], alpha=ALPHA, method="holm")[1]
        for t, p in zip(tested, adjusted):
            t.p_holm = float(p)
    return len(tested)


def compare(groups: Sequence[Group], metrics: Sequence[Metric]) -> tuple[list[PairedTest], int]:
    """Every pair of methods at every grid point on every per-sample metric; Holm over all of them."""
    tests = []
    points = list(dict.fromkeys(g.point for g in groups))
    for point in points:
        here = [g for g in groups if g.point == point]
        for ga, gb in itertools.combinations(here, 2):
            tests += [paired_test(ga, gb, m) for m in metrics if m.test]
    return tests, holm(tests)
