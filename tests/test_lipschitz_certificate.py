"""The deterministic certificate block: exact on linear classifiers, honest summaries."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.certification.lipschitz import lipschitz_certificates, radii_from_logits, standard_radii, summarize
from bench.contract import ClassifierModel


def test_linear_classifier_radius_is_the_exact_distance_to_the_decision_boundary(mnist5k):
    torch.manual_seed(0)
    linear = nn.Linear(784, 10)
    with torch.no_grad():
        linear.weight.mul_(20.0)  # logits of a few units, margins of all sizes
    model = ClassifierModel(nn.Sequential(nn.Flatten(), linear), 10).eval()
    x, y = mnist5k.x_test[:200], mnist5k.y_test[:200]
    block = lipschitz_certificates(model, x, y, [0.0, 0.1])
    assert block["applicable"] and block["bound"] == "liplt"
    w, b = linear.weight.detach().double(), linear.bias.detach().double()
    z = x.flatten(1).double() @ w.T + b
    pred = z.argmax(1)
    gaps = (z.gather(1, pred[:, None]) - z) / torch.cdist(w, w)[pred]
    gaps.scatter_(1, pred[:, None], float("inf"))
    exact = gaps.amin(1)  # distance to the nearest half-space where another class wins
    got = torch.tensor(block["radii"], dtype=torch.float64)
    assert torch.allclose(got, exact, atol=1e-5, rtol=0)
    assert (got <= exact).all()  # never above the truth
    correct = pred == y
    assert block["certified_accuracy"]["0"] == pytest.approx(float(correct.double().mean()))
    assert block["certified_accuracy"]["0.1"] == pytest.approx(float((correct & (exact >= 0.1)).double().mean()),
                                                               abs=1 / 200)
    assert block["mean_radius"] == pytest.approx(float(torch.where(correct, exact, 0.0).mean()), abs=1e-5)


def test_radii_use_the_bound_of_the_predicted_row():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
    lip = torch.tensor([[0.0, 1.0, 4.0], [2.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    pred, radius = radii_from_logits(logits, lip, slack=0.0)
    assert pred.tolist() == [0, 1]
    assert radius.tolist() == pytest.approx([min(2 / 1, 1 / 4), min(3 / 2, 3 / 1)])


def test_summary_counts_wrong_points_as_uncertified():
    correct = torch.tensor([True, False, True, True])
    radii = torch.tensor([0.3, 5.0, 0.0, 1.0], dtype=torch.float64)
    out = summarize(correct, radii, [0.0, 0.5])
    assert out["certified_accuracy"] == {"0": 0.75, "0.5": 0.25}
    assert out["mean_radius"] == pytest.approx((0.3 + 0.0 + 1.0) / 4)


def test_standard_radii_reach_the_headline_radius():
    assert standard_radii(2.0) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert standard_radii(0.6)[-1] == 0.6
