"""What the battery plans for a model: every attack, the eps sweep, the subsets, the defense's extras."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.attacks import FGSM
from bench.attacks.execute import subset_positions
from bench.attacks.plan import SWEEP, plan_battery
from bench.attacks.profiles import PROFILES
from bench.attacks.surface import adaptive_techniques
from bench.contract import DefendedModel
from bench.data import MNIST_THREAT

HEADLINE = {"fgsm", "pgd-linf", "pgd-linf-margin", "pgd-l2", "transfer", "apgd-ce", "apgd-t", "square", "autoattack",
            "cw-l2", "fmn-l2", "fmn-linf", "pgd-linf-strong"}


class Tiny(DefendedModel):
    def __init__(self, stochastic: bool = False, extra: bool = False) -> None:
        super().__init__(num_classes=10)
        self.linear = nn.Linear(784, 10)
        self._stochastic, self._extra = stochastic, extra

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self._stochastic

    def forward(self, x):
        return self.linear(x.flatten(1))

    def extra_attacks(self):
        return [FGSM(loss="margin")] if self._extra else []


def test_quick_plan_has_every_attack_a_sweep_and_stated_subsets():
    model = Tiny()
    plan = plan_battery(model, MNIST_THREAT, profile="quick", transfer_source=(Tiny(), "src"))
    headline = [p for p in plan if p.role != SWEEP]
    assert {p.name for p in headline} == HEADLINE
    eps = {p.name: p.eps for p in headline}
    assert eps["pgd-linf"] == 0.3 and eps["pgd-l2"] == 2.0 and eps["cw-l2"] == 2.0 and eps["autoattack"] == 0.3
    subsets = {p.name: p.n for p in headline if p.n is not None}
    assert subsets["autoattack"] <= 100 and subsets["cw-l2"] <= 200  # the expensive ones run on fewer points
    assert all(p.n is None for p in headline if p.name in ("pgd-linf", "fgsm", "transfer"))
    # the cascade covers every point still robust, in the quick profile too (issue 10)
    assert [p.name for p in headline if p.cascade] == ["apgd-ce", "apgd-t"]
    assert all(p.n is None for p in headline if p.cascade)
    sweep = sorted(p.eps for p in plan if p.role == SWEEP)
    assert sweep[0] == 0.0 and sweep[-1] == 1.0 and len(sweep) + 1 >= 6  # + the headline point
    assert 0.3 not in sweep  # reused from the headline pgd-linf


def test_full_plan_attacks_every_point_except_the_convergence_check():
    plan = plan_battery(Tiny(), MNIST_THREAT, profile="full")
    assert all(p.n is None for p in plan if p.name != "pgd-linf-strong")
    assert PROFILES["full"].pgd_steps >= PROFILES["quick"].pgd_steps
    assert "transfer" not in {p.name for p in plan}  # no source model given


def test_extras_and_adaptive_parts_follow_the_declarations():
    plan = plan_battery(Tiny(extra=True), MNIST_THREAT)
    assert sum(p.name == "fgsm" for p in plan) == 2
    assert adaptive_techniques(Tiny(), 20) == ["margin-loss"]
    assert "eot(20)" in adaptive_techniques(Tiny(stochastic=True), 20)


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match="valid choices: quick, full"):
        plan_battery(Tiny(), MNIST_THREAT, profile="fast")


def test_subsets_are_seeded_and_nested():
    small, large = subset_positions(1000, 100, 0), subset_positions(1000, 200, 0)
    assert len(small) == 100 and set(small) <= set(large) and small == sorted(small)
    assert subset_positions(1000, 100, 1) != small
    assert subset_positions(50, 100, 0) == list(range(50))
    labels = torch.arange(1000) // 100  # the test set is sorted by class: a subset must not be
    assert len(set(labels[small].tolist())) == 10


class CountingNoisy(Tiny):
    """Stochastic: counts how many differentiable forwards the attacks ask for."""

    def __init__(self) -> None:
        super().__init__(stochastic=True)
        self.calls = 0

    def forward(self, x):
        return self.linear((x + 0.1 * torch.randn_like(x)).flatten(1))

    def differentiable_forward(self, x):
        self.calls += 1
        return self(x)


def test_stochastic_models_get_eot_gradients_and_deterministic_ones_do_not():
    from bench.attacks import PGD

    x, y = torch.rand(4, 1, 28, 28), torch.arange(4)
    noisy = CountingNoisy().eval()
    PGD(steps=3, eot=5)(noisy, x, y, eps=0.1)
    assert noisy.calls == 3 * 5
    plain = Tiny().eval()
    calls = []
    plain.differentiable_forward = lambda inp: calls.append(1) or plain(inp)  # type: ignore[method-assign]
    PGD(steps=3, eot=5, early_stop=False)(plain, x, y, eps=0.1)
    assert len(calls) == 3
