"""The local model zoo: weights plus a JSON model card per (defense, dataset, config).

``models/<dataset>/<defense>-<config hash>.pt`` holds a state dict and the
``.json`` beside it the card. Weights are loaded with ``weights_only=True``
and only when their sha256 matches the card, so a swapped or corrupted file
is refused instead of silently evaluated; a card that is not JSON, weights
that are not a state dict (a pickle with code in it, a truncated file) or
do not fit the defense's model are refused with one line naming the file.
An entry is trained under a lock (``<defense>-<config hash>.lock``), so two
processes that want the same uncached model train it once.
"""
from __future__ import annotations

import io
import pickle
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from .contract import DefendedModel
from .data import Dataset
from .errors import DamagedFileError, TrainingDivergedError, first_line
from .registry import Defense
from .results import atomic_write_bytes, atomic_write_json, config_hash, package_versions, read_json, sha256_file, utc_now
from .rundir import locked
from .training import accuracy

RETRAIN = "delete it and its model card (the .json beside it) or rerun with --retrain"
RETRAIN_CARD = "delete it and its weights (the .pt beside it) or rerun with --retrain"


class TamperedWeightsError(Exception):
    """The weights on disk do not match the sha256 in their model card."""


def _read_card(path: Path) -> dict[str, Any]:
    card = read_json(path, remedy=RETRAIN_CARD)
    if not isinstance(card, dict) or not isinstance(card.get("sha256"), str):
        raise DamagedFileError(path, "not a model card (a JSON object with the weights' sha256)", RETRAIN_CARD)
    return card


def _read_state(path: Path, device: torch.device) -> dict[str, Any]:
    """The state dict in ``path``, loaded with ``weights_only=True``; DamagedFileError for anything else."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused an object: no code from the file ran
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f"it asks to call {found.group(1)} when loaded" if found else "it holds objects other than tensors"
        raise DamagedFileError(path, f"refused: not plain weights ({what}; none of it was run)", RETRAIN) from None
    except Exception as exc:  # noqa: BLE001  (garbage bytes reach torch.load's unpickler: any error can come out)
        if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, IsADirectoryError)):
            raise  # the environment (permissions, I/O): exit 1, not a damaged file
        raise DamagedFileError(path, f"not a readable PyTorch file ({first_line(exc) or type(exc).__name__})",
                               RETRAIN) from None
    if not isinstance(state, dict):
        raise DamagedFileError(path, f"holds a {type(state).__name__}, not a state dict", RETRAIN)
    return state


def _mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str:
    """The first way a state dict differs from the model's: a missing or unexpected key, or a shape."""
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing:
        return f"{len(missing)} tensor(s) missing, e.g. {missing[0]}"
    if unexpected:
        return f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]}"
    for key, tensor in expected.items():
        shape = tuple(getattr(found[key], "shape", ()))
        if shape != tuple(tensor.shape):
            return f"{key} has shape {shape}, the model's is {tuple(tensor.shape)}"
    return ""


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
        card = _read_card(card_path)
        actual = sha256_file(weights)
        if actual != card.get("sha256"):
            raise TamperedWeightsError(
                f"refusing {weights}: its sha256 {actual[:16]}... does not match the model card "
                f"({str(card.get('sha256'))[:16]}...); delete both files or rerun with --retrain"
            )
        state = _read_state(weights, device)
        model = defense.build(data).to(device)
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, ValueError) as exc:
            why = _mismatch(model.state_dict(), state) or first_line(exc)
            raise DamagedFileError(weights, f"does not fit the model of defense {defense.name!r} ({why})", RETRAIN) from None
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

    def get_or_fit(self, defense: Defense, data: Dataset, device: torch.device, retrain: bool = False,
                   log: Callable[[str], None] = lambda message: None) -> ZooEntry:
        """Reuse the cached model unless ``retrain``; otherwise fit, save and return it.

        Training holds the entry's lock: a process that finds another one
        training the same model waits for it and then reuses its weights
        (with ``retrain`` too: the weights it waited for are fresh).
        """
        if not retrain:
            try:
                entry = self.load(defense, data, device)
            except (TamperedWeightsError, DamagedFileError):
                entry = None  # perhaps caught mid-write by another process: decide under the lock
            if entry is not None:
                return entry
        hash_ = config_hash(defense.name, data.name, defense.config_dict())
        lock = self.paths(defense.name, data.name, hash_)[0].with_suffix(".lock")
        with locked(lock, f"training {defense.name} ({hash_}) on {data.name}", log) as waited:
            if not retrain or waited:
                entry = self.load(defense, data, device)
                if entry is not None:
                    return entry
            return self._fit(defense, data)

    def _fit(self, defense: Defense, data: Dataset) -> ZooEntry:
        start = time.perf_counter()
        model = defense.fit(data)
        seconds = time.perf_counter() - start
        model.eval()
        broken = [name for name, value in model.state_dict().items()
                  if value.is_floating_point() and not bool(torch.isfinite(value).all())]
        if broken:
            raise TrainingDivergedError(
                f"training {defense.name} diverged: {len(broken)} weight tensors hold NaN or inf (first: {broken[0]}); "
                "nothing was cached; lower lr or change the config and rerun")
        if defense.spec.build is None:
            card = model_card(defense, data, model, seconds)
            card.update(sha256=None, note="not cached: the defense registered no build function")
        else:
            card = self.save(defense, data, model, seconds)
        return ZooEntry(model=model, card=card, reused=False)
