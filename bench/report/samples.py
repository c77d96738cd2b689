"""The uncertainty the leaderboard prints, from the per-sample files beside a summary (read by ``load.py``).

A run writes ``per_sample.csv`` (index, clean correctness, survival under each
attack, minimal norms, the worst case ``robust``) and one certification
record per sigma (Cohen et al.'s columns index, label, prediction, radius,
correct). From these the reporter computes what a summary's averages hide:
95% intervals (Clopper-Pearson for accuracies via ``bench.stats``; scipy's
order-statistic interval for a median, ``quantile_test``; Student's t for a
mean radius), McNemar's exact test between two rows on the same points,
and certified accuracy as a continuous function of the radius (Cohen,
Rosenfeld & Kolter, ICML 2019, arXiv 1902.02918: the fraction of points
predicted correctly with radius >= r).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .. import stats
from .load import Certification, Run

SIGNIFICANCE = 0.05  # adjacent rows whose McNemar p-value is at least this are marked as ties
RADIUS_TOLERANCE = 1e-9  # a radius this close to the certifiable maximum counts as reaching it


def _truth(column: pd.Series) -> pd.Series:
    """A per-sample boolean column as written (True/False, 1/0 or text), missing values as NA."""
    return column.map(lambda v: None if pd.isna(v) else str(v).strip().lower() in ("true", "1", "1.0"))


# -- intervals -----------------------------------------------------------------------------------------

def accuracy_interval(accuracy: Optional[float], n: Optional[int],
                      given: Optional[tuple[float, float]] = None) -> Optional[tuple[float, float]]:
    """The summary's own interval when it has one, else 95% Clopper-Pearson from (accuracy, n)."""
    return given if given is not None else stats.accuracy_interval(accuracy, n)


def median_interval(values: Sequence[float]) -> Optional[tuple[float, float]]:
    """95% distribution-free interval of the median (order statistics; infinite values allowed)."""
    from scipy.stats import quantile_test

    data = np.asarray(values, dtype=float)
    if len(data) < 2 or np.isnan(data).any():
        return None
    ci = quantile_test(data, q=float(np.median(data[np.isfinite(data)])) if np.isfinite(data).any() else 0.0,
                       p=0.5).confidence_interval(stats.CONFIDENCE)
    lo, hi = float(ci.low), float(ci.high)
    return None if math.isnan(lo) or math.isnan(hi) else (lo, hi)


def mean_interval(values: Sequence[float]) -> Optional[tuple[float, float]]:
    """95% Student-t interval of a mean (a point interval when every value is equal)."""
    from scipy.stats import ttest_1samp

    data = np.asarray(values, dtype=float)
    if len(data) < 2 or not np.isfinite(data).all():
        return None
    if np.ptp(data) == 0:
        return (float(data[0]), float(data[0]))
    ci = ttest_1samp(data, 0.0).confidence_interval(stats.CONFIDENCE)
    return (float(ci.low), float(ci.high))


# -- per-sample views -----------------------------------------------------------------------------------

def robust_by_index(run: Run) -> Optional[dict[int, bool]]:
    """Per-sample worst-case robustness keyed by test index (None without per_sample.csv)."""
    if run.samples is None:
        return None
    robust = _truth(run.samples["robust"])
    if robust.isna().any():
        return None
    return dict(zip((int(i) for i in run.samples["index"]), (bool(r) for r in robust)))


def tie_pvalue(upper: Run, lower: Run) -> Optional[float]:
    """McNemar's exact p-value between two rows' per-sample robustness on the same points (None: not testable)."""
    a, b = robust_by_index(upper), robust_by_index(lower)
    if a is None or b is None or set(a) != set(b):
        return None
    order = sorted(a)
    return stats.mcnemar_pvalue([a[i] for i in order], [b[i] for i in order])


def minimal_norms(run: Run, attack: str) -> Optional[list[float]]:
    """The minimal perturbations an attack found on the clean-correct points it ran on (inf: none found)."""
    column = f"{attack}_norm"
    if run.samples is None or column not in run.samples.columns or "clean_correct" not in run.samples.columns:
        return None
    clean = _truth(run.samples["clean_correct"]).fillna(False).astype(bool)
    norms = pd.to_numeric(run.samples[column], errors="coerce")
    chosen = norms[clean & norms.notna()]
    return [float(v) for v in chosen] if len(chosen) else None


def radius_values(cert: Certification) -> Optional[list[float]]:
    """Per point: the certified radius when the prediction is correct, else 0 (the average certified radius's terms)."""
    return None if cert.radii is None else [r if correct else 0.0 for r, correct in cert.radii]


def certified_accuracy(cert: Certification, radius: float) -> Optional[float]:
    """Certified accuracy at ``radius``: from the records when read, else the summary's value at that radius."""
    if cert.max_radius is not None and radius > cert.max_radius + RADIUS_TOLERANCE:
        return None  # nothing can be certified beyond the largest certifiable radius
    if cert.radii:
        return sum(1 for r, c in cert.radii if c and r >= radius - RADIUS_TOLERANCE) / len(cert.radii)
    return next((acc for r, acc in cert.curve if math.isclose(r, radius)), None)


def certified_steps(cert: Certification) -> Optional[tuple[list[float], list[float]]]:
    """Certified accuracy against radius as a right-closed step curve (draw with ``steps-pre``), up to the cap.

    From the per-point radii: the value at x[k] holds on (x[k-1], x[k]]. Without records, the summary's
    points at or below the largest certifiable radius. None when there is nothing to draw.
    """
    cap = cert.max_radius
    if cert.radii:
        reached = sorted({r for r, c in cert.radii if c and r > 0 and (cap is None or r <= cap + RADIUS_TOLERANCE)})
        xs = [0.0] + reached
        if cap is not None and (not reached or reached[-1] < cap - RADIUS_TOLERANCE):
            xs.append(cap)
        n = len(cert.radii)
        return xs, [sum(1 for r, c in cert.radii if c and r >= x - RADIUS_TOLERANCE) / n for x in xs]
    points = [(r, a) for r, a in cert.curve if cap is None or r <= cap + RADIUS_TOLERANCE]
    return ([r for r, _ in points], [a for _, a in points]) if points else None


def deterministic_steps(block: Optional[dict]) -> Optional[tuple[list[float], list[float]]]:
    """The deterministic (Lipschitz) certificate's certified accuracy against radius, drawn like smoothing's.

    From its per-point radii and correctness when the summary has them, else its fixed radii; None when the
    certificate was not applicable or there is nothing to draw.
    """
    if not isinstance(block, dict) or not block.get("applicable"):
        return None
    radii, correct = block.get("radii"), block.get("correct")
    if isinstance(radii, list) and isinstance(correct, list) and radii and len(radii) == len(correct):
        return certified_steps(Certification(sigma=0.0, curve=[], radii=[(float(r), c is True) for r, c in
                                                                          zip(radii, correct)]))
    curve = block.get("certified_accuracy")
    points = sorted((float(k), float(v)) for k, v in curve.items()) if isinstance(curve, dict) else []
    return certified_steps(Certification(sigma=0.0, curve=points)) if points else None
