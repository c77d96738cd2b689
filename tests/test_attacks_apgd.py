"""APGD-CE / APGD-T wrappers: same examples as pyautoattack called directly, the eps-ball, a linear closed form."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.attacks.apgd import APGD, APGDTargeted
from bench.contract import ClassifierModel, DefendedModel

CLASSES = 4
DIM = 64


class Linear(DefendedModel):
    """Logits W x + b: the minimal L-inf perturbation to class j is (z_y - z_j) / ||w_y - w_j||_1."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__(num_classes=CLASSES)
        self.linear = nn.Linear(DIM, CLASSES)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(CLASSES, DIM, generator=generator))
            self.linear.bias.copy_(torch.randn(CLASSES, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


@pytest.fixture(scope="module")
def linear_case():
    g = torch.Generator().manual_seed(0)
    model = Linear(g).eval()
    x = (0.4 + 0.2 * torch.rand(32, 1, 8, 8, generator=g))
    with torch.no_grad():
        z = model(x)
    y = z.argmax(1)
    w = model.linear.weight.detach()
    dual = (w[y][:, None, :] - w[None]).abs().sum(-1)  # ||w_y - w_j||_1, (n, classes)
    dist = (z.gather(1, y[:, None]) - z) / dual.clamp_min(1e-12)
    dist.scatter_(1, y[:, None], float("inf"))
    exact = dist.min(1).values
    # the box [0, 1] must not bind, or the closed form would not hold
    assert float(exact.max()) < 0.35
    return model, x, y, exact


@pytest.fixture(scope="module")
def small_cnn():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    model = ClassifierModel(net, 10).eval()
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_gives_the_library_examples(small_cnn, loss):
    from pyautoattack.autopgd_base import APGDAttack

    model, x, y = small_cnn
    ours = APGD(loss=loss, n_iter=15, n_restarts=2, seed=3).run(model, x, y, 0.1)
    direct = APGDAttack(model, n_iter=15, n_restarts=2, eps=0.1, seed=3, loss=loss, device=x.device).perturb(x, y)
    assert torch.equal(ours.contiguous(), direct)
    assert ours.is_contiguous(memory_format=torch.channels_last)


def test_apgd_t_gives_the_library_examples(small_cnn):
    from pyautoattack.autopgd_base import APGDAttack_targeted

    model, x, y = small_cnn
    ours = APGDTargeted(n_iter=15, n_target_classes=3, seed=5).run(model, x, y, 0.1)
    direct = APGDAttack_targeted(model, n_iter=15, eps=0.1, seed=5, n_target_classes=3, device=x.device).perturb(x, y)
    assert torch.equal(ours.contiguous(), direct)


@pytest.mark.parametrize("attack", [APGD(n_iter=20), APGD(loss="dlr", n_iter=20), APGDTargeted(n_iter=20, n_target_classes=3)])
def test_apgd_stays_in_the_eps_ball_and_the_box(small_cnn, attack):
    model, x, y = small_cnn
    eps = 0.3
    raw = attack.run(model, x, y, eps)
    assert float((raw - x).abs().max()) <= eps + 1e-6
    assert float(raw.min()) >= 0.0 and float(raw.max()) <= 1.0


def test_apgd_leaves_the_global_generator_alone(small_cnn):
    model, x, y = small_cnn
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    APGD(n_iter=5, seed=9).run(model, x, y, 0.1)
    assert torch.equal(torch.rand(3), expected)


def test_apgd_against_the_linear_closed_form(linear_case):
    model, x, y, exact = linear_case
    # DLR (untargeted and targeted) walks to the nearest class: broken exactly where eps exceeds the distance
    for eps in (float(exact.median()), float(exact.max()) * 1.02):
        for attack in (APGD(loss="dlr", n_iter=100), APGDTargeted(n_iter=100, n_target_classes=CLASSES - 1)):
            broken = ~attack.perturb(model, x, y, eps=eps).correct
            assert torch.equal(broken, exact < eps), attack.name
    # cross-entropy may head for a farther class near the boundary (why AutoAttack adds DLR), never below it
    ce = APGD(n_iter=100)
    assert bool(ce.perturb(model, x, y, eps=float(exact.min()) * 0.98).correct.all())
    assert not bool(ce.perturb(model, x, y, eps=float(exact.max()) * 1.1).correct.any())


def test_names_and_bad_values():
    assert APGD().name == "apgd-ce" and APGD(loss="dlr").name == "apgd-dlr" and APGDTargeted().name == "apgd-t"
    with pytest.raises(ValueError, match="unknown loss 'cw'; valid choices: ce, dlr"):
        APGD(loss="cw")
    with pytest.raises(ValueError, match="n_iter must be an integer >= 1, got 0"):
        APGD(n_iter=0)
    model = ClassifierModel(nn.Sequential(nn.Flatten(), nn.Linear(4, 5)), 5)
    with pytest.raises(ValueError, match="n_target_classes 9 is too large for 5 classes; valid choices: 1 to 4"):
        APGDTargeted().run(model, torch.rand(2, 1, 2, 2), torch.zeros(2, dtype=torch.long), 0.1)
