"""Per-sample certification records: one CSV per sigma, the unit of resume and of sharding.

``<run>/records/certify-sigma<sigma>.csv`` has Cohen et al.'s certify
columns (index, label, prediction, radius, correct, seconds) plus the
fingerprint of everything that determines a row (model weights, dataset,
sigma, n0, n, alpha, seed, clamp) and ``nonfinite``, the draws whose logits
were not finite (0 in files written before it existed). A rerun reuses rows whose fingerprint
matches and computes only the missing indices; since every row is seeded by
its own index, files from disjoint shards concatenate into the same records
one run would have written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from ..errors import first_line, warn
from ..results import atomic_write_text
from ..rundir import shown

COLUMNS = ["index", "label", "prediction", "radius", "correct", "seconds", "fingerprint", "nonfinite"]
REQUIRED = COLUMNS[:-1]  # "nonfinite" came later; older files lack it


def format_key(value: float) -> str:
    """The JSON key and file-name form of a sigma or radius: the shortest exact float text ("0.25", "1.0")."""
    return repr(float(value))


def records_path(records_dir: Path, sigma: float) -> Path:
    return Path(records_dir) / f"certify-sigma{format_key(sigma)}.csv"


def empty_records() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object" if c == "fingerprint" else "float64") for c in COLUMNS})


def merge_records(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Rows of several record sets (shards), one per (fingerprint, index), sorted by index."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_records()
    merged = pd.concat(frames, ignore_index=True)
    merged = merged.drop_duplicates(subset=["fingerprint", "index"], keep="last")
    return _typed(merged.sort_values("index", kind="stable").reset_index(drop=True))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reindex(columns=COLUMNS).copy()
    df["nonfinite"] = df["nonfinite"].fillna(0)
    for column in ("index", "label", "prediction", "correct", "nonfinite"):
        df[column] = df[column].astype("int64")
    for column in ("radius", "seconds"):
        df[column] = df[column].astype("float64")
    df["fingerprint"] = df["fingerprint"].astype(str)
    return df


def read_records(path: Path, fingerprint: str) -> pd.DataFrame:
    """The rows of ``path`` made under ``fingerprint``; none if the file is absent.

    A damaged file (not CSV, missing columns, values that are not numbers)
    is recomputed: one warning naming it, and no rows from it.
    """
    path = Path(path)
    if not path.exists():
        return empty_records()
    try:
        df = pd.read_csv(path, dtype={"fingerprint": str})
        if not set(REQUIRED) <= set(df.columns):
            raise ValueError(f"missing columns {', '.join(sorted(set(REQUIRED) - set(df.columns)))}")
        return merge_records([df[df["fingerprint"] == fingerprint]])
    except (OSError, ValueError, TypeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        warn(f"{shown(path)}: damaged certification records ({first_line(exc)}); recomputing them")
        return empty_records()


def write_records(path: Path, records: pd.DataFrame) -> None:
    """Write the records atomically (floats at full precision, so a reread is exact)."""
    atomic_write_text(Path(path), _typed(records).to_csv(index=False))
