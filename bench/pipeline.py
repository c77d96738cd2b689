"""The stages of one run, shared by `bench run`, `bench certify` and the Python API.

prepare (defense, data, run directory) -> model (from the zoo, or trained
and cached) -> attacks (the battery) -> certification -> write (summary.json
and per_sample.csv). Each stage reads only what the one before produced
(the first ones, up to the model, live in ``bench.runsetup``).
Attack and certification outcomes are written as records as soon as each
finishes, so an interrupted run resumes where it stopped; ``summary.json``
is written last, atomically.

A run directory is named by everything that changes its numbers
(``bench.runkey``), is written under a lock (a second process of the same
run waits), and a rerun of a finished run replaces it only once the new
summary exists (``bench.rundir``). Output locations are checked before any
work.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from .data import DEFAULT_DATASET
from .runsetup import (  # noqa: F401  (the first stages; re-exported, `bench.pipeline` is where runs start)
    TRANSFER_SOURCE, Evaluation, LoadedModel, Log, Prepared, check_outputs, evaluation_points, load_model,
    load_transfer_source, prepare, run_id, source_config, source_seed, writing,
)


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
    attacks: Optional[tuple[str, ...]] = None  # registry names (plus "sweep", "extras"); None: the whole battery
    certify: bool = True  # randomized-smoothing certification
    sigmas: Optional[tuple[float, ...]] = None  # certification sigmas (None: the profile's)
    executor: str = "local"  # where attacks and certification run: local, or ray (bench.executors)
    ray_address: Optional[str] = None  # ray: a cluster's address (None: RAY_ADDRESS, else a local cluster)


def attack_stage(p: Prepared, loaded: LoadedModel, opts: RunOptions, eps: float, clean_correct: torch.Tensor,
                 log: Log, transfer_source: Any = "registry", executor: Any = None) -> Any:
    """Plan the battery (``opts.attacks`` of it), run it resuming from records, summarise it (a BatteryReport).

    ``transfer_source``: (model, id), None to skip transfer, or "registry": the plain model on the dataset.
    """
    from .attacks.execute import run_battery
    from .attacks.plan import plan_battery
    from .attacks.registry import TRANSFER_ATTACK, attack_names
    from .attacks.summary import summarize_battery
    from .runspec import check_attack_selection, reduced_battery_flag
    from .schema import Flag

    x, y, indices = evaluation_points(p, opts.n_test)
    only = check_attack_selection(opts.attacks)
    if isinstance(transfer_source, str):
        wanted = only is None or TRANSFER_ATTACK in only
        transfer_source = load_transfer_source(p, log) if wanted else None
    plan = plan_battery(loaded.model, p.data.threat, eps, opts.profile, transfer_source=transfer_source, seed=p.seed,
                        only=only)

    def report(outcome: Any, reused: bool) -> None:
        how = "reused from records" if reused else f"{outcome.seconds:.1f} s"
        log(f"  {outcome.name:<16} {outcome.norm:<4} eps={outcome.eps:<6g} n={outcome.n:<5} "
            f"accuracy={outcome.accuracy:.3f} ({how})")

    outcomes = run_battery(loaded.model, x, y, plan, records_dir=p.records_dir, model_id=loaded.model_id,
                           indices=indices, seed=p.seed, batch_size=opts.batch_size, on_outcome=report,
                           clean_correct=clean_correct, executor=executor)
    battery = summarize_battery(loaded.model, x, y, clean_correct, plan, outcomes, indices=indices, eps=eps,
                                profile=opts.profile, seed=p.seed, batch_size=opts.batch_size)
    if only is not None:  # not masking evidence; the leaderboard ranks reduced runs apart from full ones
        battery.flags.append(Flag("reduced-battery", "note", reduced_battery_flag(only, len(attack_names()))))
    return battery


def certify_stage(p: Prepared, loaded: LoadedModel, x: torch.Tensor, y: torch.Tensor, profile: str,
                  log: Log, sigmas: Optional[tuple[float, ...]] = None, executor: Any = None) -> dict[str, Any]:
    """`bench run`'s randomized-smoothing certification: the profile's sigmas (or ``sigmas``), sample sizes, points."""
    from .certification import certify_for_run

    return certify_for_run(loaded.model, x, y, threat=p.data.threat, profile=profile, records_dir=p.records_dir,
                           model_id=loaded.model_id, dataset=p.data.name, seed=p.seed, log=log, sigmas=sigmas,
                           executor=executor)


def write_run(p: Prepared, summary: Any, clean_correct: torch.Tensor, battery: Any, y: torch.Tensor,
              indices: list[int], extras: Any = None) -> None:
    """per_sample.csv, then summary.json (last, so a summary always describes finished records)."""
    import pandas as pd

    from .results import atomic_write_json, atomic_write_text

    where = p.work or p.out
    per_sample = pd.DataFrame({"index": indices, "label": y.tolist(), "clean_correct": clean_correct.tolist()})
    for column, values in battery.columns.items():
        per_sample[column] = values  # None where an attack ran on a subset without this sample
    per_sample["robust"] = battery.robust.tolist()
    for column, values in (extras.columns.items() if extras is not None else ()):
        per_sample[column] = values  # bench.extrastages: e.g. each point's deterministic certified radius
    atomic_write_text(where / "per_sample.csv", per_sample.to_csv(index=False))
    atomic_write_json(where / "summary.json", summary.to_dict())


def run(opts: RunOptions, log: Log = print) -> dict[str, Any]:
    """Evaluate one defense end to end; return the summary written to ``summary.json``."""
    from .attacks.profiles import get_profile
    from .runspec import check_attack_selection, run_evaluation_for

    get_profile(opts.profile)  # an unknown profile or attack fails before any training
    check_attack_selection(opts.attacks)
    p = prepare(opts.defense, opts.dataset, seed=opts.seed, device=opts.device, config=opts.config,
                data_dir=opts.data_dir, home=opts.home, out=opts.out,
                evaluation=lambda data: run_evaluation_for(opts, data))
    with writing(p, log):
        return _evaluate(p, opts, log)


def _evaluate(p: Prepared, opts: RunOptions, log: Log) -> dict[str, Any]:
    """The model, the battery, certification and the summary, written into ``p.work``."""
    from .executors import open_executor
    from .extrastages import extra_stages
    from .runspec import options_record
    from .training import predict

    eps = p.data.threat.linf if opts.eps is None else float(opts.eps)
    loaded = load_model(p, opts.retrain, log)
    x, y, indices = evaluation_points(p, opts.n_test)
    clean_correct = predict(loaded.model, x, opts.batch_size) == y.cpu()
    with open_executor(opts.executor, address=opts.ray_address, device=opts.device) as executor:
        battery = attack_stage(p, loaded, opts, eps, clean_correct, log, executor=executor)
        certification = (certify_stage(p, loaded, x, y, opts.profile, log, opts.sigmas, executor=executor)
                         if opts.certify else None)
    extras = extra_stages(loaded, x, y, eps=eps, l2=p.data.threat.l2, profile=opts.profile, certify=opts.certify,
                          battery=battery, clean_correct=clean_correct, batch_size=opts.batch_size, log=log)
    summary = run_summary(p, loaded, name=p.defense.name, config=p.defense.config_dict(), eps=eps,
                          profile=opts.profile, clean_correct=clean_correct, battery=battery,
                          certification=certification, options=options_record(opts), extras=extras)
    write_run(p, summary, clean_correct, battery, y, indices, extras)
    return summary.to_dict()


def run_summary(p: Prepared, loaded: LoadedModel, *, name: str, config: dict[str, Any], eps: float, profile: str,
                clean_correct: torch.Tensor, battery: Any, certification: Optional[dict[str, Any]],
                notes: Optional[list[str]] = None, options: Optional[dict[str, Any]] = None,
                extras: Any = None) -> Any:
    """The run's ``Summary`` from the stages' outputs (registry defenses and `bench.evaluate` alike).

    ``extras``: ``bench.extrastages.Extras`` (deterministic certificates, representation vulnerability)."""
    from .extrastages import Extras
    from .attacks.summary import interval
    from .results import provenance
    from .schema import Summary, ThreatModelEntry

    threat, extras = p.data.threat, extras or Extras()
    return Summary(
        defense=name, dataset=p.data.name, n_test=len(clean_correct),
        clean_accuracy=float(clean_correct.float().mean()), clean_accuracy_interval=interval(clean_correct),
        robust_accuracy=battery.robust_accuracy, robust_accuracy_interval=battery.robust_interval,
        robust_accuracy_by_norm=battery.robust_by_norm, attacks=battery.attacks, sweeps=battery.sweeps,
        flags=battery.flags + extras.flags, battery=battery.battery, detector=battery.detector,
        certification=certification,  # sigma -> randomized-smoothing block (bench.certification)
        seconds=round(time.perf_counter() - p.started, 3),
        threat_model=ThreatModelEntry(norm="linf", eps=eps, l2_eps=threat.l2, sigma=threat.sigma),
        config=config, surface=loaded.model.describe_surface(), model=loaded.entry, profile=profile,
        notes=notes or None, provenance=provenance(p.seed, p.hash, device=str(p.device), run_id=p.out.name),
        evaluation=p.evaluation, run_key=p.run_key, options=options,
        deterministic_certification=extras.deterministic, representation_vulnerability=extras.representation,
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
    executor: str = "local"
    ray_address: Optional[str] = None
    home: Optional[Path] = None


def certify_defense(opts: CertifyOptions, log: Log = print) -> dict[str, Any]:
    """Certify one defense at each requested sigma into its own run directory (or ``--out``'s, merging).

    The directory is keyed by the certification settings (not the sigmas):
    certifying another sigma with the same settings adds a block to the
    same summary; a summary already in the directory keeps everything else.
    """
    from .certification import get_profile as certify_profile
    from .runspec import certify_evaluation_for

    prof = certify_profile(opts.profile)
    p = prepare(opts.defense, opts.dataset, seed=opts.seed, device=opts.device, config=opts.config,
                data_dir=opts.data_dir, home=opts.home, out=opts.out,
                evaluation=lambda data: certify_evaluation_for(opts, data, prof))
    with writing(p, log) as work:
        return _certify_into(p, opts, prof, work, log)


def _previous_summary(path: Path) -> Optional[dict[str, Any]]:
    """The summary a certification merges into (None: there is none); a damaged one is an error naming it."""
    from .errors import DamagedFileError
    from .results import read_json

    if not path.exists():
        return None
    remedy = "move it away (its records are reused) and rerun"
    summary = read_json(path, remedy=remedy)
    if not isinstance(summary, dict) or not isinstance(summary.get("certification", {}), (dict, type(None))):
        raise DamagedFileError(path, "not a bench summary (a JSON object)", remedy)
    return summary


def _certify_into(p: Prepared, opts: CertifyOptions, prof: Any, work: Path, log: Log) -> dict[str, Any]:
    from .certification import certify_sigmas, spread_indices
    from .executors import open_executor
    from .results import atomic_write_json, provenance
    from .runspec import options_record, resolved
    from .schema import Summary

    previous = _previous_summary(p.out / "summary.json")  # read before any work
    loaded = load_model(p, opts.retrain, log)
    x, y = p.data.x_test, p.data.y_test
    with open_executor(opts.executor, address=opts.ray_address, device=opts.device) as executor:
        blocks = certify_sigmas(
            loaded.model, x, y, sigmas=opts.sigmas, indices=spread_indices(len(x), resolved(opts.n_test, prof.points)),
            n0=resolved(opts.n0, prof.n0), n=resolved(opts.n, prof.n), alpha=resolved(opts.alpha, prof.alpha),
            records_dir=p.records_dir, model_id=loaded.model_id, dataset=p.data.name, seed=p.seed, clamp=opts.clamp,
            profile=opts.profile, log=log, executor=executor,
        )
    if previous is not None:
        summary = previous
        summary["certification"] = {**(summary.get("certification") or {}), **{k: b.to_dict() for k, b in blocks.items()}}
    else:
        summary = Summary(
            defense=p.defense.name, dataset=p.data.name, certification=blocks, config=p.defense.config_dict(),
            surface=loaded.model.describe_surface(), model=loaded.entry, profile=opts.profile,
            seconds=round(time.perf_counter() - p.started, 3),
            provenance=provenance(p.seed, p.hash, device=str(p.device), run_id=p.out.name),
            evaluation=p.evaluation, run_key=p.run_key, options=options_record(opts),
        ).to_dict()
    atomic_write_json(work / "summary.json", summary)
    return summary
