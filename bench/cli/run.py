"""`bench run`: train (or reuse) a defense, attack it, certify it, write results/<run>/summary.json."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .configfile import config_file_option, file_config
from .options import (
    ATTACKS, COUNT, EPS, SIGMA, check_profile, check_sigmas, config_option, data_dir_option, dataset_option,
    defense_option, device_option, out_option, parse_config, retrain_option, seed_option,
)
from .verbosity import display_path, make_log, verbosity_options


@click.command()
@config_file_option
@defense_option
@dataset_option
@out_option
@seed_option
@device_option
@click.option("--eps", type=EPS, default=None, help="Headline L-inf eps in [0, 1] [default: the dataset's].")
@config_option
@data_dir_option
@click.option("--n-test", type=COUNT, default=None, help="Evaluate on the first N test points only.")
@click.option("--profile", default="quick", show_default=True, callback=check_profile,
              help="quick (minutes on a CPU) or full (paper settings).")
@click.option("--attacks", type=ATTACKS, default=None, metavar="NAME,NAME,...",
              help="Run only these attacks (see `bench attacks`; also `sweep`, `extras`) [default: the whole "
                   "battery]. A reduced battery is flagged and never ranked with full ones.")
@click.option("--certify/--no-certify", default=True, show_default=True, help="Randomized-smoothing certification.")
@click.option("--sigma", "sigmas", type=SIGMA, multiple=True, callback=check_sigmas,
              help="Certification noise std (repeatable) [default: the dataset's, plus the profile's].")
@retrain_option
@verbosity_options
def run(defense: str, dataset: str, out: Optional[Path], seed: int, device: str, eps: Optional[float],
        config_items: tuple[str, ...], data_dir: Optional[Path], n_test: Optional[int], profile: str,
        attacks: Optional[tuple[str, ...]], certify: bool, sigmas: tuple[float, ...], retrain: bool,
        verbose: bool, quiet: bool) -> None:
    """Train (or reuse) a defense, attack it, write results/<run>/summary.json."""
    from ..pipeline import RunOptions, check_outputs, run as run_pipeline
    from ..results import bench_home, check_output_dir
    from .output import summary_table
    from .report import refresh_leaderboards

    log = make_log(verbose, quiet)
    base, where = file_config(click.get_current_context())
    config = parse_config(defense, config_items, base=base, where=where)
    if sigmas and not certify:
        raise click.UsageError("--sigma and --no-certify contradict each other; valid choices: one of them")
    home = bench_home()
    check_outputs(home, out)  # before any work: a file or read-only directory fails here, not after training
    check_output_dir(home / "leaderboards", "leaderboards directory ($BENCH_HOME/leaderboards)")
    opts = RunOptions(defense=defense, dataset=dataset, out=out, seed=seed, device=device, retrain=retrain,
                      eps=eps, config=config, data_dir=data_dir, n_test=n_test, profile=profile,
                      attacks=attacks, certify=certify, sigmas=sigmas or None)
    summary = run_pipeline(opts, log=log)
    refresh_leaderboards(home / "results", home / "leaderboards", quiet=True)
    run_dir = Path(out).resolve() if out is not None else home / "results" / summary["provenance"]["run_id"]
    click.echo(summary_table(summary, results=display_path(run_dir / "summary.json")))
