"""Leaderboard plots as PNG bytes, drawn the same way every time.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot
state, no display), under matplotlib's default style so a user's
matplotlibrc cannot change them, and saved without the "Software" metadata
so the bytes depend only on the data and the matplotlib version.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Optional

import matplotlib
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .load import Run, fmt_number
from .tables import Board, slug_part

DPI = 100
SIZE = (7.0, 4.4)
_RC = {"font.family": "DejaVu Sans", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": DPI}


@dataclass(frozen=True)
class Plot:
    filename: str  # relative to the leaderboards directory, e.g. plots/mnist5k-clean-vs-robust.png
    title: str
    png: bytes


@contextlib.contextmanager
def _style():
    """matplotlib's defaults plus ours, whatever the user's matplotlibrc says."""
    with matplotlib.style.context("default"), matplotlib.rc_context(_RC):
        yield


def labels(rows: list[Run]) -> dict[int, str]:
    """Legend label per row: the defense, plus its config hash when the defense appears twice."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.defense] = counts.get(r.defense, 0) + 1
    out = {}
    for r in rows:
        text = r.defense if counts[r.defense] == 1 else f"{r.defense} ({r.config_hash or r.run})"
        out[id(r)] = text + (" [flagged]" if r.flags else "")
    return out


def _colours(rows: list[Run]) -> dict[int, tuple]:
    """A fixed colour per row, by the board's order (tab10, then tab20 for larger boards)."""
    cmap = matplotlib.colormaps["tab10" if len(rows) <= 10 else "tab20"]
    return {id(r): cmap(i % cmap.N) for i, r in enumerate(rows)}


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, object]:
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    return fig, ax


def _legend(ax) -> None:
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)


def sweep_plot(board: Board, sweep: str) -> Optional[bytes]:
    """Accuracy under one attack as its eps grows, one line per defense."""
    rows = [r for r in board.rows if sweep in r.sweeps]
    if not rows:
        return None
    names, colours = labels(board.rows), _colours(board.rows)
    norm = next((r.sweeps[sweep][0] for r in rows if r.sweeps[sweep][0]), None)
    with _style():
        fig, ax = _figure(
            f"{board.title}\naccuracy under {sweep} vs eps", f"eps ({norm or 'norm not recorded'})", "accuracy"
        )
        for r in rows:
            xs, ys = zip(*r.sweeps[sweep][1])
            ax.plot(xs, ys, marker="o", markersize=3, color=colours[id(r)], label=names[id(r)],
                    linestyle="--" if r.flags else "-")
        headline = board.threat.eps if norm == board.threat.norm else (board.threat.l2_eps if norm == "l2" else None)
        if headline is not None:
            ax.axvline(headline, color="grey", linestyle=":", linewidth=1, label=f"headline eps {fmt_number(headline)}")
        _legend(ax)
        return _png(fig)


def certified_plot(board: Board, sigma: float) -> Optional[bytes]:
    """Certified accuracy against L2 radius at one smoothing noise level, one step curve per defense."""
    rows = [r for r in board.rows if sigma in r.certification]
    if not rows:
        return None
    names, colours = labels(board.rows), _colours(board.rows)
    with _style():
        fig, ax = _figure(
            f"{board.title}\ncertified accuracy vs L2 radius (randomized smoothing, σ={fmt_number(sigma)})",
            "L2 radius", "certified accuracy",
        )
        for r in rows:
            xs, ys = zip(*r.certification[sigma].curve)
            # steps-pre: between two certified radii show the accuracy at the larger one, a lower bound
            # (certified accuracy can only fall as the radius grows), never the optimistic value
            ax.plot(xs, ys, drawstyle="steps-pre", marker=".", color=colours[id(r)], label=names[id(r)])
        _legend(ax)
        return _png(fig)


def clean_vs_robust_plot(board: Board) -> Optional[bytes]:
    """Clean against robust accuracy, one point per defense; flagged defenses drawn as red crosses."""
    rows = [r for r in board.rows if r.clean is not None and r.robust is not None]
    if not rows:
        return None
    names, colours = labels(board.rows), _colours(board.rows)
    with _style():
        fig, ax = _figure(f"{board.title}\nclean vs robust accuracy", "clean accuracy", "robust accuracy (worst case)")
        ax.set_xlim(-0.02, 1.02)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        at: dict[tuple[int, int], list[Run]] = {}
        for r in rows:
            ax.scatter([r.clean], [r.robust], s=40, color="red" if r.flags else colours[id(r)],
                       marker="x" if r.flags else "o", label=names[id(r)], zorder=3)
            at.setdefault((round(r.clean * 25), round(r.robust * 25)), []).append(r)
        for _, near in sorted(at.items()):  # one label per 0.04-wide cell, so nearby points stay readable
            ax.annotate(", ".join(sorted({r.defense for r in near})), (near[0].clean, near[0].robust),
                        textcoords="offset points", xytext=(-4, 6), ha="right", fontsize=7)
        _legend(ax)
        return _png(fig)


def board_plots(board: Board) -> list[Plot]:
    """Every plot a board has data for, in a fixed order."""
    plots: list[Plot] = []
    png = clean_vs_robust_plot(board)
    if png is not None:
        plots.append(Plot(f"plots/{board.slug}-clean-vs-robust.png", "Clean vs robust accuracy", png))
    for sweep in sorted({name for r in board.rows for name in r.sweeps}):
        png = sweep_plot(board, sweep)
        if png is not None:
            plots.append(Plot(f"plots/{board.slug}-robust-vs-eps-{slug_part(sweep)}.png", f"Accuracy vs eps: {sweep}", png))
    for sigma in sorted({s for r in board.rows for s in r.certification}):
        png = certified_plot(board, sigma)
        if png is not None:
            s = fmt_number(sigma)
            plots.append(Plot(f"plots/{board.slug}-certified-sigma-{s}.png", f"Certified accuracy vs radius, σ={s}", png))
    return plots
