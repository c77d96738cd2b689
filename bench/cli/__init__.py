"""The `bench` command: one module per subcommand, loaded when it is called; parsing and errors only.

Bad input exits with status 2 and one line naming the bad value and the
valid choices; a failed `bench validate` check exits 1; Ctrl-C exits 130
and leaves only whole files behind. Logs go to stderr, results to stdout.
`bench --help` and `bench defenses` load no torch.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Optional

import click

# name -> "module:command"; a command's module is imported only to run or describe it
COMMANDS = {
    "attacks": "bench.cli.attacks:attacks",
    "certify": "bench.cli.certify:certify",
    "defenses": "bench.cli.defenses:defenses",
    "report": "bench.cli.report:report",
    "run": "bench.cli.run:run",
    "sweep": "bench.cli.sweep:sweep",
    "validate": "bench.cli.validate:validate",
}


class LazyGroup(click.Group):
    """A click group whose subcommands live in their own modules (as rasterio's `rio` does)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[name].partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bench")
def main() -> None:
    """bench: how robust is a defense, honestly and fast."""


def _usage_errors() -> tuple[type, ...]:
    """Exceptions that mean bad input (exit 2): loaded lazily, with the modules that raise them."""
    from ..config import DefenseConfigError
    from ..data import DatasetError, DatasetUnavailableError
    from ..registry import RegistryError

    errors: list[type] = [DefenseConfigError, DatasetError, DatasetUnavailableError, RegistryError]
    zoo = sys.modules.get("bench.zoo")
    if zoo is not None:
        errors.append(zoo.TamperedWeightsError)
    return tuple(errors)


def _fail(message: str, status: int) -> None:
    click.echo(f"bench: error: {message}", err=True)
    sys.exit(status)


def cli(argv: Optional[list[str]] = None) -> Any:
    """Console entry point: turns errors into one line and the right exit status."""
    interrupted = "bench: interrupted; finished work is kept and a rerun resumes"
    try:
        status = main.main(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        _fail(exc.format_message(), 2)
    except (click.Abort, KeyboardInterrupt):
        click.echo(interrupted, err=True)
        sys.exit(130)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except Exception as exc:
        if isinstance(exc, _usage_errors()):
            _fail(str(exc), 2)
        raise
    if isinstance(status, int) and status:
        sys.exit(status)  # click returns (rather than raises) a command's Exit(n) when not standalone


if __name__ == "__main__":
    cli()
