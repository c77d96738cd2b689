"""`worst_case_mi`: a representation trained to keep its information under attack, then a classifier on it.

Zhu, Zhang & Evans, "Learning Adversarially Robust Representations via
Worst-Case Mutual Information Maximization", ICML 2020 (arXiv 2002.11798).

1. Without labels, an encoder g and a critic T are trained together to
   maximise an MI lower bound (bench.information; InfoNCE by default, DV as
   the authors' default is ``bound=dv``) on (x', g(x')), where x' are the
   worst-case inputs within the L-inf eps: PGD that lowers the critic's
   bound through g (bench.representation.worst_case_inputs), started from x
   as in their code. eps ramps up over ``warmup_epochs`` (as
   adversarial_training).
2. The encoder is frozen and a classifier head (an MLP, or linear with
   ``head_hidden=0``) is trained with cross-entropy on g(x) of clean inputs:
   the paper's standard downstream classifier.

Deployed: head(g(x)), deterministic, nothing hidden from attackers (the
battery attacks encoder and head end to end); ``representation(x)`` = g(x).

Scaled down for a few minutes on two CPU cores with mnist5k's 4,000 images
(the authors' MNIST setup: a 3-conv + BatchNorm encoder with a 1024-unit
layer, a critic with 2,048 hidden units, Adam at 1e-4 for hundreds of
epochs on 60,000 images, 7 PGD steps per batch): bench's trunk (2 conv,
256 features) plus a linear map to 64 dims as in their encoder, a global
256-unit critic (theirs scores z against every location of a conv feature
map; that local variant trained slower here: 0.39 after 2 epochs against
0.74), Adam at 1e-3, 8 epochs, 3 PGD steps. A global MI objective needs no
class structure in z, so the head's clean accuracy stays well below a
supervised network's at this budget. The critic is used only in training
and is not part of the deployed model's state.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig, param
from ..contract import DefendedModel
from ..data import Dataset
from ..information import BOUNDS, SeparableCritic, make_critic, mi_lower_bound
from ..nets import make_trunk
from ..registry import DefenseConfigError, register_defense
from ..representation import worst_case_inputs
from ..training import seed_everything, train_from_config
from .adversarial import ramped_eps


class WorstCaseMIModel(DefendedModel):
    """Encoder g (trunk -> linear, ``z_dim`` dims) and a classifier head on g(x)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, z_dim: int, head_hidden: int) -> None:
        super().__init__(num_classes)
        trunk = make_trunk(input_shape)
        self.encoder = nn.Sequential(trunk, nn.Linear(trunk.out_features, z_dim))
        if head_hidden > 0:
            self.head: nn.Module = nn.Sequential(nn.Linear(z_dim, head_hidden), nn.ReLU(),
                                                 nn.Linear(head_hidden, num_classes))
        else:
            self.head = nn.Linear(z_dim, num_classes)

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


@dataclass
class WorstCaseMIConfig(TrainConfig):
    eps: Optional[float] = param(None, min=0, max=1)  # None: the dataset's headline L-inf eps (0.3 on MNIST)
    steps: int = param(3, min=0)  # PGD steps per batch for the worst case (0: plain MI maximisation)
    step_size: Optional[float] = param(None, gt=0)  # None: 2.5 * eps / steps
    warmup_epochs: int = param(2, min=0)  # eps ramps linearly from 0 to eps over these epochs
    # InfoNCE: the authors' README notes it may train slightly better than DV (their default); on mnist5k,
    # 2 epochs without the attack, the head reached 0.742 on InfoNCE and 0.656 on DV.
    bound: str = param("infonce", choices=BOUNDS)
    z_dim: int = param(64, min=1)
    critic_hidden: int = param(256, min=1)
    critic_embed: int = param(64, min=1)
    head_hidden: int = param(256, min=0)  # 0: a linear head
    # 40: the head is cheap (it reads 64 precomputed features); on mnist5k's encoder 10 epochs gave 0.78, 40 gave 0.84
    head_epochs: int = param(40, min=1)
    epochs: int = param(8, min=1)  # encoder epochs


def build_worst_case_mi(data: Dataset, config: WorstCaseMIConfig) -> WorstCaseMIModel:
    return WorstCaseMIModel(data.input_shape, data.num_classes, config.z_dim, config.head_hidden)


class _EncoderAndCritic(nn.Module):
    """What stage 1 optimises: the deployed model's encoder and the (discarded) critic."""

    def __init__(self, encoder: nn.Module, critic: SeparableCritic) -> None:
        super().__init__()
        self.encoder, self.critic = encoder, critic

    def bound(self, x: torch.Tensor, bound: str) -> torch.Tensor:
        return mi_lower_bound(self.critic.scores(x, self.encoder(x)), bound)


def train_encoder(model: WorstCaseMIModel, data: Dataset, config: WorstCaseMIConfig) -> float:
    """Stage 1: maximise the worst-case MI bound (labels unused); returns seconds."""
    eps = data.threat.linf if config.eps is None else float(config.eps)
    if eps < 0:
        raise DefenseConfigError(f"bad eps {eps}; valid choices: a number in [0, 1]")
    torch.manual_seed(config.seed + 7)  # the critic's initialisation
    critic = make_critic(data.input_shape, config.z_dim, config.critic_hidden, config.critic_embed)
    joint = _EncoderAndCritic(model.encoder, critic.to(data.x_train.device))
    batches = (len(data.x_train) + config.batch_size - 1) // config.batch_size
    next_eps = ramped_eps(eps, config.warmup_epochs * batches)

    def worst_case(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return worst_case_inputs(joint.encoder, joint.critic, x, next_eps(), steps=config.steps,
                                 step_size=config.step_size, bound=config.bound)

    return train_from_config(joint, data.x_train, data.y_train, lambda m, x, y: -m.bound(x, config.bound), config,
                             desc="worst_case_mi encoder", transform=worst_case if config.steps > 0 else None)


def train_head(model: WorstCaseMIModel, data: Dataset, config: WorstCaseMIConfig) -> float:
    """Stage 2: cross-entropy on the frozen representation of the clean training images."""
    model.encoder.eval()
    with torch.no_grad():
        features = torch.cat([model.encoder(data.x_train[i : i + 1000]) for i in range(0, len(data.x_train), 1000)])
    return train_from_config(model.head, features, data.y_train, lambda m, f, y: F.cross_entropy(m(f), y), config,
                             desc="worst_case_mi head", epochs=config.head_epochs, seed_offset=1)


@register_defense("worst_case_mi", config=WorstCaseMIConfig, build=build_worst_case_mi)
def fit_worst_case_mi(data: Dataset, config: WorstCaseMIConfig) -> DefendedModel:
    """Worst-case MI representation (Zhu, Zhang, Evans 2020) learned without labels, MLP classifier on top."""
    seed_everything(config.seed)  # the weight init draws from the global generator
    model = build_worst_case_mi(data, config).to(data.x_train.device)
    train_encoder(model, data, config)
    train_head(model, data, config)
    return model.eval()
