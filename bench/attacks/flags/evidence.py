"""What every flag check reads (``Evidence``), the thresholds, and how a flag is made."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

from ...contract import DefendedModel
from ...schema import Flag
from ...stats import accuracy_interval
from ..aggregate import expand, index_positions
from ..base import AttackOutcome

# A flag needs more than this fraction of the compared samples (and at least 2 samples).
SAMPLE_FRACTION = 0.01
# Accuracy gaps (fractions) that count as "not converged" or "not monotone".
STEPS_GAP = 0.02
MONOTONE_GAP = 0.01
# Stochastic models are judged on one draw per sample: a larger share before a flag.
STOCHASTIC_FRACTION = 0.05
# "About 0" at L-inf eps >= 1.
LARGE_EPS_ACCURACY = 0.02
# Relative logit change between two forwards that counts as randomness.
RANDOMNESS_TOLERANCE = 1e-4
# Two white-box attacks at one budget whose accuracies differ by more than this disagree.
DISAGREEMENT_GAP = 0.2

# Severities: evidence that the robust accuracy may reflect hidden gradients or a failed
# evaluation (the leaderboard marks the row), or a note (within noise, or not moving the headline).
MASKING, NOTE = "masking", "note"


def threshold(n: int) -> int:
    return max(1, int(SAMPLE_FRACTION * n))


def beyond_noise(difference: float, accuracy: float, n: int) -> bool:
    """True when an accuracy difference exceeds the half-width of the 95% interval of ``accuracy`` at ``n`` points."""
    interval = accuracy_interval(min(max(accuracy, 0.0), 1.0), n)
    return interval is not None and difference > (interval[1] - interval[0]) / 2


def make_flag(check: Callable, severity: str, message: str) -> Flag:
    return Flag(check=check.__name__.replace("_", "-"), severity=severity, message=message)


@dataclass
class Evidence:
    """The headline outcomes by name, their kinds, the worst-case eps sweep, the probes, the model."""

    clean_correct: torch.Tensor
    outcomes: Mapping[str, AttackOutcome]
    indices: Optional[Sequence[int]] = None
    kinds: Mapping[str, str] = field(default_factory=dict)
    sweep: Sequence[AttackOutcome] = ()
    probes: Mapping[str, Any] = field(default_factory=dict)
    model: Optional[DefendedModel] = None
    cascade: frozenset = frozenset()  # names of attacks that ran only on points earlier attacks left robust

    @property
    def total(self) -> int:
        return len(self.clean_correct)

    @property
    def where(self) -> Optional[dict[int, int]]:
        return index_positions(self.indices)

    def expand(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return expand(self.outcomes[name], self.where, self.total)

    @property
    def stochastic(self) -> bool:
        return self.model is not None and bool(self.model.stochastic)

    @property
    def has_detector(self) -> bool:
        return self.model is not None and getattr(self.model, "detect", None) is not None
