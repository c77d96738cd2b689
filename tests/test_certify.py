"""Randomized smoothing against closed forms: a linear classifier's exact radius, statsmodels' bounds.

For f(x) = 1[w.x + b > 0] under N(0, sigma^2 I) noise, P(f(x + noise) = 1)
= Phi((w.x + b) / (sigma ||w||)), so the smoothed classifier's exact radius
is |w.x + b| / ||w|| (Cohen et al. 2019, Section 3.1). Every certificate
must stay below it except with probability alpha.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import binom, norm
from statsmodels.stats.proportion import proportion_confint

from bench.certification import ABSTAIN, SmoothedClassifier, lower_confidence_bound, max_certifiable_radius
from bench.certification.bounds import certified_radius
from bench.contract import DefendedModel

SHAPE = (1, 4, 4)  # a 16-pixel "image", so noise draws are cheap


class LinearBinary(DefendedModel):
    """f(x) = 1[w.x + b > 0] as two logits (0 and w.x + b)."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__(num_classes=2)
        self.w = torch.nn.Parameter(w.reshape(-1).clone(), requires_grad=False)
        self.b = float(b)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1) @ self.w + self.b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.score(x)
        return torch.stack([torch.zeros_like(s), s], dim=1)

    def exact_radius(self, x: torch.Tensor) -> float:
        return abs(float(self.score(x.unsqueeze(0)))) / float(self.w.norm())

    def true_class(self, x: torch.Tensor) -> int:
        return int(float(self.score(x.unsqueeze(0))) > 0)


@pytest.fixture(scope="module")
def linear():
    gen = torch.Generator().manual_seed(1)
    return LinearBinary(torch.randn(SHAPE, generator=gen), 0.3).eval()


def at_distance(model: LinearBinary, t: float, base_seed: int = 0) -> torch.Tensor:
    """A point whose signed distance to the decision boundary is t (exact radius |t|)."""
    gen = torch.Generator().manual_seed(base_seed)
    x = torch.rand(SHAPE, generator=gen)
    w = model.w.reshape(SHAPE)
    s = float(model.score(x.unsqueeze(0)))
    return x + (t - s / float(w.norm())) * w / float(w.norm())


# -- bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1000, 100_000])
@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05, 0.25])
def test_clopper_pearson_matches_statsmodels_one_sided(n, alpha):
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n} & set(range(n + 1))):
        ours = lower_confidence_bound(k, n, alpha)
        reference = proportion_confint(k, n, alpha=2 * alpha, method="beta")[0]
        reference = 0.0 if np.isnan(reference) else reference
        assert abs(ours - reference) <= 1e-9, (k, n, alpha, ours, reference)


