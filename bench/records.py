"""Per-attack, per-sample records: the unit of resume and of sharding.

Each finished attack is one JSON file ``<run>/records/<attack>.json`` holding
the sample indices it covered and which of them stayed correct, plus a
fingerprint of everything that determines the result (model weights, attack
parameters, eps, samples, seed). A rerun reuses a record only when the
fingerprint matches; records from disjoint shards merge by index.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

import torch

from .attacks.base import AttackOutcome
from .results import atomic_write_json, read_json


def fingerprint(**parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def record_path(records_dir: Path, name: str) -> Path:
    return Path(records_dir) / f"{name}.json"


def save_outcome(records_dir: Path, outcome: AttackOutcome, indices: list[int], fp: str, name: Optional[str] = None) -> None:
    """Write one attack's record; ``name`` (default the outcome's) names the file."""
    atomic_write_json(
        record_path(records_dir, name or outcome.name),
        {
            "name": outcome.name,
            "norm": outcome.norm,
            "eps": outcome.eps,
            "params": outcome.params,
            "seconds": outcome.seconds,
            "fingerprint": fp,
            "indices": list(indices),
            "correct": [bool(c) for c in outcome.correct.tolist()],
            # minimal perturbation norms (minimum-norm attacks); null = none found (infinite)
            "norms": None if outcome.norms is None else [float(v) for v in outcome.norms.tolist()],
            "warnings": list(outcome.warnings),
        },
    )


def load_outcome(records_dir: Path, name: str, fp: str) -> Optional[AttackOutcome]:
    """The stored outcome for ``name`` if it exists and its fingerprint matches."""
    path = record_path(records_dir, name)
    if not path.exists():
        return None
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fp:
        return None
    norms = record.get("norms")
    return AttackOutcome(
        name=record["name"],
        norm=record["norm"],
        eps=record["eps"],
        correct=torch.tensor(record["correct"], dtype=torch.bool),
        seconds=record["seconds"],
        params=record.get("params", {}),
        indices=record.get("indices"),
        norms=None if norms is None else torch.tensor([float("inf") if v is None else v for v in norms]),
        warnings=list(record.get("warnings", [])),
    )
