"""CEB: its loss against a hand computation and the Gaussian closed form; vib/tight_vib untouched by it."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from bench.defenses.bottleneck import BottleneckModel, CEBModel, ceb_loss, ceb_residual, gaussian_log_density
from bench.registry import create_defense
from bench.results import config_hash
from bench.training import accuracy
from bench.zoo import ModelZoo

REPO = Path(__file__).resolve().parents[1]


class FixedEncoder(CEBModel):
    """k = 1, two classes, an encoder that ignores x and returns set (mu, std)."""

    def __init__(self, mu, std):
        super().__init__((1, 28, 28), 2, k=1)
        self.fixed = (torch.tensor(mu), torch.tensor(std))
        with torch.no_grad():
            self.decoder.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.decoder.bias.zero_()
            self.class_means.copy_(torch.tensor([[1.0], [-1.0]]))

    def encode(self, x):
        return self.fixed


def test_ceb_loss_by_hand(monkeypatch):
    model = FixedEncoder(mu=[[0.5], [-0.2]], std=[[2.0], [0.5]])
    noise = torch.tensor([[0.3], [-1.0]])
    monkeypatch.setattr(torch, "randn_like", lambda t: noise.clone())
    y = torch.tensor([0, 1])
    loss = ceb_loss(model, torch.zeros(2, 1, 28, 28), y, beta=0.1)

    def log_normal(z, mean, std):
        return -0.5 * ((z - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)

    total = 0.0
    for mu, std, eps, label, mean_y in [(0.5, 2.0, 0.3, 0, 1.0), (-0.2, 0.5, -1.0, 1, -1.0)]:
        z = mu + std * eps
        logits = [z, -z]  # decoder weight (1, -1), bias 0
        ce = -(logits[label] - math.log(math.exp(logits[0]) + math.exp(logits[1])))
        residual = log_normal(z, mu, std) - log_normal(z, mean_y, 1.0)
        total += ce + 0.1 * residual
    assert loss.item() == pytest.approx(total / 2, rel=1e-6)
    # Sample 0's residual simplified by hand: -eps^2/2 - ln std + (z - mean_y)^2 / 2 = -0.045 - ln 2 + 0.005.
    r = ceb_residual(torch.tensor([[1.1]]), torch.tensor([[0.5]]), torch.tensor([[2.0]]), torch.tensor([[1.0]]))
    assert r.item() == pytest.approx(-0.04 - math.log(2), rel=1e-6)


def test_residual_averages_to_the_closed_form_kl():
    """E_z~e[log e(z|x) - log b(z|y)] = KL(N(mu, std^2) || N(m, 1)) = 0.5 sum(std^2 + (mu - m)^2 - 1 - 2 ln std)."""
    torch.manual_seed(0)
    mu, std, m = torch.tensor([[0.3, -1.0, 2.0]]), torch.tensor([[0.5, 1.5, 0.1]]), torch.tensor([[1.0, 0.0, 2.5]])
    z = mu + std * torch.randn(200_000, 3)
    estimate = ceb_residual(z, mu.expand_as(z), std.expand_as(z), m.expand_as(z)).mean().item()
    closed = 0.5 * (std**2 + (mu - m) ** 2 - 1 - 2 * torch.log(std)).sum().item()
    assert estimate == pytest.approx(closed, abs=0.02)
    # And the log density itself against torch.distributions.
    normal = torch.distributions.Normal(mu, std)
    assert torch.allclose(gaussian_log_density(z[:5], mu, std), normal.log_prob(z[:5]).sum(1), atol=1e-5)


def test_ceb_adds_only_class_means_to_vibs_state_and_deploys_like_vib():
    vib, ceb = BottleneckModel((1, 28, 28), 10, k=8), CEBModel((1, 28, 28), 10, k=8)
    assert set(ceb.state_dict()) == set(vib.state_dict()) | {"class_means"}
    ceb.load_state_dict({**vib.state_dict(), "class_means": torch.zeros(10, 8)})
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(ceb.eval()(x), vib.eval()(x))
    assert torch.equal(ceb.representation(x), vib.encode(x)[0])


def test_vib_and_tight_vib_hashes_and_committed_models_unchanged(mnist5k):
    """Adding ceb changed neither the configs (hence hashes) nor the state dicts of vib and tight_vib."""
    zoo = ModelZoo(REPO / "models")
    for name, committed in [("vib", "eaa070603b1d"), ("tight_vib", "c343b30f5dd1")]:
        defense = create_defense(name)
        assert config_hash(name, "mnist5k", defense.config_dict()) == committed
        entry = zoo.load(defense, mnist5k, torch.device("cpu"))
        assert entry is not None and entry.card["config_hash"] == committed
        assert accuracy(entry.model, mnist5k.x_test, mnist5k.y_test) == pytest.approx(entry.card["clean_accuracy"],
                                                                                        abs=1e-6)


def test_beta_means_the_same_in_the_family():
    """`bench sweep --grid beta=...` sets one key with one range across vib, tight_vib and ceb."""
    for name in ("vib", "tight_vib", "ceb"):
        assert create_defense(name, beta=1e-2).config.beta == 1e-2
        with pytest.raises(ValueError, match="beta"):
            create_defense(name, beta=-1.0)
