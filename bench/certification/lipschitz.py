"""Deterministic L2 certificates from guaranteed Lipschitz bounds, for any defense that has one.

For a deterministic classifier with logits z, if L_yj bounds the Lipschitz
constant of z_y - z_j, then z_y(x + d) - z_j(x + d) >= z_y(x) - z_j(x) - L_yj ||d||,
so the prediction y at x cannot change within the L2 radius
min_{j != y} (z_y(x) - z_j(x)) / L_yj. The bounds come from
``bench.lipschitz.certified_bounds``: LipLT (Fazlyab, Entesari, Roy,
Chellappa, NeurIPS 2023, arXiv 2310.00116) on exact or Fourier-bounded
norms, which never exceeds the product of spectral norms computed from the
same norms (reported beside it as the ratio). Unlike randomized smoothing
this certifies the deployed model itself, with no sampling and no failure
probability.

Which network to bound is the model's declaration
(``DefendedModel.deterministic_network``); the answer is checked here
against the deployed forward on the very inputs being certified. A model
without one (stochastic, input quantisation, median filters, detectors) or
with a layer the bound code does not know gets ``applicable: False`` and
the reason, never a number. The radius is that of the network in exact
arithmetic computed in float64, less a float32 rounding slack
(``MARGIN_SLACK`` times the logit scale) for the deployed float32 forward.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Optional, Sequence

import torch
from torch import nn

from ..lipschitz import NotCertifiable, PairwiseBounds, certified_bounds
from ..lipschitz.norms import DEFAULT_GRAM_LIMIT
from ..lipschitz.structure import leaves
from ..perf import fast_layout

MARGIN_SLACK = 1e-6  # relative float32 error allowance on the margin (float32 eps is 6e-8)
AGREEMENT_TOLERANCE = 1e-4  # max |declared network - deployed forward| / (1 + max |logit|)


def standard_radii(l2: float, step: float = 0.25) -> list[float]:
    """0, step, 2 step, ... up to the dataset's headline L2 radius (MNIST-like: 0 .. 2.0)."""
    count = int(round(l2 / step))
    return [round(i * step, 10) for i in range(count + 1)] + ([float(l2)] if count * step < l2 - 1e-12 else [])


def not_applicable(reason: str, n: int, seconds: float) -> dict[str, Any]:
    return {"applicable": False, "reason": reason, "bound": None, "certified_accuracy": None,
            "mean_radius": None, "n": n, "seconds": round(seconds, 3), "radii": None}


def declared_network(model: nn.Module) -> tuple[Optional[nn.Module], str]:
    """The network a model declares its deployed forward equals, or (None, reason)."""
    hook = getattr(model, "deterministic_network", None)
    if hook is None:
        return None, f"{type(model).__name__} is not a bench DefendedModel and declares no deterministic network"
    return hook()


@torch.no_grad()
def _batched(fn, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def _agreement_problem(net: nn.Module, model: nn.Module, x: torch.Tensor, batch_size: int) -> Optional[str]:
    """Why the declared network is not the deployed forward on ``x`` (None when it is)."""
    deployed = _batched(model, x, batch_size)
    declared = _batched(net, x, batch_size)

    def sequential(chunk: torch.Tensor) -> torch.Tensor:  # the leaves the bound reads, applied in order
        for leaf in leaves(net):
            chunk = leaf(chunk)
        return chunk

    as_read = _batched(sequential, x, batch_size)
    scale = 1.0 + float(deployed.abs().max())
    for label, other in (("the declared network", declared), ("its layers applied in order", as_read)):
        gap = float((other - deployed).abs().max()) / scale
        if gap > AGREEMENT_TOLERANCE:
            return f"{label} does not reproduce the deployed logits (relative gap {gap:.2g})"
    return None


def radii_from_logits(logits: torch.Tensor, lipschitz: torch.Tensor, slack: float = MARGIN_SLACK
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions, certified radii): min_j (z_pred - z_j - slack) / L[pred, j], at least 0."""
    logits = logits.double()
    lipschitz = lipschitz.to(logits.device, torch.float64)
    pred = logits.argmax(1)
    margins = logits.gather(1, pred[:, None]) - logits
    margins = margins - slack * (1.0 + logits.abs().amax(1, keepdim=True))
    ratios = margins / lipschitz[pred].clamp_min(1e-300)
    ratios.scatter_(1, pred[:, None], float("inf"))
    return pred, ratios.amin(1).clamp_min(0.0)


def summarize(correct: torch.Tensor, radii: torch.Tensor, levels: Sequence[float]) -> dict[str, Any]:
    """Certified accuracy at each radius (correct and radius >= r) and the mean certified radius."""
    certified = torch.where(correct, radii, torch.zeros_like(radii))
    return {
        "certified_accuracy": {f"{float(r):g}": float(((certified >= r) & correct).double().mean()) for r in levels},
        "mean_radius": float(certified.mean()),
    }


def lipschitz_certificates(model: nn.Module, x: torch.Tensor, y: torch.Tensor, radii: Sequence[float], *,
                           gram_limit: int = DEFAULT_GRAM_LIMIT, batch_size: int = 500,
                           bounds: Optional[PairwiseBounds] = None) -> dict[str, Any]:
    """Deterministic L2 certificates of ``model`` on (x, y): the summary block with per-sample radii.

    Keys: applicable, reason, bound ("liplt"), certified_accuracy {radius: fraction}, mean_radius
    (certified radius averaged over all points, 0 where wrong), n, seconds, radii (per sample: the
    certified radius of the deployed prediction, right or wrong), correct (per sample), bound_details.
    ``bounds`` reuses pairwise bounds computed before for this model.
    """
    start = time.perf_counter()
    n = len(x)
    model.eval()
    net, reason = declared_network(model)
    if net is None:
        return not_applicable(reason, n, time.perf_counter() - start)
    device = next((p.device for p in net.parameters()), x.device)
    x = fast_layout(x.to(device))
    y = y.to(device)
    try:
        problem = _agreement_problem(net, model, x, batch_size)
        if problem is not None:
            return not_applicable(problem, n, time.perf_counter() - start)
        if bounds is None:
            bounds = certified_bounds(net, tuple(x.shape[1:]), int(getattr(model, "num_classes", 0)) or
                                      int(_batched(model, x[:1], 1).shape[1]), gram_limit)
    except NotCertifiable as exc:
        return not_applicable(str(exc), n, time.perf_counter() - start)
    exact = copy.deepcopy(net).double().eval()  # margins in float64; the deployed prediction is float32's
    with torch.no_grad():
        logits64 = _batched(lambda c: exact(c.double()), x, batch_size)
        deployed_pred = _batched(model, x, batch_size).argmax(1)
    pred, radius = radii_from_logits(logits64, bounds.best)
    radius = torch.where(pred == deployed_pred, radius, torch.zeros_like(radius))  # a float32 near-tie: no claim
    correct = (deployed_pred == y).cpu()
    radius = radius.cpu()
    block: dict[str, Any] = {"applicable": True, "reason": "", "bound": "liplt"}
    block.update(summarize(correct, radius, radii))
    block.update({
        "n": n,
        "seconds": round(time.perf_counter() - start, 3),
        "radii": [float(r) for r in radius],
        "correct": [bool(c) for c in correct],
        "bound_details": {
            "liplt_over_spectral_product": bounds.ratio_summary(),
            "segments": bounds.segments,
            "norms": bounds.methods,
            "layers": bounds.layers,
            "bound_seconds": round(bounds.seconds, 3),
        },
    })
    return block
