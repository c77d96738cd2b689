"""pgd-linf-relaxed: toy quantising defenses built so that straight-through PGD fails and the new stages succeed.

The toys' network rewards flipping *all* of a few pixels from level 0 to the
next level, but its gradient at every quantised image points the other way
(a parabola in each pixel with its minimum between the levels): a
straight-through gradient, evaluated at the quantised image, walks away.
Their detector flags inputs far from their quantised image; its
straight-through gradient is exactly zero, so only stage 2 (moving inside
the preimage of the quantised image, with the gradient taken at the fixed
quantised image) evades it.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.attacks import PGD
from bench.attacks.base import evaluate_correct
from bench.attacks.quantized import RelaxedPGD, applies_to
from bench.contract_checks import input_transform_problems as check_input_transform
from bench.contract import ClassifierModel, DefendedModel, InputTransform
from bench.defenses.squeezing import bit_depth_preimage, reduce_bit_depth, soft_bit_depth

EPS = 0.3
SHAPE = (1, 4, 4)


class ParabolaNet(nn.Module):
    """Two logits (0, sum_F (t_i - centre)^2 - bias): class 1 only when every pixel of F is flipped up."""

    def __init__(self, flippable: torch.Tensor, centre: float, bias: float) -> None:
        super().__init__()
        self.register_buffer("mask", flippable.float())
        self.centre, self.bias = centre, bias
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        score = (((t - self.centre) ** 2) * self.mask).flatten(1).sum(1) * self.scale - self.bias
        return torch.stack([torch.zeros_like(score), score], dim=1)


class ToyBitDepth(DefendedModel):
    """Deployed: net(1-bit(x)); detector: sum |x - 1-bit(x)| > tau; declares its surfaces via bench's helpers."""

    def __init__(self, net: nn.Module, tau: float, declare_margin_at: bool = True) -> None:
        super().__init__(num_classes=2)
        self.net, self.tau, self.declare_margin_at = net, tau, declare_margin_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(reduce_bit_depth(x, 1))

    def differentiable_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(reduce_bit_depth(x, 1, straight_through=True))

    def _margin(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (x - t).abs().flatten(1).sum(1) - self.tau

    def detect_margin(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self._margin(x, reduce_bit_depth(x, 1, straight_through=True))

    def detect(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        with torch.no_grad():
            return self.detect_margin(x) > 0

    def input_transform(self) -> InputTransform:
        return InputTransform(
            transform=lambda x: reduce_bit_depth(x, 1), network=self.net,
            relaxed=lambda x, temperature: soft_bit_depth(x, 1, temperature),
            preimage=lambda t: bit_depth_preimage(t, 1),
            detect_margin_at=self._margin if self.declare_margin_at else None,
        )


class PluginThreeLevels(DefendedModel):
    """A plugin-style defense written from scratch: levels {0, 1/2, 1}, its own relaxation and preimage."""

    def __init__(self, net: nn.Module, tau: float) -> None:
        super().__init__(num_classes=2)
        self.net, self.tau = net, tau

    @staticmethod
    def quantise(x: torch.Tensor) -> torch.Tensor:
        return torch.round(x.clamp(0, 1) * 2) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.quantise(x))

    def differentiable_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + (self.quantise(x) - x).detach())

    def margin_at(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (x - t).abs().flatten(1).sum(1) - self.tau

    def detect_margin(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.margin_at(x, x + (self.quantise(x) - x).detach())

    def detect(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        with torch.no_grad():
            return self.detect_margin(x) > 0

    def input_transform(self) -> InputTransform:
        def relaxed(x: torch.Tensor, temperature: float) -> torch.Tensor:
            return 0.5 * (torch.sigmoid((x - 0.25) / temperature) + torch.sigmoid((x - 0.75) / temperature))

        def preimage(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            lo = torch.where(t <= 0, torch.zeros_like(t), t - 0.25 + 1e-6)
            hi = torch.where(t >= 1, torch.ones_like(t), t + 0.25 - 1e-6)
            return lo, hi

        return InputTransform(transform=self.quantise, network=self.net, relaxed=relaxed, preimage=preimage,
                              detect_margin_at=self.margin_at)


def _points(n: int, flippable: torch.Tensor, value: float) -> torch.Tensor:
    """Pixels of F at ``value`` (level 0, one eps-step from the next level); the rest pinned at 0 or 1."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand((n, *SHAPE), generator=g) > 0.5).float()
    return torch.where(flippable, torch.full_like(x, value), x)


@pytest.fixture()
def bit_depth_case():
    flippable = torch.zeros(SHAPE, dtype=torch.bool)
    flippable.view(-1)[[1, 6, 9, 14]] = True
    # clean score 4 * 0.25^2 = 0.25; all four flipped: 4 * 0.75^2 = 2.25; three: 1.75 -> bias 2.0
    net = ParabolaNet(flippable, centre=0.25, bias=2.0)
    x = _points(8, flippable, 0.25)
    # clean: sum |x - q| = 4 * 0.25 = 1.0; flipped at the nearest input (0.5+): 2.0; pushed to 0.55: 1.8
    return net, x, torch.zeros(8, dtype=torch.long), 1.9


@pytest.fixture()
def plugin_case():
    flippable = torch.zeros(SHAPE, dtype=torch.bool)
    flippable.view(-1)[[0, 2, 5, 7, 8, 10, 13, 15]] = True
    # per pixel (t - 0.2)^2: 0.04 at level 0, 0.09 at 1/2: all eight up 0.72, seven 0.67 -> bias 0.7
    net = ParabolaNet(flippable, centre=0.2, bias=0.7)
    x = _points(8, flippable, 0.1)
    # clean: 8 * 0.1 = 0.8; flipped at the nearest input (0.25+): 2.0; pushed to 0.4: 0.8
    return PluginThreeLevels(net, tau=1.5), x, torch.zeros(8, dtype=torch.long)


def _check_example(model, x, y, result):
    assert float((result.x_adv - x).abs().max()) <= EPS + 1e-6
    assert float(result.x_adv.min()) >= 0 and float(result.x_adv.max()) <= 1
    assert torch.equal(result.correct, evaluate_correct(model, result.x_adv, y))


def _counts(attack: RelaxedPGD) -> tuple[int, int, int]:
    return attack.stats["stage1"], attack.stats["candidates"], attack.stats["stage2"]


def _attack_the_toy(model, x, y):
    assert applies_to(model)
    assert bool(evaluate_correct(model, x, y).all()) and not bool(model.detect(x).any())
    torch.manual_seed(0)
    straight = PGD(norm="linf", steps=40, restarts=2).perturb(model, x, y, eps=EPS)
    assert bool(straight.correct.all()), "the toy is built so that straight-through PGD fails"
    only_st = RelaxedPGD(steps=30, restarts=2, surfaces=("straight-through",)).perturb(model, x, y, eps=EPS)
    assert bool(only_st.correct.all())
    attack = RelaxedPGD(steps=30, restarts=1)
    result = attack.perturb(model, x, y, eps=EPS)
    _check_example(model, x, y, result)
    assert not bool(result.correct.any()), "reachable-image search plus detector evasion breaks every point"
    # stage 1 alone only finds flagged misclassifications; stage 2 turns each into an undetected one
    assert _counts(attack) == (0, len(x), len(x))
    assert attack.stats["broken_reachable"] == len(x)
    return result


def test_bit_depth_toy_falls_to_the_new_stages_only(bit_depth_case):
    net, x, y, tau = bit_depth_case
    model = ToyBitDepth(net, tau).eval()
    result = _attack_the_toy(model, x, y)
    assert torch.equal(reduce_bit_depth(result.x_adv, 1).flatten(1)[:, net.mask.flatten().bool()],
                       torch.ones(len(x), 4))


def test_stage_two_without_the_fixed_image_margin(bit_depth_case):
    """The detector's straight-through gradient is exactly zero; stage 2 still evades from its second start.

    That start puts every pixel as near its quantised level as the eps-ball
    allows, which is what a detector comparing x with its quantised image
    rewards.
    """
    net, x, y, tau = bit_depth_case
    model = ToyBitDepth(net, tau, declare_margin_at=False).eval()
    x_in = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.detect_margin(x_in).sum(), x_in)
    assert float(grad.abs().max()) == 0.0
    attack = RelaxedPGD(steps=30, restarts=1, surfaces=("reachable",))
    result = attack.perturb(model, x, y, eps=EPS)
    _check_example(model, x, y, result)
    assert _counts(attack) == (0, len(x), len(x))


def test_a_plugin_declaring_the_same_surfaces_is_attacked_the_same_way(plugin_case):
    model, x, y = plugin_case
    result = _attack_the_toy(model.eval(), x, y)
    assert bool((model.quantise(result.x_adv).flatten(1)[:, model.net.mask.flatten().bool()] == 0.5).all())


def test_generic_stage_two_without_a_preimage_keeps_examples_valid():
    """A transform with only a relaxation (JPEG-like): stage 2 may only take steps that keep the misclassification.

    Here the relaxation leads stage 1 to misclassified inputs, but even the
    farthest reachable input stays flagged, so stage 2 runs and must fail.
    """
    flippable = torch.zeros(SHAPE, dtype=torch.bool)
    flippable.view(-1)[[1, 6, 9, 14]] = True
    # gradient at level 0 negative (straight-through walks away), at the relaxed image of 0.25 positive
    net = ParabolaNet(flippable, centre=0.05, bias=3.0)
    x = _points(8, flippable, 0.25)
    y = torch.zeros(8, dtype=torch.long)

    class RelaxedOnly(ToyBitDepth):
        def input_transform(self) -> InputTransform:
            full = super().input_transform()
            return InputTransform(transform=full.transform, network=full.network, relaxed=full.relaxed)

    model = RelaxedOnly(net, tau=1.7).eval()  # the farthest input, 0.55 per flipped pixel, scores 1.8
    attack = RelaxedPGD(steps=30, restarts=1, surfaces=("relaxed",))
    result = attack.perturb(model, x, y, eps=EPS)
    _check_example(model, x, y, result)
    assert _counts(attack) == (0, len(x), 0)
    assert bool(result.correct.all())


def test_bad_arguments_and_models_without_the_declaration():
    plain_model = ClassifierModel(nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)), 10)
    with pytest.raises(ValueError, match="bad surfaces \\('jpeg',\\); valid choices"):
        RelaxedPGD(surfaces=("jpeg",))
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        RelaxedPGD(steps=0)
    assert not applies_to(plain_model)
    with pytest.raises(ValueError, match="needs a deterministic model that declares input_transform"):
        RelaxedPGD().run(plain_model, torch.rand(2, 1, 28, 28), torch.zeros(2, dtype=torch.long), EPS)


def test_declarations_are_checked(bit_depth_case, plugin_case):
    net, x, _, tau = bit_depth_case
    assert check_input_transform(ToyBitDepth(net, tau).eval(), x) == []
    assert check_input_transform(plugin_case[0].eval(), plugin_case[1]) == []

    class Lying(ToyBitDepth):
        def input_transform(self) -> InputTransform:
            full = super().input_transform()
            return InputTransform(transform=lambda v: v, network=full.network,
                                  preimage=lambda t: (t - 0.1, t - 0.05), detect_margin_at=lambda v, t: v.sum((1, 2, 3)))

    problems = check_input_transform(Lying(net, tau).eval(), x)
    assert problems == ["network(transform(x)) differs from forward(x)", "preimage(transform(x)) does not contain x",
                        "detect_margin_at(x, transform(x)) differs from detect_margin(x)"]
