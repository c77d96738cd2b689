"""The `bench` command: one module per subcommand, loaded when it is called; parsing and errors only.

Bad input (a value, an output path, a damaged or hostile file) exits with
status 2 and one line naming the bad value or file and the valid choices or
remedy; an environment failure (disk full, permissions) exits 1 with one
line; a failed `bench validate` check exits 1; Ctrl-C exits 130 and SIGTERM
143, both with the same line, leaving only whole files behind (SIGTERM is
turned into the same KeyboardInterrupt, so every flush-on-exit path runs).
Warnings of bench are one line each. Logs go to stderr, results to stdout.
`bench --help` and `bench defenses` load no torch.
"""
from __future__ import annotations

import contextlib
import importlib
import signal
import sys
import warnings
from typing import Any, Iterator, Optional

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
    from ..errors import BadOptionError, DamagedFileError, OutputPathError
    from ..registry import RegistryError

    errors: list[type] = [DefenseConfigError, DatasetError, DatasetUnavailableError, RegistryError, DamagedFileError,
                          OutputPathError, BadOptionError]
    zoo = sys.modules.get("bench.zoo")
    if zoo is not None:
        errors.append(zoo.TamperedWeightsError)
    return tuple(errors)


def _fail(message: str, status: int) -> None:
    click.echo(f"bench: error: {message}", err=True)
    sys.exit(status)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[dict[str, bool]]:
    """While the command runs, SIGTERM raises KeyboardInterrupt (so records flush as on Ctrl-C)."""
    received = {"term": False}

    def handler(signum: int, frame: Any) -> None:
        received["term"] = True
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """bench's own warnings (damaged records recomputed, plugins skipped) as ``bench: warning: ...`` lines."""
    from ..errors import BenchWarning

    with warnings.catch_warnings():
        original = warnings.showwarning

        def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
            text = str(message)
            if issubclass(category, BenchWarning) or text.startswith("bench: "):
                click.echo("bench: warning: " + text.removeprefix("bench: "), err=True)
            else:
                original(message, category, filename, lineno, file, line)

        warnings.simplefilter("always", BenchWarning)
        warnings.showwarning = show
        yield


def cli(argv: Optional[list[str]] = None) -> Any:
    """Console entry point: turns errors into one line and the right exit status."""
    interrupted = "bench: interrupted; finished work is kept and a rerun resumes"
    with _sigterm_as_interrupt() as received, _one_line_warnings():
        try:
            status = main.main(args=argv, standalone_mode=False)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            _fail(exc.format_message(), 2)
        except (click.Abort, KeyboardInterrupt):
            click.echo(interrupted, err=True)
            sys.exit(143 if received["term"] else 130)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except Exception as exc:
            _fail_on_known(exc)
            raise
    if isinstance(status, int) and status:
        sys.exit(status)  # click returns (rather than raises) a command's Exit(n) when not standalone


def _fail_on_known(exc: Exception) -> None:
    """Exit with one line for bad input (2) and environment failures (1); return for bugs (a traceback)."""
    from ..errors import StorageError, TrainingDivergedError, environment_error
    from ..executors import ClusterUnavailable, ShardFailed

    if isinstance(exc, _usage_errors()):
        _fail(str(exc), 2)
    if isinstance(exc, (ShardFailed, ClusterUnavailable, TrainingDivergedError)):
        _fail(str(exc), 1)
    env = environment_error(exc)
    if env is not None:
        if isinstance(env, StorageError):
            _fail(str(env), 1)
        where = f"{env.filename}: " if env.filename else ""
        _fail(f"{where}{env.strerror or env}; check the permissions and free space, then rerun (it resumes)", 1)


if __name__ == "__main__":
    cli()
