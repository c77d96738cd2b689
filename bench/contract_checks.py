"""The contract checks `bench validate` runs on a fitted model, one function per promise.

Each check reads a ``Probe`` (the model, probe inputs, the registered
defense) and returns one ``Check`` line; ``CHECKS`` is the list
``bench.validate`` runs in order. A new promise of the contract is one more
function here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from .contract import DefendedModel
from .data import Dataset
from .losses import ce_loss, margin_loss
from .registry import Defense

# At least this share of samples must have a non-zero gradient through the surface.
MIN_NONZERO_GRADIENT = 0.9
# The BPDA surface must predict like the deployed model on at least this share of clean inputs.
MIN_SURFACE_AGREEMENT = 0.8


@dataclass
class Check:
    """One line of the validation report."""

    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name:<22}{self.detail}"


def _logits_problem(out: Any, n: int, num_classes: int) -> Optional[str]:
    if not isinstance(out, torch.Tensor):
        return f"returned {type(out).__name__}, not a tensor"
    if not out.is_floating_point():
        return f"returned dtype {out.dtype}, not float logits"
    if tuple(out.shape) != (n, num_classes):
        return f"returned shape {tuple(out.shape)}, expected ({n}, {num_classes})"
    if not torch.isfinite(out).all():
        return "returned non-finite values"
    return None


@dataclass
class Probe:
    """What every check looks at: the fitted model, the probe inputs, and where it came from."""

    model: DefendedModel
    data: Dataset  # x_test/y_test are the probe inputs
    defense: Optional[Defense] = None

    @property
    def x(self) -> torch.Tensor:
        return self.data.x_test

    @property
    def y(self) -> torch.Tensor:
        return self.data.y_test

    @property
    def num_classes(self) -> int:
        return self.data.num_classes


def check_forward(p: Probe) -> Check:
    with torch.no_grad():
        problem = _logits_problem(p.model(p.x), len(p.x), p.num_classes)
    return Check("forward", problem is None, problem or f"float logits of shape ({len(p.x)}, {p.num_classes})")


def check_unit_interval(p: Probe) -> Check:
    probes = {
        "all 0": torch.zeros_like(p.x[:4]),
        "all 1": torch.ones_like(p.x[:4]),
        "uniform": torch.rand(p.x[:4].shape, generator=torch.Generator().manual_seed(0)).to(p.x.device),
    }
    with torch.no_grad():
        for label, probe in probes.items():
            problem = _logits_problem(p.model(probe), len(probe), p.num_classes)
            if problem:
                return Check("inputs in [0, 1]", False, f"on {label} inputs: {problem}")
    return Check("inputs in [0, 1]", True, "all-0, all-1 and uniform inputs give finite logits")


def check_stochasticity(p: Probe) -> Check:
    with torch.no_grad():
        a, b = p.model(p.x), p.model(p.x)
    same = torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    declared = bool(p.model.stochastic)
    if declared and same:
        return Check("stochastic", False, "declared stochastic, but two forwards of one input were identical")
    if not declared and not same:
        diff = float((a - b).abs().max())
        return Check("stochastic", False, f"declared deterministic, but two forwards differ (max |diff| {diff:.3g}); "
                                          "declare stochastic = True so attacks use EOT")
    return Check("stochastic", True, f"declared {declared}; two forwards {'differ' if declared else 'agree'}")


def check_gradients(p: Probe) -> Check:
    x_in = p.x.detach().clone().requires_grad_(True)
    logits = p.model.differentiable_forward(x_in)
    problem = _logits_problem(logits, len(p.x), p.num_classes)
    if problem:
        return Check("gradients", False, f"differentiable_forward {problem}")
    if not logits.requires_grad:
        return Check("gradients", False, "differentiable_forward output is not connected to the input")
    (grad,) = torch.autograd.grad(margin_loss(logits, p.y).sum(), x_in, allow_unused=True)
    if grad is None:
        return Check("gradients", False, "no gradient reaches the input through differentiable_forward")
    if not torch.isfinite(grad).all():
        return Check("gradients", False, "non-finite input gradients through differentiable_forward")
    nonzero = float((grad.flatten(1).abs().amax(1) > 0).float().mean())
    ok = nonzero >= MIN_NONZERO_GRADIENT
    detail = f"margin-loss input gradients finite, non-zero on {nonzero:.0%} of samples"
    if not ok:
        detail += (f" (< {MIN_NONZERO_GRADIENT:.0%}): the declared surface hides gradients; give a "
                   "differentiable_forward an attacker can follow (BPDA)")
    return Check("gradients", ok, detail)


def check_surface_agreement(p: Probe) -> Check:
    with torch.no_grad():
        deployed = p.model(p.x).argmax(1)
        surface = p.model.differentiable_forward(p.x).argmax(1)
    agree = float((deployed == surface).float().mean())
    ok = agree >= MIN_SURFACE_AGREEMENT or p.model.stochastic
    detail = f"differentiable_forward predicts like forward on {agree:.0%} of inputs"
    if p.model.stochastic:
        detail += " (one draw each; not required for stochastic models)"
    elif not ok:
        detail += f" (< {MIN_SURFACE_AGREEMENT:.0%}): gradients of this surface do not describe the deployed model"
    return Check("surface agreement", ok, detail)


def check_ce_saturation(p: Probe) -> Check:
    """Informational: a saturated softmax is the battery's business (margin losses), not a contract breach."""
    x_in = p.x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ce_loss(p.model.differentiable_forward(x_in), p.y).sum(), x_in)
    zero = float((grad.flatten(1).abs().amax(1) == 0).float().mean())
    note = " (softmax saturates: only non-saturating losses such as the margin see gradients)" if zero > 0.5 else ""
    return Check("ce gradients", True, f"cross-entropy input gradient exactly zero on {zero:.0%} of samples{note}")


