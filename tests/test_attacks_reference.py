"""Our PGD against a reference library on the same model, samples and settings."""
from __future__ import annotations

import foolbox as fb
import torch

from bench.attacks import PGD

STEPS = 20
EPS = 0.15  # a budget where the plain CNN is neither intact nor fully broken


def test_pgd_linf_matches_foolbox_linf_pgd(plain_model, mnist5k):
    idx = torch.arange(0, len(mnist5k.x_test), 4)[:250]  # 250 samples over all classes
    x, y = mnist5k.x_test[idx], mnist5k.y_test[idx]
    # deterministic on both sides (no random start), the same step size 2.5 * eps / steps
    _, ours = PGD(norm="linf", steps=STEPS, random_start=False)(plain_model, x, y, eps=EPS)
    attack = fb.attacks.LinfPGD(steps=STEPS, rel_stepsize=2.5 / STEPS, random_start=False)
    _, _, success = attack(fb.PyTorchModel(plain_model, bounds=(0.0, 1.0)), x, y, epsilons=EPS)
    ours_acc, foolbox_acc = float(ours.float().mean()), float((~success).float().mean())
    assert 0.05 < foolbox_acc < 0.95, "the comparison needs a budget that breaks some samples but not all"
    assert abs(ours_acc - foolbox_acc) <= 0.02, (ours_acc, foolbox_acc)


def test_pgd_with_random_start_is_as_strong_as_foolbox(plain_model, mnist5k):
    idx = torch.arange(1, len(mnist5k.x_test), 4)[:250]
    x, y = mnist5k.x_test[idx], mnist5k.y_test[idx]
    torch.manual_seed(0)
    _, ours = PGD(norm="linf", steps=STEPS)(plain_model, x, y, eps=EPS)
    attack = fb.attacks.LinfPGD(steps=STEPS, rel_stepsize=2.5 / STEPS, random_start=True)
    _, _, success = attack(fb.PyTorchModel(plain_model, bounds=(0.0, 1.0)), x, y, epsilons=EPS)
    assert float(ours.float().mean()) <= float((~success).float().mean()) + 0.02
