"""Leaderboard plots as PNG bytes, drawn the same way every time.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot
state, no display), under matplotlib's default style so a user's
matplotlibrc cannot change them, and saved without the "Software" metadata
so the bytes depend only on the data and the matplotlib version. Labels of
the clean-vs-robust scatter sit in a column beside the axes, spread so that
none overlaps (``layout.spread``); certified-accuracy curves are continuous
in the radius and stop at the largest radius the sample size can certify.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any, Optional

import matplotlib
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .keys import fmt_number
from .layout import spread
from .load import Run
from .samples import accuracy_interval, certified_steps, deterministic_steps
from .tables import Board, slug_part

DPI = 100
WIDTH = 7.6
LABEL_PT = 8
_RC = {"font.family": "DejaVu Sans", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": DPI}


@dataclass(frozen=True)
class Plot:
    filename: str  # relative to the leaderboards directory, e.g. plots/mnist5k-clean-vs-robust.png
    title: str
    png: bytes


@contextlib.contextmanager
def style():
    """matplotlib's defaults plus ours, whatever the user's matplotlibrc says."""
    with matplotlib.style.context("default"), matplotlib.rc_context(_RC):
        yield


def colours(rows: list[Run]) -> dict[int, tuple]:
    """A fixed colour per row, by the board's order (tab10, then tab20 for larger boards)."""
    cmap = matplotlib.colormaps["tab10" if len(rows) <= 10 else "tab20"]
    return {id(r): cmap(i % cmap.N) for i, r in enumerate(rows)}


def png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _legend(ax) -> None:
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)


def _height_for_legend(lines: int) -> float:
    """A board plot's height in inches: the usual 4.4, or tall enough for a legend of ``lines`` lines beside
    the axes (a legend taller than the figure is cut at the top and squeezes the axes to nothing)."""
    return max(4.4, 1.4 + lines * LABEL_PT * 1.45 / 72)


def _name(board: Board, i: int) -> str:
    row = board.rows[i]
    return f"#{board.ranks[i]} {board.label(row)}" + (" [flagged]" if row.flags else "")


def clean_vs_robust_figure(board: Board) -> Optional[Figure]:
    """Clean against robust accuracy with 95% intervals; labels beside the axes, joined to their points."""
    points = [i for i, r in enumerate(board.rows) if r.clean is not None and r.robust is not None]
    if not points:
        return None
    line_in = LABEL_PT * 1.45 / 72
    height = max(4.4, 1.3 + len(points) * line_in)
    fig = Figure(figsize=(WIDTH, height))
    ax = fig.add_axes((0.09, 0.8 / height, 0.55, 1 - 1.3 / height))
    ax.set_title(f"{board.title}\nclean vs robust accuracy (95% intervals)", fontsize=9)
    ax.set_xlabel("clean accuracy")
    ax.set_ylabel("robust accuracy (worst case)")
    ax.set_ylim(-0.02, 1.02)
    cleans = [board.rows[i].clean for i in points]
    ax.set_xlim(max(0.0, min(cleans) - 0.06), 1.005)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    tint = colours(board.rows)
    gap = line_in / (ax.get_position().height * height) * 1.04  # one label line, in data units of y
    ys = spread([board.rows[i].robust for i in points], gap, -0.02, 1.02, tiebreak=[board.rows[i].clean for i in points])
    for i, y in zip(points, ys):
        r = board.rows[i]
        ci_x, ci_y = accuracy_interval(r.clean, r.n_test), accuracy_interval(r.robust, r.n_test)
        colour = "red" if r.flags else tint[id(r)]
        ax.errorbar([r.clean], [r.robust], xerr=None if ci_x is None else [[r.clean - ci_x[0]], [ci_x[1] - r.clean]],
                    yerr=None if ci_y is None else [[r.robust - ci_y[0]], [ci_y[1] - r.robust]],
                    fmt="x" if r.flags else "o", color=colour, markersize=5, elinewidth=0.8, zorder=3)
        ax.annotate(_name(board, i), xy=(r.clean, r.robust), xytext=(1.03, y),
                    textcoords=("axes fraction", "data"), va="center", fontsize=LABEL_PT, color=colour,
                    arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.5, "alpha": 0.6},
                    annotation_clip=False)
    return fig


