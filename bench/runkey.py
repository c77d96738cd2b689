"""What a run is keyed by: everything that changes its numbers, in summary.json and in its directory name.

A run directory is ``<dataset>-<defense>-<config hash>-s<seed>-e<evaluation hash>``:
the defense config (its hash), the dataset and the seed as before, plus a
short hash of the *evaluation*: the headline eps, how many test points, the
battery profile, which attacks (all, or a named subset), the certification
settings and the batch size (attack batches are seeded by their first
index). Two commands that differ in any of these never share, overwrite or
delete each other's results. The evaluation is written into summary.json
(``evaluation``) with ``run_key``, the hash of all parts, so a reporter can
refuse to rank rows that were evaluated differently. No torch here.
"""
from __future__ import annotations

import hashlib
from typing import Any, Optional, Sequence

from .results import to_json

# Pseudo-names --attacks accepts besides registered attacks: the pgd-linf eps sweep, the defense's own attacks.
SWEEP, EXTRAS = "sweep", "extras"


def _digest(obj: Any, length: int) -> str:
    return hashlib.sha256(to_json(obj).encode("utf-8")).hexdigest()[:length]


def certify_settings(sigmas: Sequence[float], n0: int, n: int, alpha: float, points: int,
                     clamp: bool = False) -> dict[str, Any]:
    """The certification part of an evaluation: what every certificate of the run was made with."""
    return {"sigmas": sorted(float(s) for s in sigmas), "n0": int(n0), "n": int(n), "alpha": float(alpha),
            "points": int(points), "clamp": bool(clamp)}


def run_evaluation(*, eps: float, n_test: int, profile: str, attacks: Optional[Sequence[str]],
                   certify: Optional[dict[str, Any]], batch_size: int) -> dict[str, Any]:
    """`bench run`'s evaluation: ``attacks`` None means the whole battery; ``certify`` None means none.

    ``n_test`` is the number of points actually evaluated (the first ones of
    the test set), so ``--n-test 5000`` on a 1,000-point test set and no
    ``--n-test`` are the same evaluation.
    """
    return {
        "kind": "run",
        "eps": float(eps),
        "n_test": int(n_test),
        "points": "first",
        "profile": profile,
        "battery": "full" if attacks is None else "reduced",
        "attacks": None if attacks is None else list(attacks),
        "certify": certify,
        "batch_size": int(batch_size),
    }


def certify_evaluation(*, n0: int, n: int, alpha: float, points: int, clamp: bool, profile: str) -> dict[str, Any]:
    """`bench certify`'s evaluation. Sigmas are not part of it: each sigma is its own block, and
    certifying another sigma with the same settings adds to the same run."""
    return {"kind": "certify", "profile": profile, "certify": certify_settings((), n0, n, alpha, points, clamp)}


def evaluation_hash(evaluation: dict[str, Any]) -> str:
    """8 hex digits naming an evaluation (the suffix of the run directory)."""
    return _digest(evaluation, 8)


def run_key(*, dataset: str, defense: str, config_hash: str, seed: int, evaluation: dict[str, Any]) -> str:
    """16 hex digits naming a run: rows with different keys were evaluated differently or are other runs."""
    return _digest({"dataset": dataset, "defense": defense, "config_hash": config_hash, "seed": int(seed),
                    "evaluation": evaluation}, 16)


def run_id(defense: str, dataset: str, hash_: str, seed: int, evaluation: Optional[dict[str, Any]] = None) -> str:
    """The run directory's name; readable, and unique per run key."""
    base = f"{dataset}-{defense}-{hash_}-s{seed}"
    return base if evaluation is None else f"{base}-e{evaluation_hash(evaluation)}"
