"""The experiment page of a sweep: the command, the headline table, the paired tests, the conclusions.

Written to ``<out>/<name>.md`` (plots under ``<out>/plots/``), ``<name>.html``
(one self-contained page with the plots embedded) and ``<name>.csv`` (the
headline table's numbers: mean, standard deviation, range and seed count per
method, grid point and metric). A conclusion is written only where a paired
test supports it after Holm's correction (see ``analysis``); everything else
is reported as not shown. The page is made from the cells' results on disk
alone, so rerunning the same command rewrites the same bytes.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from .analysis import ALPHA, Group, Metric, PairedTest, Stat, compare, group_cells, metrics_for
from .cells import CellRun, Settings
from .collect import load_cell
from .grid import SweepSpec
from .plots import norms_vs_grid, robust_vs_eps
from .render import Block, Bullets, Code, Heading, Image, Paragraph, Table, to_html, to_markdown

DASH = "—"


def fmt(value: Optional[float]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return "∞" if math.isinf(value) else f"{value:.3f}"


def fmt_p(p: Optional[float]) -> str:
    return DASH if p is None else ("< 0.0001" if p < 1e-4 else f"{p:.4f}")


def p_clause(p: Optional[float]) -> str:
    return "p < 0.0001" if p is not None and p < 1e-4 else f"p = {fmt_p(p)}"


def stat_text(stat: Stat, seeds: int) -> str:
    """mean ± sd over seeds (the mean alone for one seed), with the count when some seeds lack the metric."""
    if stat.n == 0:
        return DASH
    text = fmt(stat.mean) + (f" ± {fmt(stat.sd)}" if stat.sd is not None else "")
    return text + (f" ({stat.n} of {seeds} seeds)" if stat.n < seeds else "")


def _point(point: tuple) -> str:
    return " ".join(f"{k}={v}" for k, v in point) or "defaults"


def headline_table(groups: Sequence[Group], metrics: Sequence[Metric], keys: Sequence[str]) -> Table:
    header = ("method", *keys, "seeds", *(m.column for m in metrics))
    rows = tuple((g.defense, *(dict(g.point)[k] for k in keys), str(len(g.seeds)),
                  *(stat_text(g.stats[m.key], len(g.seeds)) for m in metrics)) for g in groups)
    return Table(header, rows, (False,) * (len(keys) + 1) + (True,) * (len(metrics) + 1))


def verdict(t: PairedTest) -> str:
    if t.p is None:
        return "no discordant points" if t.metric.test == "mcnemar" else "no differing pairs"
    if not t.significant:
        return "not shown"
    return f"**{t.favours} {'more robust' if t.metric.key != 'clean' else 'more accurate'}**"


def tests_table(tests: Sequence[PairedTest]) -> Table:
    header = ("setting", "A vs B", "metric", "test", "paired points (seeds)", "A wins / B wins",
              "seeds favouring A / B", "p", "p (Holm)", f"at alpha {ALPHA:g}")
    rows = tuple((_point(t.point), f"{t.a} vs {t.b}", t.metric.label,
                  "McNemar exact" if t.metric.test == "mcnemar" else "Wilcoxon signed-rank",
                  f"{t.n_pairs} ({t.seeds})", f"{t.a_wins} / {t.b_wins}", f"{t.seeds_for_a} / {t.seeds_for_b}",
                  fmt_p(t.p), fmt_p(t.p_holm), verdict(t)) for t in tests)
    return Table(header, rows, (False, False, False, False, True, True, True, True, True, False))


def conclusions(tests: Sequence[PairedTest], groups: Sequence[Group], m: int) -> list[str]:
    """One sentence per supported difference, with the figures behind it."""
    stats = {(g.point, g.defense): g for g in groups}
    found = []
    for t in (t for t in tests if t.significant):
        winner, loser = (t.a, t.b) if t.favours == t.a else (t.b, t.a)
        w, lo = stats[(t.point, winner)], stats[(t.point, loser)]
        wins = (t.a_wins, t.b_wins) if winner == t.a else (t.b_wins, t.a_wins)
        seeds = t.seeds_for_a if winner == t.a else t.seeds_for_b
        unit = "points" if t.metric.test == "mcnemar" else "points with the larger perturbation"
        found.append(
            f"At {_point(t.point)}, **{winner}** beats {loser} on {t.metric.label}: "
            f"{stat_text(w.stats[t.metric.key], len(w.seeds))} vs {stat_text(lo.stats[t.metric.key], len(lo.seeds))} "
            f"(mean ± sd over seeds); {wins[0]} vs {wins[1]} {unit} over {t.seeds} seeds, {seeds} of {t.seeds} seeds "
            f"in the same direction; Holm-adjusted {p_clause(t.p_holm)} ({m} tests)."
            + ("" if seeds == t.seeds else " Not every seed agrees: the difference may not hold across training runs."))
    if not found and m == 0:
        found.append("No paired test was possible (one method, or no paired points): nothing is concluded.")
    elif not found:
        found.append(f"No difference between the methods is supported at alpha = {ALPHA:g} after Holm's correction "
                     f"over {m} tests. Differences in the table above are within what the paired tests can "
                     "tell apart from chance on these points.")
    return found


@dataclass
class Experiment:
    name: str
    blocks: list[Block]
    table_csv: str
    images: list[Image]


def method_paragraph(spec: SweepSpec, s: Settings, groups: Sequence[Group], total: int, m: int) -> str:
    headline = next((c.headline_eps for g in groups for c in g.cells if c.headline_eps is not None), None)
    sigma = next((c.sigma for g in groups for c in g.cells if c.sigma is not None), None)
    return (
        f"{len(spec.cells)} runs: {len(spec.defenses)} method(s) x {len(spec.points)} setting(s) x "
        f"{len(spec.seeds)} training seed(s) (seeds {', '.join(map(str, spec.seeds))}), each an ordinary `bench run` "
        f"on `{s.dataset}` with the `{s.profile}` battery on {'all' if s.n_test is None else f'the first {s.n_test}'} "
        f"test points, headline L-inf eps {fmt(headline) if headline is not None else DASH}. "
        "Table cells are mean ± sample standard deviation over the seeds. Columns: clean and FGSM accuracy; "
        "robust accuracy at each eps (`eps ...`); the battery's worst case; C&W-L2's mean L2 of successful attacks; "
        "FMN's median minimal L2 and L-inf perturbations; the average certified radius (ACR) of randomized "
        f"smoothing at sigma {fmt(sigma) if sigma is not None else DASH}. Robust accuracy at each eps is the "
        "worst case of PGD with cross-entropy and margin losses on the sweep's seeded subset of the points; the "
        "worst case of the battery is every L-inf attack at the headline eps. Median minimal perturbations "
        "(FMN) are over clean-correct points, counting 'not found' as infinite; C&W-L2 is the mean L2 of its "
        "successful attacks, as Weingarten et al. report it. "
        f"Paired tests compare two methods at the same setting on the same test points, seed by seed, pooled "
        f"over seeds: McNemar's exact test for accuracies, Wilcoxon's signed-rank test for per-point minimal "
        f"perturbations (points both classify correctly and both attacks broke). Of the {total} comparisons, "
        f"{m} had a discordant point or a differing pair and were tested (the others cannot reject anything); "
        f"these {m} form one family corrected with Holm's method, and a conclusion is stated only where the "
        f"corrected p < {ALPHA:g}. The tests' unit is the test point: they show that the trained models "
        "differ on these points; whether a difference holds across training runs is shown by how many seeds "
        "agree in direction, and by the spread in the table.")


def build_experiment(spec: SweepSpec, runs: Sequence[CellRun], s: Settings, command: str) -> Experiment:
    """Read every cell, analyse, and lay the page out."""
    pairs = [(r.cell, load_cell(r.out)) for r in runs]
    metrics = metrics_for([d for _, d in pairs])
    groups = group_cells(pairs, metrics)
    tests, m = compare(groups, metrics)
    keys = [a.key for a in spec.axes]
    title = f"Experiment: {spec.name}"
    images = _images(spec, groups)
    blocks: list[Block] = [Heading(title, 1), Code(command), Paragraph(method_paragraph(spec, s, groups, len(tests), m)),
                           Heading("Results"), headline_table(groups, metrics, keys),
                           Heading("Conclusions"), Bullets(tuple(conclusions(tests, groups, m))),
                           Heading("Paired tests"), tests_table(tests) if tests else Paragraph("One method only: nothing to compare.")]
    blocks += [Heading("Plots"), *images] if images else []
    blocks += [Heading("Runs"), Bullets(tuple(_run_lines(runs, pairs)))]
    return Experiment(spec.name, blocks, _csv(groups, metrics, keys), images)


def _images(spec: SweepSpec, groups: Sequence[Group]) -> list[Image]:
    images = []
    png = robust_vs_eps(groups, spec.defenses, spec.name)
    if png is not None:
        images.append(Image(f"plots/{spec.name}-robust-vs-eps.png", "Robust accuracy vs eps", png))
    key = spec.axes[0].key if spec.axes else None
    png = norms_vs_grid(groups, spec.defenses, key, spec.name)
    if png is not None:
        images.append(Image(f"plots/{spec.name}-perturbation-vs-{key or 'setting'}.png",
                            f"Minimal perturbation vs {key or 'setting'}", png))
    return images


def _run_lines(runs: Sequence[CellRun], pairs: Sequence) -> list[str]:
    lines = []
    for r, (_, data) in zip(runs, pairs):
        notes = f"; notes: {'; '.join(data.notes)}" if data.notes else ""
        lines.append(f"{r.cell.label}: `results/{r.out.name}`{notes}")
    return lines


def _csv(groups: Sequence[Group], metrics: Sequence[Metric], keys: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", *keys, "seeds", "metric", "mean", "sd", "min", "max", "n"])
    for g in groups:
        for m in metrics:
            st = g.stats[m.key]
            writer.writerow([g.defense, *(dict(g.point)[k] for k in keys), " ".join(map(str, g.seeds)), m.key,
                             *(repr(v) if v is not None else "" for v in (st.mean, st.sd, st.low, st.high)), st.n])
    return buffer.getvalue()


def write_experiment(exp: Experiment, out_dir: Path) -> list[Path]:
    """Write the page's files (atomically); returns their paths."""
    from ..results import atomic_write_bytes

    out_dir = Path(out_dir)
    files = {f"{exp.name}.md": to_markdown(exp.blocks).encode("utf-8"),
             f"{exp.name}.html": to_html(exp.blocks, f"bench experiment: {exp.name}").encode("utf-8"),
             f"{exp.name}.csv": exp.table_csv.encode("utf-8"),
             **{image.path: image.png for image in exp.images}}
    for name, data in files.items():
        atomic_write_bytes(out_dir / name, data)
    return [out_dir / name for name in files]
