"""`bench validate NAME`: check a defense against the contract without a full run.

The defense is fitted on a small random subset with a tiny budget (any of
the config fields in ``TINY_BUDGET`` that it has are overridden), then each
promise of ``bench.contract.DefendedModel`` is checked on a few inputs: the
logits' shape and type, inputs anywhere in [0, 1], finite and non-zero
gradients through the declared attack surface, stochasticity as declared,
the detector's output and its differentiable margin, the declared extra
attacks, and that the zoo can rebuild and reload the model. A surface that
hides gradients fails here, before anyone reports a robustness number on it.
"""
from __future__ import annotations

import dataclasses
import traceback
from typing import Any, Callable, Optional

import torch

from .contract import DefendedModel
from .contract_checks import CHECKS, Check, Probe
from .data import Dataset
from .registry import Defense, config_with_seed, create_defense, get_spec

# Config fields shrunk for validation when a defense has them (user overrides win).
TINY_BUDGET: dict[str, Any] = {"epochs": 1, "teacher_epochs": 1, "warmup_epochs": 0}


def tiny_config(defense_name: str, overrides: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """TINY_BUDGET restricted to the defense's config fields, then the user's overrides."""
    fields = {f.name for f in dataclasses.fields(get_spec(defense_name).config)}
    config = {k: v for k, v in TINY_BUDGET.items() if k in fields}
    config.update(overrides or {})
    return config


def small_subset(data: Dataset, n_train: int, n_check: int, seed: int) -> Dataset:
    """A seeded random subset (the stored order may be sorted by class, so not the first n)."""
    g = torch.Generator().manual_seed(seed)
    train_idx = torch.randperm(len(data.x_train), generator=g)[:n_train]
    test_idx = torch.randperm(len(data.x_test), generator=g)[:n_check]
    return dataclasses.replace(
        data,
        x_train=data.x_train[train_idx],
        y_train=data.y_train[train_idx],
        x_test=data.x_test[test_idx],
        y_test=data.y_test[test_idx],
    )


def _guard(name: str, fn: Callable[[], Check]) -> Check:
    """Run one check; an exception inside it is that check's failure, not the validator's."""
    try:
        return fn()
    except Exception as exc:  # the defense under test may raise anything
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Check(name, False, f"raised {type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})")


def check_model(model: DefendedModel, data: Dataset, defense: Optional[Defense] = None) -> list[Check]:
    """Every contract check on a fitted model, using ``data.x_test``/``y_test`` as probe inputs."""
    if not isinstance(model, DefendedModel):
        return [Check("contract", False, f"fit returned {type(model).__name__}, not a bench.contract.DefendedModel")]
    if model.num_classes != data.num_classes:
        return [Check("contract", False, f"num_classes is {model.num_classes}, the dataset has {data.num_classes}")]
    checks = [Check("contract", True, f"{type(model).__name__}, {data.num_classes} classes")]
    model.eval()
    probe = Probe(model, data, defense)
    checks.extend(_guard(name, lambda fn=fn: fn(probe)) for name, fn in CHECKS)
    return checks


def validate_defense(
    name: str,
    data: Dataset,
    *,
    config: Optional[dict[str, Any]] = None,
    n_train: int = 256,
    n_check: int = 32,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> list[Check]:
    """Fit ``name`` on a small subset with a tiny budget and run every contract check."""
    torch.manual_seed(seed)
    small = small_subset(data, n_train, n_check, seed).to(torch.device(device))
    overrides = config_with_seed(name, tiny_config(name, config), seed)
    defense = create_defense(name, **overrides)
    checks: list[Check] = []
    fitted: dict[str, DefendedModel] = {}

    def fit() -> Check:
        fitted["model"] = defense.fit(small)
        shown = ", ".join(f"{k}={v}" for k, v in overrides.items())
        return Check("fit", True, f"on {len(small.x_train)} training images ({shown})")

    checks.append(_guard("fit", fit))
    if "model" in fitted:
        checks.extend(check_model(fitted["model"], small, defense))
    return checks
