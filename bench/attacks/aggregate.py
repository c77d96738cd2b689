"""From per-attack outcomes to per-sample verdicts: positions, the worst case, the detector's rate.

Robust accuracy is the per-sample worst case: a sample counts as robust only
if it is clean-correct and survives every attack of the headline norm at the
headline eps that covered it (an attack on a subset counts on its subset).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch

from ..contract import DefendedModel
from ..perf import fast_layout
from .base import AttackOutcome


def positions(outcome: AttackOutcome, where: Optional[Mapping[int, int]], total: int) -> torch.Tensor:
    """Positions in the evaluated set that ``outcome`` covers (``where``: sample index -> position)."""
    if outcome.indices is None:
        return torch.arange(total)
    if where is None:
        return torch.as_tensor(outcome.indices, dtype=torch.long)
    return torch.as_tensor([where[i] for i in outcome.indices], dtype=torch.long)


def index_positions(indices: Optional[Sequence[int]]) -> Optional[dict[int, int]]:
    return {int(i): p for p, i in enumerate(indices)} if indices is not None else None


def expand(outcome: AttackOutcome, where: Optional[Mapping[int, int]], total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(covered mask, correct) over the whole evaluated set; uncovered samples read as correct."""
    pos = positions(outcome, where, total)
    covered = torch.zeros(total, dtype=torch.bool)
    correct = torch.ones(total, dtype=torch.bool)
    covered[pos] = True
    correct[pos] = outcome.correct.cpu()
    return covered, correct


def worst_case(
    clean_correct: torch.Tensor,
    outcomes: Mapping[str, AttackOutcome],
    indices: Optional[Sequence[int]] = None,
    norm: Optional[str] = None,
) -> torch.Tensor:
    """Per-sample robustness: clean-correct and unbroken by every given attack that covered the sample.

    ``norm`` restricts the worst case to attacks of one threat model.
    """
    robust = clean_correct.clone().cpu().bool()
    where = index_positions(indices)
    for outcome in outcomes.values():
        if norm is not None and outcome.norm != norm:
            continue
        robust[positions(outcome, where, len(robust))] &= outcome.correct.cpu()
    return robust


def covered_by_all(outcomes: Mapping[str, AttackOutcome], indices: Optional[Sequence[int]], total: int) -> torch.Tensor:
    """Mask of the samples every given attack covered (the smallest subset's points)."""
    where = index_positions(indices)
    covered = torch.ones(total, dtype=torch.bool)
    for outcome in outcomes.values():
        covered &= expand(outcome, where, total)[0]
    return covered


@torch.no_grad()
def detector_rate(model: DefendedModel, x: torch.Tensor, batch_size: int = 500) -> Optional[float]:
    """Fraction of (clean) inputs the detector flags: its false-positive rate on clean data."""
    if getattr(model, "detect", None) is None or not len(x):
        return None
    device = next(model.parameters()).device
    flagged = [model.detect(fast_layout(x[i : i + batch_size].to(device))).bool().cpu() for i in range(0, len(x), batch_size)]
    return float(torch.cat(flagged).float().mean())
