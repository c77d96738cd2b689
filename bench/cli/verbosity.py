"""How much a command says on stderr (-v/-q), and how it shows paths.

-q: errors, warnings and the final results only (progress bars off);
default: one line per stage and attack; -v: details too (run directory
and key, model card, reused records, lock files).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from .options import BenchUsageError, echo_err


class StderrLog:
    """A command's log on stderr: -q errors and warnings only, default progress lines, -v details too.

    Called with a message it logs at the normal level; ``detail`` logs only with -v.
    """

    def __init__(self, level: int = 0) -> None:
        self.level = level

    def __call__(self, message: str) -> None:
        if self.level >= 0:
            echo_err(message)

    def detail(self, message: str) -> None:
        if self.level > 0:
            echo_err(message)


def verbosity_options(command: Callable) -> Callable:
    """``-v/--verbose`` and ``-q/--quiet``; the command receives ``verbose`` and ``quiet``."""
    command = click.option("-q", "--quiet", is_flag=True, help="Only errors, warnings and the final results.")(command)
    return click.option("-v", "--verbose", is_flag=True, help="More detail in the log (paths, keys, reuse).")(command)


def make_log(verbose: bool, quiet: bool) -> StderrLog:
    """The command's log; -q also silences progress bars."""
    import os

    if verbose and quiet:
        raise BenchUsageError("-v and -q contradict each other; valid choices: one of them, or neither")
    if quiet:
        os.environ["BENCH_PROGRESS"] = "0"
    return StderrLog(1 if verbose else -1 if quiet else 0)


def display_path(path: Path) -> str:
    """``path`` as the user can paste it: relative to the working directory when inside it, else absolute."""
    absolute = Path(path).absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)
