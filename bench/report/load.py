"""Reading summaries for the reporter: tolerant, and honest about what was missing.

``bench.schema.read.read_summary`` turns each file into the typed summary (what
it lacked becomes a note); this module turns that into the reporter's row
view ``Run``: one threat key, the evaluation settings rows must share to be
ranked together, accuracies by attack (old alias names mapped to canonical
ones), curves keyed by float. Per-sample files beside a summary are read by
``samples.py``. Whatever cannot be read becomes a note on the row or, when a
file cannot be placed in any table at all, a warning.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd

from .. import schema
from ..schema import SCHEMA_VERSION
from ..schema import read as schema_read
from .keys import Settings, ThreatKey, fmt_number

__all__ = ["Run", "AttackResult", "Sweep", "Certification", "Settings", "ThreatKey", "fmt_number", "load_summaries",
           "parse_summary"]

# Keys a schema-1 summary has; a missing one is reported on its row.
EXPECTED_KEYS = (
    "n_test", "clean_accuracy", "robust_accuracy", "attacks", "flags", "seconds", "threat_model", "model", "provenance",
)
# Names older runs wrote for an attack that has one canonical name now.
ATTACK_ALIASES = {"pgd-margin-linf": "pgd-linf-margin"}


@dataclass
class AttackResult:
    name: str
    norm: Optional[str]
    eps: Optional[float]
    accuracy: Optional[float]
    seconds: Optional[float] = None
    n: Optional[int] = None
    median_norm: Optional[float] = None
    kind: Optional[str] = None
    interval: Optional[tuple[float, float]] = None  # as the summary gave it (else computed from accuracy and n)


@dataclass
class Sweep:
    norm: Optional[str]
    points: list[tuple[float, float]]  # (eps, accuracy), sorted by eps
    n: Optional[int] = None


@dataclass
class Certification:
    """Randomized-smoothing results at one noise level."""

    sigma: float
    curve: list[tuple[float, float]]  # (radius, certified accuracy), sorted by radius
    average_radius: Optional[float] = None
    abstain_rate: Optional[float] = None
    samples: Optional[int] = None  # Monte Carlo samples n per point
    points: Optional[int] = None  # test points certified
    alpha: Optional[float] = None
    max_radius: Optional[float] = None  # the largest radius certifiable with these samples
    records: Optional[str] = None  # per-sample CSV, relative to the run directory
    radii: Optional[list[tuple[float, bool]]] = None  # (radius, correct) per point, from the records


@dataclass
class Run:
    """One run as a leaderboard row, normalised: every field may be None when the file did not have it."""

    path: str  # relative to the results directory, posix
    run: str
    defense: str
    dataset: str
    threat: ThreatKey
    settings: Settings = field(default_factory=lambda: Settings(None, None))
    n_test: Optional[int] = None
    clean: Optional[float] = None
    robust: Optional[float] = None
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # given ones: clean, robust, l2, ...
    attacks: dict[str, AttackResult] = field(default_factory=dict)
    robust_by_norm: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweeps: dict[str, Sweep] = field(default_factory=dict)
    certification: dict[float, Certification] = field(default_factory=dict)
    deterministic: Optional[dict[str, Any]] = None  # the deterministic_certification block, when present
    representation: Optional[dict[str, Any]] = None  # the representation_vulnerability block, when present
    flags: list[str] = field(default_factory=list)  # masking evidence: the row is marked
    flag_notes: list[str] = field(default_factory=list)  # the battery's notes (within noise, or not moving the headline)
    seconds: Optional[float] = None
    train_seconds: Optional[float] = None
    model_reused: Optional[bool] = None
    profile: Optional[str] = None
    date: Optional[str] = None
    config_hash: Optional[str] = None
    commit: Optional[str] = None
    schema_version: Optional[int] = None
    notes: list[str] = field(default_factory=list)  # what the reader found missing
    run_notes: list[str] = field(default_factory=list)  # what the run itself said (skipped attacks, ...)
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    model: Optional[schema.ModelEntry] = None
    samples: Any = None  # per_sample.csv as a DataFrame, when beside the summary

    @property
    def directory(self) -> str:
        """The run's directory relative to the results directory (unique, unlike run ids)."""
        return self.path.rsplit("/", 1)[0] if "/" in self.path else "."

    @property
    def eval_seconds(self) -> Optional[float]:
        """Run time minus training, when the run trained its model (a reused model cost no training)."""
        if self.seconds is None:
            return None
        if self.model_reused is False and self.train_seconds is not None:
            return max(0.0, self.seconds - self.train_seconds)
        return self.seconds


