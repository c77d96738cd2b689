"""Intervals and paired tests: checked against the beta-quantile closed form and statsmodels' McNemar."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from bench.stats import accuracy_interval, clopper_pearson, mcnemar_pvalue


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (85, 100), (849, 1000), (1, 1)])
def test_clopper_pearson_is_the_beta_quantile_interval(k, n):
    lo, hi = clopper_pearson(k, n)
    expect_lo = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    expect_hi = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    assert lo == pytest.approx(expect_lo, abs=1e-9) and hi == pytest.approx(expect_hi, abs=1e-9)
    assert lo <= k / n <= hi


def test_accuracy_interval_and_its_width():
    lo, hi = accuracy_interval(0.8, 1000)
    assert 0.77 < lo < 0.8 < hi < 0.83  # about +-2.5 points at n = 1,000
    lo, hi = accuracy_interval(0.8, 100)
    assert hi - lo > 0.15  # about +-8 points at n = 100
    assert accuracy_interval(None, 100) is None and accuracy_interval(0.5, 0) is None
    with pytest.raises(ValueError):
        clopper_pearson(5, 4)


def test_mcnemar_matches_statsmodels_exact():
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.8
    b = a.copy()
    flip = rng.random(300) < 0.1
    b[flip] = ~b[flip]
    table = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]
    assert mcnemar_pvalue(a.tolist(), b.tolist()) == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert mcnemar_pvalue([True, False], [True, False]) == 1.0
