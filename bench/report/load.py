"""Reading summaries for the reporter: tolerant, and honest about what was missing.

``bench.schema.read.read_summary`` turns each file into the typed summary (what
it lacked becomes a note); this module turns that into the reporter's row
view ``Run``: one threat key, accuracies by attack, curves keyed by float.
Summaries come from several versions of the harness, so nothing here
assumes a key exists. Whatever cannot be read becomes a note on the row
(kept in the tables) or, when a file cannot be placed in any table at all,
a warning (listed on the index page and on stderr).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import schema
from ..schema import read as schema_read
from ..schema import SCHEMA_VERSION

# Keys a schema-1 summary has; a missing one is reported on its row.
EXPECTED_KEYS = (
    "n_test", "clean_accuracy", "robust_accuracy", "attacks", "flags", "seconds", "threat_model", "model", "provenance",
)


@dataclass(frozen=True, order=True)
class ThreatKey:
    """What makes two rows comparable: the headline norm and budgets (None where not recorded)."""

    norm: Optional[str]
    eps: Optional[float]
    l2_eps: Optional[float]

    @property
    def known(self) -> bool:
        return self.norm is not None and self.eps is not None

    def label(self) -> str:
        if not self.known:
            return "threat model not recorded"
        text = f"{self.norm} eps={fmt_number(self.eps)}"
        if self.l2_eps is not None and self.norm != "l2":
            text += f", l2 eps={fmt_number(self.l2_eps)}"
        return text

    def sort_key(self) -> tuple:
        return (not self.known, self.norm or "", self.eps or 0.0, self.l2_eps or 0.0)


@dataclass
class AttackResult:
    name: str
    norm: Optional[str]
    eps: Optional[float]
    accuracy: Optional[float]
    seconds: Optional[float] = None
    n: Optional[int] = None
    median_norm: Optional[float] = None


@dataclass
class Certification:
    """Randomized-smoothing results at one noise level."""

    sigma: float
    curve: list[tuple[float, float]]  # (radius, certified accuracy), sorted by radius
    average_radius: Optional[float] = None
    abstain_rate: Optional[float] = None


@dataclass
class Run:
    """One run as a leaderboard row, normalised: every field may be None when the file did not have it."""

    path: str  # relative to the results directory, posix
    run: str
    defense: str
    dataset: str
    threat: ThreatKey
    n_test: Optional[int] = None
    clean: Optional[float] = None
    robust: Optional[float] = None
    attacks: dict[str, AttackResult] = field(default_factory=dict)
    sweeps: dict[str, tuple[Optional[str], list[tuple[float, float]]]] = field(default_factory=dict)
    certification: dict[float, Certification] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    seconds: Optional[float] = None
    train_seconds: Optional[float] = None
    model_reused: Optional[bool] = None
    profile: Optional[str] = None
    date: Optional[str] = None
    config_hash: Optional[str] = None
    commit: Optional[str] = None
    schema_version: Optional[int] = None
    notes: list[str] = field(default_factory=list)

    @property
    def eval_seconds(self) -> Optional[float]:
        """Run time minus training, when the run trained its model (a reused model cost no training)."""
        if self.seconds is None:
            return None
        if self.model_reused is False and self.train_seconds is not None:
            return max(0.0, self.seconds - self.train_seconds)
        return self.seconds


def fmt_number(value: float) -> str:
    """Short, deterministic text for an eps, sigma or radius (4 significant digits)."""
    return format(value, ".4g")


def _attack_results(entries: Optional[dict[str, schema.AttackEntry]]) -> dict[str, AttackResult]:
    return {
        name: AttackResult(name=name, norm=a.norm, eps=a.eps, accuracy=a.accuracy, seconds=a.seconds, n=a.n,
                           median_norm=a.median_norm)
        for name, a in (entries or {}).items()
    }


def _sweeps(entries: Optional[dict[str, schema.SweepEntry]], attacks: dict[str, AttackResult]):
    out = {}
    for name, sweep in (entries or {}).items():
        norm = sweep.norm if sweep.norm is not None else (attacks[name].norm if name in attacks else None)
        out[name] = (norm, list(zip(sweep.eps, sweep.accuracy)))
    return out


def _certification(blocks: Optional[dict[str, schema.CertificationBlock]]) -> dict[float, Certification]:
    out = {
        block.sigma: Certification(
            sigma=block.sigma,
            curve=sorted((float(r), a) for r, a in block.certified_accuracy.items()),
            average_radius=block.average_certified_radius,
            abstain_rate=block.abstain_rate,
        )
        for block in (blocks or {}).values()
        if block.sigma is not None
    }
    return dict(sorted(out.items()))


def _threat(entry: Optional[schema.ThreatModelEntry]) -> ThreatKey:
    return ThreatKey(None, None, None) if entry is None else ThreatKey(entry.norm, entry.eps, entry.l2_eps)


def parse_summary(raw: Any, path: str) -> tuple[Optional[Run], Optional[str]]:
    """Normalise one summary; (None, warning) when it cannot be placed in any table."""
    summary, notes, problem = schema_read.read_summary(raw)
    if summary is None:
        return None, f"{path}: {problem}; skipped"
    prov = summary.provenance or {}
    version = schema_read.integer(prov.get("schema_version"))
    first: list[str] = []
    if version is None:
        first.append(f"no schema version (reporter reads {SCHEMA_VERSION})")
    elif version != SCHEMA_VERSION:
        first.append(f"schema version {version} (reporter reads {SCHEMA_VERSION})")
    missing = [k for k in EXPECTED_KEYS if k not in raw]
    if missing:
        first.append("missing " + ", ".join(missing))
    notes = first + notes
    attacks = _attack_results(summary.attacks)
    model = summary.model or schema.ModelEntry()
    run = Run(
        path=path,
        run=schema_read.text(prov.get("run_id")) or (path.rsplit("/", 1)[0] if "/" in path else path),
        defense=summary.defense,
        dataset=summary.dataset,
        threat=_threat(summary.threat_model),
        n_test=summary.n_test,
        clean=summary.clean_accuracy,
        robust=summary.robust_accuracy,
        attacks=attacks,
        sweeps=_sweeps(summary.sweeps, attacks),
        certification=_certification(summary.certification),
        flags=list(summary.flags or []),
        seconds=summary.seconds,
        train_seconds=model.train_seconds,
        model_reused=model.reused,
        profile=summary.profile,
        date=schema_read.text(prov.get("date")),
        config_hash=schema_read.text(prov.get("config_hash")),
        commit=schema_read.text(prov.get("git_commit")),
        schema_version=version,
        notes=notes,
    )
    return run, None


def load_summaries(results_dir: Path) -> tuple[list[Run], list[str]]:
    """Every ``summary.json`` under ``results_dir`` (sorted by path) and the warnings for skipped files."""
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
            summaries.append(summary)
    return summaries, warnings
