"""The stages of one run, shared by `bench run`, `bench certify` and the Python API.

prepare (defense, data, run directory) -> model (from the zoo, or trained
and cached) -> attacks (the battery) -> certification -> write (summary.json
and per_sample.csv). Each stage reads only what the one before produced.
Attack and certification outcomes are written as records as soon as each
finishes, so an interrupted run resumes where it stopped; ``summary.json``
is written last, atomically.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from .data import DEFAULT_DATASET, Dataset, load_dataset
from .perf import fast_layout, resolve_device, tune_allocator
from .registry import Defense, config_with_seed, create_defense
from .results import bench_home, config_hash
from .schema import ModelEntry
from .zoo import ModelZoo

Log = Callable[[str], None]


@dataclass
class RunOptions:
    """Everything `bench run` takes (the Python API takes the same)."""

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
    attacks: Optional[tuple[str, ...]] = None  # run only these attacks (None: the whole battery)


def run_id(defense: str, dataset: str, hash_: str, seed: int) -> str:
    return f"{dataset}-{defense}-{hash_}-s{seed}"


@dataclass
class Prepared:
    """The first stage's output: the bound defense, the data, where results and models go."""

    defense: Optional[Defense]  # None: a model that did not come from the registry (bench.evaluate)
    data: Dataset
    device: torch.device
    home: Path
    hash: str
    out: Path
    seed: int
    started: float

    @property
    def records_dir(self) -> Path:
        return self.out / "records"


def prepare(defense: str, dataset: str, *, seed: int, device: str, config: dict[str, Any],
            data_dir: Optional[Path], home: Optional[Path], out: Optional[Path]) -> Prepared:
    """Bind the defense's config (the run's seed included), load the data, name the run directory."""
    tune_allocator()
    started = time.perf_counter()
    home_dir = Path(home) if home is not None else bench_home()
    bound = create_defense(defense, **config_with_seed(defense, config, seed))
    data = load_dataset(dataset, data_dir)
    hash_ = config_hash(bound.name, data.name, bound.config_dict())
    out_dir = Path(out) if out is not None else home_dir / "results" / run_id(bound.name, data.name, hash_, seed)
    return Prepared(bound, data, resolve_device(device), home_dir, hash_, out_dir, seed, started)


@dataclass
class LoadedModel:
    """The second stage's output: the deployed model and which weights it is."""

    model: Any  # DefendedModel, eval mode, channels-last
    model_id: str  # sha256 of the weights (what record fingerprints name)
    entry: ModelEntry  # the summary's "model" block


def load_model(p: Prepared, retrain: bool, log: Log) -> LoadedModel:
    """The model from the zoo, or trained and cached there."""
    zoo = ModelZoo(p.home / "models")
    log(f"defense {p.defense.name} ({p.hash}) on {p.data.name}: "
        f"{'training' if retrain else 'loading or training'} on {p.device}")
    entry = zoo.get_or_fit(p.defense, p.data.to(p.device), p.device, retrain=retrain)
    card = entry.card
    log(("reused cached model " if entry.reused else "trained model in ") + (
        f"{card.get('weights')}" if entry.reused else f"{card['train_seconds']:.1f} s"))
    card_path = zoo.paths(p.defense.name, p.data.name, p.hash)[1]
    return LoadedModel(
        model=fast_layout(entry.model).eval(),
        model_id=card.get("sha256") or f"unsaved-{time.time_ns()}",
        entry=ModelEntry(card=str(card_path.relative_to(p.home)) if card.get("sha256") else None,
                         sha256=card.get("sha256"), reused=entry.reused, train_seconds=card.get("train_seconds")),
    )


TRANSFER_SOURCE = "plain"
SOURCE_SEED_OFFSET = 1


def source_seed(run_seed: int) -> int:
    """A seed that is never the run's own, so the transfer source is trained independently."""
    return (int(run_seed) + SOURCE_SEED_OFFSET) % 2**32


def source_config(defense: str, config: dict[str, Any], run_seed: int) -> dict[str, Any]:
    """The source's config: the plain defaults, or, when ``plain`` itself is evaluated, its own
    config (so a quick ``--config epochs=1`` run does not train a full source), always with another seed."""
    chosen = {k: v for k, v in config.items() if k != "seed"} if defense == TRANSFER_SOURCE else {}
    chosen["seed"] = source_seed(run_seed)
    return chosen


