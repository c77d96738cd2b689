"""Reading summaries for the reporter: tolerant, and honest about what was missing.

Summaries come from several versions of the harness (and from helpers that
fill in attacks, sweeps and certification at different times), so nothing
here assumes a key exists. Whatever cannot be read becomes a note on the
row (kept in the tables) or, when a file cannot be placed in any table at
all, a warning (listed on the index page and on stderr).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..results import SCHEMA_VERSION

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
class Summary:
    """One run, normalised: every field may be None when the file did not have it."""

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


def number(value: Any) -> Optional[float]:
    """A finite float from a JSON value (numbers or numeric strings), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            return None
    else:
        return None
    return out if math.isfinite(out) else None


def _integer(value: Any) -> Optional[int]:
    out = number(value)
    return int(out) if out is not None and out == int(out) else None


def _text(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def curve(obj: Any) -> Optional[list[tuple[float, float]]]:
    """Points (x, accuracy) sorted by x, from any of the shapes the writers use.

    Accepted: ``{"eps"|"radius"|"radii": [...], "accuracy": [...]}``, ``{"0.1": 0.8, ...}``
    and ``[[x, acc], ...]`` or ``[{"eps": x, "accuracy": acc}, ...]``. None when unreadable.
    """
    points: list[tuple[float, float]] = []
    if isinstance(obj, dict):
        xs = next((obj[k] for k in ("eps", "radius", "radii") if isinstance(obj.get(k), list)), None)
        ys = obj.get("accuracy", obj.get("certified_accuracy"))
        if xs is not None and isinstance(ys, list):
            if len(xs) != len(ys):
                return None
            pairs = list(zip(xs, ys))
        else:
            # {x: accuracy}; other keys ("norm", "n", ...) are metadata
            pairs = [(k, v) for k, v in obj.items() if number(k) is not None]
    elif isinstance(obj, list):
        pairs = []
        for item in obj:
            if isinstance(item, dict):
                pairs.append((item.get("eps", item.get("radius")), item.get("accuracy")))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                return None
    else:
        return None
    for x, y in pairs:
        xf, yf = number(x), number(y)
        if xf is None or yf is None:
            return None
        points.append((xf, yf))
    return sorted(points) if points else None


def _attacks(raw: Any, notes: list[str]) -> dict[str, AttackResult]:
    if not isinstance(raw, dict):
        if raw is not None:
            notes.append("attacks unreadable")
        return {}
    out: dict[str, AttackResult] = {}
    for name in sorted(raw):
        a = raw[name]
        if not isinstance(a, dict):
            notes.append(f"attack {name} unreadable")
            continue
        result = AttackResult(
            name=str(name),
            norm=_text(a.get("norm")),
            eps=number(a.get("eps")),
            accuracy=number(a.get("accuracy")),
            seconds=number(a.get("seconds")),
            n=_integer(a.get("n")),
            median_norm=number(a.get("median_norm")),
        )
        if result.accuracy is None:
            notes.append(f"attack {name} has no accuracy")
        out[str(name)] = result
    return out


def _sweeps(raw: Any, attacks: dict[str, AttackResult], notes: list[str]):
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        notes.append("sweeps unreadable")
        return {}
    out = {}
    for name in sorted(raw):
        points = curve(raw[name])
        if points is None:
            notes.append(f"sweep {name} unreadable")
            continue
        norm = raw[name].get("norm") if isinstance(raw[name], dict) else None
        if norm is None and name in attacks:
            norm = attacks[name].norm
        out[str(name)] = (_text(norm), points)
    return out


def _certification(raw: Any, notes: list[str]) -> dict[float, Certification]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        notes.append("certification unreadable")
        return {}
    out: dict[float, Certification] = {}
    for key in raw:
        entry = raw[key]
        sigma = number(key)
        if sigma is None and isinstance(entry, dict):
            sigma = number(entry.get("sigma"))
        points = curve(entry.get("certified_accuracy")) if isinstance(entry, dict) else None
        if sigma is None or points is None:
            notes.append(f"certification at sigma {key} unreadable")
            continue
        out[sigma] = Certification(
            sigma=sigma,
            curve=points,
            average_radius=number(entry.get("average_certified_radius")),
            abstain_rate=number(entry.get("abstain_rate")),
        )
    return dict(sorted(out.items()))


def _threat(raw: Any, notes: list[str]) -> ThreatKey:
    if not isinstance(raw, dict):
        return ThreatKey(None, None, None)
    key = ThreatKey(_text(raw.get("norm")), number(raw.get("eps")), number(raw.get("l2_eps")))
    if not key.known:
        notes.append("threat model incomplete")
    return key


def parse_summary(raw: Any, path: str) -> tuple[Optional[Summary], Optional[str]]:
    """Normalise one summary; (None, warning) when it cannot be placed in any table."""
    if not isinstance(raw, dict):
        return None, f"{path}: not a JSON object; skipped"
    defense, dataset = raw.get("defense"), raw.get("dataset")
    if not isinstance(defense, str) or not isinstance(dataset, str) or not defense or not dataset:
        missing = [k for k, v in (("defense", defense), ("dataset", dataset)) if not isinstance(v, str) or not v]
        return None, f"{path}: no {' or '.join(missing)}; skipped"
    notes: list[str] = []
    prov = raw.get("provenance") if isinstance(raw.get("provenance"), dict) else {}
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    schema = _integer(prov.get("schema_version"))
    if schema is None:
        notes.append(f"no schema version (reporter reads {SCHEMA_VERSION})")
    elif schema != SCHEMA_VERSION:
        notes.append(f"schema version {schema} (reporter reads {SCHEMA_VERSION})")
    missing = [k for k in EXPECTED_KEYS if k not in raw]
    if missing:
        notes.append("missing " + ", ".join(missing))
    flags_raw = raw.get("flags", [])
    flags = [str(f) for f in flags_raw] if isinstance(flags_raw, list) else [str(flags_raw)]
    attacks = _attacks(raw.get("attacks"), notes)
    reused = model.get("reused")
    summary = Summary(
        path=path,
        run=_text(prov.get("run_id")) or (path.rsplit("/", 1)[0] if "/" in path else path),
        defense=defense,
        dataset=dataset,
        threat=_threat(raw.get("threat_model"), notes),
        n_test=_integer(raw.get("n_test")),
        clean=number(raw.get("clean_accuracy")),
        robust=number(raw.get("robust_accuracy")),
        attacks=attacks,
        sweeps=_sweeps(raw.get("sweeps"), attacks, notes),
        certification=_certification(raw.get("certification"), notes),
        flags=flags,
        seconds=number(raw.get("seconds")),
        train_seconds=number(model.get("train_seconds")),
        model_reused=reused if isinstance(reused, bool) else None,
        profile=_text(raw.get("profile")),
        date=_text(prov.get("date")),
        config_hash=_text(prov.get("config_hash")),
        commit=_text(prov.get("git_commit")),
        schema_version=schema,
        notes=notes,
    )
    return summary, None


def load_summaries(results_dir: Path) -> tuple[list[Summary], list[str]]:
    """Every ``summary.json`` under ``results_dir`` (sorted by path) and the warnings for skipped files."""
    results_dir = Path(results_dir)
    summaries: list[Summary] = []
    warnings: list[str] = []
    for file in sorted(results_dir.rglob("summary.json"), key=lambda p: p.relative_to(results_dir).as_posix()):
        rel = file.relative_to(results_dir).as_posix()
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
