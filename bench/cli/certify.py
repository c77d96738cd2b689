"""`bench certify`: randomized-smoothing certification alone, merged into the run's summary.json."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .options import (
    ALPHA, COUNT, SIGMA, check_certify_profile, check_ray_address, check_sigmas, config_option, data_dir_option,
    dataset_option, defense_option, device_option, executor_option, out_option, parse_config, ray_address_option,
    retrain_option, seed_option,
)
from .verbosity import display_path, make_log, verbosity_options


@click.command()
@defense_option
@click.option("--sigma", "sigmas", type=SIGMA, required=True, multiple=True, callback=check_sigmas,
              help="Gaussian noise std (repeatable), e.g. 0.25.")
@click.option("--n", type=COUNT, default=None, help="Estimation samples per point [default: the profile's].")
@click.option("--n0", type=COUNT, default=None, help="Selection samples per point [default: the profile's].")
@click.option("--alpha", type=ALPHA, default=None, help="Failure probability of each certificate [default: 0.001].")
@dataset_option
@click.option("--n-test", type=COUNT, default=None,
              help="Certify N test points spread evenly over the test set [default: the profile's].")
@click.option("--profile", default="quick", show_default=True, callback=check_certify_profile,
              help="quick (n=1,000, 100 points) or full (Cohen et al.: n=100,000, 500 points).")
@seed_option
@device_option
@out_option
@config_option
@data_dir_option
@click.option("--clamp", is_flag=True, help="Clamp noisy inputs to [0, 1] (default: no clamping, as Cohen et al.).")
@retrain_option
@executor_option
@ray_address_option
@verbosity_options
def certify(defense: str, sigmas: tuple[float, ...], n: Optional[int], n0: Optional[int], alpha: Optional[float],
            dataset: str, n_test: Optional[int], profile: str, seed: int, device: str, out: Optional[Path],
            config_items: tuple[str, ...], data_dir: Optional[Path], clamp: bool, retrain: bool, executor: str,
            ray_address: Optional[str], verbose: bool, quiet: bool) -> None:
    """Randomized-smoothing certification alone (Cohen et al. 2019); merges into the run's summary.json."""
    from ..pipeline import CertifyOptions, certify_defense
    from ..results import bench_home
    from .output import certification_lines

    check_ray_address(executor, ray_address)
    log = make_log(verbose, quiet)
    config = parse_config(defense, config_items)
    opts = CertifyOptions(defense=defense, sigmas=sigmas, dataset=dataset, n=n, n0=n0, alpha=alpha, n_test=n_test,
                          profile=profile, seed=seed, device=device, out=out, config=config, data_dir=data_dir,
                          retrain=retrain, clamp=clamp, executor=executor, ray_address=ray_address)
    summary = certify_defense(opts, log=log)
    lines = [f"{summary['defense']} on {summary['dataset']}: randomized smoothing"]
    lines += certification_lines(summary, only=sigmas)
    run_dir = Path(out).resolve() if out is not None else bench_home() / "results" / summary["provenance"]["run_id"]
    lines.append(f"  results: {display_path(run_dir / 'summary.json')}")
    click.echo("\n".join(lines))
