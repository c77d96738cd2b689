"""Two run stages beyond attacks and smoothing: deterministic certificates and representation vulnerability.

* Deterministic L2 certificates from a guaranteed Lipschitz bound
  (``bench.certification.lipschitz``; LipLT, Fazlyab et al., NeurIPS 2023,
  arXiv 2310.00116) on the evaluated points, the same points the battery
  attacked, so each point's certified radius can be checked against the
  smallest L2 perturbation C&W or FMN found for it: a certificate larger than
  a perturbation that changes the prediction is a bug, flagged loudly
  (``certificate-contradiction``). No sampling, so it costs seconds.
* Representation vulnerability (Zhu, Zhang, Evans, "Learning Adversarially
  Robust Representations via Worst-Case Mutual Information Maximization",
  ICML 2020, arXiv 1910.06950; ``bench.representation``) at the headline
  L-inf eps, for every model whose ``representation(x)`` is not None, with
  estimator settings scaled to the profile (``VULNERABILITY_POINTS``,
  ``vulnerability_settings``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional, Sequence

RADIUS_COLUMN = "deterministic_radius"  # per_sample.csv: the certified L2 radius of the deployed prediction
# A radius may exceed a found perturbation's norm by this relative amount before it counts as a
# contradiction: the attacks measure their perturbation in float32 (relative error ~1e-7 per element).
CONTRADICTION_TOLERANCE = 1e-5
VULNERABILITY_POINTS = {"quick": 300, "full": 1000}  # the first points of the evaluated ones
# Fewer points than this give no estimate worth printing (half fit the critics, a fifth of those stop them
# early): the block then says so instead of a number.
VULNERABILITY_MIN_POINTS = 100
SPREAD_SEEDS = 3  # critic seeds of the clean estimate (the search's own and two more): its spread is reported


@dataclass
class Extras:
    """What the stages add to a run: two summary blocks, per-sample columns and flags."""

    deterministic: Optional[dict[str, Any]] = None
    representation: Optional[dict[str, Any]] = None
    columns: dict[str, list[Any]] = field(default_factory=dict)
    flags: list[Any] = field(default_factory=list)


def vulnerability_settings(profile: str) -> Any:
    """Full: the module's paper-like defaults; quick: fewer rounds and critic steps (seconds on 2 CPU cores)."""
    from .information import MIEstimator
    from .representation import VulnerabilitySettings

    if profile == "full":
        return VulnerabilitySettings()
    return VulnerabilitySettings(mi=MIEstimator(steps=100), rounds=2, round_steps=30, attack_steps=8)


_BOUNDS: dict[tuple[str, tuple[int, ...]], Any] = {}  # (weights' sha256, input shape) -> the network's bounds
_BOUNDS_KEPT = 4


def _bounds(model: Any, model_id: Optional[str], shape: tuple[int, ...]) -> Any:
    """The declared network's pairwise Lipschitz bounds, computed once per weights in this process (sweeps and
    tests certify one model many times; a CNN's bound takes seconds). None: let the certificate say why not."""
    from .certification.lipschitz import declared_network
    from .lipschitz import NotCertifiable, certified_bounds
    from .lipschitz.norms import DEFAULT_GRAM_LIMIT

    key = (model_id or "", shape)
    if model_id and key in _BOUNDS:
        return _BOUNDS[key]
    net, _ = declared_network(model)
    if net is None or not model_id:
        return None
    try:
        bounds = certified_bounds(net, shape, int(getattr(model, "num_classes", 0)), DEFAULT_GRAM_LIMIT)
    except NotCertifiable:
        return None
    while len(_BOUNDS) >= _BOUNDS_KEPT:
        _BOUNDS.pop(next(iter(_BOUNDS)))
    _BOUNDS[key] = bounds
    return bounds


def deterministic_stage(model: Any, x: Any, y: Any, l2: Optional[float], batch_size: int,
                        model_id: Optional[str] = None) -> dict[str, Any]:
    """The Lipschitz certificate block on (x, y), at radii 0, 0.25, ... up to the dataset's L2 budget.

    ``model_id`` (the weights' sha256) lets a later run of the same weights reuse the bound."""
    from .certification.lipschitz import lipschitz_certificates, standard_radii

    bounds = _bounds(model, model_id, tuple(x.shape[1:])) if getattr(model, "num_classes", 0) else None
    return lipschitz_certificates(model, x, y, standard_radii(l2 if l2 else 2.0), batch_size=batch_size,
                                  bounds=bounds)