def given_interval(raw: Any) -> Optional[tuple[float, float]]:
    """An ``interval: [lo, hi]`` a summary carries (issue 10), when well formed."""
    if isinstance(raw, (list, tuple)) and len(raw) == 2:
        lo, hi = schema_read.number(raw[0]), schema_read.number(raw[1])
        if lo is not None and hi is not None and 0 <= lo <= hi <= 1:
            return (lo, hi)
    return None


def _attack_results(entries: Optional[dict[str, schema.AttackEntry]], notes: list[str]) -> dict[str, AttackResult]:
    out: dict[str, AttackResult] = {}
    for name, a in sorted((entries or {}).items(), key=lambda kv: kv[0] in ATTACK_ALIASES):
        canonical = ATTACK_ALIASES.get(name, name)
        if canonical in out:
            notes.append(f"attack {name} is an old name of {canonical}, which the run also has; {name} not shown")
            continue
        out[canonical] = AttackResult(canonical, a.norm, a.eps, a.accuracy, a.seconds, a.n, a.median_norm,
                                      schema_read.text(a.kind),
                                      given_interval(getattr(a, "interval", None) or a.extra.get("interval")))
    return dict(sorted(out.items()))


def _sweeps(entries: Optional[dict[str, schema.SweepEntry]], attacks: dict[str, AttackResult]) -> dict[str, Sweep]:
    out = {}
    for name, sweep in (entries or {}).items():
        name = ATTACK_ALIASES.get(name, name)
        norm = sweep.norm if sweep.norm is not None else (attacks[name].norm if name in attacks else None)
        out[name] = Sweep(norm, list(zip(sweep.eps, sweep.accuracy)), sweep.n)
    return out


def _certification(blocks: Optional[dict[str, schema.CertificationBlock]]) -> dict[float, Certification]:
    out = {
        block.sigma: Certification(
            sigma=block.sigma,
            curve=sorted((float(r), a) for r, a in block.certified_accuracy.items()),
            average_radius=block.average_certified_radius,
            abstain_rate=block.abstain_rate,
            samples=schema_read.integer(block.n), points=schema_read.integer(block.n_test),
            alpha=schema_read.number(block.alpha), max_radius=schema_read.number(block.max_certifiable_radius),
            records=schema_read.text(block.records),
        )
        for block in (blocks or {}).values()
        if block.sigma is not None
    }
    return dict(sorted(out.items()))


def _threat(entry: Optional[schema.ThreatModelEntry]) -> ThreatKey:
    return ThreatKey(None, None, None) if entry is None else ThreatKey(entry.norm, entry.eps, entry.l2_eps)


def _settings(summary: schema.Summary) -> Settings:
    """n_test, profile and attack selection: from the ``evaluation`` block when a run wrote one, else the summary."""
    evaluation = summary.evaluation if summary.evaluation is not None else summary.extra.get("evaluation")
    evaluation = evaluation if isinstance(evaluation, dict) else {}
    selected = evaluation.get("attacks", (summary.battery or {}).get("selected"))
    attacks = tuple(sorted(str(a) for a in selected)) if isinstance(selected, list) and selected else None
    n_test = schema_read.integer(evaluation.get("n_test"))
    return Settings(n_test if n_test is not None else summary.n_test,
                    schema_read.text(evaluation.get("profile")) or summary.profile, attacks)


