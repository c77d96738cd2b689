"""Read a feed-forward network as the layers a Lipschitz bound understands, or refuse it.

A network is accepted only when it is a sequence (``nn.Sequential`` and the
bench containers whose forward is exactly a sequence) of layers whose
Lipschitz behaviour is known for certain:

- linear maps: ``nn.Linear``, ``nn.Conv2d`` with zero padding, ``nn.Flatten``
  (consecutive ones are merged into one operator);
- slope-restricted element-wise activations, slope in [lo, hi] everywhere:
  ReLU [0, 1], LeakyReLU(a) [min(a, 1), max(a, 1)], Tanh and Softplus [0, 1],
  Sigmoid [0, 1/4];
- max-pooling with non-overlapping windows (kernel = stride, no padding, no
  dilation), which is 1-Lipschitz in L2: each output moves by at most the
  largest change in its own window, and windows are disjoint. Overlapping
  max-pooling is *not* 1-Lipschitz in L2 (a pixel counts in several windows)
  and is refused;
- ``nn.Identity`` and ``nn.Dropout`` in eval mode (identities).

Anything else raises ``NotCertifiable`` naming the layer: a bound is never
guessed. The result is a list of ``Segment``s: runs of linear layers with a
slope-restricted activation between each pair, where LipLT's loop
transformation applies, separated by the activations and pools it cannot
see through (the bounds multiply across those).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

import torch
from torch import nn

from ..nets import SmallConvTrunk
from .ops import ConvOp, DenseOp, LinearOp, ReshapeOp, chain


class NotCertifiable(Exception):
    """The network contains something no guaranteed bound here covers; the message says what."""


@dataclass(frozen=True)
class Activation:
    """An element-wise activation whose slope lies in [lo, hi] everywhere."""

    name: str
    lo: float
    hi: float

    @property
    def mid(self) -> float:
        """The loop transformation's linear part: phi(z) = mid * z + psi(z)."""
        return 0.5 * (self.lo + self.hi)

    @property
    def spread(self) -> float:
        """psi's Lipschitz constant: half the slope range."""
        return 0.5 * (self.hi - self.lo)

    @property
    def gain(self) -> float:
        """phi's own Lipschitz constant."""
        return max(abs(self.lo), abs(self.hi))


@dataclass(frozen=True)
class Contraction:
    """A non-linear map known to be ``lipschitz``-Lipschitz in L2 (non-overlapping max-pooling)."""

    name: str
    lipschitz: float


@dataclass
class Segment:
    """layers[0], acts[0], layers[1], ..., layers[m]; then ``tail`` before the next segment."""

    layers: list[LinearOp] = field(default_factory=list)
    acts: list[Activation] = field(default_factory=list)
    tail: list[Union[Activation, Contraction]] = field(default_factory=list)


# bench containers whose forward is exactly ``getattr(module, attr)(x)``.
TRANSPARENT = {SmallConvTrunk: "layers"}


def leaves(net: nn.Module) -> list[nn.Module]:
    """The modules ``net`` applies in order, looking through known sequential containers."""
    if isinstance(net, nn.Sequential):
        return [leaf for child in net for leaf in leaves(child)]
    for kind, attr in TRANSPARENT.items():
        if type(net) is kind:
            return leaves(getattr(net, attr))
    if any(True for _ in net.children()):
        raise NotCertifiable(f"{type(net).__name__} is a container whose forward the bound cannot read")
    return [net]


def _activation(m: nn.Module) -> Activation | None:
    if type(m) is nn.ReLU:
        return Activation("relu", 0.0, 1.0)
    if type(m) is nn.LeakyReLU:
        a = float(m.negative_slope)
        return Activation(f"leaky_relu({a:g})", min(a, 1.0), max(a, 1.0))
    if type(m) is nn.Tanh:
        return Activation("tanh", 0.0, 1.0)
    if type(m) is nn.Softplus:  # slope sigmoid(beta x) in (0, 1), exactly 1 above the threshold
        return Activation("softplus", 0.0, 1.0)
    if type(m) is nn.Sigmoid:
        return Activation("sigmoid", 0.0, 0.25)
    return None


