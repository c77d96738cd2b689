"""The defense contract: what a defense hands to the attacks and certifier.

A defense is a config dataclass plus ``fit(data, config) -> DefendedModel``.
The DefendedModel returns logits *exactly as deployed* and declares what an
honest adaptive attacker needs to know (Athalye et al. 2018; Tramer et al.
2020): whether the forward is random (attack with EOT), a differentiable
stand-in for non-differentiable parts (attack with BPDA), and a detector
(attack the detector jointly; only undetected misclassifications count).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

import torch
from torch import nn


@dataclass(frozen=True)
class InputTransform:
    """A deployed forward that is ``network(transform(x))``, told to attackers piece by piece.

    For defenses that put a non-differentiable input transform in front of a
    network (quantisation, bit-depth reduction, JPEG-like compression, a
    median filter). A straight-through gradient (``differentiable_forward``)
    is one way to attack them; these surfaces let an attack do better
    (``bench.attacks.quantized``): optimise a smooth relaxation, search the
    transformed images reachable within eps, and move the input while its
    transformed image (and so the prediction) stays fixed.

    - ``transform(x)``: the exact, deterministic transform the deployed
      forward applies; ``network(transform(x))`` must equal ``forward(x)``.
    - ``network(t)``: logits from a transformed input (differentiable).
    - ``relaxed(x, temperature)`` (optional): a differentiable stand-in for
      ``transform`` that tends to it as ``temperature`` -> 0 (e.g. sigmoids
      at the rounding thresholds instead of rounding).
    - ``preimage(t)`` (optional, element-wise non-decreasing quantisers
      only): per-element bounds ``(lo, hi)`` such that every x with
      ``lo <= x <= hi`` has ``transform(x) == t``; then the transformed
      values reachable from x within eps are exactly the levels between
      ``transform(x - eps)`` and ``transform(x + eps)``, and ``transform``
      applied to values between two levels rounds them to a level.
    - ``detect_margin_at(x, t)`` (optional, with a detector): the model's
      ``detect_margin(x)`` for an x whose transformed image is ``t``,
      differentiable in x with ``t`` held constant (no gradient through the
      transform).

    Declare it from ``DefendedModel.input_transform()``; a plugin does the
    same in its own model class.
    """

    transform: Callable[[torch.Tensor], torch.Tensor]
    network: Callable[[torch.Tensor], torch.Tensor]
    relaxed: Optional[Callable[[torch.Tensor, float], torch.Tensor]] = None
    preimage: Optional[Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]] = None
    detect_margin_at: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None


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
    - ``input_transform()``: None (the default), or an ``InputTransform``
      when the forward is ``network(transform(x))`` with a non-differentiable
      transform; quantisation-aware attacks then use its surfaces.
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

    def input_transform(self) -> Optional[InputTransform]:
        """The deployed forward split as ``network(transform(x))``, with optional relaxations; None: not declared."""
        return None

    def extra_attacks(self) -> list[Any]:
        """Defense-specific attacks appended to the standard battery."""
        return []

    def deterministic_network(self) -> tuple[Optional[nn.Module], str]:
        """The network the deployed forward equals, for deterministic (Lipschitz) certificates.

        ``(net, "")`` promises ``forward(x) == net(x)`` for every input, with
        ``net`` a feed-forward module (``bench.lipschitz.structure`` says which
        layers a bound can read); ``(None, reason)`` says why there is none
        (a random forward, input quantisation, a detector, ...). The default
        claims nothing, so the certificate reports "not applicable" with the
        reason. The certificate checks the claim on the inputs it certifies.
        """
        if self.stochastic:
            return None, "the deployed forward is stochastic; randomized smoothing certifies it, a Lipschitz bound does not"
        return None, f"{type(self).__name__} declares no network its deployed forward equals (deterministic_network)"

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
            "input_transform": self.input_transform() is not None,
            "extra_attacks": [getattr(a, "name", repr(a)) for a in self.extra_attacks()],
        }


class ClassifierModel(DefendedModel):
    """The simplest defended model: a deterministic network, deployed as is."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__(num_classes)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def deterministic_network(self) -> tuple[Optional[nn.Module], str]:
        """``net``, unless a subclass changed the forward or made it random (then it must declare its own)."""
        if self.stochastic or type(self).forward is not ClassifierModel.forward:
            return super().deterministic_network()
        return self.net, ""

    def representation(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """The penultimate features: everything before a final linear head of an ``nn.Sequential``
        (for bench's own networks, the trunk's 256 ReLU features); None for other networks."""
        if isinstance(self.net, nn.Sequential) and len(self.net) > 1 and isinstance(self.net[-1], nn.Linear):
            return self.net[:-1](x)
        return None
