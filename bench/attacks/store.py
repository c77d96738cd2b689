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

from ..errors import first_line, warn
from ..results import atomic_write_json, read_json
from ..rundir import shown
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
        """The stored outcome for ``name`` if it exists and its fingerprint matches.

        A damaged record (not JSON, or fields of the wrong shape, even with
        its fingerprint intact) is recomputed, with one warning naming it.
        """
        path = self.path(name)
        if not path.exists():
            return None
        try:
            record = read_json(path)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            if record.get("fingerprint") != fp:
                return None
            return _outcome(record)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            warn(f"{shown(path)}: damaged attack record ({first_line(exc)}); recomputing it")
            return None

    # -- batches of the attack in progress ---------------------------------------------------
    def batch_dir(self, name: str, fp: str) -> Path:
        return self.root / ".state" / f"{name}-{fp}"

    def drop_batches(self, state_dir: Path) -> None:
        shutil.rmtree(state_dir, ignore_errors=True)


def _bools(values: Any, n: Optional[int], what: str) -> torch.Tensor:
    if not isinstance(values, list) or not all(isinstance(v, bool) for v in values) or (n is not None and len(values) != n):
        raise ValueError(f"{what} is not a list of {n if n is not None else 'some'} true/false values")
    return torch.tensor(values, dtype=torch.bool)


def _norms_checked(values: Any, n: int) -> Optional[torch.Tensor]:
    if values is None:
        return None
    if not isinstance(values, list) or len(values) != n or not all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
        raise ValueError(f"norms is not a list of {n} numbers")
    return _norms_from_json(values)


def _outcome(record: dict[str, Any]) -> AttackOutcome:
    """An AttackOutcome from a record, or ValueError saying which field is malformed."""
    indices = record.get("indices")
    if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise ValueError("indices is not a list of integers")
    for key, kind in (("name", str), ("norm", str), ("eps", (int, float)), ("seconds", (int, float))):
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool):
            raise ValueError(f"{key} is missing or of the wrong type")
    params, warnings = record.get("params", {}), record.get("warnings", [])
    if not isinstance(params, dict) or not isinstance(warnings, list):
        raise ValueError("params or warnings of the wrong type")
    return AttackOutcome(
        name=record["name"], norm=record["norm"], eps=float(record["eps"]),
        correct=_bools(record.get("correct"), len(indices), "correct"), seconds=float(record["seconds"]),
        params=params, indices=indices, norms=_norms_checked(record.get("norms"), len(indices)),
        warnings=[str(w) for w in warnings],
    )


def load_batch(state_dir: Path, lo: int, hi: int) -> Optional[BatchResult]:
    """The kept result of batch [lo, hi) of the attack in progress, if it finished before (damaged: redone)."""
    part = Path(state_dir) / f"batch-{lo}-{hi}.json"
    if not part.exists():
        return None
    try:
        done = read_json(part)
        if not isinstance(done, dict):
            raise ValueError("not a JSON object")
        correct = _bools(done.get("correct"), hi - lo, "correct")
        return BatchResult(correct, _norms_checked(done.get("norms"), hi - lo), [str(w) for w in done.get("warnings", [])])
    except (OSError, ValueError, TypeError) as exc:
        warn(f"{shown(part)}: damaged batch of an unfinished attack ({first_line(exc)}); recomputing it")
        return None


def save_batch(state_dir: Path, lo: int, hi: int, batch: BatchResult) -> None:
    atomic_write_json(Path(state_dir) / f"batch-{lo}-{hi}.json", {
        "correct": [bool(c) for c in batch.correct.tolist()],
        "norms": _norms_to_json(batch.norms),
        "warnings": list(batch.warnings),
    })
