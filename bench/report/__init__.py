"""The reporter: every results/*/summary.json -> leaderboards/ (Markdown, CSV, HTML, PNG plots).

It reads only what runs wrote and writes only derived files, deterministically:
the same summaries always give the same bytes, so the committed leaderboards
can be checked by regenerating them.

    load.py     summaries -> normalised runs (tolerant; notes and warnings instead of crashes)
    keys.py     what makes rows comparable: threat model and evaluation settings
    samples.py  per-sample files -> intervals, paired tests, continuous certified curves
    tables.py   runs -> boards (dataset x threat model x settings), order, ranks, ties
    headline.py the headline table's <= 10 columns, each number with its n and interval
    columns.py  the CSV (every figure); markdown.py the board pages; detail.py one page per defense
    advice.py   what each flag means and what to do; doc.py Markdown/HTML rendering of pages
    plots.py    boards -> PNG plots (layout.py: labels without overlap); html.py one self-contained index.html
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..results import atomic_write_bytes
from .columns import to_csv
from .detail import detail_blocks
from .doc import to_markdown
from .html import render_index
from .load import Run, load_summaries
from .markdown import markdown_page
from .plots import Plot, board_plots, run_plot
from .tables import Board, build_boards

__all__ = ["Report", "write_report", "load_summaries", "build_boards", "Board", "Run", "Plot"]


@dataclass
class Report:
    """What one `bench report` did: files written (or already up to date), warnings, and the boards."""

    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    boards: list[Board] = field(default_factory=list)


def _write(path: Path, data: bytes) -> None:
    """Atomic write, skipped when the file already holds exactly these bytes (keeps mtimes and git quiet)."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    atomic_write_bytes(path, data)
    os.chmod(path, 0o644)  # published files: readable by a web server, not just by us


def write_report(results_dir: Path, out_dir: Path) -> Report:
    """Regenerate every leaderboard under ``out_dir`` from the summaries under ``results_dir``."""
    out_dir = Path(out_dir)
    summaries, warnings = load_summaries(Path(results_dir))
    boards = build_boards(summaries)
    report = Report(warnings=warnings, boards=boards)
    plots: dict[str, list[Plot]] = {}
    run_plots: dict[str, dict[int, Plot]] = {}
    for board in boards:
        plots[board.slug] = board_plots(board)
        run_plots[board.slug] = {i: p for i, p in ((i, run_plot(board, i)) for i in range(len(board.rows))) if p}
        files = [(p.filename, p.png) for p in plots[board.slug] + list(run_plots[board.slug].values())]
        page = markdown_page(board, [(p.filename, p.title) for p in plots[board.slug]], boards)
        files += [(f"{board.slug}.md", page.encode("utf-8")), (f"{board.slug}.csv", to_csv(board).encode("utf-8"))]
        for i, row in enumerate(board.rows):
            plot = run_plots[board.slug].get(i)
            files.append((board.page(row), to_markdown(detail_blocks(board, i, plot.png if plot else None)).encode()))
        for name, data in files:
            _write(out_dir / name, data)
            report.files.append(out_dir / name)
    _write(out_dir / "index.html", render_index(boards, plots, run_plots, warnings).encode("utf-8"))
    report.files.append(out_dir / "index.html")
    return report


EXPERIMENTS = "experiments"  # leaderboards/experiments/: experiment pages `bench sweep` writes, not `bench report`


def regeneration_diff(results_dir: Path, committed_dir: Path, skip_suffixes: tuple[str, ...] = ()) -> list[str]:
    """Files under ``committed_dir`` that `bench report` would not reproduce byte-for-byte (empty: up to date).

    ``skip_suffixes`` leaves out files whose bytes depend on the environment
    rather than the results (PNG, and the HTML embedding them, across matplotlib versions).
    """
    import tempfile

    committed_dir = Path(committed_dir)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        fresh = Path(tmp)
        made = {p.relative_to(fresh).as_posix() for p in write_report(results_dir, fresh).files}
        have = {p.relative_to(committed_dir).as_posix() for p in committed_dir.rglob("*") if p.is_file()}
        have = {name for name in have if not name.startswith(EXPERIMENTS + "/")}  # `bench sweep` writes those
        problems = [f"{name}: not committed" for name in sorted(made - have)]
        problems += [f"{name}: not made by bench report" for name in sorted(have - made)]
        for name in sorted(made & have):
            if name.endswith(skip_suffixes):
                continue
            if (fresh / name).read_bytes() != (committed_dir / name).read_bytes():
                problems.append(f"{name}: differs")
        return problems