def _by_norm(raw: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for norm, entry in (raw or {}).items() if isinstance(raw, dict) else ():
        if isinstance(entry, dict) and schema_read.number(entry.get("accuracy")) is not None:
            out[str(norm)] = {"accuracy": schema_read.number(entry.get("accuracy")),
                              "eps": schema_read.number(entry.get("eps")),
                              "attacks": sorted({ATTACK_ALIASES.get(str(a), str(a)) for a in entry.get("attacks") or []}),
                              "interval": given_interval(entry.get("interval"))}
    return out


def _first_notes(raw: dict[str, Any], version: Optional[int]) -> list[str]:
    first: list[str] = []
    if version is None:
        first.append(f"no schema version (reporter reads {SCHEMA_VERSION})")
    elif version > SCHEMA_VERSION:  # older versions are read as they are; a newer one may mean more than shown
        first.append(f"schema version {version} is newer than this reporter's ({SCHEMA_VERSION})")
    missing = [k for k in EXPECTED_KEYS if k not in raw]
    if missing:
        first.append("missing " + ", ".join(missing))
    return first


def parse_summary(raw: Any, path: str) -> tuple[Optional[Run], Optional[str]]:
    """Normalise one summary; (None, warning) when it cannot be placed in any table."""
    summary, notes, problem = schema_read.read_summary(raw)
    if summary is None:
        return None, f"{path}: {problem}; skipped"
    prov = summary.provenance or {}
    version = schema_read.integer(prov.get("schema_version"))
    notes = _first_notes(raw, version) + notes
    attacks = _attack_results(summary.attacks, notes)
    model = summary.model or schema.ModelEntry()
    intervals = {k: v for k, v in (("clean", given_interval(raw.get("clean_accuracy_interval"))),
                                   ("robust", given_interval(raw.get("robust_accuracy_interval")))) if v}
    run = Run(
        path=path, run=schema_read.text(prov.get("run_id")) or (path.rsplit("/", 1)[0] if "/" in path else path),
        defense=summary.defense, dataset=summary.dataset, threat=_threat(summary.threat_model),
        settings=_settings(summary), n_test=summary.n_test, clean=summary.clean_accuracy,
        robust=summary.robust_accuracy, intervals=intervals, attacks=attacks,
        robust_by_norm=_by_norm(summary.robust_accuracy_by_norm), sweeps=_sweeps(summary.sweeps, attacks),
        certification=_certification(summary.certification),
        deterministic=summary.deterministic_certification, representation=summary.representation_vulnerability,
        flags=[f.message for f in summary.flags or [] if f.severity != "note"],
        flag_notes=[f.message for f in summary.flags or [] if f.severity == "note"],
        seconds=summary.seconds, train_seconds=model.train_seconds,
        model_reused=model.reused, profile=summary.profile, date=schema_read.text(prov.get("date")),
        config_hash=schema_read.text(prov.get("config_hash")), commit=_commit(prov),
        schema_version=version, notes=notes, run_notes=list(summary.notes or []),
        config=summary.config if isinstance(summary.config, dict) else {}, provenance=prov, model=model,
    )
    return run, None


def attach_samples(run: Run, run_dir: Path) -> None:
    """Read ``per_sample.csv`` and the certification records named by the summary, when they are there."""
    table = _read_csv(run_dir / "per_sample.csv", ("index", "robust"))
    if table is not None:
        run.samples = table
    for cert in run.certification.values():
        if cert.records is None:
            continue
        records = _read_csv(run_dir / cert.records, ("index", "radius", "correct"))
        if records is None:
            run.notes.append(f"certification records {cert.records} missing or unreadable: curve from the summary")
            continue
        cert.radii = [(float(r), bool(c)) for r, c in zip(records["radius"], records["correct"])]


def _read_csv(path: Path, needed: Sequence[str]) -> Optional[pd.DataFrame]:
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    return table if set(needed) <= set(table.columns) else None


def load_summaries(results_dir: Path) -> tuple[list[Run], list[str]]:
    """Every ``summary.json`` under ``results_dir`` (sorted by path), its per-sample files, and the warnings."""
    results_dir = Path(results_dir)
    summaries: list[Run] = []
    warnings: list[str] = []
    for file in sorted(results_dir.rglob("summary.json"), key=lambda p: p.relative_to(results_dir).as_posix()):
        rel = file.relative_to(results_dir).as_posix()
        if any(part.startswith(".") for part in rel.split("/")[:-1]):
            continue  # a run being rewritten (.<run>.next) or replaced (.<run>.old): not a result yet
        try:
            with open(file, encoding="utf-8") as handle:
                raw = json.load(handle)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = type(exc).__name__ if not isinstance(exc, ValueError) else "invalid JSON"
            warnings.append(f"{rel}: unreadable ({reason}); skipped")
            continue
        summary, warning = parse_summary(raw, rel)
        if warning:
            warnings.append(warning)
        if summary is not None:
            attach_samples(summary, file.parent)
            summaries.append(summary)
    return summaries, warnings


def _commit(prov: dict[str, Any]) -> Optional[str]:
    """The commit a run was made from; ``-dirty`` (git's own mark) when bench's source had uncommitted edits."""
    sha = schema_read.text(prov.get("git_commit"))
    return f"{sha}-dirty" if sha and prov.get("source_modified") is True else sha
