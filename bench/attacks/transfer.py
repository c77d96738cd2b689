"""Transfer attack: PGD examples crafted on an independently trained plain model, replayed on the defense.

A defense that resists white-box attacks but falls to examples crafted on a
*different*, undefended network is masking its gradients (Carlini et al.
2019). The source is the registry's ``plain`` model for the same dataset,
trained with a seed different from the run's and cached in the model zoo;
the run pipeline prepares it and hands it to the battery (an attack does not
train models).
The crafted examples are the *last* PGD iterates on the source (maximal
loss, which transfers better than the first iterate that crosses the
source's boundary).
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from ..contract import DefendedModel
from ..perturbation import check_norm
from .base import Attack
from .gradient import PGD

SOURCE_DEFENSE = "plain"  # the defense the pipeline trains as the source (bench.pipeline prepares it)


class Transfer(Attack):
    """PGD on ``source`` (its last iterate), evaluated on the attacked model."""

    name = "transfer"

    def __init__(self, source: DefendedModel, *, source_id: str, norm: str = "linf", steps: int = 40,
                 loss: str = "ce") -> None:
        super().__init__()
        self.source, self.source_id = source, source_id
        self.norm = check_norm(norm)
        self.crafter = PGD(norm=norm, steps=steps, loss=loss, keep_best=False, early_stop=False, eot=1)

    def params(self) -> dict[str, Any]:
        return {"source": f"{SOURCE_DEFENSE}:{self.source_id}", "pgd": self.crafter.params()}

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        source: Optional[DefendedModel] = self.source
        if next(source.parameters()).device != x.device:
            source = source.to(x.device)
        return self.crafter.run(source, x, y, eps)
