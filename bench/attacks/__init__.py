"""Attacks and the battery that runs them against a DefendedModel.

One module per attack (or library adapter), plus the battery split by idea:
``registry`` (canonical names, norms, kinds), ``profiles``, ``plan``,
``execute`` and ``store`` (batched, resumable records), ``aggregate`` (the
per-sample worst case), ``flags`` and ``summary``. The attack classes are
re-exported lazily, so ``import bench.attacks.registry`` does not load torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Attack": "base", "AttackOutcome": "base", "evaluate_correct": "base",
    "AutoAttack": "autoattack_adapter", "Square": "autoattack_adapter",
    "CarliniWagnerL2": "cw", "FMN": "fmn", "FGSM": "gradient", "PGD": "gradient", "Transfer": "transfer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
