"""The linear part of a network's layers as operators: apply, adjoint, shapes (biases dropped).

A bias shifts every output by a constant, so it never changes a Lipschitz
constant; what the bounds need is the linear map x -> W x of each layer and
its adjoint y -> W^T y. Convolutions are applied as the *actual* operator
(``conv2d`` with the layer's stride, padding, dilation and groups; the
adjoint is ``conv_transpose2d`` with the output padding that restores the
input shape), never as a reshaped kernel matrix, whose norm is a different
number. Weights are cast to the input's dtype on the fly, so the same
operator serves float32 training (differentiable through the live weights)
and float64 certification.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LinearOp:
    """A linear map between tensors of shape ``(N, *in_shape)`` and ``(N, *out_shape)``."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    def apply(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def in_dim(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_dim(self) -> int:
        return math.prod(self.out_shape)

    @property
    def parts(self) -> list["LinearOp"]:
        return [self]

    def describe(self) -> str:
        return f"{type(self).__name__}{self.in_shape}->{self.out_shape}"


class DenseOp(LinearOp):
    """``nn.Linear`` without its bias: x -> x W^T."""

    def __init__(self, module: nn.Linear) -> None:
        self.module = module
        self.in_shape = (module.in_features,)
        self.out_shape = (module.out_features,)

    def weight(self, like: torch.Tensor) -> torch.Tensor:
        return self.module.weight.to(like.dtype)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight(x).T

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self.weight(y)


class ConvOp(LinearOp):
    """``nn.Conv2d`` (zero padding) without its bias, as the operator on a fixed input size."""

    def __init__(self, module: nn.Conv2d, in_shape: Sequence[int]) -> None:
        self.module = module
        self.in_shape = tuple(int(s) for s in in_shape)
        channels, height, width = self.in_shape
        kh, kw = module.kernel_size
        out_h = (height + 2 * module.padding[0] - module.dilation[0] * (kh - 1) - 1) // module.stride[0] + 1
        out_w = (width + 2 * module.padding[1] - module.dilation[1] * (kw - 1) - 1) // module.stride[1] + 1
        self.out_shape = (module.out_channels, out_h, out_w)
        # conv_transpose2d maps back to (out-1)*stride - 2*pad + dil*(k-1) + 1 pixels; the rows and
        # columns a strided conv never reads need this output padding to restore the input size.
        self.output_padding = tuple(
            size - ((out - 1) * s - 2 * p + d * (k - 1) + 1)
            for size, out, s, p, d, k in zip((height, width), (out_h, out_w), module.stride, module.padding,
                                              module.dilation, module.kernel_size)
        )

    def weight(self, like: torch.Tensor) -> torch.Tensor:
        return self.module.weight.to(like.dtype)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        m = self.module
        return F.conv2d(x, self.weight(x), None, m.stride, m.padding, m.dilation, m.groups)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        m = self.module
        return F.conv_transpose2d(y, self.weight(y), None, m.stride, m.padding, self.output_padding, m.groups,
                                  m.dilation)


class ReshapeOp(LinearOp):
    """``nn.Flatten`` (or any reshape): an isometry, norm exactly 1."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        self.in_shape = tuple(int(s) for s in in_shape)
        self.out_shape = tuple(int(s) for s in out_shape)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), *self.out_shape)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y.reshape(len(y), *self.in_shape)


class Chain(LinearOp):
    """Linear maps applied one after another (no activation between them)."""

    def __init__(self, ops: Sequence[LinearOp]) -> None:
        if not ops:
            raise ValueError("a Chain needs at least one operator")
        self.ops = list(ops)
        self.in_shape = self.ops[0].in_shape
        self.out_shape = self.ops[-1].out_shape

    @property
    def parts(self) -> list[LinearOp]:
        return [p for op in self.ops for p in op.parts]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op.apply(x)
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        for op in reversed(self.ops):
            y = op.adjoint(y)
        return y

    def describe(self) -> str:
        return " . ".join(op.describe() for op in reversed(self.ops))


def chain(ops: Sequence[LinearOp]) -> LinearOp:
    """One operator for a run of linear maps: the operator itself when there is one."""
    flat = [p for op in ops for p in op.parts]
    return flat[0] if len(flat) == 1 else Chain(flat)


def is_conv_like(op: LinearOp) -> bool:
    """True for a single convolution, possibly with reshapes around it (Fourier-boundable)."""
    convs = [p for p in op.parts if isinstance(p, ConvOp)]
    return len(convs) == 1 and all(isinstance(p, (ConvOp, ReshapeOp)) for p in op.parts)
