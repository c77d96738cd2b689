"""AutoAttack (Croce & Hein 2020) and its Square attack, from the ``pyautoattack`` package.

Not reimplemented: this module only adapts the package to the battery.

- The model it sees is a ``StraightThrough`` module: deployed forward values,
  gradients through ``differentiable_forward`` (BPDA). Version ``standard``
  for deterministic models, ``rand`` (its own EOT over 20 draws) for
  stochastic ones.
- Its checks log warnings on the ``auto-attack`` logger; they are collected
  and become our flags. Its progress (DEBUG on that logger) feeds our
  progress bar.
- pyautoattack 0.2.0 keeps process-global state: ``checks.check_dynamic``
  counts calls in a module-level dict that is never reset (after one dynamic
  model, every later check in the process warns falsely), and it calls
  ``sys.settrace(None)``, which switches off coverage or a debugger.
  ``isolated_autoattack`` resets the counter and restores the trace function
  around every call.
- AutoAttack's own state file (``state_path``) is not used: pyautoattack
  0.2.0 writes the set of attacks with ``json.dump(..., default=str)``, i.e.
  as a string, so restoring it always raises "The state was created with a
  different set of attacks". An interrupted AutoAttack resumes per batch
  instead (``battery.run_attack`` keeps each finished batch).
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import torch

from ..contract import DefendedModel
from ..perturbation import check_norm
from .base import Attack
from .surface import StraightThrough

LOGGER_NAME = "auto-attack"
_AA_NORMS = {"linf": "Linf", "l2": "L2"}


class _Collect(logging.Handler):
    """Warnings to a list, DEBUG progress lines to a callback."""

    def __init__(self, status: Optional[Callable[[str], None]]) -> None:
        super().__init__(level=logging.DEBUG)
        self.warnings: list[str] = []
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            if message not in self.warnings:
                self.warnings.append(message)
        elif self.status is not None:
            self.status(message[:60])


@contextmanager
def isolated_autoattack(status: Optional[Callable[[str], None]] = None) -> Iterator[_Collect]:
    """Run pyautoattack without leaking its global state; yield the collector of its warnings."""
    from pyautoattack import checks

    for key in checks.funcs:  # the never-reset counter behind check_dynamic
        checks.funcs[key] = 0
    trace = sys.gettrace()
    logger = logging.getLogger(LOGGER_NAME)
    handler = _Collect(status)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        sys.settrace(trace)
        for key in checks.funcs:
            checks.funcs[key] = 0
        logger.removeHandler(handler)
        logger.setLevel(level)


class AutoAttack(Attack):
    """AutoAttack's standard (deterministic) or rand (stochastic) ensemble at eps."""

    name = "autoattack"

    def __init__(self, *, norm: str = "linf", seed: int = 0) -> None:
        super().__init__()
        self.norm = check_norm(norm)
        self.seed = seed

    def params(self) -> dict[str, Any]:
        return {"norm": self.norm, "seed": self.seed, "version": "standard|rand (by model.stochastic)", "library": "pyautoattack"}

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        from pyautoattack import AutoAttack as PackageAutoAttack

        version = "rand" if model.stochastic else "standard"
        self.last_version = version
        surface = StraightThrough(model, eot=1).eval()  # 'rand' does its own EOT
        with isolated_autoattack(self.status) as collected:
            attack = PackageAutoAttack(
                surface, norm=_AA_NORMS[self.norm], eps=eps, version=version, device=x.device, seed=self.seed
            )
            x_adv, _ = attack.run_standard_evaluation(x.contiguous(), y, batch_size=len(x))
        for message in collected.warnings:
            self.warn(message)
        return x_adv.to(memory_format=torch.channels_last) if x.dim() == 4 else x_adv


class Square(Attack):
    """Square Attack (Andriushchenko et al. 2020), score-based black-box, from pyautoattack."""

    name = "square"

    def __init__(self, *, norm: str = "linf", queries: int = 5000, p_init: float = 0.8, seed: int = 0) -> None:
        super().__init__()
        self.norm = check_norm(norm)
        if queries < 1:
            raise ValueError(f"queries must be >= 1, got {queries}")
        self.queries, self.p_init, self.seed = queries, p_init, seed

    def params(self) -> dict[str, Any]:
        return {"norm": self.norm, "queries": self.queries, "p_init": self.p_init, "seed": self.seed, "library": "pyautoattack"}

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        from pyautoattack.square import SquareAttack

        def predict(inputs: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():  # black-box: the deployed forward, no gradients
                return model(inputs)

        attack = SquareAttack(
            predict, norm=_AA_NORMS[self.norm], n_queries=self.queries, eps=eps, p_init=self.p_init,
            n_restarts=1, seed=self.seed, verbose=False, resc_schedule=False, device=x.device,
        )
        with isolated_autoattack(self.status):
            x_adv = attack.perturb(x.contiguous(), y)
        return x_adv.to(memory_format=torch.channels_last) if x.dim() == 4 else x_adv
