"""Spectral norms of linear operators: guaranteed upper bounds for certificates, estimates for training.

Power iteration converges to the largest singular value *from below*: every
iterate is a lower bound, so on its own it cannot back a certificate.
Certificates here use numbers that are upper bounds by construction:

- ``exact_norm``: the operator's Gram matrix (on its smaller side), built by
  applying the operator and its adjoint to every basis vector in float64,
  and its largest eigenvalue from LAPACK (``eigvalsh``). Exact up to
  rounding, which ``SAFETY`` covers many times over.
- ``fourier_conv_bound``: for one convolution too large for a Gram matrix.
  A zero-padded convolution on an H x W input equals "embed the input in an
  N_h x N_w torus, circular convolution, crop" whenever N >= H + 2 * padding
  (no tap wraps onto input pixels), and a stride only drops outputs; both
  embedding and cropping have norm <= 1. The circular convolution's norm is
  exactly the largest singular value of the kernel's 2-D DFT over the
  torus's frequencies (Sedghi, Gupta, Long, ICLR 2019), so that maximum is
  an upper bound on the strided, zero-padded operator.
- products: ||A B|| <= ||A|| ||B|| when nothing smaller is available.

``power_iteration`` (lower bounds) serves training and as a check: a
guaranteed bound below a power-iteration estimate would be a bug.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from .ops import ConvOp, LinearOp

# Relative slack on every computed norm: float64 Gram/eigvalsh errors are ~1e-13 relative here.
SAFETY = 1e-6
# Largest Gram matrix side computed exactly (float64 eigvalsh of 4096 x 4096: a few seconds on 2 cores).
DEFAULT_GRAM_LIMIT = 4096


def _basis(dim: int, start: int, stop: int, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    block = torch.zeros((stop - start, dim), dtype=like.dtype, device=like.device)
    block[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
    return block.reshape(stop - start, *shape)


@torch.no_grad()
def gram_matrix(op: LinearOp, device: torch.device, chunk: int = 512) -> torch.Tensor:
    """A^T A (when in_dim <= out_dim) or A A^T, in float64, from the operator and its adjoint."""
    like = torch.empty(0, dtype=torch.float64, device=device)
    if op.in_dim <= op.out_dim:
        dim, shape, first, second = op.in_dim, op.in_shape, op.apply, op.adjoint
    else:
        dim, shape, first, second = op.out_dim, op.out_shape, op.adjoint, op.apply
    cols = [second(first(_basis(dim, i, min(i + chunk, dim), shape, like))).reshape(-1, dim)
            for i in range(0, dim, chunk)]
    gram = torch.cat(cols)
    return 0.5 * (gram + gram.T)  # symmetric up to rounding; make it exactly so for eigvalsh


def exact_norm(op: LinearOp, device: torch.device) -> float:
    """||A||_2 from the Gram matrix's largest eigenvalue (float64), times 1 + SAFETY."""
    gram = gram_matrix(op, device)
    try:
        top = float(torch.linalg.eigvalsh(gram).max())
    except torch.linalg.LinAlgError:  # LAPACK's divide-and-conquer can fail on an ill-conditioned Gram
        top = largest_eigenvalue_fallback(gram)
    return math.sqrt(max(top, 0.0)) * (1.0 + SAFETY)


def largest_eigenvalue_fallback(gram: torch.Tensor) -> float:
    """The largest eigenvalue of a symmetric PSD matrix by another LAPACK driver (scipy's MRRR, the top one only);
    if that fails too, Gershgorin's bound (the largest absolute row sum), which is never below it."""
    import numpy as np
    import scipy.linalg

    matrix = gram.detach().cpu().numpy()
    n = matrix.shape[0]
    try:
        return float(scipy.linalg.eigvalsh(matrix, subset_by_index=[n - 1, n - 1], driver="evr")[0])
    except (np.linalg.LinAlgError, ValueError):
        return float(np.abs(matrix).sum(axis=1).max())


@torch.no_grad()
def fourier_conv_bound(op: ConvOp) -> float:
    """Upper bound on a zero-padded, strided, dilated, grouped convolution's L2 operator norm."""
    m = op.module
    weight = m.weight.detach().to(torch.float64).cpu()
    out_c, in_per_group, kh, kw = weight.shape
    groups = m.groups
    full = torch.zeros((out_c, in_per_group * groups, kh, kw), dtype=torch.float64)
    per_out = out_c // groups
    for g in range(groups):  # grouped conv = block-diagonal channel matrix
        full[g * per_out:(g + 1) * per_out, g * in_per_group:(g + 1) * in_per_group] = weight[g * per_out:(g + 1) * per_out]
    _, height, width = op.in_shape
    sizes = (height + 2 * m.padding[0], width + 2 * m.padding[1])
    torus = torch.zeros((out_c, full.shape[1], *sizes), dtype=torch.float64)
    for a in range(kh):
        for b in range(kw):  # tap (a, b) sits at offset dilation * (a, b); taps that alias add up, as on the torus
            torus[:, :, (m.dilation[0] * a) % sizes[0], (m.dilation[1] * b) % sizes[1]] += full[:, :, a, b]
    spectrum = torch.fft.fft2(torus)  # (out, in, N_h, N_w)
    per_frequency = spectrum.permute(2, 3, 0, 1).reshape(-1, out_c, full.shape[1])
    top = float(torch.linalg.matrix_norm(per_frequency, ord=2).max())
    return top * (1.0 + SAFETY)


def power_iteration(op: LinearOp, iterations: int, vector: Optional[torch.Tensor] = None,
                    generator: Optional[torch.Generator] = None) -> tuple[float, torch.Tensor]:
    """A lower bound on ||A||_2 after ``iterations`` steps, and the last unit vector (float64)."""
    device = _device_of(op)
    with torch.no_grad():
        v = vector if vector is not None else torch.randn((1, *op.in_shape), generator=generator, dtype=torch.float64).to(device)
        v = v / v.norm()
        estimate = 0.0
        for _ in range(max(1, iterations)):
            u = op.apply(v)
            estimate = float(u.norm())
            w = op.adjoint(u)
            v = w / w.norm().clamp_min(1e-300)
    return estimate, v


def _device_of(op: LinearOp) -> torch.device:
    for part in op.parts:
        module = getattr(part, "module", None)
        if module is not None:
            return module.weight.device
    return torch.device("cpu")
