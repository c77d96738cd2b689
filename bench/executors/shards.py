"""Shards: the units of work an executor hands out, and the functions that run one in any process.

An attack shard is a run of whole batches exactly as the local loop forms
them (positions lo..lo+batch_size of the attacked points), so each batch is
seeded by (run seed, test index of its first sample) as it would be
locally. A certification shard is a list of test indices, each certified
under its own seeds (seed, sigma, index, stream). Either way a shard's
result does not depend on where, when, or next to what it ran.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch

from ..attacks.execute import attack_batch
from ..attacks.plan import PlannedAttack
from ..attacks.store import BatchResult
from ..certification.certify import CertifySettings, certify_row
from ..certification.records import format_key
from ..certification.smoothing import SmoothedClassifier
from ..perf import fast_layout, tune_allocator


@dataclass(frozen=True)
class AttackShard:
    """Whole batches [lo, hi) of one attack's points (positions), and the test indices they cover."""

    attack: str
    bounds: tuple[tuple[int, int], ...]
    indices: tuple[int, ...]  # the test index of every point in the shard, in order

    @property
    def span(self) -> tuple[int, int]:
        return self.bounds[0][0], self.bounds[-1][1]

    @property
    def points(self) -> int:
        return self.span[1] - self.span[0]

    def describe(self) -> str:
        lo, hi = self.span
        return (f"shard of attack {self.attack!r}: test indices {self.indices[0]}..{self.indices[-1]} "
                f"({self.points} points, positions {lo}..{hi - 1})")


@dataclass(frozen=True)
class CertifyShard:
    """Test indices certified at one sigma."""

    sigma: float
    indices: tuple[int, ...]

    @property
    def points(self) -> int:
        return len(self.indices)

    def describe(self) -> str:
        return (f"shard of certify sigma={format_key(self.sigma)}: test indices "
                f"{self.indices[0]}..{self.indices[-1]} ({self.points} points)")


def attack_shards(attack: str, bounds: Sequence[tuple[int, int]], indices: Sequence[int],
                  batches_per_shard: int = 1) -> list[AttackShard]:
    """Consecutive batches grouped ``batches_per_shard`` at a time (batches are never split)."""
    shards = []
    for k in range(0, len(bounds), batches_per_shard):
        group = tuple(bounds[k : k + batches_per_shard])
        shards.append(AttackShard(attack, group, tuple(indices[group[0][0] : group[-1][1]])))
    return shards


def certify_shards(sigma: float, todo: Sequence[int], workers: int, per_worker: int = 4) -> list[CertifyShard]:
    """``todo`` cut into about ``per_worker`` shards per worker (load balance, and little lost to a crash)."""
    if not todo:
        return []
    size = max(1, math.ceil(len(todo) / (max(1, workers) * per_worker)))
    return [CertifyShard(float(sigma), tuple(int(i) for i in todo[k : k + size])) for k in range(0, len(todo), size)]


def worker_model(model: Any) -> Any:
    """The model on this worker's device (CUDA when the worker has one), in eval mode and channels-last."""
    tune_allocator()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return fast_layout(model.to(device)).eval()


def run_attack_shard(planned: PlannedAttack, model: Any, x: torch.Tensor, y: torch.Tensor, seed: int,
                     shard: AttackShard) -> list[BatchResult]:
    """Run one attack shard: ``x``, ``y`` hold the shard's points; one BatchResult per batch, in order."""
    model = worker_model(model)
    offset = shard.span[0]
    results = []
    for lo, hi in shard.bounds:
        first_index = shard.indices[lo - offset]
        results.append(attack_batch(planned, model, x[lo - offset : hi - offset], y[lo - offset : hi - offset],
                                    seed, first_index))
    return results


def run_certify_shard(model: Any, x: torch.Tensor, y: torch.Tensor, shard: CertifyShard, settings: CertifySettings,
                      fingerprint: str, batch_size: Optional[int] = None) -> list[dict[str, Any]]:
    """Certify one shard: ``x``, ``y`` hold its points in order; one record row per point."""
    smoothed = SmoothedClassifier(worker_model(model), settings.sigma, clamp=settings.clamp, batch_size=batch_size)
    return [certify_row(smoothed, x[k], int(y[k]), index, settings, fingerprint) for k, index in enumerate(shard.indices)]
