"""`bench report`: leaderboards (Markdown, CSV, HTML, plots) from every results/<run>/summary.json."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Optional

import click

from .options import BenchUsageError, echo_err


def refresh_leaderboards(results: Path, out: Path, quiet: bool = False) -> list[Path]:
    """Run the reporter (one at a time per results directory); its warnings go to stderr, one line each."""
    from ..report import write_report

    with _lock_if_possible(Path(results) / ".leaderboards.lock", f"writing the leaderboards in {out}"):
        report = write_report(results, out)
    for warning in report.warnings:
        echo_err(f"bench: warning: {warning}")
    if not quiet:
        echo_err(f"{len(report.boards)} leaderboard(s), {len(report.files)} file(s) in {out}")
    return report.files


@contextlib.contextmanager
def _lock_if_possible(path: Path, what: str) -> Iterator[None]:
    """Two runs finishing together write the leaderboards one after the other (no lock in a read-only results/)."""
    from ..rundir import locked

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(locked(path, what, echo_err))
    except OSError:
        pass
    with stack:
        yield


@click.command()
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=None,
              help="Directory holding <run>/summary.json [default: $BENCH_HOME/results].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where the leaderboards go [default: $BENCH_HOME/leaderboards].")
def report(results_dir: Optional[Path], out: Optional[Path]) -> None:
    """Write leaderboards (Markdown, CSV, HTML, plots) from every summary.json; prints the files written."""
    from ..results import bench_home

    results_dir = results_dir if results_dir is not None else bench_home() / "results"
    out = out if out is not None else bench_home() / "leaderboards"
    if not results_dir.is_dir():
        raise BenchUsageError(f"results directory {str(results_dir)!r} does not exist; valid choices: "
                              "a directory holding <run>/summary.json (written by `bench run`)")
    from ..results import check_output_dir

    check_output_dir(out, "--out")
    for path in refresh_leaderboards(results_dir, out):
        click.echo(str(path))
