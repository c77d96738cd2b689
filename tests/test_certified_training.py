"""Certified-training defenses: lipschitz_margin (CRM), macer, covariance_smoothing and its moment propagation."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm
from torch import nn

from bench.certification.lipschitz import lipschitz_certificates
from bench.defenses.covariance_smoothing import gaussian_gap
from bench.defenses.lipschitz_margin import certified_radius_loss, lipschitz_network
from bench.defenses.macer import normal_icdf, radius_hinge
from bench.defenses.moments import propagate
from bench.lipschitz import certified_bounds
from bench.registry import create_defense
from bench.validate import small_subset


def test_normal_icdf_matches_scipy():
    p = torch.tensor([0.01, 0.3, 0.5, 0.9, 0.999], dtype=torch.float64)
    assert torch.allclose(normal_icdf(p), torch.tensor(norm.ppf(p.numpy())), atol=1e-9)
    assert math.isinf(float(normal_icdf(torch.tensor(1.0))))


def test_radius_hinge_counts_only_correct_finite_gaps_below_gamma():
    gap = torch.tensor([1.0, 7.0, 9.0, float("inf"), 2.0])
    correct = torch.tensor([True, True, True, True, False])
    assert float(radius_hinge(gap, correct, 8.0)) == pytest.approx((8 - 1) + (8 - 7))


def test_certified_radius_loss_closed_form():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [5.0, 0.0, 4.9]])
    y = torch.tensor([0, 0, 0])  # the second point is misclassified: no radius term
    lip = torch.full((3, 3), 2.0).fill_diagonal_(0.0)
    # radii: point 0 -> min(2/2, 3/2) = 1.0 (>= r0 = 1: inactive); point 2 -> min(5/2, 0.1/2) = 0.05
    got = certified_radius_loss(logits, y, lip, alpha=3.0, r0=1.0, kind="max")
    assert float(got) == pytest.approx(math.exp(-3 * 0.05) / 3)
    soft = certified_radius_loss(logits, y, lip, alpha=3.0, r0=1.0, kind="softmax")
    assert float(soft) == pytest.approx(math.log(math.exp(-3 * 2.5) + math.exp(-3 * 0.05)) / 3)


def test_lipschitz_margin_networks_are_certifiable_end_to_end():
    for arch in ("2c2f", "4c3f"):
        net = lipschitz_network((1, 28, 28), 10, arch)
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())


def test_radius_term_shrinks_the_lipschitz_bound(mnist5k):
    """The same short budget with the radius term gives much smaller guaranteed LipLT bounds than plain CE."""
    data = small_subset(mnist5k, 1000, 100, seed=0)
    medians = {}
    off = ~torch.eye(10, dtype=torch.bool)
    for lam in (0.0, 10.0):
        model = create_defense("lipschitz_margin", epochs=3, lam=lam).fit(data)
        block = lipschitz_certificates(model, data.x_test, data.y_test, [0.1])
        assert block["applicable"] and block["bound"] == "liplt" and block["bound_details"]["norms"] == {"exact": 6}
        medians[lam] = float(certified_bounds(model.net, (1, 28, 28), 10).liplt[off].median())
    assert medians[10.0] < 0.5 * medians[0.0]


# -- moment propagation -------------------------------------------------------------------------------


def test_linear_layers_propagate_covariance_exactly():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Linear(6, 4)).double()
    x = torch.rand(3, 1, 3, 4, dtype=torch.float64)
    out = propagate(net, x, 0.3)
    w = (net[2].weight @ net[1].weight).detach()
    assert torch.allclose(out.mean, net(x))
    assert torch.allclose(out.cov, (0.09 * w @ w.T).expand(3, 4, 4))


def test_first_convolution_covariance_is_exact_at_interior_positions():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 5, 3, padding=1).double()
    net = nn.Sequential(conv, nn.Flatten(), nn.Linear(5 * 36, 1)).double()
    # The channel covariance at an interior pixel: sigma^2 sum over taps w_t w_t^T.
    taps = conv.weight.detach().flatten(1)  # (5, 9)
    from bench.defenses.moments import Spatial, _conv

    state = _conv(conv, Spatial(torch.zeros(1, 1, 6, 6, dtype=torch.float64),
                                0.04 * torch.eye(1, dtype=torch.float64)[None]))
    assert torch.allclose(state.cov[0], 0.04 * taps @ taps.T)
    assert propagate(net, torch.zeros(1, 1, 6, 6, dtype=torch.float64), 0.2).cov.shape == (1, 1, 1)


def test_relu_mean_is_the_gaussian_expectation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2)).double()
    x = torch.rand(1, 1, 1, 3, dtype=torch.float64)
    out = propagate(net, x, 0.5)
    samples = x + 0.5 * torch.randn(200_000, 1, 1, 3, dtype=torch.float64)
    with torch.no_grad():
        hidden = torch.relu(net[1](samples.flatten(1)))
        mc = net[3](hidden).mean(0)
    assert torch.allclose(out.mean[0], mc, atol=0.01)


def test_propagation_runs_on_the_plain_cnn_and_tracks_the_monte_carlo_mean(plain_model, mnist5k):
    x = mnist5k.x_test[:4]
    with torch.no_grad():
        out = propagate(plain_model.net, x, 0.25)
        mc = torch.stack([plain_model(x[i:i + 1] + 0.25 * torch.randn(500, *x.shape[1:])).mean(0) for i in range(4)])
    assert out.mean.shape == (4, 10) and out.cov.shape == (4, 10, 10)
    assert torch.linalg.eigvalsh(out.cov).min() > -1e-5  # positive semi-definite
    assert (out.mean.argmax(1) == mc.argmax(1)).all()


def test_gaussian_gap_closed_form():
    mean = torch.tensor([[2.0, 0.0, 1.0]])
    cov = torch.tensor([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.5, 0.0, 2.0]]])
    top, gap = gaussian_gap(mean, cov)
    assert int(top) == 0
    assert float(gap) == pytest.approx(2 * (2 - 1) / math.sqrt(1 + 2 - 2 * 0.5))


def test_macer_gradients_stay_finite_when_the_soft_classifier_saturates():
    """Confident logits make softmax(beta z) exactly 1 and 0: Phi^-1 is infinite there; the loss must not be NaN."""
    from bench.defenses.macer import MacerConfig, macer_loss

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.mul_(200.0)  # logits in the hundreds: beta * z saturates float32's softmax
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    loss = macer_loss(model, x, y, 0.25, MacerConfig(samples=4))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_a_training_that_diverges_is_one_line_and_caches_nothing(tmp_path, mnist5k, monkeypatch):
    from bench.errors import TrainingDivergedError
    from bench.zoo import ModelZoo

    defense = create_defense("plain", epochs=1)
    diverged = defense.build(mnist5k)
    with torch.no_grad():
        next(diverged.parameters()).fill_(float("nan"))  # what macer's training once left behind
    monkeypatch.setattr(defense, "fit", lambda data: diverged)
    with pytest.raises(TrainingDivergedError, match="diverged.*nothing was cached"):
        ModelZoo(tmp_path / "models").get_or_fit(defense, mnist5k, torch.device("cpu"))
    assert not list((tmp_path / "models").rglob("*.pt"))
