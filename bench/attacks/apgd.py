"""APGD-CE / APGD-DLR and APGD-T (targeted DLR) as standalone attacks, from ``pyautoattack``.

Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with
an ensemble of diverse parameter-free attacks", ICML 2020, arXiv
2003.01690): PGD with momentum and a step size halved when the loss
stalls; the DLR loss is invariant to the scale of the logits, and the
targeted version attacks the ``n_target_classes`` most likely wrong
classes one after another. They are AutoAttack's first two members; run
alone they can meet every point of a test set (the battery runs the whole
AutoAttack only on a subset in the quick profile), at a fraction of its
cost.

Not reimplemented: ``pyautoattack.autopgd_base`` does the work. This module
only adapts it, as ``autoattack_adapter`` does for the whole ensemble: the
library sees a ``StraightThrough`` module (deployed forward values, BPDA
gradients), its global state is contained by ``isolated_autoattack``, its
warnings (zero gradients) become our flags, it gets contiguous tensors and
gives back channels-last ones, and the RNG seeding it does on the global
generator is undone afterwards. For stochastic models its ``eot_iter``
averages ``eot`` gradient draws. Detectors: the library attacks the
classifier only; ``Attack.perturb`` re-judges every example (misclassified
*and* undetected).
"""
from __future__ import annotations

import logging
from typing import Any

import torch

from ..contract import DefendedModel
from .autoattack_adapter import LOGGER_NAME, _AA_NORMS, isolated_autoattack
from ..perturbation import check_norm
from .base import Attack
from .surface import StraightThrough

APGD_LOSSES = ("ce", "dlr")


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}")


def _run_library(attack: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``attack.perturb`` without leaking its global seeding; channels-last back if the input was 4-d."""
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        x_adv = attack.perturb(x.contiguous(), y).detach()
    return x_adv.to(memory_format=torch.channels_last) if x.dim() == 4 else x_adv


class APGD(Attack):
    """Untargeted APGD on the cross-entropy (``apgd-ce``) or DLR (``apgd-dlr``) loss.

    ``n_iter`` iterations per restart (AutoAttack: 100), ``n_restarts``
    (later restarts attack only the points not yet fooled), ``seed`` of the
    random starts, ``eot`` gradient draws per step for stochastic models
    (AutoAttack's ``rand`` version: 20), ``rho`` the step-size decrease
    threshold.
    """

    def __init__(self, *, loss: str = "ce", norm: str = "linf", n_iter: int = 100, n_restarts: int = 1,
                 seed: int = 0, eot: int = 20, rho: float = 0.75) -> None:
        super().__init__()
        if loss not in APGD_LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid choices: {', '.join(APGD_LOSSES)}")
        self.norm = check_norm(norm)
        _check_positive(n_iter=n_iter, n_restarts=n_restarts, eot=eot)
        if not 0.0 < rho < 1.0:
            raise ValueError(f"rho must be in (0, 1), got {rho!r}")
        self.loss, self.n_iter, self.n_restarts, self.seed, self.eot, self.rho = loss, n_iter, n_restarts, seed, eot, rho

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"apgd-{self.loss}" + ("" if self.norm == "linf" else f"-{self.norm}")

    def params(self) -> dict[str, Any]:
        return {"loss": self.loss, "norm": self.norm, "n_iter": self.n_iter, "n_restarts": self.n_restarts,
                "seed": self.seed, "eot": self.eot, "rho": self.rho, "library": "pyautoattack"}

    def _eot_iter(self, model: DefendedModel) -> int:
        return self.eot if model.stochastic else 1

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        from pyautoattack.autopgd_base import APGDAttack

        if self.loss == "dlr" and model.num_classes < 3:
            raise ValueError(f"the DLR loss needs at least 3 classes, the model has {model.num_classes}")
        surface = StraightThrough(model, eot=1).eval()  # the library does its own EOT (eot_iter)
        with isolated_autoattack(self.status) as collected:
            attack = APGDAttack(surface, n_iter=self.n_iter, norm=_AA_NORMS[self.norm], n_restarts=self.n_restarts,
                                eps=eps, seed=self.seed, loss=self.loss, eot_iter=self._eot_iter(model), rho=self.rho,
                                device=x.device, logger=logging.getLogger(LOGGER_NAME))
            x_adv = _run_library(attack, x, y)
        for message in collected.warnings:
            self.warn(message)
        return x_adv


class APGDTargeted(APGD):
    """APGD-T (``apgd-t``): targeted DLR against each of the ``n_target_classes`` highest-scoring wrong classes.

    AutoAttack's standard version uses 9 target classes (all of them on a
    10-class problem), 100 iterations and 1 restart per target.
    """

    def __init__(self, *, norm: str = "linf", n_iter: int = 100, n_restarts: int = 1, n_target_classes: int = 9,
                 seed: int = 0, eot: int = 20, rho: float = 0.75) -> None:
        super().__init__(loss="dlr", norm=norm, n_iter=n_iter, n_restarts=n_restarts, seed=seed, eot=eot, rho=rho)
        _check_positive(n_target_classes=n_target_classes)
        self.n_target_classes = n_target_classes

    @property
    def name(self) -> str:  # type: ignore[override]
        return "apgd-t" + ("" if self.norm == "linf" else f"-{self.norm}")

    def params(self) -> dict[str, Any]:
        params = super().params()
        params["loss"] = "dlr-targeted"
        params["n_target_classes"] = self.n_target_classes
        return params

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        from pyautoattack.autopgd_base import APGDAttack_targeted

        if model.num_classes < 4:
            raise ValueError(f"the targeted DLR loss needs at least 4 classes, the model has {model.num_classes}")
        if self.n_target_classes > model.num_classes - 1:
            raise ValueError(f"n_target_classes {self.n_target_classes} is too large for {model.num_classes} "
                             f"classes; valid choices: 1 to {model.num_classes - 1}")
        surface = StraightThrough(model, eot=1).eval()
        with isolated_autoattack(self.status) as collected:
            attack = APGDAttack_targeted(surface, n_iter=self.n_iter, norm=_AA_NORMS[self.norm],
                                         n_restarts=self.n_restarts, eps=eps, seed=self.seed,
                                         eot_iter=self._eot_iter(model), rho=self.rho,
                                         n_target_classes=self.n_target_classes, device=x.device,
                                         logger=logging.getLogger(LOGGER_NAME))
            x_adv = _run_library(attack, x, y)
        for message in collected.warnings:
            self.warn(message)
        return x_adv
