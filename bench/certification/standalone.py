"""`bench certify` as a function: certification alone, into the same run directory as `bench run`.

The model comes from the zoo exactly as in `bench run` (loaded, or trained
and cached), the run directory is the same ``results/<run-id>/``, and the
certification block is merged into an existing summary.json (one key per
sigma), so certifying after, before or between runs never loses results.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..data import DEFAULT_DATASET, load_dataset
from ..perf import fast_layout, resolve_device, tune_allocator
from ..registry import create_defense
from ..results import atomic_write_json, config_hash, provenance, read_json
from ..runner import _with_seed, bench_home, run_id
from ..zoo import ModelZoo
from .pipeline import certify_sigmas, get_profile, spread_indices


@dataclass
class CertifyOptions:
    defense: str
    sigmas: tuple[float, ...]
    dataset: str = DEFAULT_DATASET
    n: Optional[int] = None  # None: the profile's
    n0: Optional[int] = None
    alpha: Optional[float] = None
    n_test: Optional[int] = None  # test points spread over the test set (None: the profile's)
    profile: str = "quick"
    seed: int = 0
    device: str = "auto"
    out: Optional[Path] = None
    config: dict[str, Any] = field(default_factory=dict)
    data_dir: Optional[Path] = None
    retrain: bool = False
    clamp: bool = False
    home: Optional[Path] = None


def certify_defense(opts: CertifyOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Certify one defense at each requested sigma; return the summary written to ``summary.json``."""
    tune_allocator()
    started = time.perf_counter()
    prof = get_profile(opts.profile)
    home = Path(opts.home) if opts.home is not None else bench_home()
    device = resolve_device(opts.device)
    defense = create_defense(opts.defense, **_with_seed(opts.defense, opts.config, opts.seed))
    data = load_dataset(opts.dataset, opts.data_dir)
    hash_ = config_hash(defense.name, data.name, defense.config_dict())
    out = Path(opts.out) if opts.out is not None else home / "results" / run_id(defense.name, data.name, hash_, opts.seed)

    zoo = ModelZoo(home / "models")
    log(f"defense {defense.name} ({hash_}) on {data.name}: {'training' if opts.retrain else 'loading or training'} on {device}")
    entry = zoo.get_or_fit(defense, data.to(device), device, retrain=opts.retrain)
    model = fast_layout(entry.model).eval()
    model_id = entry.card.get("sha256") or f"unsaved-{time.time_ns()}"

    blocks = certify_sigmas(
        model,
        data.x_test,
        data.y_test,
        sigmas=opts.sigmas,
        indices=spread_indices(len(data.x_test), opts.n_test if opts.n_test is not None else prof.points),
        n0=opts.n0 if opts.n0 is not None else prof.n0,
        n=opts.n if opts.n is not None else prof.n,
        alpha=opts.alpha if opts.alpha is not None else prof.alpha,
        records_dir=out / "records",
        model_id=model_id,
        dataset=data.name,
        seed=opts.seed,
        clamp=opts.clamp,
        profile=opts.profile,
        log=log,
    )

    path = out / "summary.json"
    summary: dict[str, Any]
    if path.exists():
        summary = read_json(path)
        summary["certification"] = {**(summary.get("certification") or {}), **blocks}
    else:
        summary = {
            "defense": defense.name,
            "dataset": data.name,
            "certification": blocks,
            "config": defense.config_dict(),
            "surface": model.describe_surface(),
            "model": {
                "card": str(zoo.paths(defense.name, data.name, hash_)[1].relative_to(home))
                if entry.card.get("sha256") else None,
                "sha256": entry.card.get("sha256"),
                "reused": entry.reused,
                "train_seconds": entry.card.get("train_seconds"),
            },
            "profile": opts.profile,
            "seconds": round(time.perf_counter() - started, 3),
            "provenance": provenance(opts.seed, hash_, device=str(device), run_id=out.name),
        }
    atomic_write_json(path, summary)
    return summary
