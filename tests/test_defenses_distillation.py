"""distillation: the deployed softmax saturates, CE gradients vanish, and margin-loss PGD still breaks it."""
from __future__ import annotations

import pytest
import torch

from bench.attacks import FGSM, PGD
from bench.attacks.gradient import input_gradient
from bench.defenses.distillation import soft_label_loss
from bench.registry import create_defense


@pytest.fixture(scope="module")
def distilled(mnist5k):
    from bench.validate import small_subset

    return create_defense("distillation", teacher_epochs=2, epochs=2).fit(small_subset(mnist5k, 2000, 10, seed=0))


@pytest.fixture(scope="module")
def probe(mnist5k):
    idx = torch.randperm(1000, generator=torch.Generator().manual_seed(1))[:200]
    return mnist5k.x_test[idx], mnist5k.y_test[idx]


def test_soft_label_loss_is_cross_entropy_at_temperature():
    logits = torch.randn(4, 10)
    onehot = torch.nn.functional.one_hot(torch.tensor([1, 2, 3, 4]), 10).float()
    expected = torch.nn.functional.cross_entropy(logits / 7.0, torch.tensor([1, 2, 3, 4]))
    assert torch.allclose(soft_label_loss(logits, onehot, 7.0), expected)


def test_student_is_accurate_and_deployed_at_temperature_one(distilled, mnist5k, plain_model, probe):
    from bench.training import accuracy

    assert accuracy(distilled, mnist5k.x_test, mnist5k.y_test) > 0.8
    x, _ = probe
    with torch.no_grad():
        gap = lambda m: m(x).topk(2, dim=1).values.diff(dim=1).abs().median()  # noqa: E731
        # Trained at T = 100 and deployed at T = 1: logits tens of times larger than plain's.
        assert gap(distilled) > 10 * gap(plain_model)


def test_cross_entropy_gradients_vanish_but_margin_gradients_do_not(distilled, probe):
    x, y = probe
    with torch.no_grad():
        right = distilled(x).argmax(1) == y
    grad_ce, _ = input_gradient(distilled, x[right], y[right], loss="ce")
    grad_margin, _ = input_gradient(distilled, x[right], y[right], loss="margin")
    zero_ce = (grad_ce.flatten(1).abs().amax(1) == 0).float().mean()
    zero_margin = (grad_margin.flatten(1).abs().amax(1) == 0).float().mean()
    assert zero_ce > 0.5, float(zero_ce)
    assert zero_margin == 0


def test_margin_pgd_breaks_what_ce_attacks_seem_to_protect(distilled, probe):
    x, y = probe
    torch.manual_seed(0)
    _, fgsm_ok = FGSM()(distilled, x, y, eps=0.3)
    _, margin_ok = PGD(steps=40, loss="margin")(distilled, x, y, eps=0.3)
    assert fgsm_ok.float().mean() > 0.5  # masked: looks robust
    assert margin_ok.float().mean() < 0.1  # margin loss does not saturate


def test_margin_pgd_runs_once_under_its_canonical_name(distilled):
    # The margin-loss PGD this defense needs is the battery's own `pgd-linf-margin`; it used to be
    # declared again as an extra attack called `pgd-margin-linf` (one attack, two leaderboard columns).
    from bench.attacks.plan import plan_battery
    from bench.data import MNIST_THREAT

    assert distilled.extra_attacks() == []
    margin = [p for p in plan_battery(distilled, MNIST_THREAT) if getattr(p.attack, "loss", None) == "margin"]
    assert [p.name for p in margin if p.role == "headline"] == ["pgd-linf-margin"]
    assert not distilled.stochastic and distilled.detect is None
