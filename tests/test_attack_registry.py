"""The attack registry: one canonical name per attack, and every registered attack works (parametrized)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.attacks.factories import PlanContext
from bench.attacks.plan import HEADLINE, plan_battery
from bench.attacks.profiles import PROFILES
from bench.attacks.registry import KINDS, attack_names, attack_specs, get_attack
from bench.contract import ClassifierModel
from bench.data import MNIST_THREAT


def _linear(seed: int) -> ClassifierModel:
    torch.manual_seed(seed)
    return ClassifierModel(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), 10).eval()


def _squeezed(seed: int):
    """A 1-bit feature-squeezing toy: declares a BPDA surface and an input transform, so every attack applies."""
    from bench.defenses.squeezing import FeatureSqueezingModel

    torch.manual_seed(seed)
    return FeatureSqueezingModel(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), 10, bits=1, median_size=2,
                                 deploy="bit_depth").eval()


def test_names_are_unique_and_ordered():
    names = attack_names()
    assert len(names) == len(set(names))
    assert names[:3] == ["fgsm", "pgd-linf", "pgd-linf-margin"]
    assert {"autoattack", "square", "cw-l2", "fmn-l2", "fmn-linf", "transfer", "pgd-linf-strong"} <= set(names)


def test_the_plan_uses_exactly_the_registry_names():
    model = _squeezed(0)  # declares every surface, so every registered attack applies
    plan = plan_battery(model, MNIST_THREAT, transfer_source=(_linear(1), "src"))
    assert [p.name for p in plan if p.role == HEADLINE] == attack_names()
    # an undeclared input transform leaves the quantisation-aware attack out, and nothing else
    plain = [p.name for p in plan_battery(_linear(0), MNIST_THREAT, transfer_source=(_linear(1), "src"))]
    assert [n for n in attack_names() if n not in plain] == ["pgd-linf-relaxed"]
    for planned in plan:
        if planned.role == HEADLINE:
            spec = get_attack(planned.name)
            assert (planned.kind, planned.attack.norm) == (spec.kind, spec.norm)


@pytest.mark.parametrize("spec", attack_specs(), ids=lambda s: s.name)
def test_every_registered_attack_builds_and_attacks_within_its_budget(spec):
    assert spec.kind in KINDS and spec.norm in ("linf", "l2") and spec.description
    model = _squeezed(0)
    attack = spec.build(PROFILES["quick"], PlanContext(seed=0, transfer_source=(_linear(1), "src"), model=model))
    assert attack is not None, f"{spec.name} does not apply to a model that declares every surface"
    assert attack.norm == spec.norm
    assert attack.name in (spec.name, spec.name.removesuffix("-strong"))
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1)
    eps = MNIST_THREAT.eps(spec.norm)
    torch.manual_seed(0)
    x_adv, correct = attack(model, x, y, eps=eps)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if spec.norm == "linf" else delta.norm(dim=1)
    assert bool((size <= eps + 1e-5).all()) and bool(((x_adv >= 0) & (x_adv <= 1)).all())
    assert correct.dtype == torch.bool and correct.shape == (4,)


def test_bench_attacks_lists_the_registry_in_order(capsys, monkeypatch):
    from cli_helpers import run_cli

    code, out, _ = run_cli(monkeypatch, capsys, "attacks")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == attack_names()
    assert "ensemble" in out and "black-box" in out
