"""The sweep's plots as PNG bytes, drawn the same way every time (as `bench report`'s are).

matplotlib's object API on the Agg canvas, matplotlib's default style (a
user's matplotlibrc cannot change the figure), no "Software" metadata: the
bytes depend only on the data and the matplotlib version. Lines are the mean
over training seeds; the shaded band is the range (lowest to highest seed).
"""
from __future__ import annotations

import contextlib
import io
import math
from typing import Optional, Sequence

import matplotlib
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .analysis import Group

DPI = 100
_RC = {"font.family": "DejaVu Sans", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": DPI}
NORM_PANELS = (("fmn-l2", "median minimal L2 (FMN)"), ("fmn-linf", "median minimal L-inf (FMN)"),
               ("cw-l2", "C&W-L2 mean L2 of successes"))


@contextlib.contextmanager
def _style():
    with matplotlib.style.context("default"), matplotlib.rc_context(_RC):
        yield


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _colours(defenses: Sequence[str]) -> dict[str, tuple]:
    cmap = matplotlib.colormaps["tab10"]
    return {d: cmap(i % cmap.N) for i, d in enumerate(defenses)}


def _band(ax, xs: list[float], runs: list[list[float]], colour: tuple, label: str) -> None:
    """Mean line with markers and the seeds' range as a band (no band for one seed)."""
    means = [sum(col) / len(col) for col in zip(*runs)]
    ax.plot(xs, means, marker="o", markersize=3, color=colour, label=label)
    if len(runs) > 1:
        ax.fill_between(xs, [min(c) for c in zip(*runs)], [max(c) for c in zip(*runs)], color=colour, alpha=0.2,
                        linewidth=0)


def _panels(count: int, title: str, width: float = 4.2) -> tuple[Figure, list]:
    cols = min(count, 3)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(max(7.0, width * cols + 1.6), 3.4 * rows + 0.4), layout="constrained")
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(count)]
    fig.suptitle(title)
    return fig, axes


def _point_label(point: tuple) -> str:
    return " ".join(f"{k}={v}" for k, v in point) or "defaults"


def robust_vs_eps(groups: Sequence[Group], defenses: Sequence[str], title: str) -> Optional[bytes]:
    """Worst-case accuracy against L-inf eps: one panel per grid point, one line per method."""
    points = list(dict.fromkeys(g.point for g in groups))
    if not any(c.sweep for g in groups for c in g.cells):
        return None
    colours = _colours(defenses)
    with _style():
        fig, axes = _panels(len(points), f"{title}: robust accuracy vs L-inf eps\n(worst case of PGD with CE and "
                                         "margin losses; line: mean over seeds, band: their range)")
        for ax, point in zip(axes, points):
            ax.set_title(_point_label(point))
            ax.set_xlabel("L-inf eps")
            ax.set_ylabel("robust accuracy")
            ax.set_ylim(-0.02, 1.02)
            for g in (g for g in groups if g.point == point):
                curves = [dict(c.sweep) for c in g.cells if c.sweep]
                xs = sorted(set.intersection(*(set(cv) for cv in curves))) if curves else []
                if xs:
                    _band(ax, xs, [[cv[x] for x in xs] for cv in curves], colours[g.defense], g.defense)
            headline = next((c.headline_eps for g in groups for c in g.cells if c.headline_eps is not None), None)
            if headline is not None:
                ax.axvline(headline, color="grey", linestyle=":", linewidth=1)
        axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
        return _png(fig)


def _axis_values(texts: Sequence[str]) -> tuple[list[float], bool]:
    """Positions for the grid values: the numbers themselves (log scale when positive over a decade or more),
    else their order."""
    try:
        numbers = [float(t) for t in texts]
    except ValueError:
        return list(range(len(texts))), False
    positive = all(v > 0 for v in numbers)
    return numbers, positive and max(numbers) / min(numbers) >= 10


def norms_vs_grid(groups: Sequence[Group], defenses: Sequence[str], key: Optional[str], title: str) -> Optional[bytes]:
    """Minimal perturbation against the first grid key: one panel per measure, one line per method
    (and per value of the other keys). Infinite medians (under half the points broken) are not drawn."""
    if not groups:
        return None
    colours = _colours(defenses)
    with _style():
        fig, axes = _panels(len(NORM_PANELS), f"{title}: minimal perturbation vs {key or 'setting'}\n(line: mean "
                                              "over seeds, band: their range; infinite medians not drawn)")
        for ax, (metric, label) in zip(axes, NORM_PANELS):
            ax.set_title(label)
            ax.set_xlabel(key or "setting")
            _norm_lines(ax, groups, colours, key, metric)
            ax.set_ylim(bottom=0)
        axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
        return _png(fig)


def _norm_lines(ax, groups: Sequence[Group], colours: dict, key: Optional[str], metric: str) -> None:
    lines: dict[tuple, list[Group]] = {}
    for g in groups:
        rest = tuple((k, v) for k, v in g.point if k != key)
        lines.setdefault((g.defense, rest), []).append(g)
    texts = list(dict.fromkeys(dict(g.point).get(key, "defaults") for g in groups))
    positions, log = _axis_values(texts)
    where = dict(zip(texts, positions))
    for (defense, rest), members in lines.items():
        xs, runs = [], []
        for g in members:
            values = [v for v in g.stats[metric].values if math.isfinite(v)] if metric in g.stats else []
            if values:
                xs.append(where[dict(g.point).get(key, "defaults")])
                runs.append(values)
        if not xs:
            continue
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        means = [sum(runs[i]) / len(runs[i]) for i in order]
        label = defense + (f" ({_point_label(rest)})" if rest else "")
        ax.plot([xs[i] for i in order], means, marker="o", markersize=3, color=colours[defense], label=label)
        ax.fill_between([xs[i] for i in order], [min(runs[i]) for i in order], [max(runs[i]) for i in order],
                        color=colours[defense], alpha=0.2, linewidth=0)
    if log:
        ax.set_xscale("log")
    if not all(isinstance(p, float) for p in positions):
        ax.set_xticks(positions, texts)
