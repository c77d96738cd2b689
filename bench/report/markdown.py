"""``leaderboards/<board>.md``: the headline table, how to read it, links to each defense's page, the plots.

Each number sits beside its 95% interval; its n is in the column header when
every row shares it, else beside the number.
"""
from __future__ import annotations

from .doc import Block, Bullets, Heading, Image, Link, Para, Table, to_markdown
from .headline import Cell, Column
from .tables import Board

LEGEND = [
    "Accuracies are fractions of the n test points, each with its 95% Clopper-Pearson interval in brackets.",
    "robust, worst case: a point counts only if every L∞ attack of the battery at the headline eps failed on it; "
    "L2 robust: the same over the L2 attacks.",
    "≈ after a rank: McNemar's exact test on per-sample robustness at the same points cannot tell this row from "
    "the one above (p ≥ 0.05).",
    "median min ‖δ‖₂: median over clean-correct points of the smallest L2 perturbation the fast minimum-norm "
    "attack found (∞ when none); ACR: average certified L2 radius of randomized smoothing (Cohen et al. 2019).",
    "⚠ k: the evaluation raised k flags (for example gradient masking): the robust figure may overstate robustness. "
    "The defense's page says what each flag means and what to do.",
]


def header(board: Board, col: Column) -> str:
    n = col.uniform_n(board.rows)
    return f"{col.header}, n = {n}" if n is not None else col.header


def cell_text(board: Board, col: Column, cell: Cell) -> str:
    """``0.818 [0.793, 0.841]``, plus ``n = 100`` when the column's rows do not share one n."""
    if cell.value is None:
        return cell.text
    parts = [cell.text, cell.interval_text]
    if col.uniform_n(board.rows) is None and cell.n is not None:
        parts.append(f"n = {cell.n}")
    return " ".join(p for p in parts if p)


def rank_text(board: Board, i: int) -> str:
    return f"{board.ranks[i]}" + (" ≈" if board.tied(i) else "")


def headline_table(board: Board) -> Table:
    """The board's headline as a doc table (at most ten columns)."""
    headers = ["#", "defense"] + [header(board, c) for c in board.columns] + ["flags"]
    rows = []
    for i, row in enumerate(board.rows):
        cells = [cell_text(board, c, c.cell(row)) for c in board.columns]
        flags = [Link(f"⚠ {len(row.flags)}", f"{board.page(row)}#flags-{len(row.flags)}", "")] if row.flags else "—"
        rows.append([rank_text(board, i), [Link(board.label(row), board.page(row), "")], *cells, flags])
    return Table(headers, rows, [True, False] + [True] * len(board.columns) + [False], cls="board")


def _others(board: Board, boards: list[Board]) -> list[Block]:
    others = [b for b in boards if b.dataset == board.dataset and b.slug != board.slug]
    if not others:
        return []
    parts: list = [f"Other tables for {board.dataset} (never ranked together with this one): "]
    for k, b in enumerate(others):
        parts += ([", "] if k else []) + [Link(f"{b.threat.label()}; {b.settings.label()}", f"{b.slug}.md", "")]
    return [Para(parts + ["."])]


def markdown_page(board: Board, plot_files: list[tuple[str, str]], boards: list[Board]) -> str:
    """``<slug>.md``: heading, settings, the headline table, how to read it, defense pages, notes, plots."""
    blocks: list[Block] = [
        Heading(1, f"Leaderboard: {board.dataset} ({board.threat.label()})"),
        Para(f"Evaluated on {board.settings.label()}. Latest run per defense and config; regenerate with "
             "`bench report`."),
        headline_table(board),
        Bullets(LEGEND),
    ]
    blocks += _others(board, boards)
    blocks += [Heading(2, "Defenses"),
               Bullets([[Link(board.label(r), board.page(r), ""), f": every attack with its n and interval, "
                         f"{len(r.flags)} flag(s), certification, config and provenance"] for r in board.rows])]
    noted = [r for r in board.rows if r.notes]
    if noted or board.superseded:
        items = [f"`{r.run}`: " + "; ".join(r.notes) for r in noted]
        if board.superseded:
            runs = ", ".join(f"`{r.path}`" for r in board.superseded)
            items.append(f"{len(board.superseded)} older run(s) with the same config hash not shown: {runs}")
        blocks += [Heading(2, "Notes"), Bullets(items)]
    if plot_files:
        blocks += [Heading(2, "Plots")] + [Image(filename, title) for filename, title in plot_files]
    return to_markdown(blocks)
