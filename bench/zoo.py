"""The local model zoo: weights plus a JSON model card per (defense, dataset, config).

``models/<dataset>/<defense>-<config hash>.pt`` holds a state dict and the
``.json`` beside it the card. Weights are loaded with ``weights_only=True``
and only when their sha256 matches the card, so a swapped or corrupted file
is refused instead of silently evaluated.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from .contract import DefendedModel
from .data import Dataset
from .registry import Defense
from .results import atomic_write_bytes, atomic_write_json, config_hash, package_versions, read_json, sha256_file, utc_now
from .training import accuracy


class TamperedWeightsError(Exception):
    """The weights on disk do not match the sha256 in their model card."""


@dataclass
class ZooEntry:
    model: DefendedModel
    card: dict[str, Any]
    reused: bool


def model_card(defense: Defense, data: Dataset, model: DefendedModel, train_seconds: float) -> dict[str, Any]:
    """What every card says: which defense, data and config, its clean accuracy and training time."""
    return {
        "defense": defense.name,
        "dataset": data.name,
        "config": defense.config_dict(),
        "config_hash": config_hash(defense.name, data.name, defense.config_dict()),
        "clean_accuracy": accuracy(model, data.x_test, data.y_test),
        "train_seconds": round(train_seconds, 2),
    }


class ModelZoo:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def paths(self, defense: str, dataset: str, hash_: str) -> tuple[Path, Path]:
        stem = self.root / dataset / f"{defense}-{hash_}"
        return stem.with_suffix(".pt"), stem.with_suffix(".json")

    def load(self, defense: Defense, data: Dataset, device: torch.device) -> Optional[ZooEntry]:
        """The cached model for this defense and config, or None when there is none."""
        hash_ = config_hash(defense.name, data.name, defense.config_dict())
        weights, card_path = self.paths(defense.name, data.name, hash_)
        if defense.spec.build is None or not (weights.exists() and card_path.exists()):
            return None
        card = read_json(card_path)
        actual = sha256_file(weights)
        if actual != card.get("sha256"):
            raise TamperedWeightsError(
                f"refusing {weights}: its sha256 {actual[:16]}... does not match the model card "
                f"({str(card.get('sha256'))[:16]}...); delete both files or rerun with --retrain"
            )
        state = torch.load(weights, map_location=device, weights_only=True)
        model = defense.build(data).to(device)
        model.load_state_dict(state, strict=True)
        model.eval()
        return ZooEntry(model=model, card=card, reused=True)

    def save(self, defense: Defense, data: Dataset, model: DefendedModel, train_seconds: float) -> dict[str, Any]:
        hash_ = config_hash(defense.name, data.name, defense.config_dict())
        weights, card_path = self.paths(defense.name, data.name, hash_)
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
        atomic_write_bytes(weights, buffer.getvalue())
        card = model_card(defense, data, model, train_seconds)
        card.update(weights=weights.name, sha256=sha256_file(weights), packages=package_versions(), date=utc_now(),
                    surface=model.describe_surface())
        atomic_write_json(card_path, card)
        return card

    def get_or_fit(self, defense: Defense, data: Dataset, device: torch.device, retrain: bool = False) -> ZooEntry:
        """Reuse the cached model unless ``retrain``; otherwise fit, save and return it."""
        if not retrain:
            entry = self.load(defense, data, device)
            if entry is not None:
                return entry
        start = time.perf_counter()
        model = defense.fit(data)
        seconds = time.perf_counter() - start
        model.eval()
        if defense.spec.build is None:
            card = model_card(defense, data, model, seconds)
            card.update(sha256=None, note="not cached: the defense registered no build function")
        else:
            card = self.save(defense, data, model, seconds)
        return ZooEntry(model=model, card=card, reused=False)
