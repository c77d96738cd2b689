"""Every attack's outputs stay inside the eps-ball and [0, 1], and its success check is the deployed one."""
from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from bench.attacks import FGSM, FMN, PGD, AutoAttack, CarliniWagnerL2, Square, Transfer, evaluate_correct
from bench.attacks.autoattack_adapter import isolated_autoattack
from bench.contract import DefendedModel


@pytest.fixture(scope="module")
def batch(mnist5k):
    idx = torch.arange(0, len(mnist5k.x_test), len(mnist5k.x_test) // 12)[:12]  # spread over the classes
    return mnist5k.x_test[idx], mnist5k.y_test[idx]


def _attacks(source):
    return [
        (FGSM(), 0.3),
        (PGD(norm="linf", steps=10), 0.3),
        (PGD(norm="linf", steps=10, loss="margin", restarts=2), 0.1),
        (PGD(norm="l2", steps=10), 2.0),
        (CarliniWagnerL2(search_steps=3, steps=30, lr=0.1), 1.0),
        (FMN(norm="l2", steps=20), 1.0),
        (FMN(norm="linf", steps=20), 0.1),
        (Square(queries=100), 0.3),
        (AutoAttack(), 0.3),
        (Transfer(source, source_id="test", steps=10), 0.3),
    ]


def test_outputs_stay_in_the_ball_and_the_box(plain_model, batch):
    x, y = batch
    grads_before = [None if p.grad is None else p.grad.clone() for p in plain_model.parameters()]
    for attack, eps in _attacks(plain_model):
        result = attack.perturb(plain_model, x, y, eps=eps)
        delta = (result.x_adv - x).flatten(1)
        size = delta.abs().amax(1) if attack.norm == "linf" else delta.norm(dim=1)
        assert float(size.max()) <= eps * (1 + 1e-5) + 1e-6, (attack, float(size.max()))
        assert float(result.x_adv.min()) >= 0.0 and float(result.x_adv.max()) <= 1.0, attack
        # the reported outcome is the deployed model's verdict on the returned inputs
        assert torch.equal(result.correct, evaluate_correct(plain_model, result.x_adv, y)), attack
        if attack.minimum_norm:
            assert result.norms is not None and len(result.norms) == len(x)
            found = torch.isfinite(result.norms)
            # a minimal adversarial example within eps means the attack succeeded at eps
            assert bool((~result.correct[found & (result.norms <= eps * 0.999)]).all()), attack
    for p, before in zip(plain_model.parameters(), grads_before):  # attacks never touch weight gradients
        assert (p.grad is None and before is None) or torch.equal(p.grad, before)
        assert p.requires_grad  # and the weights' flags are restored


def test_attacks_reject_a_bad_eps(plain_model, batch):
    x, y = batch
    with pytest.raises(ValueError, match="eps"):
        PGD()(plain_model, x, y, eps=-0.1)
    with pytest.raises(ValueError, match="valid choices"):
        PGD(norm="l3")
    with pytest.raises(ValueError, match="valid choices"):
        PGD(loss="hinge")


class _NoisyLinear(DefendedModel):
    """A tiny stochastic model (Gaussian input noise), declared as such."""

    stochastic = True

    def __init__(self) -> None:
        super().__init__(num_classes=10)
        torch.manual_seed(0)
        self.linear = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x + 0.05 * torch.randn_like(x)).flatten(1))


def test_autoattack_uses_rand_for_stochastic_models_and_leaves_no_global_state(batch):
    from pyautoattack import checks

    x, y = batch
    model = _NoisyLinear().eval()
    checks.funcs["grad"] = 5  # as if an earlier dynamic model had been checked in this process

    def tracer(frame, event, arg):  # a stand-in for coverage's trace function
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        attack = AutoAttack()
        attack.perturb(model, x[:4], y[:4], eps=0.3)
        assert sys.gettrace() is tracer, "pyautoattack's sys.settrace(None) must not leak"
    finally:
        sys.settrace(previous)
    assert attack.last_version == "rand"
    assert all(v == 0 for v in checks.funcs.values())
    # no false "dynamic defense" warning from the stale counter
    assert not any("dynamic" in w for w in attack.warnings), attack.warnings


def test_autoattack_warnings_are_collected_not_printed(capsys):
    with isolated_autoattack() as collected:
        import logging

        logging.getLogger("auto-attack").warning("it seems to be a randomized defense!")
        logging.getLogger("auto-attack").debug("running apgd-ce")
    assert collected.warnings == ["it seems to be a randomized defense!"]
    assert "randomized" not in capsys.readouterr().err
