"""A quantisation-aware adaptive attack for deployed forwards ``network(transform(x))``.

For defenses that declare ``DefendedModel.input_transform()`` (see
``bench.contract.InputTransform``: quantisers, bit depth, JPEG-like or
filtering front ends). A straight-through gradient (BPDA; Athalye, Carlini
& Wagner, ICML 2018, arXiv 1802.00420) follows a surface the deployed
model never computes; Tramer, Carlini, Brendel & Madry (NeurIPS 2020,
arXiv 2002.08347) break such defenses with attacks built around what the
transform really does. Here, on the points not broken yet:

Stage 1 (misclassify): sign-gradient PGD on up to three surfaces, each from
a deterministic start, then from random restarts:
- ``reachable`` (needs ``preimage``): the variable is the transformed image,
  in the box of values reachable from the eps-ball (1-bit MNIST: pixels
  near 0.5 range over [0, 1], the rest are pinned), the convex relaxation
  of the reachable quantised images; first start its centre, restarts
  random points of it.
- ``relaxed`` (needs ``relaxed``): input space through the smooth
  relaxation, its temperature annealed.
- ``straight-through``: through ``differentiable_forward``.
Every iterate is judged exactly: its quantised image is realised as the
input of the eps-ball nearest the clean one in that image's preimage, and
passed through the deployed forward and detector. The first iterate that
is misclassified and unflagged is kept.

Stage 2 (evade the detector): from the last misclassified but flagged
iterate, PGD descends the detector margin while the transformed image (so
the misclassification) is held fixed: with ``preimage`` the input moves
inside the box of inputs with that image, the gradient from
``detect_margin_at`` (feature squeezing's score then depends on x only
through the raw and median-filtered images); without it, steps that would
make the deployed prediction correct are undone and that point's step
halved. Every iterate is judged exactly.

Written here: no library attack searches reachable quantised images or
holds a transformed image fixed. Deterministic models only (``applies_to``).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from ..contract import DefendedModel, InputTransform
from ..perf import fast_layout
from ..losses import margin_loss
from ..perturbation import project
from .base import Attack

SURFACES = ("reachable", "relaxed", "straight-through")
_A0, _A1 = 0.1, 0.01  # the sign step falls linearly from _A0 + _A1 to _A1 times the box width over a run


def applies_to(model: DefendedModel) -> bool:
    """True when the model declares ``input_transform()`` and is deterministic."""
    return not model.stochastic and model.input_transform() is not None


def _box_pgd(v: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, loss: Callable[..., torch.Tensor],
             judge: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], steps: int, width: float,
             hold: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None) -> None:
    """Ascend ``loss(v, idx, step)`` by sign steps inside [lo, hi]; ``judge`` sees every iterate.

    ``judge(v, idx)`` returns which samples are done (they leave the batch).
    ``hold(v, idx)``, if given, returns which samples may keep a step; the
    others return to their previous iterate with their step halved.
    """
    idx = torch.arange(len(v), device=v.device)
    v = fast_layout(v.clone())
    scale = torch.ones(len(v), device=v.device)
    for step in range(steps + 1):
        keep = ~judge(v, idx)
        if not bool(keep.all()):
            idx, v, scale = idx[keep], fast_layout(v[keep]), scale[keep]
        if step == steps or not len(idx):
            return
        v.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(v, idx, step).sum(), v)
        alpha = width * (_A0 * (1 - step / steps) + _A1) * scale
        with torch.no_grad():
            new = torch.minimum(torch.maximum(v + alpha.view(-1, *[1] * (v.dim() - 1)) * grad.sign(), lo[idx]), hi[idx])
            if hold is not None:
                ok = hold(new, idx)
                new[~ok] = v.detach()[~ok]
                scale[~ok] *= 0.5
        v = new


class RelaxedPGD(Attack):
    """Stage 1 on the declared surfaces with restarts, stage 2 against the detector; see the module docstring.

    ``steps`` per stage-1 run, ``restarts`` runs per surface (the first from
    a deterministic start), ``surfaces`` tried in order (those the model
    does not declare are skipped), ``temperatures`` the relaxation's start
    and end temperature (annealed geometrically), ``evade_steps`` per
    stage-2 start. Random starts draw from torch's global generator, which
    the battery seeds per batch.
    """

    name = "pgd-linf-relaxed"
    norm = "linf"

    def __init__(self, *, steps: int = 50, restarts: int = 2, surfaces: tuple[str, ...] = SURFACES,
                 temperatures: tuple[float, float] = (0.1, 0.01), evade_steps: int = 50) -> None:
        super().__init__()
        for key, value in (("steps", steps), ("restarts", restarts), ("evade_steps", evade_steps)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
        unknown = [s for s in surfaces if s not in SURFACES]
        if unknown or not surfaces:
            raise ValueError(f"bad surfaces {tuple(surfaces)!r}; valid choices: a non-empty subset of {', '.join(SURFACES)}")
        if len(temperatures) != 2 or not all(isinstance(t, (int, float)) and t > 0 for t in temperatures):
            raise ValueError(f"temperatures must be two positive numbers (start, end), got {temperatures!r}")
        self.steps, self.restarts, self.evade_steps = steps, restarts, evade_steps
        self.surfaces, self.temperatures = tuple(surfaces), (float(temperatures[0]), float(temperatures[1]))
        self.stats: dict[str, int] = {}

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, "restarts": self.restarts, "surfaces": list(self.surfaces),
                "temperatures": list(self.temperatures), "evade_steps": self.evade_steps}

    def run(self, model: DefendedModel, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        decl = model.input_transform()
        if decl is None or model.stochastic:
            raise ValueError(f"{self.name} needs a deterministic model that declares input_transform(); "
                             f"{type(model).__name__} does not (check with quantized.applies_to)")
        state = _State(model, decl, x, y, eps)
        self.stats = {key: 0 for key in ("stage1", "stage2", "candidates", *(f"broken_{s}" for s in SURFACES))}
        state.done = model(x).argmax(1).ne(y).detach()  # already wrong: nothing to attack (``perturb`` judges it)
        for restart in range(self.restarts):
            for surface in self.surfaces:
                if not state.available(surface):
                    continue
                active = (~state.done).nonzero().squeeze(1)
                if not len(active):
                    break
                before = int(state.broken.sum())
                candidates = self._stage1(state, surface, active, random_start=restart > 0)
                after = int(state.broken.sum())
                self._stage2(state, candidates)
                self.stats["stage1"] += after - before
                self.stats["candidates"] += len(candidates)
                self.stats["stage2"] += int(state.broken.sum()) - after
                self.stats[f"broken_{surface}"] += int(state.broken.sum()) - before
        self.report(f"broken {int(state.broken.sum())} (stage 1 {self.stats['stage1']}, stage 2 {self.stats['stage2']})")
        return state.best

    def _stage1(self, state: "_State", surface: str, active: torch.Tensor, random_start: bool) -> torch.Tensor:
        """One PGD run on ``surface`` for the ``active`` points; returns the points left with a flagged candidate."""
        decl, x0, lo, hi, y = state.decl, state.x[active], state.lo[active], state.hi[active], state.y[active]
        state.candidate_of[active] = False
        if surface == "reachable":
            vlo, vhi = decl.transform(lo), decl.transform(hi)
            width = 1.0 if vhi.numel() == 0 else max(float((vhi - vlo).max()), 1e-12)
            start = vlo + (vhi - vlo) * torch.rand_like(vlo) if random_start else (vlo + vhi) / 2

            def realise(v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
                return state.nearest_in_preimage(decl.transform(v), active[idx])

            def loss(v: torch.Tensor, idx: torch.Tensor, step: int) -> torch.Tensor:
                return margin_loss(decl.network(v), y[idx])
        else:
            vlo, vhi, width = lo, hi, 2.0 * state.eps
            start = lo + (hi - lo) * torch.rand_like(lo) if random_start else x0.clone()
            t0, t1 = self.temperatures

            def realise(v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
                return v

            def loss(v: torch.Tensor, idx: torch.Tensor, step: int) -> torch.Tensor:
                if surface == "relaxed":
                    temperature = t0 * (t1 / t0) ** (step / max(self.steps - 1, 1))
                    return margin_loss(decl.network(decl.relaxed(v, temperature)), y[idx])
                return margin_loss(state.model.differentiable_forward(v), y[idx])

        def judge(v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return state.judge(realise(v.detach(), idx), active[idx], keep_candidates=True)

        _box_pgd(start, vlo, vhi, loss, judge, self.steps, width)
        return active[state.candidate_of[active] & ~state.done[active]]

    def _stage2(self, state: "_State", points: torch.Tensor) -> None:
        """Evade the detector from each flagged candidate, holding its transformed image fixed."""
        decl = state.decl
        if not len(points) or state.model.detect is None or state.model.detect_margin is None:
            return
        cand = state.candidate[points]
        t = decl.transform(cand)
        lo, hi = state.lo[points], state.hi[points]
        starts = [cand]
        if decl.preimage is not None:
            plo, phi = decl.preimage(t)
            # the box of inputs with the same transformed image; it always holds the candidate itself
            lo = torch.minimum(torch.maximum(lo, plo), cand)
            hi = torch.maximum(torch.minimum(hi, phi), cand)
            starts.append(torch.minimum(torch.maximum(t, lo), hi))  # every pixel as near its level as allowed
        for start in starts:
            left = (~state.done[points]).nonzero().squeeze(1)
            if not len(left):
                return
            self._evade(state, points[left], start[left], lo[left], hi[left], t[left])

    def _evade(self, state: "_State", points: torch.Tensor, start: torch.Tensor, lo: torch.Tensor,
               hi: torch.Tensor, t: torch.Tensor) -> None:
        model, decl = state.model, state.decl

        def loss(v: torch.Tensor, idx: torch.Tensor, step: int) -> torch.Tensor:
            if decl.detect_margin_at is not None:
                return -decl.detect_margin_at(v, t[idx])
            return -model.detect_margin(v)

        def judge(v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return state.judge(v.detach(), points[idx], keep_candidates=False)

        def still_wrong(v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return model(v).argmax(1) != state.y[points[idx]]

        # without a box to stay in, steps that would undo the misclassification are undone
        hold = None if decl.preimage is not None else still_wrong
        _box_pgd(start, lo, hi, loss, judge, self.evade_steps, 2.0 * state.eps, hold)


class _State:
    """One batch's bookkeeping: the eps-box, the example kept per point, flagged candidates."""

    def __init__(self, model: DefendedModel, decl: InputTransform, x: torch.Tensor, y: torch.Tensor,
                 eps: float) -> None:
        self.model, self.decl, self.x, self.y, self.eps = model, decl, x, y, float(eps)
        self.lo, self.hi = (x - eps).clamp(0.0, 1.0), (x + eps).clamp(0.0, 1.0)
        self.best = x.clone()
        self.candidate = x.clone()
        n = len(x)
        self.done = torch.zeros(n, dtype=torch.bool, device=x.device)
        self.broken = torch.zeros_like(self.done)
        self.candidate_of = torch.zeros_like(self.done)

    def available(self, surface: str) -> bool:
        """Whether the declaration has what ``surface`` needs (straight-through: always)."""
        return {"reachable": self.decl.preimage, "relaxed": self.decl.relaxed}.get(surface, True) is not None

    def nearest_in_preimage(self, t: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """The input of the eps-ball nearest the clean one among those the transform maps to ``t``."""
        plo, phi = self.decl.preimage(t)
        lo, hi = self.lo[points], self.hi[points]
        inside = torch.minimum(torch.maximum(self.x[points], torch.maximum(plo, lo)), torch.minimum(phi, hi))
        return torch.minimum(torch.maximum(inside, lo), hi)

    @torch.no_grad()
    def judge(self, x_adv: torch.Tensor, points: torch.Tensor, keep_candidates: bool) -> torch.Tensor:
        """Exact verdict on iterates of ``points``: which are misclassified and unflagged (kept as broken)."""
        x_adv = project(x_adv, self.x[points], "linf", self.eps)  # judge exactly what ``perturb`` will return
        wrong = self.model(x_adv).argmax(1) != self.y[points]
        broken = wrong.clone()
        if self.model.detect is not None and bool(wrong.any()):
            flagged = self.model.detect(x_adv[wrong]).bool()
            broken[wrong] = ~flagged
            if keep_candidates:  # the latest misclassified-but-flagged iterate: stage 2 starts there
                caught = wrong & ~broken
                self.candidate[points[caught]] = x_adv[caught]
                self.candidate_of[points[caught]] = True
        if bool(broken.any()):
            where = points[broken]
            self.best[where] = x_adv[broken]
            self.broken[where] = True
            self.done[where] = True
        return broken
