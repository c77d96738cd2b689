"""feature_squeezing: squeezers against scipy, the BPDA surface, and the detector's calibration."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from bench.attacks import FGSM, PGD
from bench.defenses.squeezing import FeatureSqueezingModel, median_filter, reduce_bit_depth
from bench.registry import DefenseConfigError, create_defense


@pytest.mark.parametrize("size", [2, 3])
def test_median_filter_matches_scipy(size):
    x = torch.rand(2, 3, 11, 9, generator=torch.Generator().manual_seed(size))
    ours = median_filter(x, size).numpy()
    reference = scipy.ndimage.median_filter(x.numpy(), size=(1, 1, size, size), mode="reflect")
    np.testing.assert_array_equal(ours, reference)


def test_bit_depth_levels_and_straight_through_gradient():
    x = torch.linspace(0, 1, 101).view(1, 1, 1, 101)
    one_bit = reduce_bit_depth(x, 1)
    assert set(one_bit.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(one_bit, (x > 0.5).float())  # 0.5 itself rounds to even (0)
    five = reduce_bit_depth(x, 5) * 31
    assert torch.allclose(five, five.round()) and five.min() == 0 and five.max() == 31
    grid = torch.arange(32.0) / 31
    assert torch.allclose(reduce_bit_depth(grid, 5), grid)  # the 32 levels are fixed points
    x_in = x.clone().requires_grad_(True)
    squeezed = reduce_bit_depth(x_in, 1, straight_through=True)
    assert torch.equal(squeezed, one_bit)  # forward exact
    (grad,) = torch.autograd.grad(squeezed.sum(), x_in)
    assert torch.equal(grad, torch.ones_like(x))  # backward identity
    x_plain = x.clone().requires_grad_(True)
    (grad_plain,) = torch.autograd.grad(reduce_bit_depth(x_plain, 1).sum(), x_plain)
    assert grad_plain.abs().sum() == 0  # what BPDA exists to get around


def test_default_bits_follow_the_paper(mnist5k):
    from bench.defenses.squeezing import FeatureSqueezingConfig, _bits

    assert _bits(mnist5k, FeatureSqueezingConfig()) == 1
    colour = mnist5k.subset(4, 4)
    colour.x_train = colour.x_train.repeat(1, 3, 1, 1)
    assert _bits(colour, FeatureSqueezingConfig()) == 5


def test_bad_deploy_choice_is_named():
    with pytest.raises(DefenseConfigError, match="unknown deploy 'jpeg'; valid choices: bit_depth, median, both, raw"):
        FeatureSqueezingModel(torch.nn.Identity(), 10, bits=1, median_size=2, deploy="jpeg")


@pytest.mark.parametrize("deploy", ["raw", "median", "both"])
def test_other_deployments_squeeze_as_named(deploy):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    model = FeatureSqueezingModel(net, 10, bits=1, median_size=2, deploy=deploy)
    x = torch.rand(3, 1, 28, 28)
    expected = {"raw": x, "median": median_filter(x, 2), "both": median_filter(reduce_bit_depth(x, 1), 2)}[deploy]
    with torch.no_grad():
        assert torch.equal(model(x), net(expected))


def test_threshold_travels_with_the_weights():
    model = FeatureSqueezingModel(torch.nn.Identity(), 10, bits=1, median_size=2, deploy="bit_depth")
    model.threshold.fill_(0.25)
    fresh = FeatureSqueezingModel(torch.nn.Identity(), 10, bits=1, median_size=2, deploy="bit_depth")
    fresh.load_state_dict(model.state_dict(), strict=True)
    assert float(fresh.threshold) == 0.25


@pytest.fixture(scope="module")
def squeezer(mnist5k):
    torch.manual_seed(0)
    return create_defense("feature_squeezing", epochs=2).fit(mnist5k)


def test_deployed_forward_is_the_bit_depth_squeezed_classifier(squeezer, mnist5k):
    x = mnist5k.x_test[::10]
    with torch.no_grad():
        assert torch.equal(squeezer(x), squeezer.net(reduce_bit_depth(x, 1)))
        assert torch.equal(squeezer.differentiable_forward(x), squeezer(x))
    x_in = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(squeezer.differentiable_forward(x_in).logsumexp(1).sum(), x_in)
    assert (grad.flatten(1).abs().amax(1) > 0).all()


def test_detector_false_positives_near_target_and_margin_consistent(squeezer, mnist5k):
    x = mnist5k.x_test
    assert torch.isfinite(squeezer.threshold)
    flags = squeezer.detect(x)
    assert flags.dtype == torch.bool and flags.shape == (len(x),)
    fpr = float(flags.float().mean())
    # Calibrated to 5% on 500 held-out training images; the test set is new data.
    assert 0.0 < fpr < 0.12, fpr
    with torch.no_grad():
        assert torch.equal(squeezer.detect_margin(x) > 0, flags)


def test_detector_catches_non_adaptive_attacks_on_its_classifier(squeezer, mnist5k):
    """Xu et al.'s setting: examples crafted on the raw classifier, unaware of the squeezers."""
    from bench.contract import ClassifierModel

    raw = ClassifierModel(squeezer.net, 10).eval()
    idx = torch.randperm(1000, generator=torch.Generator().manual_seed(0))[:200]
    x, y = mnist5k.x_test[idx], mnist5k.y_test[idx]
    torch.manual_seed(0)
    for attack in (FGSM(), PGD(steps=20)):
        x_adv, still_correct = attack(raw, x, y, eps=0.3)
        fooled = ~still_correct
        assert fooled.float().mean() > 0.5
        detected = squeezer.detect(x_adv[fooled]).float().mean()
        assert detected > 0.5, (attack, float(detected))