def check_detector(p: Probe) -> Check:
    model = p.model
    if model.detect is None:
        if model.detect_margin is not None:
            return Check("detector", False, "detect_margin is declared but detect is None")
        return Check("detector", True, "no detector declared")
    # Clean probes plus noisy ones, so that both verdicts are likely to occur.
    probes = torch.cat([p.x, (p.x + 0.3 * torch.randn_like(p.x)).clamp(0, 1)])
    with torch.no_grad():
        flags = model.detect(probes)
    if not isinstance(flags, torch.Tensor) or flags.dtype != torch.bool or tuple(flags.shape) != (len(probes),):
        got = f"{flags.dtype} of shape {tuple(flags.shape)}" if isinstance(flags, torch.Tensor) else type(flags).__name__
        return Check("detector", False, f"detect returned {got}; expected one bool per sample, shape ({len(probes)},)")
    if model.detect_margin is None:
        return Check("detector", False, "detect is declared without detect_margin, so no attack can target it jointly")
    probes_grad = probes.detach().clone().requires_grad_(True)
    margin = model.detect_margin(probes_grad)
    if not isinstance(margin, torch.Tensor) or tuple(margin.shape) != (len(probes),) or not margin.is_floating_point():
        return Check("detector", False, "detect_margin must return one float per sample")
    if not margin.requires_grad:
        return Check("detector", False, "detect_margin is not differentiable with respect to the input")
    (grad,) = torch.autograd.grad(margin.sum(), probes_grad)
    if not torch.isfinite(margin).all() or not torch.isfinite(grad).all():
        return Check("detector", False, "detect_margin or its gradient is not finite")
    if not model.stochastic:
        mismatch = int(((margin.detach() > 0) != flags).sum())
        if mismatch:
            return Check("detector", False, f"detect_margin > 0 disagrees with detect on {mismatch} of {len(probes)} inputs")
    rate = float(flags[: len(p.x)].float().mean())
    return Check("detector", True, f"one bool per sample; detect_margin consistent; flags {rate:.0%} of clean probes")


