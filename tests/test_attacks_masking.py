"""Deliberately masked toy models raise flags, and the adaptive attacks break them once declared."""
from __future__ import annotations

import pytest
import torch

from bench.attacks import FGSM, PGD, Square
from bench.attacks.aggregate import detector_rate
from bench.attacks.execute import run_battery
from bench.attacks.flags import masking_flags
from bench.attacks.plan import PlannedAttack
from bench.attacks.probes import probe_model
from bench.attacks.registry import BLACK_BOX
from bench.contract import DefendedModel


def _messages(flags):
    return [str(f) for f in flags]


LEVELS = 4


def quantise(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * LEVELS) / LEVELS


class Quantised(DefendedModel):
    """Rounds the input to 5 grey levels before the CNN: gradients are exactly zero."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__(num_classes=10)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(quantise(x))


class QuantisedWithBPDA(Quantised):
    """The same deployed model, declaring the identity as the rounding's backward (BPDA)."""

    def differentiable_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + (quantise(x) - x).detach())


class HotSoftmax(DefendedModel):
    """Logits scaled by 1000: the softmax saturates and cross-entropy gradients underflow to 0."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__(num_classes=10)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1000.0 * self.net(x)


class SecretlyRandom(DefendedModel):
    """Adds input noise at test time but does not declare ``stochastic``."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__(num_classes=10)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + 0.1 * torch.randn_like(x))


class BrightnessDetector(DefendedModel):
    """Flags inputs brighter on average than ``threshold``; optionally declares the margin."""

    def __init__(self, net: torch.nn.Module, threshold: float, declare_margin: bool) -> None:
        super().__init__(num_classes=10)
        self.net, self.threshold = net, threshold
        if declare_margin:
            self.detect_margin = self._margin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _margin(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3)) - self.threshold

    def detect(self, x: torch.Tensor) -> torch.Tensor:
        return self._margin(x) > 0


@pytest.fixture(scope="module")
def points(mnist5k):
    idx = torch.arange(0, len(mnist5k.x_test), len(mnist5k.x_test) // 60)[:60]
    return mnist5k.x_test[idx], mnist5k.y_test[idx]


def _battery(model, x, y, tmp_path):
    plan = [
        PlannedAttack(FGSM(), 0.3),
        PlannedAttack(PGD(norm="linf", steps=10), 0.3),
        PlannedAttack(Square(queries=300), 0.3, kind=BLACK_BOX),
    ]
    indices = list(range(len(x)))
    outcomes = run_battery(model, x, y, plan, records_dir=tmp_path, model_id="toy", indices=indices, seed=0)
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    flags = _messages(masking_flags(clean, outcomes, indices=indices, kinds={p.name: p.kind for p in plan},
                          probes=probe_model(model, x, y), model=model))
    return outcomes, flags


def test_a_quantiser_without_a_declared_surface_is_flagged(plain_model, points, tmp_path):
    x, y = points
    outcomes, flags = _battery(Quantised(plain_model).eval(), x, y, tmp_path)
    assert outcomes["pgd-linf"].accuracy > 0.5  # gradient attacks are blind here
    assert outcomes["square"].accuracy < 0.2  # the black-box attack is not
    assert any(f.startswith("zero input gradients (ce loss)") for f in flags), flags
    assert any(f.startswith("black-box attack square breaks") for f in flags), flags


def test_bpda_breaks_the_quantiser_once_declared(plain_model, points, tmp_path):
    x, y = points
    outcomes, flags = _battery(QuantisedWithBPDA(plain_model).eval(), x, y, tmp_path)
    assert outcomes["pgd-linf"].accuracy <= 0.05
    assert not any("zero input gradients" in f or "black-box" in f for f in flags), flags


def test_a_saturated_softmax_is_flagged_and_the_margin_loss_breaks_it(plain_model, points):
    x, y = points
    model = HotSoftmax(plain_model).eval()
    _, ce = PGD(steps=10)(model, x, y, eps=0.3)
    _, margin = PGD(steps=10, loss="margin")(model, x, y, eps=0.3)
    assert float(ce.float().mean()) > 0.5
    assert float(margin.float().mean()) <= 0.05
    from bench.attacks.base import AttackOutcome

    outcomes = {
        "pgd-linf": AttackOutcome("pgd-linf", "linf", 0.3, ce, 0.0),
        "pgd-linf-margin": AttackOutcome("pgd-linf-margin", "linf", 0.3, margin, 0.0),
    }
    flags = _messages(masking_flags(torch.ones(len(x), dtype=torch.bool), outcomes, probes=probe_model(model, x, y), model=model))
    assert any(f.startswith("zero input gradients (ce loss)") and "softmax saturates" in f for f in flags), flags
    assert any(f.startswith("cross-entropy PGD is weaker than margin-loss PGD") for f in flags), flags


def test_undeclared_randomness_is_flagged(plain_model, points):
    x, y = points
    model = SecretlyRandom(plain_model).eval()
    flags = _messages(masking_flags(torch.ones(len(x), dtype=torch.bool), {}, probes=probe_model(model, x, y), model=model))
    assert any(f.startswith("randomness observed where none was declared") for f in flags), flags
    honest = probe_model(plain_model, x, y)
    assert not _messages(masking_flags(torch.ones(len(x), dtype=torch.bool), {}, probes=honest, model=plain_model))


def test_detector_aware_pgd_beats_the_detector_it_knows(plain_model, points, mnist5k):
    x, y = points
    brightness = mnist5k.x_test.mean(dim=(1, 2, 3))
    threshold = float(brightness.quantile(0.95))  # about 5% false positives on clean data
    blind = BrightnessDetector(plain_model, threshold, declare_margin=False).eval()
    aware = BrightnessDetector(plain_model, threshold, declare_margin=True).eval()
    assert abs(detector_rate(aware, mnist5k.x_test) - 0.05) < 0.01
    torch.manual_seed(0)
    x_blind, blind_correct = PGD(steps=40)(blind, x, y, eps=0.3)
    torch.manual_seed(0)
    x_aware, aware_correct = PGD(steps=40)(aware, x, y, eps=0.3)
    # success means misclassified AND undetected: the detector stops the unaware attack...
    assert float(blind_correct.float().mean()) > 0.3
    # ...but not the joint objective
    assert float(aware_correct.float().mean()) <= 0.1
    broken = ~aware_correct
    assert not bool(aware.detect(x_aware[broken]).any())
    assert bool((plain_model(x_aware[broken]).argmax(1) != y[broken]).all())
    flags = _messages(masking_flags(torch.ones(len(x), dtype=torch.bool), {}, model=blind))
    assert any("detector but no detect_margin" in f for f in flags)


def test_autoattack_counts_on_neither_side_of_the_black_box_check():
    """AutoAttack contains Square: its breaks must not hide a black-box win over the white-box attacks."""
    from bench.attacks.base import AttackOutcome
    from bench.attacks.registry import ENSEMBLE

    n = 50
    survived, broken = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    outcomes = {
        "pgd-linf": AttackOutcome("pgd-linf", "linf", 0.3, survived, 0.0),
        "autoattack": AttackOutcome("autoattack", "linf", 0.3, broken, 0.0),
        "square": AttackOutcome("square", "linf", 0.3, broken, 0.0),
    }
    kinds = {"pgd-linf": "white-box", "autoattack": ENSEMBLE, "square": BLACK_BOX}
    flags = _messages(masking_flags(survived.clone(), outcomes, kinds=kinds))
    assert any(f.startswith(f"black-box attack square breaks {n} of {n}") for f in flags), flags
