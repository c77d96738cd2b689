"""How sure a number is: exact binomial intervals for accuracies, paired tests for comparisons.

An accuracy on n points is a binomial proportion, so every accuracy bench
reports carries a 95% Clopper-Pearson interval (statsmodels'
``proportion_confint(method="beta")``). Two defenses evaluated on the same
points are compared per sample with McNemar's exact test on the discordant
points, not by whether their intervals overlap. No torch here: the reporter
uses this.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

CONFIDENCE = 0.95


def clopper_pearson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided exact interval for a proportion ``successes / n`` (``(nan, nan)`` when n is 0)."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    lo, hi = proportion_confint(int(successes), int(n), alpha=1.0 - confidence, method="beta")
    return float(lo), float(hi)


def accuracy_interval(accuracy: Optional[float], n: Optional[int],
                      confidence: float = CONFIDENCE) -> Optional[tuple[float, float]]:
    """The interval of an accuracy reported as a fraction of ``n`` points (None when either is unknown)."""
    if accuracy is None or n is None or n <= 0 or not math.isfinite(accuracy):
        return None
    return clopper_pearson(int(round(accuracy * n)), int(n), confidence)


def mcnemar_pvalue(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Exact McNemar p-value that paired per-sample outcomes ``a`` and ``b`` differ (1.0 when none differ)."""
    from scipy.stats import binomtest

    if len(a) != len(b):
        raise ValueError(f"paired outcomes need equal lengths, got {len(a)} and {len(b)}")
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
