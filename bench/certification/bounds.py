"""The statistics of randomized smoothing: confidence bounds and the certified radius.

Cohen, Rosenfeld and Kolter 2019 (arXiv 1902.02918), Theorem 1: if the
smoothed classifier's top class has probability at least p_A > 1/2 under
N(0, sigma^2 I) noise, its prediction is constant within the L2 ball of
radius sigma * Phi^-1(p_A). We plug in a one-sided Clopper-Pearson lower
bound on p_A, so a certificate is wrong with probability at most alpha.
All quantiles come from scipy; nothing here is a hand-rolled approximation.
"""
from __future__ import annotations

import math

from scipy.stats import binomtest, norm


def _check_counts(successes: int, trials: int) -> None:
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes} of {trials}")


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float, or ValueError naming it and the valid range (0, 1)."""
    value = float(alpha)
    if not 0.0 < value < 1.0:
        raise ValueError(f"bad alpha {alpha!r}; valid choices: a number in (0, 1)")
    return value


def check_sample_count(name: str, value: int) -> int:
    """A number of noise draws: an integer >= 1 (not a bool, not a float), else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"bad {name} {value!r}; valid choices: an integer >= 1")
    return int(value)


def lower_confidence_bound(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on a binomial proportion.

    Equal to the lower end of the two-sided interval at level 1 - 2 * alpha
    (statsmodels' ``proportion_confint(..., alpha=2 * alpha, method='beta')``).
    """
    _check_counts(successes, trials)
    alpha = check_alpha(alpha)
    if successes == 0:
        return 0.0
    result = binomtest(int(successes), int(trials), alternative="greater")
    return float(result.proportion_ci(confidence_level=1.0 - alpha, method="exact").low)


def certified_radius(p_lower: float, sigma: float) -> float:
    """L2 radius sigma * Phi^-1(p_lower) within which the smoothed prediction cannot change.

    Only meaningful for p_lower > 1/2 (the caller abstains otherwise); returns
    0.0 at or below 1/2 so that no negative radius is ever reported.
    """
    if p_lower <= 0.5:
        return 0.0
    return float(sigma * norm.ppf(p_lower))


def max_certifiable_radius(n: int, alpha: float, sigma: float) -> float:
    """The largest radius n samples can certify: all n vote for the top class.

    With small n this caps every certificate (e.g. n = 1,000, alpha = 0.001,
    sigma = 0.25 gives 0.615), which is why it is reported next to results.
    """
    return certified_radius(lower_confidence_bound(n, n, alpha), sigma)


def two_sided_pvalue(count_top: int, count_second: int) -> float:
    """p-value of the binomial test that the top two classes are equally likely (PREDICT)."""
    total = int(count_top) + int(count_second)
    if total == 0:
        return 1.0
    return float(binomtest(int(count_top), total, p=0.5).pvalue)


def is_finite_positive(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0
