"""Attacks against closed forms: on a linear (logistic) model the minimal L2 perturbation is |w.x+b| / ||w||."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.attacks import FMN, PGD, CarliniWagnerL2
from bench.contract import DefendedModel

SHAPE = (1, 8, 8)
DISTANCE = 0.4


class Logistic(DefendedModel):
    """Two logits (0, w.x + b): class 1 exactly where w.x + b > 0."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__(num_classes=2)
        self.linear = nn.Linear(w.numel(), 2)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.zero_()
            self.linear.weight[1] = w
            self.linear.bias[1] = b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


@pytest.fixture(scope="module")
def linear_case():
    """A logistic model and 16 points in the box's interior, each exactly DISTANCE from the boundary."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(SHAPE[0] * SHAPE[1] * SHAPE[2], generator=g)
    b = 0.3
    model = Logistic(w, b).eval()
    x = 0.35 + 0.3 * torch.rand((16, *SHAPE), generator=g)
    unit = w / w.norm()
    side = torch.where(torch.arange(16) % 2 == 0, 1.0, -1.0)  # half on each side
    # move each point along w until its signed distance is side * DISTANCE
    signed = (x.flatten(1) @ w + b) / w.norm()
    x = x + ((side * DISTANCE - signed)[:, None] * unit).view(-1, *SHAPE)
    assert float(x.min()) > 0.0 and float(x.max()) < 1.0
    y = (side > 0).long()
    exact = (x.flatten(1) @ w + b).abs() / w.norm()
    return model, x, y, exact


def test_the_construction_is_what_the_tests_assume(linear_case):
    model, x, y, exact = linear_case
    assert torch.allclose(exact, torch.full_like(exact, DISTANCE), atol=1e-5)
    assert bool((model(x).argmax(1) == y).all())


def test_cw_l2_finds_the_minimal_perturbation_within_2_percent(linear_case):
    model, x, y, exact = linear_case
    result = CarliniWagnerL2(search_steps=9, steps=300, lr=0.01).perturb(model, x, y, eps=10.0)
    assert torch.isfinite(result.norms).all()
    assert not bool(result.correct.any())  # every minimal example really is adversarial
    rel = (result.norms - exact).abs() / exact
    assert float(rel.max()) < 0.02, rel
    # nothing can beat the closed form
    assert float((result.norms / exact).min()) > 1 - 1e-4


def test_fmn_l2_finds_the_minimal_perturbation_within_2_percent(linear_case):
    model, x, y, exact = linear_case
    result = FMN(norm="l2", steps=100).perturb(model, x, y, eps=10.0)
    assert torch.isfinite(result.norms).all()
    rel = (result.norms - exact).abs() / exact
    assert float(rel.max()) < 0.02, rel
    assert float((result.norms / exact).min()) > 1 - 1e-4


def test_pgd_l2_succeeds_just_above_the_minimal_norm_and_fails_just_below(linear_case):
    model, x, y, _ = linear_case
    torch.manual_seed(0)
    attack = PGD(norm="l2", steps=40, restarts=1)
    _, above = attack(model, x, y, eps=DISTANCE * 1.02)
    _, below = attack(model, x, y, eps=DISTANCE * 0.98)
    assert not bool(above.any()), "PGD-L2 must break every point with 2% more than the minimal norm"
    assert bool(below.all()), "no L2 perturbation below the minimal norm can change the class"


def test_pgd_linf_matches_the_linf_closed_form(linear_case):
    """The minimal L-inf perturbation of a linear model is |w.x+b| / ||w||_1 (dual norm)."""
    model, x, y, _ = linear_case
    w = model.linear.weight[1].detach()
    exact_linf = (x.flatten(1) @ w + model.linear.bias[1].detach()).abs() / w.abs().sum()
    eps = float(exact_linf.max())
    _, above = PGD(norm="linf", steps=40)(model, x, y, eps=eps * 1.02)
    _, below = PGD(norm="linf", steps=40)(model, x, y, eps=float(exact_linf.min()) * 0.98)
    assert not bool(above.any())
    assert bool(below.all())