def _pairs(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value), int(value))  # type: ignore[return-value]


def _maxpool(m: nn.MaxPool2d) -> Contraction:
    kernel, stride = _pairs(m.kernel_size), _pairs(m.stride if m.stride is not None else m.kernel_size)
    if kernel != stride or _pairs(m.padding) != (0, 0) or _pairs(m.dilation) != (1, 1) or m.return_indices:
        raise NotCertifiable(
            f"MaxPool2d(kernel={kernel}, stride={stride}, padding={m.padding}, dilation={m.dilation}) has "
            "overlapping or padded windows: it is not 1-Lipschitz in L2 and no bound here covers it"
        )
    return Contraction(f"maxpool{kernel[0]}x{kernel[1]}", 1.0)


def _linear(m: nn.Module, shape: tuple[int, ...]) -> LinearOp | None:
    if type(m) is nn.Linear:
        if shape != (m.in_features,):
            raise NotCertifiable(f"Linear({m.in_features}) receives inputs of shape {shape}")
        return DenseOp(m)
    if type(m) is nn.Conv2d:
        if m.padding_mode != "zeros" or isinstance(m.padding, str) and m.padding != "valid":
            raise NotCertifiable(f"Conv2d with padding {m.padding!r} / mode {m.padding_mode!r}: only numeric zero "
                                 "padding is bounded here")
        if len(shape) != 3:
            raise NotCertifiable(f"Conv2d receives inputs of shape {shape}")
        return ConvOp(m, shape)
    if type(m) is nn.Flatten:
        if m.start_dim != 1 or m.end_dim != -1:
            raise NotCertifiable(f"Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}) is not the batch flatten")
        size = 1
        for s in shape:
            size *= s
        return ReshapeOp(shape, (size,))
    return None


def read_layers(net: nn.Module, input_shape: Sequence[int]) -> list[Union[LinearOp, Activation, Contraction]]:
    """The network as linear operators, activations and contractions, in order (merged linear runs)."""
    shape = tuple(int(s) for s in input_shape)
    out: list[Union[LinearOp, Activation, Contraction]] = []
    run: list[LinearOp] = []
    for m in leaves(net):
        if type(m) is nn.Identity or (type(m) is nn.Dropout and not m.training):
            continue
        op = _linear(m, shape)
        if op is not None:
            run.append(op)
            shape = op.out_shape
            continue
        if run:
            out.append(chain(run))
            run = []
        act = _activation(m)
        if act is not None:
            out.append(act)
        elif type(m) is nn.MaxPool2d:
            out.append(_maxpool(m))
            with torch.no_grad():
                shape = tuple(m(torch.zeros((1, *shape))).shape[1:])
        else:
            raise NotCertifiable(f"layer {type(m).__name__} is not one the Lipschitz bound knows")
    if run:
        out.append(chain(run))
    return out


def segments(items: Sequence[Union[LinearOp, Activation, Contraction]]) -> list[Segment]:
    """Split into LipLT segments; the last one must end with a linear layer (the logits)."""
    result = [Segment()]
    pending: Activation | None = None  # an activation after the current segment's last layer
    for item in items:
        current = result[-1]
        if isinstance(item, LinearOp):
            if current.tail:
                result.append(Segment())
                current = result[-1]
            if pending is not None:
                current.acts.append(pending)
                pending = None
            current.layers.append(item)
        elif isinstance(item, Activation):
            if pending is not None or current.tail or not current.layers:  # not between two linear layers
                current.tail.extend([pending] if pending is not None else [])
                current.tail.append(item)
                pending = None
            else:
                pending = item
        else:  # Contraction
            if pending is not None:
                current.tail.append(pending)
                pending = None
            current.tail.append(item)
    if pending is not None or result[-1].tail or not result[-1].layers:
        raise NotCertifiable("the network does not end with a linear layer, so its logit differences are not bounded here")
    return result
