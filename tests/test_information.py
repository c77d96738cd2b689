"""Neural MI lower bounds: hand values, the InfoNCE cap, and correlated Gaussians' closed form."""
from __future__ import annotations

import math

import pytest
import torch

from bench.information import MIEstimator, make_critic, mi_lower_bound


def test_bounds_by_hand_on_two_pairs():
    s = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    # DV: mean of the diagonal minus log of the mean exp over the off-diagonal pairs.
    dv = (2.0 + 3.0) / 2 - math.log((math.exp(-1.0) + math.exp(0.5)) / 2)
    assert mi_lower_bound(s, "dv").item() == pytest.approx(dv, rel=1e-6)
    # InfoNCE: log n + mean over rows of (score of the true pair - logsumexp of the row).
    nce = math.log(2) + 0.5 * ((2.0 - math.log(math.exp(2.0) + math.exp(-1.0)))
                               + (3.0 - math.log(math.exp(0.5) + math.exp(3.0))))
    assert mi_lower_bound(s, "infonce").item() == pytest.approx(nce, rel=1e-6)


def test_infonce_never_exceeds_log_n_and_bad_input_is_refused():
    torch.manual_seed(0)
    for n in (2, 7, 50):
        scores = 20 * torch.randn(n, n) + 100 * torch.eye(n)
        assert mi_lower_bound(scores, "infonce").item() <= math.log(n) + 1e-5
    with pytest.raises(ValueError, match="unknown MI bound 'jsd'; valid choices: dv, infonce"):
        mi_lower_bound(torch.zeros(3, 3), "jsd")
    with pytest.raises(ValueError, match="n >= 2"):
        mi_lower_bound(torch.zeros(1, 1))
    with pytest.raises(ValueError, match="steps"):
        MIEstimator(steps=0)


def _gaussians(n: int, d: int, rho: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x ~ N(0, I), z = rho x + sqrt(1 - rho^2) noise: each coordinate pair has correlation rho."""
    x = torch.randn(n, d, generator=generator)
    return x, rho * x + math.sqrt(1 - rho**2) * torch.randn(n, d, generator=generator)


@pytest.mark.parametrize("bound", ["dv", "infonce"])
def test_estimate_is_a_lower_bound_that_approaches_the_gaussian_closed_form(bound):
    d, rho = 2, 0.8
    true_mi = -0.5 * d * math.log(1 - rho**2)  # 1.02 nats
    g = torch.Generator().manual_seed(0)
    x_fit, z_fit = _gaussians(2000, d, rho, g)
    x_eval, z_eval = _gaussians(2000, d, rho, g)
    estimates = {steps: MIEstimator(bound=bound, steps=steps, batch_size=256, hidden=64, embed=32)
                 .estimate(x_fit, z_fit, x_eval, z_eval) for steps in (5, 300)}
    # A lower bound (up to the sampling error of 2,000 held-out pairs) ...
    assert estimates[300] <= true_mi + 0.05
    # ... that gets close with enough steps, and closer than an undertrained critic.
    assert estimates[300] >= true_mi - 0.15
    assert estimates[5] < estimates[300] - 0.3


def test_independent_variables_get_no_information():
    g = torch.Generator().manual_seed(1)
    x_fit, z_fit = _gaussians(1000, 2, 0.0, g)
    x_eval, z_eval = _gaussians(1000, 2, 0.0, g)
    estimate = MIEstimator(steps=200, batch_size=256, hidden=64, embed=32).estimate(x_fit, z_fit, x_eval, z_eval)
    # True MI 0: a lower bound must not claim information; estimates are clamped at 0 (MI >= 0).
    assert 0.0 <= estimate < 0.05


def test_same_seed_same_estimate_and_image_critic_shapes():
    g = torch.Generator().manual_seed(2)
    x, z = _gaussians(300, 3, 0.5, g)
    est = MIEstimator(steps=20, batch_size=64, hidden=32, embed=8)
    assert est.estimate(x[:150], z[:150], x[150:], z[150:]) == est.estimate(x[:150], z[:150], x[150:], z[150:])
    critic = make_critic((1, 28, 28), 5, hidden=16, embed=4)
    assert critic.scores(torch.rand(6, 1, 28, 28), torch.randn(6, 5)).shape == (6, 6)
    with pytest.raises(ValueError, match="not supported"):
        make_critic((2, 3), 5)


def test_early_stopping_keeps_the_best_validation_state():
    g = torch.Generator().manual_seed(3)
    x, z = _gaussians(120, 2, 0.8, g)
    est = MIEstimator(steps=200, batch_size=32, hidden=64, embed=16, check_every=5)
    val = (x[:40], z[:40])
    plain = est.fit(est.new_critic((2,), 2, x.device), x[40:], z[40:])
    stopped = est.fit(est.new_critic((2,), 2, x.device), x[40:], z[40:], val=val)
    # The same training run; the early-stopped state scores at least as well on the validation pairs.
    assert est.evaluate(stopped, *val) >= est.evaluate(plain, *val)