def representation_stage(model: Any, x: Any, eps: float, profile: str, settings: Any = None,
                         min_points: int = VULNERABILITY_MIN_POINTS) -> Optional[dict[str, Any]]:
    """The vulnerability block; None when the model exposes no representation (not an error).

    ``settings`` (a ``VulnerabilitySettings``) replaces the profile's."""
    from .representation import representation_vulnerability

    if getattr(model, "representation", None) is None or model.representation(x[:2]) is None:
        return None
    points = min(len(x), VULNERABILITY_POINTS.get(profile, VULNERABILITY_POINTS["quick"]))
    settings = settings or vulnerability_settings(profile)
    if points < min_points:
        return {"applicable": False, "reason": f"needs at least {min_points} evaluated points, the run has {points}",
                "eps": float(eps), "points": points, "profile": profile, "settings": settings.as_dict()}
    block = representation_vulnerability(model, x[:points], eps, settings)
    # The estimate's own noise, which the vulnerability must exceed to mean anything: the clean estimate again
    # with other critic seeds (eps 0: no search, one estimate each). On 300 MNIST points they spread by ~1 nat.
    others = [representation_vulnerability(model, x[:points], 0.0, replace(settings, mi=replace(
        settings.mi, seed=settings.mi.seed + k)))["clean_mi"] for k in range(1, SPREAD_SEEDS)]
    spread = max([block["clean_mi"], *others]) - min([block["clean_mi"], *others])
    return {"applicable": True, "units": "nats", "points": points, "profile": profile, **block,
            "clean_mi_other_seeds": others, "clean_mi_spread": spread}


def found_l2_norms(battery: Any) -> dict[str, list[Optional[float]]]:
    """Per sample, the L2 perturbation each minimum-norm attack found (inf/None: none found, or not run)."""
    return {name: battery.columns[f"{name}_norm"] for name, entry in battery.attacks.items()
            if entry.norm == "l2" and f"{name}_norm" in battery.columns}


def contradictions(radii: Sequence[Any], correct: Sequence[Any], found: Mapping[str, Sequence[Any]],
                   tolerance: float = CONTRADICTION_TOLERANCE) -> list[tuple[int, str, float, float]]:
    """(position, attack, radius, found norm) wherever a certified radius exceeds a found perturbation.

    Only correctly classified points count: a found perturbation there changes the prediction
    the certificate is about (on a wrong point an attack may leave the wrong prediction as it is).
    """
    out = []
    for name, norms in found.items():
        for q, (radius, ok, norm) in enumerate(zip(radii, correct, norms)):
            if not _true(ok) or _number(radius) is None or _number(norm) is None:
                continue
            r, d = float(radius), float(norm)
            if math.isfinite(d) and r > d * (1 + tolerance):
                out.append((q, name, r, d))
    return out


def _number(value: Any) -> Optional[float]:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _true(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def contradiction_flag(block: Mapping[str, Any], clean_correct: Sequence[Any],
                       found: Mapping[str, Sequence[Any]]) -> Optional[Any]:
    """A ``certificate-contradiction`` masking flag when any certified radius exceeds a found perturbation."""
    from .schema import Flag

    if not block.get("applicable") or not isinstance(block.get("radii"), list):
        return None
    correct = [_true(a) and _true(b) for a, b in zip(block.get("correct") or [], clean_correct)]
    bad = contradictions(block["radii"], correct, found)
    if not bad:
        return None
    q, name, r, d = max(bad, key=lambda t: t[2] / t[3] if t[3] > 0 else math.inf)
    return Flag("certificate-contradiction", "masking",
                f"Deterministic certificate contradicted on {len({b[0] for b in bad})} point(s): e.g. point {q} is "
                f"certified to L2 radius {r:.4g} but {name} changed its prediction at L2 distance {d:.4g}; a "
                f"certificate can never exceed a found perturbation, so the bound or the model's declared network "
                f"is wrong and the certified figures must not be used.")


def extra_stages(loaded: Any, x: Any, y: Any, *, eps: float, l2: Optional[float], profile: str, certify: bool,
                 battery: Any, clean_correct: Any, batch_size: int, log: Callable[[str], None]) -> Extras:
    """Run both stages on the evaluated points (the certificate only when certification is on)."""
    extras = Extras()
    if certify:
        block = deterministic_stage(loaded.model, x, y, l2, batch_size, loaded.model_id)
        extras.deterministic = block
        if block.get("applicable"):
            log(f"  deterministic certificate: mean L2 radius {block['mean_radius']:.4f} ({block['seconds']:.1f} s)")
            extras.columns[RADIUS_COLUMN] = list(block["radii"])
            flag = contradiction_flag(block, clean_correct.tolist(), found_l2_norms(battery))
            extras.flags += [flag] if flag is not None else []
        else:
            log(f"  deterministic certificate: not applicable ({block.get('reason')})")
    rep = representation_stage(loaded.model, x, eps, profile)
    extras.representation = rep
    if rep is not None and rep.get("applicable"):
        log(f"  representation vulnerability: {rep['vulnerability']:.3f} nats (clean MI {rep['clean_mi']:.3f}, "
            f"worst case {rep['worst_case_mi']:.3f}; {rep['seconds']:.1f} s)")
    return extras