def check_extra_attacks(p: Probe) -> Check:
    from .attacks.base import Attack
    from .attacks.plan import PlannedAttack
    from .attacks.registry import attack_names

    attacks = p.model.extra_attacks()
    if not isinstance(attacks, list):
        return Check("extra attacks", False, f"extra_attacks() returned {type(attacks).__name__}, not a list")
    names = []
    for a in attacks:
        attack = a.attack if isinstance(a, PlannedAttack) else a
        if not isinstance(attack, Attack):
            return Check("extra attacks", False, f"{a!r} is not a bench.attacks.Attack or PlannedAttack")
        if attack.norm not in ("linf", "l2"):
            return Check("extra attacks", False, f"{attack!r} has norm {attack.norm!r}; valid choices: linf, l2")
        names.append(attack.name)
    if len(set(names)) != len(names) or set(attack_names()) & set(names):
        return Check("extra attacks", False, f"names {names} repeat or clash with the battery's; give each its own name")
    return Check("extra attacks", True, ", ".join(names) if names else "none declared")


def check_reload(p: Probe) -> Check:
    if p.defense is None:
        return Check("zoo reload", True, "skipped (no registered defense given)")
    if p.defense.spec.build is None:
        return Check("zoo reload", True, "no build function: not cached in the model zoo, retrained every run")
    rebuilt = p.defense.build(p.data).to(p.x.device)
    rebuilt.load_state_dict(p.model.state_dict(), strict=True)
    rebuilt.eval()
    if p.model.stochastic:
        return Check("zoo reload", True, "build() + load_state_dict(strict=True) works")
    with torch.no_grad():
        same = torch.allclose(p.model(p.x), rebuilt(p.x), rtol=1e-5, atol=1e-5)
    return Check("zoo reload", same, "build() + load_state_dict(strict=True) reproduces the logits" if same
                 else "the reloaded model's logits differ: some state is not in the state dict (use buffers)")


@torch.no_grad()
def input_transform_problems(model: DefendedModel, x: torch.Tensor, temperature: float = 1e-3) -> list[str]:
    """Problems with a model's ``input_transform()`` declaration on inputs ``x`` (empty: consistent).

    The split must reproduce the deployed logits,
    preimage boxes must hold x and map back to its transformed image, a cold
    relaxation must predict like the deployed model on most inputs, and the
    fixed-image detector margin must equal ``detect_margin``. (A wrong
    declaration cannot fake a success, since every example is judged by the
    deployed model, but it silently weakens the attack.)
    """
    decl = model.input_transform()
    if decl is None:
        return []
    problems = []
    t = decl.transform(x)
    logits = model(x)
    if not torch.allclose(decl.network(t), logits, rtol=1e-4, atol=1e-5):
        problems.append("network(transform(x)) differs from forward(x)")
    if decl.preimage is not None:
        lo, hi = decl.preimage(t)
        if not bool(((lo <= x) & (x <= hi)).all()):
            problems.append("preimage(transform(x)) does not contain x")
        elif not (torch.equal(decl.transform(lo), t) and torch.equal(decl.transform(hi), t)):
            problems.append("the preimage bounds do not map to the transformed image")
    if decl.relaxed is not None:
        agree = float((decl.network(decl.relaxed(x, temperature)).argmax(1) == logits.argmax(1)).float().mean())
        if agree < 0.9:
            problems.append(f"relaxed(x, {temperature:g}) predicts like the deployed model on only {agree:.0%} of inputs")
    if decl.detect_margin_at is not None and model.detect_margin is not None:
        if not torch.allclose(decl.detect_margin_at(x, t), model.detect_margin(x), rtol=1e-4, atol=1e-5):
            problems.append("detect_margin_at(x, transform(x)) differs from detect_margin(x)")
    return problems


def check_input_transform(p: Probe) -> Check:
    if p.model.input_transform() is None:
        return Check("input transform", True, "none declared")
    problems = input_transform_problems(p.model, p.x)
    detail = "; ".join(problems) if problems else "network(transform(x)) reproduces the deployed logits; surfaces consistent"
    return Check("input transform", not problems, detail)


CHECKS: list[tuple[str, Callable[[Probe], Check]]] = [
    ("forward", check_forward),
    ("inputs in [0, 1]", check_unit_interval),
    ("stochastic", check_stochasticity),
    ("gradients", check_gradients),
    ("surface agreement", check_surface_agreement),
    ("ce gradients", check_ce_saturation),
    ("detector", check_detector),
    ("extra attacks", check_extra_attacks),
    ("input transform", check_input_transform),
    ("zoo reload", check_reload),
]


