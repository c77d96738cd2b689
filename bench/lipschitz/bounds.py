"""Pairwise Lipschitz bounds of a network's logit differences: guaranteed (certificates) or trainable.

``certified_bounds`` reads a network (``structure``), computes every norm
LipLT needs as a guaranteed upper bound (``norms``: exact Gram eigenvalue
where the operator is small enough, the Fourier bound for a single large
convolution, otherwise the smallest product of bounds of its pieces) and
returns, per class pair (a, b), upper bounds on the Lipschitz constant of
z_a - z_b: the LipLT bound and the product of spectral norms.

``TrainingBound`` computes the same LipLT recursion with norms estimated by
power iteration on persistent vectors (one step per call, as in Fazlyab et
al.'s training), differentiable in the weights. Those estimates approach
the norms from below, so a training bound is *not* a certificate.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from .liplt import (class_difference_rows, naive_pairwise, naive_segment, pairwise_lipschitz, segment_lipschitz,
                    tail_gain)
from .norms import DEFAULT_GRAM_LIMIT, exact_norm, fourier_conv_bound, power_iteration
from .ops import Chain, ConvOp, LinearOp, ReshapeOp, is_conv_like
from .structure import NotCertifiable, Segment, read_layers, segments


def _device(net: nn.Module) -> torch.device:
    return next((p.device for p in net.parameters()), torch.device("cpu"))


class GuaranteedNorms:
    """Upper bounds on ||W_k ... W_j|| within one segment (memoised; records which method gave each)."""

    def __init__(self, seg: Segment, device: torch.device, gram_limit: int = DEFAULT_GRAM_LIMIT) -> None:
        self.seg, self.device, self.gram_limit = seg, device, int(gram_limit)
        self.cache: dict[tuple[int, int], float] = {}
        self.methods: dict[tuple[int, int], str] = {}

    def __call__(self, j: int, k: int) -> float:
        if (j, k) not in self.cache:
            self.cache[(j, k)], self.methods[(j, k)] = self._bound(j, k)
        return self.cache[(j, k)]

    def _bound(self, j: int, k: int) -> tuple[float, str]:
        op = Chain(self.seg.layers[j:k + 1]) if k > j else self.seg.layers[j]
        if min(op.in_dim, op.out_dim) <= self.gram_limit:
            return exact_norm(op, self.device), "exact"
        candidates: list[tuple[float, str]] = []
        if j == k and is_conv_like(op):
            conv = next(p for p in op.parts if isinstance(p, ConvOp))
            candidates.append((fourier_conv_bound(conv), "fourier"))
        elif j == k:
            candidates.append((_parts_product(op, self.device, self.gram_limit), "product"))
        for s in range(j, k):
            candidates.append((self(j, s) * self(s + 1, k), "product"))
        if not candidates:
            raise NotCertifiable(f"no guaranteed norm bound for {op.describe()}")
        return min(candidates, key=lambda c: c[0])


def _parts_product(op: LinearOp, device: torch.device, gram_limit: int) -> float:
    """Product over an operator's pieces of their guaranteed norms (a reshape has norm 1)."""
    total = 1.0
    for part in op.parts:
        if isinstance(part, ReshapeOp):
            continue
        if min(part.in_dim, part.out_dim) <= gram_limit:
            total *= exact_norm(part, device)
        elif isinstance(part, ConvOp):
            total *= fourier_conv_bound(part)
        else:
            raise NotCertifiable(f"{part.describe()} is too large for an exact norm (limit {gram_limit})")
    return total


@dataclass
class PairwiseBounds:
    """Upper bounds on Lip(z_a - z_b) for all class pairs, with how they were obtained."""

    liplt: torch.Tensor  # (C, C), float64, zero diagonal
    naive: torch.Tensor  # (C, C): product of spectral norms, same norms
    segments: int
    methods: dict[str, int] = field(default_factory=dict)  # norm method -> how many norms it gave
    layers: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def best(self) -> torch.Tensor:
        """Elementwise minimum: both are guaranteed, so the smaller one certifies."""
        return torch.minimum(self.liplt, self.naive)

    def ratio_summary(self) -> dict[str, float]:
        """LipLT / product-of-norms over the off-diagonal pairs: how much tighter LipLT is."""
        off = ~torch.eye(len(self.liplt), dtype=torch.bool, device=self.liplt.device)
        ratio = (self.liplt[off] / self.naive[off]).double()
        return {"median": float(ratio.median()), "min": float(ratio.min()), "max": float(ratio.max())}


