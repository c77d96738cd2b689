"""What ``summary.json`` is: the typed summary of one run, its parts, and its schema version.

Every writer (the run pipeline, the battery, certification) builds these
dataclasses and writes ``Summary.to_dict()``; the reporter reads files back
with ``bench.schema.read.read_summary``, which is tolerant (summaries from
older versions or hand edits become notes, never crashes). Accuracies are fractions in [0, 1].
Keys a writer does not know are kept in ``extra`` so a round trip loses
nothing. No torch here: the reporter imports this.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

SCHEMA_VERSION = 2  # 2: intervals, attempted/broken, flags with severity, the worst-case eps sweep


def _optional(default: Any = None) -> Any:
    """A field left out of the JSON while it is None (a partial summary, e.g. certification alone)."""
    return field(default=default, metadata={"omit_none": True})


class _Record:
    """Dict conversion shared by the summary's parts: fields in order, ``extra`` merged in."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = _plain(value)
        out.update(getattr(self, "extra", {}) or {})
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


Interval = list  # [low, high]: a 95% Clopper-Pearson interval of the accuracy beside it


@dataclass
class Flag(_Record):
    """One evaluation warning: which check raised it, how serious, and the sentence with its evidence.

    ``masking``: evidence that the robust accuracy may reflect hidden gradients or a failed
    evaluation (the row is marked); ``note``: worth knowing, within noise or not affecting the
    headline figure.
    """

    check: str
    severity: str  # "masking" or "note"
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


@dataclass
class AttackEntry(_Record):
    """One attack at one budget: its accuracy on the ``n`` points it covered.

    ``attempted``: points the attack ran on (cascade attacks run only on points every earlier
    attack at the headline budget left robust); ``broken``: clean-correct points among them it
    turned into (undetected) errors.
    """

    norm: Optional[str]
    eps: Optional[float]
    accuracy: Optional[float]
    n: Optional[int] = None
    interval: Optional[Interval] = _optional()
    attempted: Optional[int] = _optional()
    broken: Optional[int] = _optional()
    cascade: Optional[bool] = _optional()
    kind: Optional[str] = _optional()
    seconds: Optional[float] = _optional()
    params: Optional[dict[str, Any]] = _optional()
    # minimum-norm attacks: over clean-correct points, "not found" counted as infinite
    median_norm: Optional[float] = _optional()
    median_norm_among: Optional[str] = _optional()
    mean_successful_norm: Optional[float] = _optional()
    success_rate_unbounded: Optional[float] = _optional()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepEntry(_Record):
    """Accuracy of one attack as eps grows."""

    norm: Optional[str]
    eps: list[float]
    accuracy: list[float]
    n: Optional[int] = _optional()
    params: Optional[dict[str, Any]] = _optional()
    interval: Optional[list[Interval]] = _optional()
    attacks: Optional[list[str]] = _optional()  # the per-sample worst case over these attacks at each eps
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CertificationBlock(_Record):
    """Randomized smoothing at one sigma: certified accuracy by radius (keys are radii as text)."""

    sigma: Optional[float]
    certified_accuracy: dict[str, float]
    average_certified_radius: Optional[float] = None
    abstain_rate: Optional[float] = None
    certified_accuracy_interval: Optional[dict[str, Interval]] = _optional()
    n0: Optional[int] = _optional()
    n: Optional[int] = _optional()
    alpha: Optional[float] = _optional()
    n_test: Optional[int] = _optional()
    max_certifiable_radius: Optional[float] = _optional()
    clamp: Optional[bool] = _optional()
    seed: Optional[int] = _optional()
    seconds: Optional[float] = _optional()
    records: Optional[str] = _optional()
    date: Optional[str] = _optional()
    profile: Optional[str] = _optional()
    nonfinite_points: Optional[int] = _optional()  # points with draws whose logits were NaN/inf (they vote for no class)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ThreatModelEntry(_Record):
    """The headline budget the run was judged at."""

    norm: Optional[str]
    eps: Optional[float]
    l2_eps: Optional[float] = None
    sigma: Optional[float] = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelEntry(_Record):
    """Which weights were evaluated (their model card and sha256)."""

    card: Optional[str] = None
    sha256: Optional[str] = None
    reused: Optional[bool] = None
    train_seconds: Optional[float] = None
    source: Optional[str] = _optional()  # a model not from the registry: where it came from (bench.evaluate)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Summary(_Record):
    """One run's ``summary.json``."""

    defense: str
    dataset: str
    n_test: Optional[int] = _optional()
    clean_accuracy: Optional[float] = _optional()
    clean_accuracy_interval: Optional[Interval] = _optional()
    robust_accuracy: Optional[float] = _optional()
    robust_accuracy_interval: Optional[Interval] = _optional()
    robust_accuracy_by_norm: Optional[dict[str, dict[str, Any]]] = _optional()
    attacks: Optional[dict[str, AttackEntry]] = _optional()
    sweeps: Optional[dict[str, SweepEntry]] = _optional()
    flags: Optional[list[Flag]] = _optional()
    battery: Optional[dict[str, Any]] = _optional()
    detector: Optional[dict[str, Any]] = None  # the detector's clean false-positive rate; null without one
    certification: Optional[dict[str, CertificationBlock]] = _optional()
    seconds: Optional[float] = _optional()
    threat_model: Optional[ThreatModelEntry] = _optional()
    config: Optional[dict[str, Any]] = _optional()
    surface: Optional[dict[str, Any]] = _optional()
    model: Optional[ModelEntry] = _optional()
    profile: Optional[str] = _optional()
    provenance: Optional[dict[str, Any]] = _optional()
    notes: Optional[list[str]] = _optional()  # what the run skipped or changed, and why
    # What the run was evaluated on (bench.runkey): eps, n_test, profile, attacks ("battery": "full" or "reduced"),
    # certification settings, batch size. Rows whose evaluations differ must not be ranked in one table.
    evaluation: Optional[dict[str, Any]] = _optional()
    run_key: Optional[str] = _optional()  # hash of dataset, defense, config hash, seed and evaluation
    options: Optional[dict[str, Any]] = _optional()  # the resolved command options (flags and --config-file)
    # Lipschitz certificates of the deployed model on the evaluated points (bench.extrastages): applicable,
    # reason, bound, certified_accuracy {radius: fraction}, mean_radius, n, seconds, radii and correct per point
    deterministic_certification: Optional[dict[str, Any]] = _optional()
    # Zhu, Zhang, Evans 2020 at the headline eps (nats): clean_mi, worst_case_mi, vulnerability, settings, ...;
    # absent for a model without a representation
    representation_vulnerability: Optional[dict[str, Any]] = _optional()
    extra: dict[str, Any] = field(default_factory=dict)
