"""`bench run`: train (or reuse) a defense, or take your own model, attack it, certify it, write results/<run>/summary.json."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .configfile import config_file_option, file_config
from .options import (
    ATTACKS, SIGMA, BenchUsageError, check_defense, check_ray_address, check_sigmas, check_workers, config_option,
    data_dir_option, dataset_option, device_option, eps_option, executor_option, n_test_option, out_option,
    parse_config, profile_option, ray_address_option,
    retrain_option, seed_option,
)
from .verbosity import display_path, make_log, verbosity_options


def _check_defense(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    return None if value is None else check_defense(ctx, param, value)


@click.command()
@config_file_option
@click.option("--defense", default=None, callback=_check_defense,
              help="Registered defense (see `bench defenses`); or --model.")
@click.option("--model", "model_spec", default=None, metavar="MODULE:FACTORY",
              help="Your own model instead of --defense: FACTORY() in MODULE returns a torch.nn.Module.")
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="State dict for --model (torch.save; loaded with weights_only=True).")
@dataset_option
@out_option
@seed_option
@device_option
@eps_option
@config_option
@data_dir_option
@n_test_option
@profile_option
@click.option("--attacks", type=ATTACKS, default=None, metavar="NAME,NAME,...",
              help="Run only these attacks (see `bench attacks`; also `sweep`, `extras`) [default: the whole "
                   "battery]. A reduced battery is flagged and never ranked with full ones.")
@click.option("--certify/--no-certify", default=True, show_default=True, help="Randomized-smoothing certification.")
@click.option("--sigma", "sigmas", type=SIGMA, multiple=True, callback=check_sigmas,
              help="Certification noise std (repeatable) [default: the dataset's, plus the profile's].")
@retrain_option
@executor_option
@ray_address_option
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True,
              help="Points per attack batch (batches are seeded, so results depend on it; also the Ray shard size).")
@click.option("--plan", "plan_only", is_flag=True,
              help="Print the attacks, their points, the certification and a calibrated time estimate; run nothing.")
@click.option("--workers", default="1", show_default=True, callback=check_workers,
              help="With --plan: worker counts to project the wall time for, e.g. 1,8,64.")
@verbosity_options
def run(defense: Optional[str], model_spec: Optional[str], weights: Optional[Path], dataset: str, out: Optional[Path],
        seed: int, device: str, eps: Optional[float], config_items: tuple[str, ...], data_dir: Optional[Path],
        n_test: Optional[int], profile: str, attacks: Optional[tuple[str, ...]], certify: bool,
        sigmas: tuple[float, ...], retrain: bool, executor: str, ray_address: Optional[str], batch_size: int,
        plan_only: bool, workers: tuple[int, ...], verbose: bool, quiet: bool) -> None:
    """Train (or reuse) a defense, or take your own --model; attack it, write results/<run>/summary.json."""
    from ..pipeline import RunOptions, check_outputs, run as run_pipeline
    from ..results import bench_home, check_output_dir
    from .output import summary_table
    from .report import refresh_leaderboards

    log = make_log(verbose, quiet)
    check_ray_address(executor, ray_address)
    if sigmas and not certify:
        raise click.UsageError("--sigma and --no-certify contradict each other; valid choices: one of them")
    if (defense is None) == (model_spec is None):
        raise BenchUsageError("give exactly one of --defense NAME (see `bench defenses`) or --model MODULE:FACTORY")
    home = bench_home()
    check_outputs(home, out)  # before any work: a file or read-only directory fails here, not after training
    check_output_dir(home / "leaderboards", "leaderboards directory ($BENCH_HOME/leaderboards)")
    if model_spec is not None:
        if plan_only or executor != "local":
            raise BenchUsageError("--plan and --executor go with --defense; --model runs here, locally")
        summary = _run_model(model_spec, weights, dataset=dataset, out=out, seed=seed, device=device, eps=eps,
                             n_test=n_test, profile=profile, data_dir=data_dir, extra=(config_items, retrain),
                             attacks=attacks, certify=certify, log=log)
        run_dir = Path(summary["provenance"]["run_id"])
        run_dir = Path(out).resolve() if out is not None else home / "results" / run_dir
    else:
        if weights is not None:
            raise BenchUsageError("--weights goes with --model MODULE:FACTORY, not with --defense")
        base, where = file_config(click.get_current_context())
        config = parse_config(defense, config_items, base=base, where=where)
        opts = RunOptions(defense=defense, dataset=dataset, out=out, seed=seed, device=device, retrain=retrain,
                          eps=eps, config=config, data_dir=data_dir, n_test=n_test, profile=profile,
                          attacks=attacks, certify=certify, sigmas=sigmas or None, executor=executor,
                          ray_address=ray_address, batch_size=batch_size)
        if plan_only:
            from ..planning import plan_run

            click.echo("\n".join(plan_run(opts, workers=workers, log=log).lines()))
            return
        summary = run_pipeline(opts, log=log)
        run_dir = Path(out).resolve() if out is not None else home / "results" / summary["provenance"]["run_id"]
    refresh_leaderboards(home / "results", home / "leaderboards", quiet=True)
    click.echo(summary_table(summary, results=display_path(run_dir / "summary.json")))


def _run_model(spec: str, weights: Optional[Path], *, extra: tuple, eps: Optional[float], log, **kwargs) -> dict:
    """`--model`: the module FACTORY() returns, evaluated by bench.evaluate; bad specs and files exit 2."""
    import os
    import sys

    from ..api import InputError, evaluate_spec

    config_items, retrain = extra
    if config_items or retrain:
        raise BenchUsageError("--config and --retrain go with --defense; --model takes a trained module")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # MODULE may live in the working directory, as with `python -m`
    try:
        summary = evaluate_spec(spec, weights, threat=None if eps is None else {"linf": eps}, log=log, **kwargs)
    except InputError as exc:  # a bad spec, weights file or model: one line, exit 2
        raise BenchUsageError(str(exc)) from None
    return summary.to_dict()
