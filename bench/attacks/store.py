"""Per-attack, per-sample records: the unit of resume and of sharding.

Each finished attack is one JSON file ``<run>/records/<attack>.json`` holding
the sample indices it covered and which of them stayed correct, plus a
fingerprint of everything that determines the result (model weights, attack
parameters, eps, samples, seed). While an attack runs, each finished batch is
kept under ``records/.state/<attack>-<fingerprint>/``, so an interrupted
attack (AutoAttack on a full test set runs for hours) resumes at its first
unfinished batch. A rerun reuses a record only when the fingerprint matches;
records from disjoint shards merge by index.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from ..results import atomic_write_json, read_json
from .base import AttackOutcome


def _norms_to_json(norms: Optional[torch.Tensor]) -> Optional[list[float]]:
    # minimal perturbation norms (minimum-norm attacks); inf (none found) is written as null
    return None if norms is None else [float(v) for v in norms.tolist()]


def _norms_from_json(values: Optional[list[Any]]) -> Optional[torch.Tensor]:
    return None if values is None else torch.tensor([float("inf") if v is None else v for v in values])


@dataclass
class BatchResult:
    """One finished batch of an attack: which samples stayed correct, their minimal norms, diagnostics."""

    correct: torch.Tensor
    norms: Optional[torch.Tensor]
    warnings: list[str]


class RecordStore:
    """The records of one run directory: whole attacks, and the batches of the attack in progress."""

    def __init__(self, records_dir: Path) -> None:
        self.root = Path(records_dir)

    def path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def save(self, outcome: AttackOutcome, indices: list[int], fp: str, name: Optional[str] = None) -> None:
        """Write one attack's record; ``name`` (default the outcome's) names the file."""
        atomic_write_json(self.path(name or outcome.name), {
            "name": outcome.name,
            "norm": outcome.norm,
            "eps": outcome.eps,
            "params": outcome.params,
            "seconds": outcome.seconds,
            "fingerprint": fp,
            "indices": list(indices),
            "correct": [bool(c) for c in outcome.correct.tolist()],
            "norms": _norms_to_json(outcome.norms),
            "warnings": list(outcome.warnings),
        })

    def load(self, name: str, fp: str) -> Optional[AttackOutcome]:
        """The stored outcome for ``name`` if it exists and its fingerprint matches."""
        path = self.path(name)
        if not path.exists():
            return None
        try:
            record = read_json(path)
        except (OSError, ValueError):
            return None
        if record.get("fingerprint") != fp:
            return None
        return AttackOutcome(
            name=record["name"],
            norm=record["norm"],
            eps=record["eps"],
            correct=torch.tensor(record["correct"], dtype=torch.bool),
            seconds=record["seconds"],
            params=record.get("params", {}),
            indices=record.get("indices"),
            norms=_norms_from_json(record.get("norms")),
            warnings=list(record.get("warnings", [])),
        )

    # -- batches of the attack in progress ---------------------------------------------------
    def batch_dir(self, name: str, fp: str) -> Path:
        return self.root / ".state" / f"{name}-{fp}"

    def drop_batches(self, state_dir: Path) -> None:
        shutil.rmtree(state_dir, ignore_errors=True)


def load_batch(state_dir: Path, lo: int, hi: int) -> Optional[BatchResult]:
    """The kept result of batch [lo, hi) of the attack in progress, if it finished before."""
    part = Path(state_dir) / f"batch-{lo}-{hi}.json"
    if not part.exists():
        return None
    done = read_json(part)
    correct = torch.tensor(done["correct"], dtype=torch.bool)
    return BatchResult(correct, _norms_from_json(done["norms"]), list(done["warnings"]))


def save_batch(state_dir: Path, lo: int, hi: int, batch: BatchResult) -> None:
    atomic_write_json(Path(state_dir) / f"batch-{lo}-{hi}.json", {
        "correct": [bool(c) for c in batch.correct.tolist()],
        "norms": _norms_to_json(batch.norms),
        "warnings": list(batch.warnings),
    })
