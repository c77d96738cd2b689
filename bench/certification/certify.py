"""Certify a model on test points: profiles, resumable per-sample records, the summary block.

Each stage reads what the one before wrote: CERTIFY per test point ->
per-sample records on disk -> the ``certification`` block of summary.json,
computed from the records alone.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pandas as pd
import torch
from torch import nn

from ..data import ThreatModel
from ..progress import progress
from ..results import fingerprint as make_fingerprint, utc_now
from ..schema import CertificationBlock
from ..stats import clopper_pearson
from .bounds import check_alpha, check_sample_count, max_certifiable_radius
from .profiles import PROFILES, get_profile, profile_sigmas
from .records import format_key, merge_records, read_records, records_path, write_records
from .smoothing import ABSTAIN, SmoothedClassifier

RADIUS_STEP = 0.25
_FLUSH_SECONDS = 5.0  # how often finished rows reach disk while certifying


def spread_indices(total: int, count: Optional[int]) -> list[int]:
    """``count`` indices spread evenly over range(total) (all when count is None or >= total).

    Test sets may be sorted by class (mnist5k is), so the first k points
    would not be a fair sample.
    """
    if count is None or count >= total:
        return list(range(total))
    return [i * total // count for i in range(count)]


@dataclass(frozen=True)
class CertifySettings:
    """Everything that determines a certificate, besides the model and the input."""

    sigma: float
    n0: int
    n: int
    alpha: float
    seed: int = 0
    clamp: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"bad sigma {self.sigma!r}; valid choices: a number > 0")
        check_sample_count("n0", self.n0)
        check_sample_count("n", self.n)
        check_alpha(self.alpha)


def records_fingerprint(settings: CertifySettings, model_id: str, dataset: str) -> str:
    return make_fingerprint(model=model_id, dataset=dataset, **asdict(settings))


def certify_row(smoothed: SmoothedClassifier, x: torch.Tensor, label: int, index: int, settings: CertifySettings,
                fingerprint: str) -> dict[str, Any]:
    """One point's record: CERTIFY seeded by (seed, sigma, index), so any process computes the same row."""
    start = time.perf_counter()
    cert = smoothed.certify(x, n0=settings.n0, n=settings.n, alpha=settings.alpha, seed=settings.seed, index=index)
    return {
        "index": int(index),
        "label": label,
        "prediction": cert.prediction,
        "radius": cert.radius,
        "correct": int(cert.prediction == label),
        "seconds": time.perf_counter() - start,
        "fingerprint": fingerprint,
        "nonfinite": cert.nonfinite,
    }


def certify_points(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    indices: Sequence[int],
    settings: CertifySettings,
    *,
    records_file: Path,
    fingerprint: str,
    batch_size: Optional[int] = None,
    executor: Optional[Any] = None,
) -> pd.DataFrame:
    """CERTIFY each ``x[i]`` for i in ``indices``; return their records, sorted by index.

    Rows already in ``records_file`` under this fingerprint are reused;
    finished rows reach disk every few seconds and on any exit (Ctrl-C
    included), so an interrupted run resumes where it stopped. ``executor``
    (a ``bench.executors`` executor) certifies the points instead; None: here.
    """
    if executor is not None:
        return executor.certify_points(model, x, y, indices, settings, records_file=records_file,
                                       fingerprint=fingerprint, batch_size=batch_size)
    existing = read_records(records_file, fingerprint)
    done = set(existing["index"].tolist())
    todo = [int(i) for i in indices if int(i) not in done]
    rows: list[dict[str, Any]] = []
    if todo:
        smoothed = SmoothedClassifier(model, settings.sigma, clamp=settings.clamp, batch_size=batch_size)
        last_flush = time.perf_counter()
        try:
            bar = progress(todo, desc=f"certify sigma={format_key(settings.sigma)}", unit="point")
            for index in bar:
                rows.append(certify_row(smoothed, x[index], int(y[index]), index, settings, fingerprint))
                if time.perf_counter() - last_flush > _FLUSH_SECONDS:
                    write_records(records_file, merge_records([existing, pd.DataFrame(rows)]))
                    last_flush = time.perf_counter()
        finally:
            if rows:
                write_records(records_file, merge_records([existing, pd.DataFrame(rows)]))
    records = merge_records([existing, pd.DataFrame(rows)])
    wanted = set(int(i) for i in indices)
    return records[records["index"].isin(wanted)].reset_index(drop=True)


