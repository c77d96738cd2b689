"""Synthetic finished runs for the sweep's tests: summary.json, per_sample.csv and sweep records, consistent.

Each test point gets a "breaking eps" t: it is robust at eps exactly when it
is clean-correct and eps < t, so the summary's accuracies, the per-sample
columns and the records all follow from (clean, t) and the tests can check
every figure the sweep reports against the numbers written here.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Optional, Sequence

SWEEP_EPS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]
HEADLINE = 0.3
LOSSES = ("pgd-linf", "pgd-linf-margin")


def lower_median(values: Sequence[float]) -> float:
    """torch.median's convention (the lower of the two middle values), which the battery uses."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2] if ordered else math.nan


def _record(path: Path, name: str, eps: float, indices: list[int], correct: list[bool]) -> None:
    path.write_text(json.dumps({"name": name, "norm": "linf", "eps": eps, "params": {}, "seconds": 0.1,
                                "fingerprint": "synthetic", "indices": indices, "correct": correct, "norms": None,
                                "warnings": []}))


def write_run(out: Path, *, clean: Sequence[bool], breaks: Sequence[float], l2: Optional[Sequence[float]] = None,
              acr: float = 0.5, profile: str = "quick", defense: str = "vib", subset: Optional[list[int]] = None,
              schema: int = 2, sweep_shift: float = 0.0) -> dict:
    """One finished run in ``out``; ``breaks``: per point, the smallest eps that breaks it (inf: never).

    ``sweep_shift`` makes the summary's sweep accuracies disagree with the records (to test the check).
    """
    n = len(clean)
    subset = list(range(n)) if subset is None else subset
    l2 = [2.0 * t for t in breaks] if l2 is None else list(l2)
    robust_at = {e: [bool(clean[i]) and e < breaks[i] for i in range(n)] for e in SWEEP_EPS}
    (out / "records").mkdir(parents=True, exist_ok=True)
    for e in SWEEP_EPS:
        correct = [bool(clean[i]) and e < breaks[i] for i in (range(n) if e == HEADLINE else subset)]
        for loss in LOSSES:
            name = loss if e == HEADLINE else f"{loss}@{e:g}"
            _record(out / "records" / f"{name}.json", loss, e, list(range(n)) if e == HEADLINE else subset, correct)
    fgsm = [bool(clean[i]) and breaks[i] > 0.2 for i in range(n)]  # FGSM: as if it broke everything under 0.2
    robust = robust_at[HEADLINE]
    found_l2 = [l2[i] for i in range(n) if clean[i] and math.isfinite(l2[i])]
    linf_clean = [breaks[i] for i in range(n) if clean[i]]
    rows = [{"index": i, "label": i % 10, "clean_correct": bool(clean[i]), "fgsm_correct": fgsm[i],
             "cw-l2_norm": l2[i] if clean[i] else 0.0, "fmn-l2_norm": l2[i] if clean[i] else 0.0,
             "fmn-linf_norm": breaks[i] if clean[i] else 0.0, "robust": robust[i]} for i in range(n)]
    with open(out / "per_sample.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    median_l2 = lower_median([l2[i] for i in range(n) if clean[i]])
    median_linf = lower_median(linf_clean)
    summary = {
        "defense": defense, "dataset": "mnist5k", "n_test": n, "profile": profile,
        "clean_accuracy": sum(clean) / n, "robust_accuracy": sum(robust) / n,
        "attacks": {
            "fgsm": {"norm": "linf", "eps": HEADLINE, "accuracy": sum(fgsm) / n, "n": n},
            "cw-l2": {"norm": "l2", "eps": 2.0, "accuracy": 0.0, "n": n,
                      "mean_successful_norm": sum(found_l2) / len(found_l2) if found_l2 else None},
            "fmn-l2": {"norm": "l2", "eps": 2.0, "accuracy": 0.0, "n": n,
                       "median_norm": median_l2 if math.isfinite(median_l2) else None,
                       "success_rate_unbounded": len(found_l2) / max(1, sum(clean))},
            "fmn-linf": {"norm": "linf", "eps": HEADLINE, "accuracy": 0.0, "n": n,
                         "median_norm": median_linf if math.isfinite(median_linf) else None,
                         "success_rate_unbounded": sum(math.isfinite(t) for t in linf_clean) / max(1, sum(clean))},
        },
        "sweeps": {"worst-case": {"norm": "linf", "eps": SWEEP_EPS, "n": len(subset),
                                  "accuracy": [sum(robust_at[e][i] for i in subset) / len(subset) + sweep_shift
                                               for e in SWEEP_EPS]}},
        "certification": {"0.25": {"sigma": 0.25, "certified_accuracy": {"0.0": 0.9}, "average_certified_radius": acr}},
        "threat_model": {"norm": "linf", "eps": HEADLINE, "l2_eps": 2.0, "sigma": 0.25},
        "provenance": {"schema_version": schema},
    }
    (out / "summary.json").write_text(json.dumps(summary))
    return summary
