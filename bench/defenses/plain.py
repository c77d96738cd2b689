"""`plain`: an undefended classifier trained with cross-entropy (the baseline)."""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from ..contract import ClassifierModel, DefendedModel
from ..data import Dataset
from ..nets import make_classifier
from ..registry import register_defense
from ..training import train


@dataclass
class PlainConfig:
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0


def build_plain(data: Dataset, config: PlainConfig) -> DefendedModel:
    return ClassifierModel(make_classifier(data.input_shape, data.num_classes), data.num_classes)


@register_defense("plain", config=PlainConfig, build=build_plain)
def fit_plain(data: Dataset, config: PlainConfig) -> DefendedModel:
    """Undefended CNN trained with cross-entropy; the baseline every defense must beat."""
    model = build_plain(data, config).to(data.x_train.device)
    train(
        model,
        data.x_train,
        data.y_train,
        lambda m, x, y: F.cross_entropy(m(x), y),
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=config.seed,
        desc="plain",
    )
    return model
