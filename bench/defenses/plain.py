"""`plain`: an undefended classifier trained with cross-entropy (the baseline)."""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from ..config import TrainConfig
from ..contract import ClassifierModel, DefendedModel
from ..data import Dataset
from ..nets import make_classifier
from ..registry import register_defense
from ..training import seed_everything, train_from_config


@dataclass
class PlainConfig(TrainConfig):
    """Only the training budget (TrainConfig's defaults: 5 epochs, batch 128, Adam 1e-3)."""


def build_plain(data: Dataset, config: TrainConfig) -> DefendedModel:
    return ClassifierModel(make_classifier(data.input_shape, data.num_classes), data.num_classes)


@register_defense("plain", config=PlainConfig, build=build_plain)
def fit_plain(data: Dataset, config: PlainConfig) -> DefendedModel:
    """Undefended CNN trained with cross-entropy; the baseline every defense must beat."""
    seed_everything(config.seed)  # the weight init draws from the global generator
    model = build_plain(data, config).to(data.x_train.device)
    train_from_config(model, data.x_train, data.y_train, cross_entropy, config, desc="plain")
    return model


def cross_entropy(model, x, y):
    """The plain training loss: cross-entropy of the model's logits."""
    return F.cross_entropy(model(x), y)