def certified_bounds(net: nn.Module, input_shape: Sequence[int], num_classes: int,
                     gram_limit: int = DEFAULT_GRAM_LIMIT) -> PairwiseBounds:
    """Guaranteed pairwise bounds for ``net`` on inputs of ``input_shape`` (raises NotCertifiable)."""
    start = time.perf_counter()
    device = _device(net)
    items = read_layers(net, input_shape)
    segs = segments(items)
    gain_liplt, gain_naive = 1.0, 1.0
    providers = []
    for seg in segs[:-1]:
        norm = GuaranteedNorms(seg, device, gram_limit)
        providers.append(norm)
        tail = tail_gain(seg.tail)
        gain_liplt *= float(segment_lipschitz(seg, norm)) * tail
        gain_naive *= float(naive_segment(seg, norm)) * tail
    last = segs[-1]
    norm = GuaranteedNorms(last, device, gram_limit)
    providers.append(norm)
    if last.layers[-1].out_shape != (num_classes,):
        raise NotCertifiable(f"the last layer gives {last.layers[-1].out_shape}, not {num_classes} logits")
    with torch.no_grad():
        rows = [r * (1.0 + 1e-6) for r in class_difference_rows(last.layers, num_classes, torch.float64, device)]
        liplt = gain_liplt * pairwise_lipschitz(last, norm, rows)
        naive = gain_naive * naive_pairwise(last, norm, rows)
    methods: dict[str, int] = {}
    for provider in providers:
        for method in provider.methods.values():
            methods[method] = methods.get(method, 0) + 1
    described = [item.describe() if isinstance(item, LinearOp) else item.name for item in items]
    return PairwiseBounds(liplt=liplt.cpu(), naive=naive.cpu(), segments=len(segs), methods=methods,
                          layers=described, seconds=time.perf_counter() - start)


class TrainingBound:
    """Differentiable LipLT pairwise bounds from power-iteration norm estimates (not guaranteed).

    Only for networks that are one segment (no max-pool), as in Fazlyab et
    al.'s architectures. Each call advances every persistent vector by
    ``iterations`` steps (detached) and returns ||A v|| through the live
    weights, so the optimiser sees the bound's gradient.
    """

    def __init__(self, net: nn.Module, input_shape: Sequence[int], num_classes: int, *, iterations: int = 1,
                 seed: int = 0) -> None:
        segs = segments(read_layers(net, input_shape))
        if len(segs) != 1:
            raise NotCertifiable("TrainingBound needs a network without pooling between its layers (one segment)")
        self.seg, self.num_classes, self.iterations = segs[0], int(num_classes), int(iterations)
        self.device = _device(net)
        generator = torch.Generator().manual_seed(seed)
        layers = self.seg.layers
        m = len(layers) - 1
        self.vectors = {
            (j, k): torch.randn((1, *layers[j].in_shape), generator=generator).to(self.device)
            for k in range(m) for j in range(k + 1)
        }

    def _norm(self, j: int, k: int) -> torch.Tensor:
        op = Chain(self.seg.layers[j:k + 1]) if k > j else self.seg.layers[j]
        with torch.no_grad():
            v = self.vectors[(j, k)]
            for _ in range(self.iterations):
                v = op.adjoint(op.apply(v / v.norm()))
            v = v / v.norm().clamp_min(1e-30)
            self.vectors[(j, k)] = v
        return op.apply(v).norm()

    def __call__(self) -> torch.Tensor:
        """(C, C) LipLT bounds of the current weights (float32, differentiable)."""
        cache: dict[tuple[int, int], torch.Tensor] = {}

        def norm(j: int, k: int) -> torch.Tensor:
            if (j, k) not in cache:
                cache[(j, k)] = self._norm(j, k)
            return cache[(j, k)]

        rows = class_difference_rows(self.seg.layers, self.num_classes, torch.float32, self.device)
        return pairwise_lipschitz(self.seg, norm, rows)


def power_iteration_bounds(net: nn.Module, input_shape: Sequence[int], num_classes: int,
                           iterations: int = 200) -> torch.Tensor:
    """LipLT pairwise *estimates* with well-converged power iteration: what a paper reports, not a certificate."""
    segs = segments(read_layers(net, input_shape))
    generator = torch.Generator().manual_seed(0)
    device = _device(net)
    gain = 1.0
    estimates = []
    for seg in segs:
        cache: dict[tuple[int, int], float] = {}

        def norm(j: int, k: int, seg=seg, cache=cache) -> float:
            if (j, k) not in cache:
                op = Chain(seg.layers[j:k + 1]) if k > j else seg.layers[j]
                cache[(j, k)] = power_iteration(op, iterations, generator=generator)[0]
            return cache[(j, k)]

        estimates.append(norm)
        if seg is not segs[-1]:
            gain *= float(segment_lipschitz(seg, norm)) * tail_gain(seg.tail)
    with torch.no_grad():
        rows = class_difference_rows(segs[-1].layers, num_classes, torch.float64, device)
        return (gain * pairwise_lipschitz(segs[-1], estimates[-1], rows)).cpu()