def test_bounds_reject_bad_input():
    for bad in (0.0, 1.0, -0.1, 2.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            lower_confidence_bound(5, 10, bad)
    with pytest.raises(ValueError):
        lower_confidence_bound(11, 10, 0.01)
    with pytest.raises(ValueError, match="sigma"):
        SmoothedClassifier(torch.nn.Linear(2, 2), 0.0)


def test_max_certifiable_radius_is_all_votes_bound():
    # all n draws vote for the top class: the one-sided bound is alpha ** (1 / n)
    assert max_certifiable_radius(1000, 0.001, 0.25) == pytest.approx(0.25 * norm.ppf(0.001 ** (1 / 1000)), rel=1e-9)
    assert certified_radius(0.5, 1.0) == 0.0 and certified_radius(0.3, 1.0) == 0.0


# -- the linear classifier's exact radius ---------------------------------------------------


def test_certified_radius_approaches_exact_radius_from_below(linear):
    sigma, n, alpha = 0.5, 400_000, 1e-6
    smoothed = SmoothedClassifier(linear, sigma, batch_size=50_000)
    for i, t in enumerate([0.1, -0.2, 0.5, -0.9]):
        x = at_distance(linear, t, base_seed=i)
        exact = linear.exact_radius(x)
        cert = smoothed.certify(x, n0=1000, n=n, alpha=alpha, index=i)  # n0 large enough to select right at p = 0.58
        assert cert.prediction == linear.true_class(x)
        p = norm.cdf(exact / sigma)
        # the bound sits about z_alpha standard errors below p, i.e. this far below in radius:
        expected_gap = sigma * norm.ppf(1 - alpha) * math.sqrt(p * (1 - p) / n) / norm.pdf(norm.ppf(p))
        assert 0.0 <= exact - cert.radius <= 2 * expected_gap + 1e-3, (t, exact, cert.radius, expected_gap)


def test_certificates_exceed_exact_radius_at_most_alpha_fraction(linear):
    """Over many points the certificate is wrong (wrong class, or radius above the exact one) at rate <= alpha.

    With m points the count of wrong certificates is at most Binomial(m,
    alpha); we allow its 1 - 1e-6 quantile, so a sound implementation fails
    with probability < 1e-6. Using the point estimate instead of the lower
    bound would be wrong on about half the points, far above the threshold.
    """
    sigma, n0, n, alpha, m = 0.5, 100, 2000, 0.05, 400
    smoothed = SmoothedClassifier(linear, sigma, batch_size=2100)
    distances = np.random.RandomState(0).uniform(-1.0, 1.0, size=m)
    wrong = naive_wrong = certified = 0
    for i, t in enumerate(distances):
        x = at_distance(linear, float(t), base_seed=1000 + i)
        exact = linear.exact_radius(x)
        cert = smoothed.certify(x, n0=n0, n=n, alpha=alpha, seed=7, index=i)
        if cert.abstained:
            continue
        certified += 1
        wrong += cert.prediction != linear.true_class(x) or cert.radius > exact + 1e-12
        naive = sigma * norm.ppf(min(cert.count / n, 1 - 1e-12))
        naive_wrong += naive > exact + 1e-12
    threshold = binom.ppf(1 - 1e-6, m, alpha)
    assert certified > m // 2, "most points are far enough from the boundary to certify"
    assert wrong <= threshold, (wrong, threshold)
    assert naive_wrong > threshold, "the check must be able to catch an unsound radius"


def test_results_do_not_depend_on_batch_size(linear):
    x = at_distance(linear, 0.3)
    certs = {
        batch: SmoothedClassifier(linear, 0.25, batch_size=batch).certify(x, n0=100, n=1050, alpha=0.01, index=4)
        for batch in (100, 300, 1200, 5000)
    }
    assert len(set(certs.values())) == 1, certs


# -- abstention and the detector ------------------------------------------------------------


def test_abstains_on_the_decision_boundary(linear):
    x = at_distance(linear, 0.0)
    smoothed = SmoothedClassifier(linear, 0.5, batch_size=10_000)
    for i in range(3):  # each check fails with probability <= alpha = 1e-5 on a correct implementation
        cert = smoothed.certify(x, n0=100, n=20_000, alpha=1e-5, index=i)
        assert cert.prediction == ABSTAIN and cert.radius == 0.0 and cert.p_lower <= 0.5
        assert smoothed.predict(x, n=20_000, alpha=1e-5, index=i) == ABSTAIN
    far = at_distance(linear, 0.8)
    assert smoothed.predict(far, n=2000, alpha=0.001) == linear.true_class(far)


class Flagging(LinearBinary):
    """The linear classifier plus a detector that flags draws whose first pixel exceeds a threshold."""

    def __init__(self, base: LinearBinary, threshold: float) -> None:
        super().__init__(base.w.detach(), base.b)
        self.threshold = threshold

    def detect(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.reshape(len(x), -1)[:, 0] > self.threshold


def test_detector_flags_count_as_abstentions(linear):
    x = at_distance(linear, 0.6)
    plain = SmoothedClassifier(linear, 0.25, batch_size=2000).certify(x, n0=100, n=2000, alpha=0.001, index=1)
    assert not plain.abstained

    def certify_with(threshold: float):
        return SmoothedClassifier(Flagging(linear, threshold), 0.25, batch_size=2000).certify(
            x, n0=100, n=2000, alpha=0.001, index=1
        )

    assert certify_with(float("inf")) == plain  # a detector that never fires changes nothing
    assert certify_with(-float("inf")).abstained  # one that always fires: the top "class" is the flag
    first = float(x.reshape(-1)[0])
    assert certify_with(first).abstained  # flags about half the draws: p_A <= 1/2
    some = certify_with(first + 0.25 * 1.5)  # flags ~7% of the draws (same draws, so fewer votes)
    assert some.prediction == plain.prediction and 0 < some.radius < plain.radius
    assert some.count < plain.count


# -- selection and estimation never share a draw --------------------------------------------


class Recording(LinearBinary):
    """Keeps every input row it is shown."""

    def __init__(self, base: LinearBinary) -> None:
        super().__init__(base.w.detach(), base.b)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.reshape(len(x), -1).clone())
        return super().forward(x)


@pytest.mark.parametrize("batch_size", [100, 500, 5000])
def test_selection_and_estimation_use_distinct_draws(linear, batch_size):
    n0, n = 100, 1000
    model = Recording(linear)
    smoothed = SmoothedClassifier(model, 0.5, batch_size=batch_size)
    x = at_distance(linear, 0.2)
    smoothed.certify(x, n0=n0, n=n, alpha=0.01, index=3)
    rows = torch.cat(model.seen)
    # every draw is forwarded exactly once (no reuse of selection draws for estimation) ...
    assert len(rows) == n0 + n
    assert len({tuple(r.tolist()) for r in rows}) == n0 + n
    # ... and the packed forwards give the same counts as separate, freshly seeded streams
    sel, est = smoothed.sample_counts(x, [(n0, smoothed.generator(0, 3, "selection")), (n, smoothed.generator(0, 3, "estimation"))])
    alone_sel = SmoothedClassifier(linear, 0.5, batch_size=100).counts(x, n0, smoothed.generator(0, 3, "selection"))
    alone_est = SmoothedClassifier(linear, 0.5, batch_size=100).counts(x, n, smoothed.generator(0, 3, "estimation"))
    assert torch.equal(sel, alone_sel) and torch.equal(est, alone_est)
    assert int(sel.sum()) == n0 and int(est.sum()) == n


def test_noise_is_seeded_per_sample_not_by_call_order(linear):
    smoothed = SmoothedClassifier(linear, 0.5, batch_size=1000)
    xs = [at_distance(linear, t, base_seed=i) for i, t in enumerate([0.1, 0.2, 0.3])]
    forward = [smoothed.certify(x, n0=100, n=500, alpha=0.01, index=i) for i, x in enumerate(xs)]
    backward = [smoothed.certify(xs[i], n0=100, n=500, alpha=0.01, index=i) for i in reversed(range(3))][::-1]
    assert forward == backward
    other_seed = smoothed.certify(xs[0], n0=100, n=500, alpha=0.01, index=0, seed=1)
    assert other_seed.count != forward[0].count or other_seed.p_lower != forward[0].p_lower