def load_transfer_source(p: Prepared, log: Log) -> tuple[Any, str]:
    """The independently trained plain model the transfer attack crafts on (from the zoo); (model, id)."""
    log("transfer source: loading or training an independent plain model")
    name, config = (p.defense.name, p.defense.config_dict()) if p.defense is not None else ("", {})
    source = create_defense(TRANSFER_SOURCE, **source_config(name, config, p.seed))
    entry = ModelZoo(p.home / "models").get_or_fit(source, p.data.to(p.device), p.device)
    model = fast_layout(entry.model).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model, entry.card.get("sha256") or f"unsaved-{source.name}-{source.config_dict()}"


def evaluation_points(p: Prepared, n_test: Optional[int]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The first ``n_test`` test points (all when None) and their indices."""
    n = len(p.data.x_test) if n_test is None else min(n_test, len(p.data.x_test))
    return p.data.x_test[:n], p.data.y_test[:n], list(range(n))


def attack_stage(p: Prepared, loaded: LoadedModel, opts: RunOptions, eps: float, clean_correct: torch.Tensor,
                 log: Log, transfer_source: Any = "registry") -> Any:
    """Plan the battery (``opts.attacks`` of it), run it resuming from records, summarise it (a BatteryReport).
    ``transfer_source``: (model, id), None to skip transfer, or "registry": the plain model on the dataset."""
    from .attacks.execute import run_battery
    from .attacks.plan import plan_battery, select_attacks
    from .attacks.registry import TRANSFER_ATTACK
    from .attacks.summary import summarize_battery

    x, y, indices = evaluation_points(p, opts.n_test)
    if isinstance(transfer_source, str):
        wanted = opts.attacks is None or TRANSFER_ATTACK in opts.attacks
        transfer_source = load_transfer_source(p, log) if wanted else None
    plan = plan_battery(loaded.model, p.data.threat, eps, opts.profile, transfer_source=transfer_source, seed=p.seed)
    plan = select_attacks(plan, opts.attacks)

    def report(outcome: Any, reused: bool) -> None:
        how = "reused from records" if reused else f"{outcome.seconds:.1f} s"
        log(f"  {outcome.name:<16} {outcome.norm:<4} eps={outcome.eps:<6g} n={outcome.n:<5} "
            f"accuracy={outcome.accuracy:.3f} ({how})")

    outcomes = run_battery(loaded.model, x, y, plan, records_dir=p.records_dir, model_id=loaded.model_id,
                           indices=indices, seed=p.seed, batch_size=opts.batch_size, on_outcome=report,
                           clean_correct=clean_correct)
    return summarize_battery(loaded.model, x, y, clean_correct, plan, outcomes, indices=indices, eps=eps,
                             profile=opts.profile, seed=p.seed, batch_size=opts.batch_size)


def certify_stage(p: Prepared, loaded: LoadedModel, x: torch.Tensor, y: torch.Tensor, profile: str,
                  log: Log) -> dict[str, Any]:
    """`bench run`'s randomized-smoothing certification: the profile's sigmas, sample sizes and points."""
    from .certification import certify_for_run

    return certify_for_run(loaded.model, x, y, threat=p.data.threat, profile=profile, records_dir=p.records_dir,
                           model_id=loaded.model_id, dataset=p.data.name, seed=p.seed, log=log)


def write_run(p: Prepared, summary: Any, clean_correct: torch.Tensor, battery: Any, y: torch.Tensor,
              indices: list[int]) -> None:
    """per_sample.csv, then summary.json (last, so a summary always describes finished records)."""
    import pandas as pd

    from .results import atomic_write_json, atomic_write_text

    per_sample = pd.DataFrame({"index": indices, "label": y.tolist(), "clean_correct": clean_correct.tolist()})
    for column, values in battery.columns.items():
        per_sample[column] = values  # None where an attack ran on a subset without this sample
    per_sample["robust"] = battery.robust.tolist()
    atomic_write_text(p.out / "per_sample.csv", per_sample.to_csv(index=False))
    atomic_write_json(p.out / "summary.json", summary.to_dict())


def run(opts: RunOptions, log: Log = print) -> dict[str, Any]:
    """Evaluate one defense end to end; return the summary written to ``summary.json``."""
    import shutil

    from .attacks.profiles import get_profile
    from .training import predict

    get_profile(opts.profile)  # an unknown profile fails before any training
    p = prepare(opts.defense, opts.dataset, seed=opts.seed, device=opts.device, config=opts.config,
                data_dir=opts.data_dir, home=opts.home, out=opts.out)
    if (p.out / "summary.json").exists() and p.records_dir.exists():
        shutil.rmtree(p.records_dir)  # a finished run is rerun from scratch; an interrupted one resumes
    threat = p.data.threat
    eps = threat.linf if opts.eps is None else float(opts.eps)
    loaded = load_model(p, opts.retrain, log)
    x, y, indices = evaluation_points(p, opts.n_test)
    clean_correct = predict(loaded.model, x, opts.batch_size) == y.cpu()
    battery = attack_stage(p, loaded, opts, eps, clean_correct, log)
    certification = certify_stage(p, loaded, x, y, opts.profile, log)
    summary = run_summary(p, loaded, name=p.defense.name, config=p.defense.config_dict(), eps=eps, profile=opts.profile,
                          clean_correct=clean_correct, battery=battery, certification=certification)
    write_run(p, summary, clean_correct, battery, y, indices)
    return summary.to_dict()


def run_summary(p: Prepared, loaded: LoadedModel, *, name: str, config: dict[str, Any], eps: float, profile: str,
                clean_correct: torch.Tensor, battery: Any, certification: Optional[dict[str, Any]],
                notes: Optional[list[str]] = None) -> Any:
    """The run's ``Summary`` from the stages' outputs (registry defenses and `bench.evaluate` alike)."""
    from .attacks.summary import interval
    from .results import provenance
    from .schema import Summary, ThreatModelEntry

    threat = p.data.threat
    return Summary(
        defense=name, dataset=p.data.name, n_test=len(clean_correct),
        clean_accuracy=float(clean_correct.float().mean()), clean_accuracy_interval=interval(clean_correct),
        robust_accuracy=battery.robust_accuracy, robust_accuracy_interval=battery.robust_interval,
        robust_accuracy_by_norm=battery.robust_by_norm, attacks=battery.attacks, sweeps=battery.sweeps,
        flags=battery.flags, battery=battery.battery, detector=battery.detector,
        certification=certification,  # sigma -> randomized-smoothing block (bench.certification)
        seconds=round(time.perf_counter() - p.started, 3),
        threat_model=ThreatModelEntry(norm="linf", eps=eps, l2_eps=threat.l2, sigma=threat.sigma),
        config=config, surface=loaded.model.describe_surface(), model=loaded.entry,
        profile=profile, notes=notes or None,
        provenance=provenance(p.seed, p.hash, device=str(p.device), run_id=p.out.name),
    )


@dataclass
class CertifyOptions:
    """Everything `bench certify` takes: certification alone, into the run's directory."""

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


def certify_defense(opts: CertifyOptions, log: Log = print) -> dict[str, Any]:
    """Certify one defense at each requested sigma; merge into (or start) the run's ``summary.json``.

    The model and run directory are exactly `bench run`'s, so certifying
    after, before or between runs never loses results (one key per sigma).
    """
    from .certification import certify_sigmas, get_profile as certify_profile, spread_indices
    from .results import atomic_write_json, provenance, read_json
    from .schema import Summary

    prof = certify_profile(opts.profile)
    p = prepare(opts.defense, opts.dataset, seed=opts.seed, device=opts.device, config=opts.config,
                data_dir=opts.data_dir, home=opts.home, out=opts.out)
    loaded = load_model(p, opts.retrain, log)
    x, y = p.data.x_test, p.data.y_test
    blocks = certify_sigmas(
        loaded.model, x, y, sigmas=opts.sigmas,
        indices=spread_indices(len(x), opts.n_test if opts.n_test is not None else prof.points),
        n0=opts.n0 if opts.n0 is not None else prof.n0, n=opts.n if opts.n is not None else prof.n,
        alpha=opts.alpha if opts.alpha is not None else prof.alpha, records_dir=p.records_dir,
        model_id=loaded.model_id, dataset=p.data.name, seed=p.seed, clamp=opts.clamp, profile=opts.profile, log=log,
    )
    path = p.out / "summary.json"
    if path.exists():
        summary = read_json(path)
        summary["certification"] = {**(summary.get("certification") or {}), **{k: b.to_dict() for k, b in blocks.items()}}
    else:
        summary = Summary(
            defense=p.defense.name, dataset=p.data.name, certification=blocks, config=p.defense.config_dict(),
            surface=loaded.model.describe_surface(), model=loaded.entry, profile=opts.profile,
            seconds=round(time.perf_counter() - p.started, 3),
            provenance=provenance(p.seed, p.hash, device=str(p.device), run_id=p.out.name),
        ).to_dict()
    atomic_write_json(path, summary)
    return summary
