"""`bench run`: train (or reuse) a defense, or take your own model, attack it, certify it, write results/<run>/summary.json."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .options import (
    BenchUsageError, check_defense, config_option, data_dir_option, dataset_option, device_option, echo_err,
    eps_option, n_test_option, out_option, parse_config, profile_option, retrain_option, seed_option,
)


def _check_defense(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    return None if value is None else check_defense(ctx, param, value)


@click.command()
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
@retrain_option
def run(defense: Optional[str], model_spec: Optional[str], weights: Optional[Path], dataset: str, out: Optional[Path],
        seed: int, device: str, eps: Optional[float], config_items: tuple[str, ...], data_dir: Optional[Path],
        n_test: Optional[int], profile: str, retrain: bool) -> None:
    """Train (or reuse) a defense, or take your own --model; attack it, write results/<run>/summary.json."""
    from ..pipeline import RunOptions, run as run_pipeline
    from ..results import bench_home
    from .output import summary_table
    from .report import refresh_leaderboards

    if (defense is None) == (model_spec is None):
        raise BenchUsageError("give exactly one of --defense NAME (see `bench defenses`) or --model MODULE:FACTORY")
    if model_spec is not None:
        summary = _run_model(model_spec, weights, dataset=dataset, out=out, seed=seed, device=device, eps=eps,
                             n_test=n_test, profile=profile, data_dir=data_dir, extra=(config_items, retrain))
    else:
        if weights is not None:
            raise BenchUsageError("--weights goes with --model MODULE:FACTORY, not with --defense")
        config = parse_config(defense, config_items)
        opts = RunOptions(defense=defense, dataset=dataset, out=out, seed=seed, device=device, retrain=retrain,
                          eps=eps, config=config, data_dir=data_dir, n_test=n_test, profile=profile)
        summary = run_pipeline(opts, log=echo_err)
    home = bench_home()
    refresh_leaderboards(home / "results", home / "leaderboards", quiet=True)
    click.echo(summary_table(summary))


def _run_model(spec: str, weights: Optional[Path], *, extra: tuple, eps: Optional[float], **kwargs) -> dict:
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
        summary = evaluate_spec(spec, weights, threat=None if eps is None else {"linf": eps}, log=echo_err, **kwargs)
    except InputError as exc:  # a bad spec, weights file or model: one line, exit 2
        raise BenchUsageError(str(exc)) from None
    return summary.to_dict()
