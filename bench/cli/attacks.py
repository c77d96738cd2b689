"""`bench attacks`: every registered attack of the battery, one per line: name, norm, kind, description."""
from __future__ import annotations

import click


@click.command()
def attacks() -> None:
    """List the battery's attacks (built-in and plugins) in the order they run."""
    from ..attacks.registry import attack_specs

    specs = attack_specs()
    width = max(len(s.name) for s in specs) + 2
    for spec in specs:
        click.echo(f"{spec.name:<{width}}{spec.norm:<6}{spec.kind:<11}{spec.description}")
