"""The headline table: at most ten columns a reader takes in at a glance, each number with its n and interval.

rank, defense, clean, robust (worst case), AutoAttack, L2 robust, median
minimal L2 perturbation, smoothing ACR, the deterministic certified radius
(only when some row has one) and the flags. Everything else a run measured
is on the defense's own page and in the CSV.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

from ..attacks.registry import AUTOATTACK, FMN_L2
from .keys import ThreatKey, fmt_number
from .load import Run
from .samples import accuracy_interval, mean_interval, median_interval, minimal_norms, radius_values

MISSING = "—"
MAX_COLUMNS = 10


@dataclass(frozen=True)
class Cell:
    """One number as the tables show it: the figure, its 95% interval and its n (or why there is none)."""

    value: Optional[float]
    interval: Optional[tuple[float, float]] = None
    n: Optional[int] = None
    note: str = ""  # shown instead of a number, or as a hover text

    @property
    def text(self) -> str:
        if self.value is None:
            return self.note or MISSING
        return "∞" if self.value == float("inf") else f"{self.value:.3f}"

    @property
    def interval_text(self) -> str:
        """``[lo, hi]``; ``[—]`` for a number whose interval cannot be computed (no n, no per-point records)."""
        if self.value is None:
            return ""
        if self.interval is None:
            return "[—]"
        lo, hi = (("∞" if v == float("inf") else f"{v:.3f}") for v in self.interval)
        return f"[{lo}, {hi}]"


@dataclass(frozen=True)
class Column:
    """A headline column: key (HTML sort key and anchor), header, what it means, and its cell per row."""

    key: str
    header: str
    help: str
    cell: Callable[[Run], Cell]

    def uniform_n(self, rows: list[Run]) -> Optional[int]:
        """The n every row's number rests on, when they share one (then the header says it once)."""
        ns = {c.n for c in (self.cell(r) for r in rows) if c.value is not None}
        return ns.pop() if len(ns) == 1 else None


def _accuracy(value: Optional[float], n: Optional[int], given: Optional[tuple[float, float]] = None,
              note: str = "") -> Cell:
    if value is None:
        return Cell(None, note=note)
    return Cell(value, accuracy_interval(value, n, given), n)


def _autoattack(threat: ThreatKey) -> Callable[[Run], Cell]:
    def cell(row: Run) -> Cell:
        a = row.attacks.get(AUTOATTACK)
        if a is None or (threat.eps is not None and a.eps is not None and abs(a.eps - threat.eps) > 1e-9):
            return Cell(None, note="not run")
        return _accuracy(a.accuracy, a.n, a.interval)

    return cell


def _l2_robust(row: Run) -> Cell:
    entry = row.robust_by_norm.get("l2")
    if entry is None:
        return Cell(None, note="no L2 attack")
    return _accuracy(entry["accuracy"], row.n_test, entry.get("interval"))


def _median_l2(row: Run) -> Cell:
    a = row.attacks.get(FMN_L2)
    if a is None or a.median_norm is None:
        return Cell(None, note="not run")
    norms = minimal_norms(row, FMN_L2)
    return Cell(a.median_norm, median_interval(norms) if norms else None, len(norms) if norms else a.n)


def _acr(sigma: float) -> Callable[[Run], Cell]:
    def cell(row: Run) -> Cell:
        cert = row.certification.get(sigma)
        if cert is None or cert.average_radius is None:
            return Cell(None, note="not certified")
        values = radius_values(cert)
        return Cell(cert.average_radius, mean_interval(values) if values else None, len(values) if values else cert.points)

    return cell


def _deterministic(row: Run) -> Cell:
    block = row.deterministic
    if block is None:
        return Cell(None, note="not run")
    if block.get("applicable") is False or block.get("mean_radius") is None:
        return Cell(None, note="n/a")
    radii, correct = block.get("radii"), block.get("correct")
    values = None
    if isinstance(radii, list) and isinstance(correct, list) and len(radii) == len(correct):
        values = [float(r) if c else 0.0 for r, c in zip(radii, correct)]
    n = block.get("n") if isinstance(block.get("n"), int) else (len(values) if values else None)
    return Cell(float(block["mean_radius"]), mean_interval(values) if values else None, n)


def headline_sigma(rows: list[Run]) -> Optional[float]:
    """The smoothing noise the ACR column shows: the one most rows were certified at (the smallest on a tie)."""
    counts = Counter(s for r in rows for s in r.certification)
    return min(counts, key=lambda s: (-counts[s], s)) if counts else None


def number_columns(rows: list[Run], threat: ThreatKey) -> list[Column]:
    """The headline's number columns for these rows (rank, defense and flags are the board's)."""
    eps = fmt_number(threat.eps) if threat.eps is not None else "?"
    l2 = fmt_number(threat.l2_eps) if threat.l2_eps is not None else "?"
    cols = [
        Column("clean", "clean", "accuracy on the unperturbed test points",
               lambda r: _accuracy(r.clean, r.n_test, r.intervals.get("clean"))),
        Column("robust", f"robust, worst case (L∞ {eps})",
               "per-sample worst case over every L∞ attack of the battery at the headline eps",
               lambda r: _accuracy(r.robust, r.n_test, r.intervals.get("robust"))),
        Column("autoattack", f"AutoAttack (L∞ {eps})", "accuracy under AutoAttack (standard, or rand when stochastic)",
               _autoattack(threat)),
        Column("l2_robust", f"L2 robust (ε {l2})", "per-sample worst case over the L2 attacks at the L2 eps",
               _l2_robust),
        Column("median_l2", "median min ‖δ‖₂", "median over clean-correct points of the smallest L2 perturbation "
               "FMN found (∞ when none); interval by order statistics", _median_l2),
    ]
    sigma = headline_sigma(rows)
    if sigma is not None:
        cols.append(Column("acr", f"smoothing ACR (σ {fmt_number(sigma)})", "average certified L2 radius of "
                           "randomized smoothing (wrong and abstained points count 0); Student-t interval", _acr(sigma)))
    if any(r.deterministic is not None for r in rows):
        cols.append(Column("deterministic", "deterministic cert. radius", "mean certified L2 radius of the deployed "
                           "model from its Lipschitz bound (0 where wrong)", _deterministic))
    assert len(cols) + 3 <= MAX_COLUMNS
    return cols
