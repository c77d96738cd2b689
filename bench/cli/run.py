"""`bench run`: train (or reuse) a defense, attack it, certify it, write results/<run>/summary.json."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .options import (
    check_eps, check_profile, check_ray_address, check_workers, config_option, data_dir_option, dataset_option,
    defense_option, device_option, echo_err, executor_option, out_option, parse_config, ray_address_option,
    retrain_option, seed_option,
)


@click.command()
@defense_option
@dataset_option
@out_option
@seed_option
@device_option
@click.option("--eps", default=None, callback=check_eps, help="Headline L-inf eps [default: the dataset's].")
@config_option
@data_dir_option
@click.option("--n-test", type=click.IntRange(min=1), default=None, help="Evaluate on the first N test points only.")
@click.option("--profile", default="quick", show_default=True, callback=check_profile,
              help="quick (minutes on a CPU) or full (paper settings).")
@retrain_option
@executor_option
@ray_address_option
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True,
              help="Points per attack batch (batches are seeded, so results depend on it; also the Ray shard size).")
@click.option("--plan", "plan_only", is_flag=True,
              help="Print the attacks, their points, the certification and a calibrated time estimate; run nothing.")
@click.option("--workers", default="1", show_default=True, callback=check_workers,
              help="With --plan: worker counts to project the wall time for, e.g. 1,8,64.")
def run(defense: str, dataset: str, out: Optional[Path], seed: int, device: str, eps: Optional[float],
        config_items: tuple[str, ...], data_dir: Optional[Path], n_test: Optional[int], profile: str,
        retrain: bool, executor: str, ray_address: Optional[str], batch_size: int, plan_only: bool,
        workers: tuple[int, ...]) -> None:
    """Train (or reuse) a defense, attack it, write results/<run>/summary.json."""
    from ..pipeline import RunOptions, run as run_pipeline
    from ..results import bench_home
    from .output import summary_table
    from .report import refresh_leaderboards

    check_ray_address(executor, ray_address)
    config = parse_config(defense, config_items)
    opts = RunOptions(defense=defense, dataset=dataset, out=out, seed=seed, device=device, retrain=retrain,
                      eps=eps, config=config, data_dir=data_dir, n_test=n_test, profile=profile,
                      executor=executor, ray_address=ray_address, batch_size=batch_size)
    if plan_only:
        from ..planning import plan_run

        click.echo("\n".join(plan_run(opts, workers=workers, log=echo_err).lines()))
        return
    summary = run_pipeline(opts, log=echo_err)
    home = bench_home()
    refresh_leaderboards(home / "results", home / "leaderboards", quiet=True)
    click.echo(summary_table(summary))
