"""What makes two leaderboard rows comparable: the threat model and the evaluation settings.

Rows are ranked in one table only when they were judged at the same budgets
(``ThreatKey``) on the same points with the same battery (``Settings``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


def fmt_number(value: float) -> str:
    """Short, deterministic text for an eps, sigma or radius (4 significant digits)."""
    return format(value, ".4g")


@dataclass(frozen=True, order=True)
class ThreatKey:
    """What makes two rows comparable: the headline norm and budgets (None where not recorded)."""

    norm: Optional[str]
    eps: Optional[float]
    l2_eps: Optional[float]

    @property
    def known(self) -> bool:
        return self.norm is not None and self.eps is not None

    def label(self) -> str:
        if not self.known:
            return "threat model not recorded"
        text = f"{self.norm} eps={fmt_number(self.eps)}"
        if self.l2_eps is not None and self.norm != "l2":
            text += f", l2 eps={fmt_number(self.l2_eps)}"
        return text

    def sort_key(self) -> tuple:
        return (not self.known, self.norm or "", self.eps or 0.0, self.l2_eps or 0.0)


@dataclass(frozen=True)
class Settings:
    """How a row was evaluated: rows are ranked together only when these agree (same points, budget, battery)."""

    n_test: Optional[int]
    profile: Optional[str]
    attacks: Optional[tuple[str, ...]] = None  # a partial battery; None: the whole battery

    def label(self) -> str:
        points = f"{self.n_test:,} test points" if self.n_test is not None else "test points not recorded"
        battery = "the whole battery" if self.attacks is None else "only " + ", ".join(self.attacks)
        return f"{points}, {self.profile or 'unrecorded'} profile, {battery}"

    def slug(self) -> str:
        text = f"n{self.n_test if self.n_test is not None else 'x'}-{self.profile or 'x'}"
        return text + ("-" + "+".join(self.attacks) if self.attacks else "")

    def sort_key(self) -> tuple:
        return (self.n_test is None, -(self.n_test or 0), self.profile or "", self.attacks or ())
