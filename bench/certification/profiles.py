"""Certification profiles: sample sizes, confidence and test points (no torch: the CLI checks names here)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..data import ThreatModel


@dataclass(frozen=True)
class CertifyProfile:
    """Sample sizes and test points of one evaluation profile."""

    n0: int
    n: int
    alpha: float
    points: int  # test points, spread evenly over the evaluated set
    sigmas: tuple[float, ...]  # certified besides the dataset's default sigma


PROFILES: dict[str, CertifyProfile] = {
    # Seconds per defense on a CPU: n = 1,000 caps radii at 0.615 for sigma = 0.25 (alpha = 0.001).
    "quick": CertifyProfile(n0=100, n=1000, alpha=0.001, points=100, sigmas=()),
    # Cohen et al.'s settings (500 test points, as in their CIFAR-10 tables).
    "full": CertifyProfile(n0=100, n=100_000, alpha=0.001, points=500, sigmas=(0.25, 0.5, 1.0)),
}


def get_profile(name: str) -> CertifyProfile:
    if name not in PROFILES:
        raise ValueError(f"unknown certification profile {name!r}; valid choices: {', '.join(PROFILES)}")
    return PROFILES[name]


def profile_sigmas(profile: str, threat: ThreatModel) -> list[float]:
    """The dataset's default sigma plus the profile's extra ones, ascending."""
    return sorted({float(threat.sigma), *get_profile(profile).sigmas})
