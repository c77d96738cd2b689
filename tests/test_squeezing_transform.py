"""feature_squeezing's InputTransform declaration: exact split, relaxation, preimage, fixed-image detector margin."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from bench.defenses.squeezing import (FeatureSqueezingModel, bit_depth_preimage, build_feature_squeezing,
                                      FeatureSqueezingConfig, reduce_bit_depth, soft_bit_depth)

COMMITTED = Path(__file__).resolve().parents[1] / "models" / "mnist5k" / "feature_squeezing-037088044007.pt"


def _model(deploy: str) -> FeatureSqueezingModel:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    model = FeatureSqueezingModel(net, 10, bits=1, median_size=2, deploy=deploy).eval()
    model.threshold.fill_(0.3)
    return model


@pytest.mark.parametrize("deploy", ["bit_depth", "median", "both"])
def test_the_split_is_the_deployed_forward(deploy):
    model = _model(deploy)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    decl = model.input_transform()
    assert torch.equal(decl.network(decl.transform(x)), model(x))
    assert (decl.relaxed is None) == (deploy == "median")
    assert (decl.preimage is not None) == (deploy == "bit_depth") == (decl.detect_margin_at is not None)
    if decl.relaxed is not None:  # far from the thresholds a cold relaxation is the transform
        far = torch.where((x - 0.5).abs() < 0.05, x.round(), x)
        assert torch.allclose(decl.relaxed(far, 1e-3), decl.transform(far), atol=1e-6)
    assert _model("raw").input_transform() is None


@pytest.mark.parametrize("bits", [1, 2, 5])
def test_preimage_bounds_are_exact_and_tight(bits):
    levels = 2**bits - 1
    t = torch.arange(levels + 1, dtype=torch.float32) / levels
    lo, hi = bit_depth_preimage(t, bits)
    assert torch.equal(reduce_bit_depth(lo, bits), t) and torch.equal(reduce_bit_depth(hi, bits), t)
    inner = (torch.arange(levels, dtype=torch.float32) + 0.5) / levels  # the rounding thresholds
    assert torch.allclose(hi[:-1], inner, atol=1e-5) and torch.allclose(lo[1:], inner, atol=1e-5)
    assert lo[0] == 0 and hi[-1] == 1
    x = torch.rand(1000, generator=torch.Generator().manual_seed(bits))
    q = reduce_bit_depth(x, bits)
    qlo, qhi = bit_depth_preimage(q, bits)
    assert bool(((qlo <= x) & (x <= qhi)).all())
    far = x[(x * levels - (x * levels).floor() - 0.5).abs() > 0.2]  # >= 0.2 / levels from every threshold
    assert torch.allclose(soft_bit_depth(far, bits, 1e-4), reduce_bit_depth(far, bits), atol=1e-5)


def test_fixed_image_margin_equals_the_detector_without_the_quantiser_gradient():
    model = _model("bit_depth")
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    decl = model.input_transform()
    t = decl.transform(x)
    assert torch.allclose(decl.detect_margin_at(x, t), model.detect_margin(x))
    x_in = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(decl.detect_margin_at(x_in, t).sum(), x_in)
    # by hand: the score's gradient through the raw and median images only
    x_ref = x.clone().requires_grad_(True)
    p = torch.softmax(model.net(x_ref), 1)
    scores = torch.stack([(p - torch.softmax(model.net(t), 1)).abs().sum(1),
                          (p - torch.softmax(model.net(model._squeeze(x_ref, "median", False)), 1)).abs().sum(1)])
    (expected,) = torch.autograd.grad(scores.max(0).values.sum(), x_ref)
    assert torch.allclose(grad, expected, atol=1e-6)


@pytest.mark.skipif(not COMMITTED.exists(), reason="the committed model is not in this checkout")
def test_the_committed_model_still_loads_and_declares_its_surfaces(mnist5k):
    model = build_feature_squeezing(mnist5k, FeatureSqueezingConfig())
    model.load_state_dict(torch.load(COMMITTED, weights_only=True), strict=True)
    model.eval()
    x = mnist5k.x_test[:50]
    decl = model.input_transform()
    with torch.no_grad():
        assert torch.equal(decl.network(decl.transform(x)), model(x))
        assert torch.allclose(decl.detect_margin_at(x, decl.transform(x)), model.detect_margin(x))


@pytest.mark.parametrize("deploy", ["bit_depth", "median", "both"])
def test_feature_squeezing_passes_the_declaration_check(deploy):
    from bench.contract_checks import input_transform_problems as check_input_transform

    x = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    assert check_input_transform(_model(deploy), x) == []