def sweep_plot(board: Board, sweep: str) -> Optional[bytes]:
    """Accuracy under one attack as its eps grows, one line per defense."""
    rows = [r for r in board.rows if sweep in r.sweeps]
    if not rows:
        return None
    tint = colours(board.rows)
    norm = next((r.sweeps[sweep].norm for r in rows if r.sweeps[sweep].norm), None)
    with style():
        fig = Figure(figsize=(WIDTH, _height_for_legend(len(rows) + 1)), layout="constrained")
        ax = fig.add_subplot()
        ax.set_title(f"{board.title}\naccuracy under {sweep} vs eps", fontsize=9)
        ax.set_xlabel(f"eps ({norm or 'norm not recorded'})")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        for i, r in enumerate(board.rows):
            if sweep in r.sweeps:
                xs, ys = zip(*r.sweeps[sweep].points)
                ax.plot(xs, ys, marker="o", markersize=3, color=tint[id(r)], label=_name(board, i),
                        linestyle="--" if r.flags else "-")
        if board.threat.eps is not None and norm == board.threat.norm:
            ax.axvline(board.threat.eps, color="grey", linestyle=":", linewidth=1,
                       label=f"headline eps {fmt_number(board.threat.eps)}")
        _legend(ax)
        return png(fig)


def _cap_keys(rows: list[Run], sigma: float) -> list[tuple[float, Any, Any]]:
    """Each distinct largest certifiable radius with its sample size and alpha (one dotted line, two legend lines)."""
    return sorted({(r.certification[sigma].max_radius, r.certification[sigma].samples, r.certification[sigma].alpha)
                   for r in rows if r.certification[sigma].max_radius is not None}, key=lambda t: (t[0], str(t[1:])))


def _caps(ax, rows: list[Run], sigma: float) -> None:
    """Mark each largest certifiable radius (one per sample size and alpha)."""
    for radius, n, alpha in _cap_keys(rows, sigma):
        ax.axvline(radius, color="black", linestyle=":", linewidth=1,
                   label=f"largest certifiable r = {radius:.3f}\n(n = {n}, α = {alpha})")


def certified_plot(board: Board, sigma: float) -> Optional[bytes]:
    """Certified accuracy against L2 radius at one noise level: per-point step curves, stopped at the cap."""
    rows = [r for r in board.rows if sigma in r.certification]
    if not rows:
        return None
    tint = colours(board.rows)
    exacts = sum(deterministic_steps(r.deterministic) is not None for r in board.rows)
    caps = len(_cap_keys(rows, sigma))
    with style():
        fig = Figure(figsize=(WIDTH, _height_for_legend(len(rows) + exacts + 2 * caps)), layout="constrained")
        ax = fig.add_subplot()
        ax.set_title(f"{board.title}\ncertified accuracy vs L2 radius\n(randomized smoothing, σ={fmt_number(sigma)}"
                     f"{'; dashed: deterministic' if exacts else ''})",
                     fontsize=9)
        ax.set_xlabel("L2 radius")
        ax.set_ylabel("certified accuracy")
        ax.set_ylim(-0.02, 1.02)
        for i, r in enumerate(board.rows):
            steps = certified_steps(r.certification[sigma]) if sigma in r.certification else None
            if steps is not None:
                ax.plot(*steps, drawstyle="steps-pre", color=tint[id(r)], label=_name(board, i))
            exact = deterministic_steps(r.deterministic)
            if exact is not None:  # the deployed model's own certificate, beside its smoothed classifier's
                ax.plot(*exact, drawstyle="steps-pre", color=tint[id(r)], linestyle="--",
                        label=f"{_name(board, i)} (deterministic)")
        _caps(ax, rows, sigma)
        ax.set_xlim(left=0)
        _legend(ax)
        return png(fig)


