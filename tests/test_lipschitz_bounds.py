"""Lipschitz bounds: operators against closed forms, guaranteed norms against exact ones, bounds against gradients."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.lipschitz import NotCertifiable, TrainingBound, certified_bounds, power_iteration_bounds
from bench.lipschitz.norms import exact_norm, fourier_conv_bound, power_iteration
from bench.lipschitz.ops import ConvOp, DenseOp, ReshapeOp
from bench.lipschitz.structure import read_layers, segments

CPU = torch.device("cpu")
CONVS = [
    (nn.Conv2d(3, 5, 3, stride=1, padding=1), (3, 9, 8)),
    (nn.Conv2d(2, 4, 4, stride=2, padding=1), (2, 11, 10)),
    (nn.Conv2d(4, 6, 3, stride=3, padding=2, dilation=2, groups=2), (4, 13, 11)),
    (nn.Conv2d(1, 3, 5, stride=2, padding=0), (1, 12, 12)),
]


def dense_matrix(op) -> torch.Tensor:
    """The operator as an explicit (out_dim, in_dim) matrix, column by column."""
    basis = torch.eye(op.in_dim, dtype=torch.float64).reshape(op.in_dim, *op.in_shape)
    return op.apply(basis).reshape(op.in_dim, -1).T


@pytest.mark.parametrize("conv, shape", CONVS)
def test_conv_operator_adjoint_and_exact_norm(conv, shape):
    torch.manual_seed(0)
    conv = conv.double().requires_grad_(False)
    op = ConvOp(conv, shape)
    x = torch.randn(3, *op.in_shape, dtype=torch.float64)
    y = torch.randn(3, *op.out_shape, dtype=torch.float64)
    assert torch.allclose(op.apply(x) + conv.bias[None, :, None, None], conv(x))  # the layer minus its bias
    assert abs(float((op.apply(x) * y).sum() - (x * op.adjoint(y)).sum())) < 1e-10  # <Ax, y> = <x, A^T y>
    svd = float(torch.linalg.matrix_norm(dense_matrix(op), ord=2))
    assert exact_norm(op, CPU) == pytest.approx(svd, rel=1e-5)
    assert exact_norm(op, CPU) >= svd
    assert fourier_conv_bound(op) >= svd  # guaranteed, however loose
    assert power_iteration(op, 300)[0] <= svd * (1 + 1e-9)  # power iteration approaches from below


def test_dense_and_reshape_norms():
    torch.manual_seed(0)
    lin = nn.Linear(7, 4).double()
    op = DenseOp(lin)
    assert exact_norm(op, CPU) == pytest.approx(float(torch.linalg.matrix_norm(lin.weight.detach(), ord=2)), rel=2e-6)
    assert exact_norm(ReshapeOp((2, 3), (6,)), CPU) == pytest.approx(1.0, rel=2e-6)


def test_a_gram_lapack_cannot_decompose_still_gets_a_guaranteed_norm(monkeypatch):
    """macer's committed model once made eigvalsh fail (LAPACK error 782): another driver, then Gershgorin."""
    import numpy as np
    import scipy.linalg

    from bench.lipschitz import norms

    torch.manual_seed(0)
    lin = nn.Linear(7, 4).double()
    truth = float(torch.linalg.matrix_norm(lin.weight.detach(), ord=2))

    def fail(*args, **kwargs):
        raise torch.linalg.LinAlgError("linalg.eigh: The algorithm failed to converge")

    monkeypatch.setattr(torch.linalg, "eigvalsh", fail)
    assert exact_norm(DenseOp(lin), CPU) == pytest.approx(truth, rel=2e-6)

    def fail_too(*args, **kwargs):
        raise np.linalg.LinAlgError("no convergence")

    monkeypatch.setattr(scipy.linalg, "eigvalsh", fail_too)
    gershgorin = exact_norm(DenseOp(lin), CPU)
    assert gershgorin >= truth and norms.largest_eigenvalue_fallback(torch.eye(3, dtype=torch.float64)) == 1.0


def test_fourier_bound_is_tight_for_a_stride_one_conv():
    torch.manual_seed(1)
    op = ConvOp(nn.Conv2d(3, 4, 3, padding=1).double(), (3, 16, 16))
    ratio = fourier_conv_bound(op) / exact_norm(op, CPU)
    assert 1.0 <= ratio < 1.1


def linear_classifier() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    return net


def test_linear_bound_is_the_exact_pairwise_weight_norm():
    net = linear_classifier()
    bounds = certified_bounds(net, (1, 3, 4), 5)
    w = net[1].weight.detach().double()
    exact = torch.cdist(w, w)
    assert torch.allclose(bounds.liplt, exact, rtol=2e-6)
    assert (bounds.liplt >= exact).all()
    assert torch.allclose(bounds.liplt, bounds.naive)


