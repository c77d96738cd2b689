"""A first leaderboard: one Markdown table per dataset from every summary.json.

The full reporter (plots, HTML, CSV) is its own module; this keeps the
published table current after every run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .results import atomic_write_text, read_json


def collect(results_dir: Path) -> pd.DataFrame:
    """One row per summary.json under ``results_dir``; unreadable files are skipped."""
    rows: list[dict[str, Any]] = []
    for path in sorted(Path(results_dir).glob("*/summary.json")):
        try:
            s = read_json(path)
        except (OSError, ValueError):
            continue
        prov = s.get("provenance", {})
        row = {
            "defense": s.get("defense"),
            "dataset": s.get("dataset"),
            "n_test": s.get("n_test"),
            "clean_accuracy": s.get("clean_accuracy"),
            "robust_accuracy": s.get("robust_accuracy"),
            "flags": len(s.get("flags", [])),
            "config_hash": prov.get("config_hash"),
            "date": prov.get("date"),
            "run": path.parent.name,
        }
        for name, attack in sorted(s.get("attacks", {}).items()):
            row[name] = attack.get("accuracy")
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.3f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_leaderboards(results_dir: Path, out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<dataset>.md`` for every dataset seen; latest run per (defense, config hash)."""
    df = collect(results_dir)
    written: list[Path] = []
    if df.empty:
        return written
    for dataset, group in df.groupby("dataset", sort=True):
        latest = group.sort_values("date").groupby(["defense", "config_hash"], as_index=False).tail(1)
        table = latest.sort_values(["robust_accuracy", "clean_accuracy"], ascending=False).drop(columns=["dataset"])
        path = Path(out_dir) / f"{dataset}.md"
        text = f"# Leaderboard: {dataset}\n\nAccuracies are fractions; robust = per-sample worst case over the battery.\n\n"
        atomic_write_text(path, text + _markdown(table))
        written.append(path)
    return written
