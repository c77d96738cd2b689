"""VIB and tight VIB: loss terms against closed forms and hand computations."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from bench.defenses.bottleneck import (
    BottleneckModel,
    batch_prediction_entropy,
    gaussian_kl,
    tight_vib_loss,
    vib_loss,
)


def test_kl_matches_closed_form_and_torch():
    torch.manual_seed(0)
    mu = torch.randn(5, 7)
    std = torch.rand(5, 7) + 0.1
    expected = kl_divergence(Normal(mu, std), Normal(torch.zeros_like(mu), torch.ones_like(std))).sum(1)
    assert torch.allclose(gaussian_kl(mu, std), expected, atol=1e-5)
    # Hand value in one dimension: mu=1, std=2 -> 0.5 * (1 + 4 - 1 - 2 ln 2)
    one = gaussian_kl(torch.tensor([[1.0]]), torch.tensor([[2.0]]))
    assert one.item() == pytest.approx(0.5 * (4 - 2 * math.log(2)), rel=1e-6)
    assert gaussian_kl(torch.zeros(1, 3), torch.ones(1, 3)).item() == pytest.approx(0.0, abs=1e-7)


def test_batch_entropy_by_hand():
    # Two samples with softmax (1, 0) and (0, 1) on two classes: p_hat = (0.5, 0.5), H = ln 2.
    logits = torch.tensor([[50.0, -50.0], [-50.0, 50.0]])
    assert batch_prediction_entropy(logits).item() == pytest.approx(math.log(2), rel=1e-6)
    # softmax of (0, ln 3) = (1/4, 3/4) for both samples: H = -(1/4 ln 1/4 + 3/4 ln 3/4).
    logits = torch.tensor([[0.0, math.log(3)], [0.0, math.log(3)]])
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert batch_prediction_entropy(logits).item() == pytest.approx(expected, rel=1e-6)


def test_tight_vib_differs_from_vib_by_the_clipped_entropy_term():
    torch.manual_seed(0)
    model = BottleneckModel((1, 28, 28), 10, k=8)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for lam, h_max in [(1.0, math.log(10)), (0.5, 0.01)]:
        torch.manual_seed(1)
        base = vib_loss(model, x, y, beta=1e-3)
        torch.manual_seed(1)
        logits, _, _ = model.sample_logits(x)
        entropy = batch_prediction_entropy(logits)
        torch.manual_seed(1)
        tight = tight_vib_loss(model, x, y, beta=1e-3, lam=lam, h_max=h_max)
        assert (base - tight).item() == pytest.approx(lam * min(entropy.item(), h_max), abs=2e-6)


def test_sampling_model_is_declared_stochastic():
    torch.manual_seed(0)
    deterministic = BottleneckModel((1, 28, 28), 10, k=8, samples=1).eval()
    sampling = BottleneckModel((1, 28, 28), 10, k=8, samples=12).eval()
    sampling.load_state_dict(deterministic.state_dict())
    with torch.no_grad():
        sampling.to_stats.bias[8:] += 6.0  # make the std large enough to see
    x = torch.rand(4, 1, 28, 28)
    assert not deterministic.stochastic and sampling.stochastic
    assert torch.equal(deterministic(x), deterministic(x))
    assert not torch.equal(sampling(x), sampling(x))
    probs = sampling(x).exp().sum(1)
    assert torch.allclose(probs, torch.ones(4), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vib", "tight_vib", "ceb"])
def test_bottleneck_defaults_reach_95_percent_on_mnist5k(mnist5k, name):
    from bench.registry import create_defense
    from bench.training import accuracy

    model = create_defense(name).fit(mnist5k)
    assert accuracy(model, mnist5k.x_test, mnist5k.y_test) >= 0.95
