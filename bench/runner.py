"""`bench run` as a function: dataset -> defense -> battery -> results on disk.

Each stage reads only what the one before produced. Attack outcomes are
written as records as soon as each attack finishes, so an interrupted run
resumes where it stopped; ``summary.json`` is written last, atomically.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd
import torch

from .attacks.battery import get_profile, plan_battery, run_battery, summarize_battery
from .attacks.transfer import load_transfer_source
from .certification import certify_for_run
from .data import DEFAULT_DATASET, load_dataset
from .perf import fast_layout, resolve_device, tune_allocator
from .records import fingerprint
from .registry import create_defense
from .results import atomic_write_json, atomic_write_text, config_hash, provenance, read_json
from .training import predict
from .zoo import ModelZoo


def bench_home() -> Path:
    """Root under which models/, results/ and leaderboards/ live ($BENCH_HOME, else the working directory)."""
    return Path(os.environ.get("BENCH_HOME") or Path.cwd())


@dataclass
class RunOptions:
    defense: str
    dataset: str = DEFAULT_DATASET
    out: Optional[Path] = None
    seed: int = 0
    device: str = "auto"
    retrain: bool = False
    eps: Optional[float] = None  # overrides the dataset's headline L-inf eps
    config: dict[str, Any] = field(default_factory=dict)
    data_dir: Optional[Path] = None
    n_test: Optional[int] = None  # evaluate on the first n test points (None: all)
    batch_size: int = 500
    home: Optional[Path] = None
    profile: str = "quick"  # quick: minutes on 2 CPU cores; full: paper settings


def run_id(defense: str, dataset: str, hash_: str, seed: int) -> str:
    return f"{dataset}-{defense}-{hash_}-s{seed}"


def _with_seed(defense_name: str, config: dict[str, Any], seed: int) -> dict[str, Any]:
    from .registry import get_spec
    import dataclasses

    fields = {f.name for f in dataclasses.fields(get_spec(defense_name).config)}
    merged = dict(config)
    if "seed" in fields and "seed" not in merged:
        merged["seed"] = seed
    return merged


def run(opts: RunOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate one defense end to end; return the summary written to ``summary.json``."""
    tune_allocator()
    get_profile(opts.profile)  # an unknown profile fails before any training
    started = time.perf_counter()
    home = Path(opts.home) if opts.home is not None else bench_home()
    device = resolve_device(opts.device)
    defense = create_defense(opts.defense, **_with_seed(opts.defense, opts.config, opts.seed))
    data = load_dataset(opts.dataset, opts.data_dir)
    threat = data.threat
    eps = threat.linf if opts.eps is None else float(opts.eps)
    hash_ = config_hash(defense.name, data.name, defense.config_dict())
    out = Path(opts.out) if opts.out is not None else home / "results" / run_id(defense.name, data.name, hash_, opts.seed)
    records_dir = out / "records"
    if (out / "summary.json").exists() and records_dir.exists():
        shutil.rmtree(records_dir)  # a finished run is rerun from scratch; an interrupted one resumes

    zoo = ModelZoo(home / "models")
    log(f"defense {defense.name} ({hash_}) on {data.name}: {'training' if opts.retrain else 'loading or training'} on {device}")
    entry = zoo.get_or_fit(defense, data.to(device), device, retrain=opts.retrain)
    model = fast_layout(entry.model).eval()
    log(("reused cached model " if entry.reused else "trained model in ") + (
        f"{entry.card.get('weights')}" if entry.reused else f"{entry.card['train_seconds']:.1f} s"
    ))

    n_test = len(data.x_test) if opts.n_test is None else min(opts.n_test, len(data.x_test))
    x, y = data.x_test[:n_test], data.y_test[:n_test]
    indices = list(range(n_test))
    model_id = entry.card.get("sha256") or f"unsaved-{time.time_ns()}"

    clean_correct = predict(model, x, opts.batch_size) == y.cpu()

    log("transfer source: loading or training an independent plain model")
    source = load_transfer_source(home, data, device, opts.seed, defense.name, defense.config_dict())
    plan = plan_battery(model, threat, eps, opts.profile, transfer_source=source, seed=opts.seed)

    def report(outcome, reused: bool) -> None:
        how = "reused from records" if reused else f"{outcome.seconds:.1f} s"
        log(f"  {outcome.name:<16} {outcome.norm:<4} eps={outcome.eps:<6g} n={outcome.n:<5} accuracy={outcome.accuracy:.3f} ({how})")

    outcomes = run_battery(
        model,
        x,
        y,
        plan,
        records_dir=records_dir,
        model_id=model_id,
        indices=indices,
        seed=opts.seed,
        batch_size=opts.batch_size,
        on_outcome=report,
    )
    battery = summarize_battery(model, x, y, clean_correct, plan, outcomes, indices=indices, eps=eps,
                                profile=opts.profile, seed=opts.seed, batch_size=opts.batch_size)
    robust = battery.robust

    certification = certify_for_run(
        model, x, y, threat=threat, profile=opts.profile, records_dir=records_dir,
        model_id=model_id, dataset=data.name, seed=opts.seed, log=log,
    )

    per_sample = pd.DataFrame({"index": indices, "label": y.tolist(), "clean_correct": clean_correct.tolist()})
    for column, values in battery.columns.items():
        per_sample[column] = values  # None where an attack ran on a subset without this sample
    per_sample["robust"] = robust.tolist()
    atomic_write_text(out / "per_sample.csv", per_sample.to_csv(index=False))

    summary: dict[str, Any] = {
        "defense": defense.name,
        "dataset": data.name,
        "n_test": n_test,
        "clean_accuracy": float(clean_correct.float().mean()),
        **battery.summary_fields(),  # robust_accuracy, attacks, sweeps, flags, battery, detector
        "certification": certification,  # sigma -> randomized-smoothing block (bench.certification)
        "seconds": round(time.perf_counter() - started, 3),
        "threat_model": {"norm": "linf", "eps": eps, "l2_eps": threat.l2, "sigma": threat.sigma},
        "config": defense.config_dict(),
        "surface": model.describe_surface(),
        "model": {
            "card": str(zoo.paths(defense.name, data.name, hash_)[1].relative_to(home)) if entry.card.get("sha256") else None,
            "sha256": entry.card.get("sha256"),
            "reused": entry.reused,
            "train_seconds": entry.card.get("train_seconds"),
        },
        "profile": opts.profile,
        "provenance": provenance(opts.seed, hash_, device=str(device), run_id=out.name),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


def load_summary(path: Path) -> dict[str, Any]:
    return read_json(path)
