"""adversarial_training and trades: the inner maximisation, the eps ramp, and robustness gained."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.attacks import PGD
from bench.defenses.adversarial import pgd_examples, ramped_eps, trades_examples
from bench.registry import create_defense
from bench.validate import small_subset


def test_ramped_eps_is_linear_then_flat():
    next_eps = ramped_eps(0.3, warmup_batches=3)
    assert [round(next_eps(), 6) for _ in range(5)] == [0.1, 0.2, 0.3, 0.3, 0.3]
    assert ramped_eps(0.3, 0)() == 0.3


def test_inner_maximisation_stays_in_the_ball_and_raises_the_loss(plain_model, mnist5k):
    x, y = mnist5k.x_test[::20], mnist5k.y_test[::20]
    torch.manual_seed(0)
    x_pgd = pgd_examples(plain_model, x, y, eps=0.1, steps=5)
    x_kl = trades_examples(plain_model, x, eps=0.1, steps=5)
    for x_adv in (x_pgd, x_kl):
        assert (x_adv - x).abs().max() <= 0.1 + 1e-6
        assert x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        p = F.softmax(plain_model(x), 1)
        assert F.cross_entropy(plain_model(x_pgd), y) > 2 * F.cross_entropy(plain_model(x), y)
        kl = F.kl_div(F.log_softmax(plain_model(x_kl), 1), p, reduction="batchmean")
        assert kl > 0.1
    assert torch.equal(pgd_examples(plain_model, x, y, eps=0.0, steps=5), x)


def test_adversarial_training_gains_robustness_over_plain(mnist5k):
    """Same network, data and budget; only the training inputs differ."""
    small = small_subset(mnist5k, 1000, 300, seed=0)
    budget = dict(epochs=2, batch_size=50, seed=0)
    plain = create_defense("plain", **budget).fit(small)
    robust = create_defense("adversarial_training", eps=0.2, steps=3, warmup_epochs=1, **budget).fit(small)
    x, y = small.x_test, small.y_test
    torch.manual_seed(0)
    _, plain_ok = PGD(steps=10)(plain, x, y, eps=0.15)
    _, robust_ok = PGD(steps=10)(robust, x, y, eps=0.15)
    assert robust_ok.float().mean() > plain_ok.float().mean() + 0.2, (robust_ok.float().mean(), plain_ok.float().mean())
