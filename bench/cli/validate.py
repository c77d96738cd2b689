"""`bench validate NAME`: check a defense against the contract on a tiny fit; exit 1 if a check fails."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .options import check_dataset, check_defense, check_device, check_seed, config_option, data_dir_option, parse_config


@click.command()
@click.argument("name", callback=check_defense)
@click.option("--dataset", default="mnist5k", show_default=True, callback=check_dataset, help="Dataset to fit and probe on.")
@click.option("--device", default="auto", show_default=True, callback=check_device, help="auto, cpu or cuda.")
@click.option("--seed", default="0", show_default=True, callback=check_seed, help="Seed for the subset and the fit.")
@config_option
@click.option("--n-train", type=click.IntRange(min=1), default=256, show_default=True, help="Training images for the tiny fit.")
@data_dir_option
def validate(name: str, dataset: str, device: str, seed: int, config_items: tuple[str, ...], n_train: int,
             data_dir: Optional[Path]) -> None:
    """Check a defense against the contract on a tiny fit; exit 1 if any check fails."""
    from ..data import load_dataset
    from ..perf import resolve_device
    from ..validate import validate_defense

    config = parse_config(name, config_items)
    checks = validate_defense(name, load_dataset(dataset, data_dir), config=config, n_train=n_train, seed=seed,
                              device=resolve_device(device))
    for check in checks:
        click.echo(check.line())
    failed = [c.name for c in checks if not c.passed]
    click.echo(f"{name}: {'FAILED ' + ', '.join(failed) if failed else 'all ' + str(len(checks)) + ' checks passed'}")
    if failed:
        raise click.exceptions.Exit(1)
