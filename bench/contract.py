"""The defense contract: what a defense hands to the attacks and certifier.

A defense is a config dataclass plus ``fit(data, config) -> DefendedModel``.
The DefendedModel returns logits *exactly as deployed* and declares what an
honest adaptive attacker needs to know (Athalye et al. 2018; Tramer et al.
2020): whether the forward is random (attack with EOT), a differentiable
stand-in for non-differentiable parts (attack with BPDA), and a detector
(attack the detector jointly; only undetected misclassifications count).
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Optional

import torch
from torch import nn


class DefendedModel(nn.Module):
    """An ``nn.Module`` whose ``forward(x)`` returns the deployed logits.

    Inputs are images in [0, 1] of shape (N, C, H, W); the output is float
    logits of shape (N, num_classes). Subclasses override what is true of
    them:

    - ``stochastic``: True when two forwards of one input may differ.
    - ``differentiable_forward(x)``: a differentiable approximation of the
      forward used for gradients (BPDA); the default is the forward itself.
    - ``detect``: None, or a method returning one bool per sample (True =
      flagged as adversarial).
    - ``detect_margin``: None, or a differentiable per-sample score that is
      > 0 exactly where ``detect`` flags, so attacks can optimise against the
      detector jointly (Carlini & Wagner 2017, "Adversarial examples are not
      easily detected"). A defense with ``detect`` should provide it.
    - ``extra_attacks()``: attacks the defense's author adds to the battery.
    - ``representation(x)``: the internal representation g(x) that the
      classifier reads (N, ...), differentiable in x, or None (the default)
      when the defense exposes none; measured by
      ``bench.representation.representation_vulnerability``.
    """

    stochastic: ClassVar[bool] = False
    detect: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
    detect_margin: Optional[Callable[[torch.Tensor], torch.Tensor]] = None

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = int(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x) -> logits")

    def differentiable_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits whose gradient an attacker may follow (BPDA surface)."""
        return self(x)

    def extra_attacks(self) -> list[Any]:
        """Defense-specific attacks appended to the standard battery."""
        return []

    def representation(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """The representation g(x) the prediction is read from, or None when there is none to measure."""
        return None

    def describe_surface(self) -> dict[str, Any]:
        """What the defense declares to attackers, for summaries and `validate`."""
        bpda = type(self).differentiable_forward is not DefendedModel.differentiable_forward
        return {
            "stochastic": bool(self.stochastic),
            "bpda": bool(bpda),
            "detector": self.detect is not None,
            "extra_attacks": [getattr(a, "name", repr(a)) for a in self.extra_attacks()],
        }


class ClassifierModel(DefendedModel):
    """The simplest defended model: a deterministic network, deployed as is."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__(num_classes)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def representation(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """The penultimate features: everything before a final linear head of an ``nn.Sequential``
        (for bench's own networks, the trunk's 256 ReLU features); None for other networks."""
        if isinstance(self.net, nn.Sequential) and len(self.net) > 1 and isinstance(self.net[-1], nn.Linear):
            return self.net[:-1](x)
        return None
