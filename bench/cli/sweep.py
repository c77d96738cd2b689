"""`bench sweep`: defenses x config values x training seeds, each cell a `bench run`, and an experiment page."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import click

from .options import (
    BenchUsageError, check_ray_address, config_option, data_dir_option, dataset_option, device_option, echo_err,
    eps_option, executor_option, n_test_option, profile_option, ray_address_option, retrain_option,
)


def command_line(spec, params: dict) -> str:
    """The sweep as one canonical `bench sweep` command (what the page prints at its top)."""
    args = ["bench", "sweep", "--defense", ",".join(spec.defenses)]
    for axis in spec.axes:
        args += ["--grid", f"{axis.key}={','.join(axis.texts)}"]
    args += ["--seeds", ",".join(map(str, spec.seeds))]
    for key, value in spec.fixed:
        args += ["--config", f"{key}={value}"]
    args += ["--dataset", params["dataset"], "--profile", params["profile"]]
    optional = [("--n-test", params["n_test"]), ("--eps", params["eps"]), ("--data-dir", params["data_dir"]),
                ("--out", params["out"])]
    args += [a for name, value in optional if value is not None for a in (name, f"{value:g}" if name == "--eps" else str(value))]
    if params["device"] != "auto":
        args += ["--device", params["device"]]
    if params["retrain"]:
        args.append("--retrain")
    if params["name"] is not None:
        args += ["--name", spec.name]
    return shlex.join(args)


@click.command()
@click.option("--defense", "defenses", required=True, metavar="A,B,...",
              help="Registered defenses to compare, comma-separated (see `bench defenses`).")
@click.option("--grid", "grid_items", multiple=True, metavar="KEY=V1,V2,...",
              help="Config values to sweep (repeatable; every combination runs). Each defense must have KEY.")
@click.option("--seeds", default="0", show_default=True, metavar="S1,S2,...", help="Training (and attack) seeds.")
@config_option
@click.option("--name", default=None, help="Experiment name [default: from the defenses and grid keys].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where the experiment page goes [default: $BENCH_HOME/leaderboards/experiments].")
@dataset_option
@profile_option
@n_test_option
@eps_option
@device_option
@data_dir_option
@retrain_option
@executor_option
@ray_address_option
def sweep(defenses: str, grid_items: tuple[str, ...], seeds: str, config_items: tuple[str, ...], name: Optional[str],
          out: Optional[Path], dataset: str, profile: str, n_test: Optional[int], eps: Optional[float], device: str,
          data_dir: Optional[Path], retrain: bool, executor: str, ray_address: Optional[str]) -> None:
    """Run a grid of defenses x config values x seeds (resumable) and write its experiment page."""
    from ..results import bench_home
    from ..sweep import GridError, build_spec
    from ..sweep.cells import Settings, run_sweep
    from ..sweep.page import build_experiment, write_experiment
    from .report import refresh_leaderboards

    check_ray_address(executor, ray_address)
    try:
        spec = build_spec(defenses, grid_items, seeds, config_items, name)
    except GridError as exc:
        raise BenchUsageError(str(exc)) from None
    params = dict(dataset=dataset, profile=profile, n_test=n_test, eps=eps, data_dir=data_dir, out=out, device=device,
                  retrain=retrain, name=name)
    settings = Settings(dataset=dataset, profile=profile, n_test=n_test, eps=eps, device=device, data_dir=data_dir,
                        retrain=retrain, executor=executor, ray_address=ray_address)
    echo_err(f"sweep {spec.name}: {len(spec.cells)} runs")
    runs = run_sweep(spec, settings, echo_err)
    home = bench_home()
    refresh_leaderboards(home / "results", home / "leaderboards", quiet=True)
    experiment = build_experiment(spec, runs, settings, command_line(spec, params))
    for path in write_experiment(experiment, out if out is not None else home / "leaderboards" / "experiments"):
        click.echo(str(path))
