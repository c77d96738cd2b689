"""`bench defenses`: every registered defense, built-in and plugins, one per line, name first."""
from __future__ import annotations

import click


@click.command()
def defenses() -> None:
    """List registered defenses, built-in and plugins: name, then description."""
    from ..registry import describe_defense, list_defenses

    names = list_defenses()
    width = max(len(n) for n in names) + 2
    for name in names:
        click.echo(f"{name:<{width}}{describe_defense(name)}")
