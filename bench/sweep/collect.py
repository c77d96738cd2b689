"""A finished cell read back from disk: its headline metrics and its per-sample outcomes.

Metrics come from ``summary.json`` (the figures the seeds' papers report:
clean and FGSM accuracy, the mean L2 of successful C&W attacks, plus the
battery's worst case, the worst-case eps sweep, FMN's median minimal
perturbations and the certified radius). Per-sample outcomes, for paired
tests, come from ``per_sample.csv`` and from the eps sweep's attack records
(``records/<attack>@<eps>.json``), rebuilt exactly as the battery builds its
worst case: robust at eps = clean-correct and unbroken by every sweep loss at
that eps, on the sweep's subset; each rebuilt accuracy is checked against the
summary's, and a disagreement is noted and that outcome left out. No torch.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..schema.read import number

WORST_CASE = "worst-case"
NORM_ATTACKS = ("cw-l2", "fmn-l2", "fmn-linf")  # per-sample minimal (or successful) perturbation columns


@dataclass
class CellData:
    """What the analysis needs from one cell's run directory."""

    out: Path
    headline_eps: Optional[float]
    values: dict[str, Optional[float]]  # metric key -> value (inf allowed for a median norm; None: not measured)
    sweep: list[tuple[float, float]]  # the worst-case sweep (eps, accuracy) on its subset
    outcomes: dict[str, dict[int, bool]] = field(default_factory=dict)  # metric key -> test index -> correct/robust
    norms: dict[str, dict[int, float]] = field(default_factory=dict)  # attack -> index -> norm (clean-correct points)
    notes: list[str] = field(default_factory=list)
    sigma: Optional[float] = None  # the smoothing noise the ACR is at


def eps_key(eps: float) -> str:
    return f"robust@{eps:g}"


def _attack(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return (summary.get("attacks") or {}).get(name) or {}


def median_norm(entry: dict[str, Any]) -> Optional[float]:
    """FMN's median minimal norm; JSON has no infinity, so a null median with under half the points
    broken (``success_rate_unbounded`` < 0.5) is the infinite median it stands for."""
    value = number(entry.get("median_norm"))
    rate = number(entry.get("success_rate_unbounded"))
    if value is None and rate is not None and rate < 0.5:
        return math.inf
    return value


def acr(summary: dict[str, Any]) -> Optional[float]:
    """The average certified radius at the threat model's sigma (the key is sigma as text)."""
    sigma = number((summary.get("threat_model") or {}).get("sigma"))
    for key, block in (summary.get("certification") or {}).items():
        if sigma is not None and number(key) is not None and abs(number(key) - sigma) < 1e-12:
            return number((block or {}).get("average_certified_radius"))
    return None


def summary_values(summary: dict[str, Any]) -> tuple[dict[str, Optional[float]], list[tuple[float, float]]]:
    """The cell's metrics, and its worst-case sweep curve."""
    sweep_block = (summary.get("sweeps") or {}).get(WORST_CASE) or {}
    sweep = [(number(e), number(a)) for e, a in zip(sweep_block.get("eps") or [], sweep_block.get("accuracy") or [])]
    sweep = [(e, a) for e, a in sweep if e is not None and a is not None]
    values: dict[str, Optional[float]] = {
        "clean": number(summary.get("clean_accuracy")),
        "fgsm": number(_attack(summary, "fgsm").get("accuracy")),
        "robust": number(summary.get("robust_accuracy")),
    }
    values.update({eps_key(e): a for e, a in sweep})
    values["cw-l2"] = number(_attack(summary, "cw-l2").get("mean_successful_norm"))
    values["fmn-l2"] = median_norm(_attack(summary, "fmn-l2"))
    values["fmn-linf"] = median_norm(_attack(summary, "fmn-linf"))
    values["acr"] = acr(summary)
    return values, sweep


def read_per_sample(path: Path) -> tuple[dict[str, dict[int, bool]], dict[str, dict[int, float]]]:
    """Clean, FGSM and worst-case outcomes, and the minimal norms of clean-correct points, by test index."""
    outcomes: dict[str, dict[int, bool]] = {"clean": {}, "fgsm": {}, "robust": {}}
    norms: dict[str, dict[int, float]] = {a: {} for a in NORM_ATTACKS}
    columns = {"clean": "clean_correct", "fgsm": "fgsm_correct", "robust": "robust"}
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            index = int(row["index"])
            for key, column in columns.items():
                if row.get(column) in ("True", "False"):
                    outcomes[key][index] = row[column] == "True"
            if row.get("clean_correct") != "True":
                continue  # minimal norms are compared where the model is right to begin with, as median_norm is
            for attack in NORM_ATTACKS:
                text = row.get(f"{attack}_norm") or ""
                if text:
                    norms[attack][index] = float(text)  # "inf": no adversarial example found
    return outcomes, norms


def _record(path: Path) -> dict[int, bool]:
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    return {int(i): bool(c) for i, c in zip(record["indices"], record["correct"])}


def sweep_outcomes(records: Path, sweep: list[tuple[float, float]], headline_eps: Optional[float],
                   clean: dict[int, bool], notes: list[str]) -> dict[str, dict[int, bool]]:
    """Per sweep eps: test index -> robust (clean-correct and unbroken by every sweep loss at that eps)."""
    swept = sorted(records.glob("*@*.json"))
    losses = sorted({p.stem.split("@", 1)[0] for p in swept})
    if not swept:
        return {}
    subset = sorted(_record(swept[0]))
    out: dict[str, dict[int, bool]] = {}
    for eps, accuracy in sweep:
        at_headline = headline_eps is not None and abs(eps - headline_eps) < 1e-9
        files = [records / f"{loss}.json" for loss in losses] if at_headline else \
            [records / f"{loss}@{eps:g}.json" for loss in losses]
        if not all(f.exists() for f in files):
            notes.append(f"{eps_key(eps)}: records {', '.join(f.name for f in files if not f.exists())} missing")
            continue
        loaded = [_record(f) for f in files]
        robust = {i: clean.get(i, False) and all(r.get(i, True) for r in loaded) for i in subset}
        if not robust or sum(robust.values()) != round(accuracy * len(robust)):  # summaries hold float32 fractions
            notes.append(f"{eps_key(eps)}: per-sample records give {sum(robust.values())} of {len(robust)} robust, "
                         f"the summary {accuracy:.4f}; left out of the paired tests")
            continue
        out[eps_key(eps)] = robust
    return out


def load_cell(out: Path) -> CellData:
    """Everything the analysis reads from one run directory (notes instead of crashes for missing parts)."""
    with open(out / "summary.json", encoding="utf-8") as handle:
        summary = json.load(handle)
    values, sweep = summary_values(summary)
    headline = number((summary.get("threat_model") or {}).get("eps"))
    data = CellData(out=out, headline_eps=headline, values=values, sweep=sweep,
                    sigma=number((summary.get("threat_model") or {}).get("sigma")))
    if not sweep:
        data.notes.append(f"no '{WORST_CASE}' sweep in its summary (an older schema?)")
    if (out / "per_sample.csv").exists():
        data.outcomes, data.norms = read_per_sample(out / "per_sample.csv")
        data.outcomes.update(sweep_outcomes(out / "records", sweep, headline, data.outcomes["clean"], data.notes))
    else:
        data.notes.append("no per_sample.csv: no paired tests")
    return data