def _run_sweeps(ax, board: Board, row: Run) -> None:
    for name, sweep in sorted(row.sweeps.items()):
        xs, ys = zip(*sweep.points)
        cis = [accuracy_interval(a, sweep.n) for a in ys]
        ax.plot(xs, ys, marker="o", markersize=3, label=name)
        if all(c is not None for c in cis):
            ax.fill_between(xs, [c[0] for c in cis], [c[1] for c in cis], alpha=0.2)
    if board.threat.eps is not None:
        ax.axvline(board.threat.eps, color="grey", linestyle=":", linewidth=1, label="headline eps")
    ax.set_title("accuracy vs eps (95% band)", fontsize=9)
    ax.set_xlabel("eps")
    ax.legend(fontsize=7)


def _run_certified(ax, row: Run) -> None:
    for sigma, cert in row.certification.items():
        steps = certified_steps(cert)
        if steps is None:
            continue
        xs, ys = steps
        line = ax.plot(xs, ys, drawstyle="steps-pre", label=f"σ = {fmt_number(sigma)}")[0]
        cis = [accuracy_interval(a, cert.points) for a in ys]
        if all(c is not None for c in cis):
            ax.fill_between(xs, [c[0] for c in cis], [c[1] for c in cis], step="pre", alpha=0.2,
                            color=line.get_color())
        if cert.max_radius is not None:
            ax.axvline(cert.max_radius, color=line.get_color(), linestyle=":", linewidth=1,
                       label=f"largest certifiable r = {cert.max_radius:.3f}")
    exact = deterministic_steps(row.deterministic)
    if exact is not None:
        ax.plot(*exact, drawstyle="steps-pre", color="black", linestyle="--", label="deterministic (Lipschitz)")
    ax.set_title("certified accuracy vs L2 radius (95% band)", fontsize=9)
    ax.set_xlabel("L2 radius")
    ax.set_xlim(left=0)
    ax.legend(fontsize=7)


def run_plot(board: Board, i: int) -> Optional[Plot]:
    """One defense's figure: its eps sweep and its certified curve, with intervals."""
    row = board.rows[i]
    certified = row.certification or deterministic_steps(row.deterministic) is not None
    panels = [p for p, has in (("sweep", row.sweeps), ("cert", certified)) if has]
    if not panels:
        return None
    with style():
        fig = Figure(figsize=(4.2 * len(panels), 3.4), layout="constrained")
        fig.suptitle(f"{board.label(row)} ({board.title})", fontsize=9)
        for k, panel in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), k + 1)
            ax.set_ylim(-0.02, 1.02)
            _run_sweeps(ax, board, row) if panel == "sweep" else _run_certified(ax, row)
        return Plot(f"{board.slug}/{board.stem(row)}.png", f"{board.label(row)}: plots", png(fig))


def board_plots(board: Board) -> list[Plot]:
    """Every board-level plot there is data for, in a fixed order."""
    plots: list[Plot] = []
    with style():
        fig = clean_vs_robust_figure(board)
        if fig is not None:
            plots.append(Plot(f"plots/{board.slug}-clean-vs-robust.png", "Clean vs robust accuracy", png(fig)))
    for sweep in sorted({name for r in board.rows for name in r.sweeps}):
        data = sweep_plot(board, sweep)
        if data is not None:
            plots.append(Plot(f"plots/{board.slug}-robust-vs-eps-{slug_part(sweep)}.png",
                              f"Accuracy vs eps: {sweep}", data))
    for sigma in sorted({s for r in board.rows for s in r.certification}):
        data = certified_plot(board, sigma)
        if data is not None:
            s = fmt_number(sigma)
            plots.append(Plot(f"plots/{board.slug}-certified-sigma-{s}.png",
                              f"Certified accuracy vs radius, σ={s}", data))
    return plots
