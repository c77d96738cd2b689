"""Placing labels without overlap: positions as close as possible to their points, at least a gap apart.

Least squares under ordering-with-gap constraints is isotonic regression after
subtracting k * gap from the k-th position (scipy's ``isotonic_regression``,
the pool-adjacent-violators algorithm); positions are then clamped into the
allowed range, which keeps every gap.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def spread(targets: Sequence[float], gap: float, lo: float, hi: float,
           tiebreak: Optional[Sequence[float]] = None) -> list[float]:
    """Positions for labels wanting ``targets``: same order, consecutive ones >= ``gap`` apart, within [lo, hi].

    Equal targets are ordered by ``tiebreak`` descending (for leader lines from points at equal height: the
    point farther right gets the lower label, so lines do not cross). If the labels cannot fit at ``gap``
    they are spaced evenly over [lo, hi] (the caller should make room).
    """
    from scipy.optimize import isotonic_regression

    k = len(targets)
    if k == 0:
        return []
    order = sorted(range(k), key=lambda i: (targets[i], -(tiebreak[i] if tiebreak is not None else 0.0), i))
    gap = min(gap, (hi - lo) / (k - 1)) if k > 1 else gap
    steps = np.arange(k) * gap
    wanted = np.asarray([targets[i] for i in order], dtype=float) - steps
    placed = isotonic_regression(wanted).x + steps
    # into [lo, hi]: the k-th label no lower than lo + k gaps and no higher than hi - (labels above it) gaps;
    # an elementwise max or min of two sequences with gaps >= gap keeps the gaps
    placed = np.minimum(np.maximum(placed, lo + steps), hi - steps[::-1])
    out = [0.0] * k
    for rank, i in enumerate(order):
        out[i] = float(placed[rank])
    return out