def summarize(records: pd.DataFrame, settings: CertifySettings) -> CertificationBlock:
    """The summary block for one sigma, from per-sample records alone.

    Certified accuracy at r: the fraction of points predicted correctly with
    radius >= r, for r = 0, 0.25, 0.5, ... up to the first r where it is 0.
    The average certified radius counts 0 for wrong and abstained points.
    """
    count = len(records)
    correct = records["correct"].to_numpy() == 1
    radius = records["radius"].to_numpy()
    curve: dict[str, float] = {}
    intervals: dict[str, list[float]] = {}
    step = 0
    while count:
        r = step * RADIUS_STEP
        certified = int((correct & (radius >= r)).sum())
        fraction = certified / count
        curve[format_key(r)] = fraction
        intervals[format_key(r)] = list(clopper_pearson(certified, count))
        if fraction == 0.0:
            break
        step += 1
    return CertificationBlock(
        sigma=settings.sigma,
        certified_accuracy=curve,
        certified_accuracy_interval=intervals or None,
        average_certified_radius=float((radius * correct).mean()) if count else float("nan"),
        abstain_rate=float((records["prediction"].to_numpy() == ABSTAIN).mean()) if count else float("nan"),
        n0=settings.n0,
        n=settings.n,
        alpha=settings.alpha,
        n_test=count,
        max_certifiable_radius=max_certifiable_radius(settings.n, settings.alpha, settings.sigma),
        clamp=settings.clamp,
        seed=settings.seed,
        seconds=round(float(records["seconds"].sum()), 3),  # certifying these points, resumed ones included
        nonfinite_points=int((records["nonfinite"].to_numpy() > 0).sum()) if "nonfinite" in records else 0,
    )


def certify_sigmas(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    sigmas: Sequence[float],
    indices: Sequence[int],
    n0: int,
    n: int,
    alpha: float,
    records_dir: Path,
    model_id: str,
    dataset: str,
    seed: int = 0,
    clamp: bool = False,
    profile: Optional[str] = None,
    log: Callable[[str], None] = print,
    executor: Optional[Any] = None,
) -> dict[str, CertificationBlock]:
    """Certify ``x[indices]`` at each sigma; return summary blocks keyed by ``format_key(sigma)``."""
    blocks: dict[str, CertificationBlock] = {}
    for sigma in sigmas:
        settings = CertifySettings(sigma=float(sigma), n0=n0, n=n, alpha=alpha, seed=seed, clamp=clamp)
        path = records_path(records_dir, settings.sigma)
        records = certify_points(
            model, x, y, indices, settings,
            records_file=path, fingerprint=records_fingerprint(settings, model_id, dataset), executor=executor,
        )
        block = summarize(records, settings)
        block.records = f"{Path(records_dir).name}/{path.name}"
        block.date = utc_now()
        block.profile = profile
        blocks[format_key(settings.sigma)] = block
        at_half = block.certified_accuracy.get(format_key(0.5), 0.0)
        log(
            f"  certify    sigma={settings.sigma:<6g} n={n} points={block.n_test} "
            f"certified@0.5={at_half:.3f} ACR={block.average_certified_radius:.3f} "
            f"abstain={block.abstain_rate:.3f} ({block.seconds:.1f} s)"
        )
        if block.nonfinite_points:
            log(f"  certify    sigma={settings.sigma:<6g} {block.nonfinite_points} of {block.n_test} points had draws "
                "with non-finite logits (NaN or inf): those draws vote for no class, so such points abstain")
    return blocks


def certify_for_run(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    threat: ThreatModel,
    profile: str,
    records_dir: Path,
    model_id: str,
    dataset: str,
    seed: int,
    log: Callable[[str], None] = print,
    executor: Optional[Any] = None,
    sigmas: Optional[Sequence[float]] = None,
) -> dict[str, CertificationBlock]:
    """`bench run`'s certification: the profile's sigmas (or ``sigmas``), sample sizes and points over the evaluated set.

    A run profile certification does not know (the battery may grow its own)
    certifies with the quick settings and says so, rather than failing the run.
    """
    if profile not in PROFILES:
        log(f"  certify    no certification profile {profile!r}; using 'quick' (valid: {', '.join(PROFILES)})")
        profile = "quick"
    prof = get_profile(profile)
    return certify_sigmas(
        model, x, y,
        sigmas=profile_sigmas(profile, threat) if sigmas is None else sorted(set(float(s) for s in sigmas)),
        indices=spread_indices(len(x), prof.points),
        n0=prof.n0, n=prof.n, alpha=prof.alpha,
        records_dir=records_dir, model_id=model_id, dataset=dataset, seed=seed, profile=profile, log=log,
        executor=executor,
    )
