"""Reading summary.json back, tolerantly: what a file lacks becomes a note, never a crash.

Summaries come from several versions of the harness and from hand edits, so
numbers may be strings, keys may be missing and curves may have any of the
shapes writers have used; each is normalised into ``bench.schema``'s
dataclasses, and what could not be read is said in the notes.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

from . import AttackEntry, CertificationBlock, Flag, ModelEntry, Summary, SweepEntry, ThreatModelEntry

def number(value: Any) -> Optional[float]:
    """A finite float from a JSON value (numbers or numeric strings), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        out = float(value)
    except ValueError:
        return None
    return out if math.isfinite(out) else None


def integer(value: Any) -> Optional[int]:
    out = number(value)
    return int(out) if out is not None and out == int(out) else None


def text(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def curve(obj: Any) -> Optional[list[tuple[float, float]]]:
    """Points (x, accuracy) sorted by x, from any of the shapes writers have used.

    Accepted: ``{"eps"|"radius"|"radii": [...], "accuracy": [...]}``, ``{"0.1": 0.8, ...}``
    and ``[[x, acc], ...]`` or ``[{"eps": x, "accuracy": acc}, ...]``. None when unreadable.
    """
    pairs: list[tuple[Any, Any]]
    if isinstance(obj, dict):
        xs = next((obj[k] for k in ("eps", "radius", "radii") if isinstance(obj.get(k), list)), None)
        ys = obj.get("accuracy", obj.get("certified_accuracy"))
        if xs is not None and isinstance(ys, list):
            if len(xs) != len(ys):
                return None
            pairs = list(zip(xs, ys))
        else:  # {x: accuracy}; other keys ("norm", "n", ...) are metadata
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
    points = [(number(x), number(y)) for x, y in pairs]
    if any(x is None or y is None for x, y in points):
        return None
    return sorted(points) if points else None  # type: ignore[arg-type]


def _known(cls: type, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a JSON object into the dataclass's own keys and the rest (kept in ``extra``)."""
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    return {k: v for k, v in raw.items() if k in names}, {k: v for k, v in raw.items() if k not in names}


def read_flag(raw: Any) -> Flag:
    """A flag object, or a bare sentence (schema 1: every flag counted as masking evidence)."""
    if isinstance(raw, dict):
        return Flag(check=str(raw.get("check", "")), severity=str(raw.get("severity", "masking")),
                    message=str(raw.get("message", "")))
    return Flag(check="", severity="masking", message=str(raw))


def read_attack(raw: Any, notes: list[str], name: str) -> Optional[AttackEntry]:
    if not isinstance(raw, dict):
        notes.append(f"attack {name} unreadable")
        return None
    own, extra = _known(AttackEntry, raw)
    entry = AttackEntry(**{**own, "norm": text(raw.get("norm")), "eps": number(raw.get("eps")),
                           "accuracy": number(raw.get("accuracy")), "n": integer(raw.get("n")),
                           "seconds": number(raw.get("seconds")), "median_norm": number(raw.get("median_norm"))},
                        extra=extra)
    if entry.accuracy is None:
        notes.append(f"attack {name} has no accuracy")
    return entry


def read_sweep(raw: Any, notes: list[str], name: str) -> Optional[SweepEntry]:
    points = curve(raw)
    if points is None:
        notes.append(f"sweep {name} unreadable")
        return None
    norm = raw.get("norm") if isinstance(raw, dict) else None
    return SweepEntry(norm=text(norm), eps=[x for x, _ in points], accuracy=[y for _, y in points],
                      n=integer(raw.get("n")) if isinstance(raw, dict) else None)


def read_certification(raw: Any, notes: list[str], key: str) -> Optional[CertificationBlock]:
    entry = raw if isinstance(raw, dict) else {}
    sigma = number(key)
    if sigma is None:
        sigma = number(entry.get("sigma"))
    points = curve(entry.get("certified_accuracy")) if entry else None
    if sigma is None or points is None:
        notes.append(f"certification at sigma {key} unreadable")
        return None
    own, extra = _known(CertificationBlock, entry)
    own.update(sigma=sigma, certified_accuracy={repr(r): a for r, a in points},
               average_certified_radius=number(entry.get("average_certified_radius")),
               abstain_rate=number(entry.get("abstain_rate")))
    return CertificationBlock(**own, extra=extra)


def _read_threat(raw: Any, notes: list[str]) -> Optional[ThreatModelEntry]:
    if not isinstance(raw, dict):
        return None
    entry = ThreatModelEntry(text(raw.get("norm")), number(raw.get("eps")), number(raw.get("l2_eps")),
                             number(raw.get("sigma")))
    if entry.norm is None or entry.eps is None:
        notes.append("threat model incomplete")
    return entry


def _read_map(raw: Any, notes: list[str], what: str, reader: Any) -> Optional[dict[str, Any]]:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        notes.append(f"{what} unreadable")
        return {}
    out = {}
    for key in sorted(raw):
        value = reader(raw[key], notes, str(key))
        if value is not None:
            out[str(key)] = value
    return out


def _block(raw: dict[str, Any], key: str, notes: list[str]) -> Optional[dict[str, Any]]:
    """An optional JSON object (older summaries lack it: None, no note)."""
    value = raw.get(key)
    if value is not None and not isinstance(value, dict):
        notes.append(f"{key.replace('_', ' ')} unreadable")
        return None
    return value


def read_summary(raw: Any) -> tuple[Optional[Summary], list[str], Optional[str]]:
    """(summary, notes on what it lacked, None) or (None, [], why it cannot be placed anywhere)."""
    if not isinstance(raw, dict):
        return None, [], "not a JSON object"
    missing = [k for k in ("defense", "dataset") if not isinstance(raw.get(k), str) or not raw.get(k)]
    if missing:
        return None, [], f"no {' or '.join(missing)}"
    notes: list[str] = []
    own, extra = _known(Summary, raw)
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    flags = raw.get("flags", [])
    run_notes = raw.get("notes")
    own["attacks"] = _read_map(raw.get("attacks"), notes, "attacks", read_attack)
    own["threat_model"] = _read_threat(raw.get("threat_model"), notes)
    own["sweeps"] = _read_map(raw.get("sweeps"), notes, "sweeps", read_sweep)
    own["certification"] = _read_map(raw.get("certification"), notes, "certification", read_certification)
    own.update(
        n_test=integer(raw.get("n_test")),
        clean_accuracy=number(raw.get("clean_accuracy")),
        robust_accuracy=number(raw.get("robust_accuracy")),
        seconds=number(raw.get("seconds")),
        profile=text(raw.get("profile")),
        flags=[read_flag(f) for f in flags] if isinstance(flags, list) else [read_flag(flags)],
        model=ModelEntry(text(model.get("card")), text(model.get("sha256")),
                         model.get("reused") if isinstance(model.get("reused"), bool) else None,
                         number(model.get("train_seconds")), text(model.get("source"))),
        provenance=raw.get("provenance") if isinstance(raw.get("provenance"), dict) else {},
        notes=[str(n) for n in run_notes] if isinstance(run_notes, list) else None if run_notes is None else [str(run_notes)],
        deterministic_certification=_block(raw, "deterministic_certification", notes),
        representation_vulnerability=_block(raw, "representation_vulnerability", notes),
    )
    return Summary(**own, extra=extra), notes, None
