"""`bench run`: train (or reuse) a defense, attack it, certify it, write results/<run>/summary.json."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .options import (
    config_option, data_dir_option, dataset_option, defense_option, device_option, echo_err, eps_option, n_test_option,
    out_option, parse_config, profile_option, retrain_option, seed_option,
)


@click.command()
@defense_option
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
def run(defense: str, dataset: str, out: Optional[Path], seed: int, device: str, eps: Optional[float],
        config_items: tuple[str, ...], data_dir: Optional[Path], n_test: Optional[int], profile: str,
        retrain: bool) -> None:
    """Train (or reuse) a defense, attack it, write results/<run>/summary.json."""
    from ..pipeline import RunOptions, run as run_pipeline
    from ..results import bench_home
    from .output import summary_table
    from .report import refresh_leaderboards

    config = parse_config(defense, config_items)
    opts = RunOptions(defense=defense, dataset=dataset, out=out, seed=seed, device=device, retrain=retrain,
                      eps=eps, config=config, data_dir=data_dir, n_test=n_test, profile=profile)
    summary = run_pipeline(opts, log=echo_err)
    home = bench_home()
    refresh_leaderboards(home / "results", home / "leaderboards", quiet=True)
    click.echo(summary_table(summary))
