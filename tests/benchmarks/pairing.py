"""Paired timing for the benchmarks: ABBA rounds with a gauge of how steady the machine was."""
from __future__ import annotations

from typing import Callable

import pytest

# A round counts only if each side's turns took within STEADY x of each other: when the machine's
# load changes by more within a round, no 5% difference can be resolved and the round is run again.
STEADY = 1.10


def abba_round(ours: Callable[[], float], bare: Callable[[], float], cycles: int = 1) -> tuple[float, float]:
    """(ratio, spread) of one round: ours, bare, bare, ours, then bare, ours, ours, bare, ... for ``cycles``.

    Each callable does a fixed amount of work and returns its seconds.
    ratio: bare seconds over ours (> 1 when ours is faster). spread: the
    largest max/min among one side's turns, how much the load changed
    during the round.
    """
    ours_s: list[float] = []
    bare_s: list[float] = []
    for cycle in range(cycles):
        first, second = (ours, bare) if cycle % 2 == 0 else (bare, ours)
        for fn in (first, second, second, first):
            (ours_s if fn is ours else bare_s).append(fn())
    spread = max(max(t) / min(t) for t in (ours_s, bare_s))
    return sum(bare_s) / sum(ours_s), spread


def steady_rounds(ours: Callable[[], float], bare: Callable[[], float], *, needed: int, limit: int,
                  cycles: int = 1) -> tuple[list[float], list[tuple[float, float]]]:
    """Rounds until ``needed`` are steady or ``limit`` have run: (steady ratios, unsteady (ratio, spread)).

    Skips the calling test when fewer than ``needed`` steady rounds could
    be had: on a machine that busy the comparison is unmeasurable, which is
    neither a pass nor a failure.
    """
    steady: list[float] = []
    unsteady: list[tuple[float, float]] = []
    while len(steady) < needed and len(steady) + len(unsteady) < limit:
        ratio, spread = abba_round(ours, bare, cycles)
        (steady.append(ratio) if spread <= STEADY else unsteady.append((round(ratio, 3), round(spread, 2))))
    if len(steady) < needed:
        pytest.skip(f"the machine's load changed too much within rounds to resolve a 5% difference: only "
                    f"{len(steady)} of {limit} rounds had turns within {STEADY}x of each other ({unsteady})")
    return steady, unsteady
