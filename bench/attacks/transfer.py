"""Transfer attack: PGD examples crafted on an independently trained plain model, replayed on the defense.

A defense that resists white-box attacks but falls to examples crafted on a
*different*, undefended network is masking its gradients (Carlini et al.
2019). The source is the registry's ``plain`` model for the same dataset,
trained with a seed different from the run's, and cached in the model zoo.
The crafted examples are the *last* PGD iterates on the source (maximal
loss, which transfers better than the first iterate that crosses the
source's boundary).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from ..contract import DefendedModel
from ..perf import fast_layout
from .base import Attack, check_norm
from .gradient import PGD

SOURCE_DEFENSE = "plain"
SOURCE_SEED_OFFSET = 1


def source_seed(run_seed: int) -> int:
    """A seed that is never the run's own, so the source is trained independently."""
    return (int(run_seed) + SOURCE_SEED_OFFSET) % 2**32


def source_config(defense: str, config: dict[str, Any], run_seed: int) -> dict[str, Any]:
    """The source's config: the plain defaults, or, when ``plain`` itself is evaluated, its own
    config (so a quick ``--config epochs=1`` run does not train a full source), always with another seed."""
    chosen = {k: v for k, v in config.items() if k != "seed"} if defense == SOURCE_DEFENSE else {}
    chosen["seed"] = source_seed(run_seed)
    return chosen


def load_transfer_source(
    home: Path, data: Any, device: torch.device, run_seed: int, defense: str = "", config: Optional[dict[str, Any]] = None
) -> tuple[DefendedModel, str]:
    """The plain source model from the zoo under ``home/models`` (trained on first use); (model, id)."""
    from ..registry import create_defense
    from ..zoo import ModelZoo

    source = create_defense(SOURCE_DEFENSE, **source_config(defense, dict(config or {}), run_seed))
    entry = ModelZoo(Path(home) / "models").get_or_fit(source, data.to(device), device)
    model = fast_layout(entry.model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model_id = entry.card.get("sha256") or f"unsaved-{source.name}-{source.config_dict()}"
    return model, model_id


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