NETWORKS = {
    "relu-pool": lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                       nn.Linear(4 * 16, 12), nn.ReLU(), nn.Linear(12, 4)),
    "strided": lambda: nn.Sequential(nn.Conv2d(1, 3, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(48, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 4)),
    "mixed": lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 16), nn.LeakyReLU(0.1),
                                   nn.Linear(16, 16), nn.Softplus(), nn.Linear(16, 4)),
    "pool-first": lambda: nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 4)),
}


def lipschitz_lower_bounds(net: nn.Module, steps: int = 100, per_pair: int = 32) -> torch.Tensor:
    """Largest |g(x) - g(x')| / |x - x'| and |grad g(x)| found for g = z_a - z_b: random starts, then ascent."""
    gen = torch.Generator().manual_seed(0)
    pairs = [(a, b) for a in range(4) for b in range(4) if a != b]
    a = torch.tensor([p[0] for p in pairs]).repeat_interleave(per_pair)
    b = torch.tensor([p[1] for p in pairs]).repeat_interleave(per_pair)
    x = (torch.rand(len(a), 1, 8, 8, generator=gen, dtype=torch.float64) * 2 - 0.5).requires_grad_(True)
    d = (0.05 * torch.randn(len(a), 1, 8, 8, generator=gen, dtype=torch.float64)).requires_grad_(True)
    opt = torch.optim.Adam([x, d], lr=0.02)
    best = torch.zeros(len(a), dtype=torch.float64)

    def g(z: torch.Tensor) -> torch.Tensor:
        return z.gather(1, a[:, None]).squeeze(1) - z.gather(1, b[:, None]).squeeze(1)

    for _ in range(steps):
        here = g(net(x))
        quotient = (here - g(net(x + d))).abs() / d.flatten(1).norm(dim=1)
        (grad,) = torch.autograd.grad(here.sum(), x, retain_graph=True)
        best = torch.maximum(best, torch.maximum(quotient.detach(), grad.flatten(1).norm(dim=1)))
        opt.zero_grad()
        (-quotient.sum()).backward()
        opt.step()
    found = torch.zeros(4, 4, dtype=torch.float64)
    for i, (pa, pb) in enumerate(pairs):
        found[pa, pb] = best[i * per_pair:(i + 1) * per_pair].max()
    return found


@pytest.mark.parametrize("name", list(NETWORKS))
def test_certified_bound_exceeds_every_gradient_and_difference_quotient(name):
    torch.manual_seed(0)
    net = NETWORKS[name]().double().eval()
    bounds = certified_bounds(net, (1, 8, 8), 4)
    found = lipschitz_lower_bounds(net)
    off = ~torch.eye(4, dtype=torch.bool)
    assert (found[off] > 0).all()
    assert (bounds.liplt[off] >= found[off]).all(), (bounds.liplt, found)
    assert (bounds.liplt <= bounds.naive * (1 + 1e-9)).all()  # LipLT never exceeds the product of norms
    estimate = power_iteration_bounds(net, (1, 8, 8), 4)
    assert (estimate[off] <= bounds.liplt[off] * (1 + 1e-6)).all()  # guaranteed >= converged estimate


def test_training_bound_converges_to_the_estimate_and_is_differentiable():
    torch.manual_seed(0)
    net = NETWORKS["strided"]()
    trainer = TrainingBound(net, (1, 8, 8), 4, iterations=1)
    for _ in range(100):
        value = trainer()
    guaranteed = certified_bounds(net, (1, 8, 8), 4).liplt.float()
    off = ~torch.eye(4, dtype=torch.bool)
    assert torch.allclose(value[off].detach(), guaranteed[off], rtol=1e-3)
    value[off].sum().backward()
    assert net[0].weight.grad is not None and torch.isfinite(net[0].weight.grad).all()


@pytest.mark.parametrize("net, words", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(3, stride=1), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)),
     "overlapping"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 6 * 6, 3)), "BatchNorm2d"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 3), nn.ReLU()), "does not end with a linear layer"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten(), nn.Linear(128, 3)), "padding"),
])
def test_unknown_or_non_lipschitz_layers_are_refused(net, words):
    with pytest.raises(NotCertifiable, match=words):
        certified_bounds(net, (1, 8, 8), 3)


def test_segments_split_at_pools_and_keep_activations_between_layers():
    net = NETWORKS["relu-pool"]()
    segs = segments(read_layers(net, (1, 8, 8)))
    assert len(segs) == 2
    assert [t.name for t in segs[0].tail] == ["relu", "maxpool2x2"]
    assert len(segs[1].layers) == 2 and [a.name for a in segs[1].acts] == ["relu"]
