"""The first stages of every run: bind the defense, check the outputs, load the data, name the run,
hold its directory, and load (or train and cache) the model and the transfer source.

``prepare`` binds the defense's config (the run's seed included; a bad
value fails here, before any work), checks that the output locations are
writable directories, loads the data and names the run directory by
everything that changes its numbers (``bench.runkey``). ``writing`` holds
the run directory's lock and hands out the directory to write into: the run
directory itself, or on a rerun of a finished run a staging sibling that
replaces it only once the new summary exists (``bench.rundir``).
``load_model`` gets the weights from the zoo (trained under the entry's
lock when missing). ``bench.pipeline`` runs the stages after these.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch

from .data import Dataset, load_dataset
from .perf import fast_layout, resolve_device, tune_allocator
from .registry import Defense, config_with_seed, create_defense
from .results import bench_home, check_output_dir, config_hash
from .rundir import lock_path, locked, staged
from .runkey import run_id as _run_id, run_key
from .schema import ModelEntry
from .zoo import ModelZoo

Log = Callable[[str], None]
Evaluation = Callable[[Dataset], dict[str, Any]]


def run_id(defense: str, dataset: str, hash_: str, seed: int, evaluation: Optional[dict[str, Any]] = None) -> str:
    """The run directory's name: ``<dataset>-<defense>-<config hash>-s<seed>-e<evaluation hash>``."""
    return _run_id(defense, dataset, hash_, seed, evaluation)


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
    evaluation: Optional[dict[str, Any]] = None  # what the run is evaluated on (bench.runkey)
    run_key: Optional[str] = None
    work: Optional[Path] = None  # where this process writes: ``out``, or its staging sibling on a rerun

    @property
    def records_dir(self) -> Path:
        return (self.work or self.out) / "records"


def check_outputs(home: Path, out: Optional[Path]) -> None:
    """Where models and results go must be (or become) writable directories: checked before any work."""
    check_output_dir(home / "models", "model zoo directory ($BENCH_HOME/models)")
    if out is None:
        check_output_dir(home / "results", "results directory ($BENCH_HOME/results)")
    else:
        check_output_dir(out, "--out")


def prepare(defense: str, dataset: str, *, seed: int, device: str, config: dict[str, Any],
            data_dir: Optional[Path], home: Optional[Path], out: Optional[Path],
            evaluation: Optional[Evaluation] = None) -> Prepared:
    """Bind the defense's config (the run's seed included), check the outputs, load the data, name the run."""
    tune_allocator()
    started = time.perf_counter()
    home_dir = Path(home) if home is not None else bench_home()
    bound = create_defense(defense, **config_with_seed(defense, config, seed))
    check_outputs(home_dir, None if out is None else Path(out))
    data = load_dataset(dataset, data_dir)
    hash_ = config_hash(bound.name, data.name, bound.config_dict())
    ev = evaluation(data) if evaluation is not None else None
    name = run_id(bound.name, data.name, hash_, seed, ev)
    out_dir = Path(out).resolve() if out is not None else home_dir / "results" / name
    key = None if ev is None else run_key(dataset=data.name, defense=bound.name, config_hash=hash_, seed=seed,
                                          evaluation=ev)
    return Prepared(bound, data, resolve_device(device), home_dir, hash_, out_dir, seed, started, ev, key)


@contextlib.contextmanager
def writing(p: Prepared, log: Log) -> Iterator[Path]:
    """Hold the run directory's lock and give the directory to write into (``p.work``)."""
    detail(log, f"run directory {p.out} (run key {p.run_key}; evaluation {p.evaluation})")
    with locked(lock_path(p.out), f"writing {p.out.name}", log), staged(p.out) as work:
        if work != p.out:
            detail(log, f"rerun of a finished run: writing into {work}; the old results stay until the new summary "
                        "is written (records whose fingerprint matches are reused)")
        p.work = work
        yield work


def detail(log: Log, message: str) -> None:
    """A line only -v shows (when ``log`` is the CLI's StderrLog; other logs never show it)."""
    more = getattr(log, "detail", None)
    if more is not None:
        more(message)


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
    entry = zoo.get_or_fit(p.defense, p.data.to(p.device), p.device, retrain=retrain, log=log)
    card = entry.card
    log(("reused cached model " if entry.reused else "trained model in ") + (
        f"{card.get('weights')}" if entry.reused else f"{card['train_seconds']:.1f} s"))
    card_path = zoo.paths(p.defense.name, p.data.name, p.hash)[1]
    detail(log, f"model card {card_path} (weights sha256 {card.get('sha256')})")
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
    entry = ModelZoo(p.home / "models").get_or_fit(source, p.data.to(p.device), p.device, log=log)
    model = fast_layout(entry.model).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model, entry.card.get("sha256") or f"unsaved-{source.name}-{source.config_dict()}"


def evaluation_points(p: Prepared, n_test: Optional[int]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The first ``n_test`` test points (all when None) and their indices."""
    n = len(p.data.x_test) if n_test is None else min(n_test, len(p.data.x_test))
    return p.data.x_test[:n], p.data.y_test[:n], list(range(n))
