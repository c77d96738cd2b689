"""Leaderboard tables: which runs are compared, in what order, and how numbers are written.

One board per (dataset, threat model): rows from different datasets or
threat models are never compared. Per defense and config hash only the
latest run is shown. Rows are sorted by robust accuracy (worst case over
the battery), ties broken by clean accuracy, then defense name, config hash
and run id, so the order never depends on the file system. The columns and
their number formats are ``columns.py``'s.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

import pandas as pd

from .columns import Column, columns_for
from .load import Run, ThreatKey, fmt_number

# Columns for known attacks come in this order; unknown (defense-specific) ones follow alphabetically.

@dataclass
class Board:
    """The rows and columns of one leaderboard: one dataset under one threat model."""

    dataset: str
    threat: ThreatKey
    slug: str  # file stem: leaderboards/<slug>.md, .csv and plots/<slug>-*.png
    rows: list[Run]
    ranks: list[int]
    columns: list[Column]
    superseded: list[Run] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.dataset}, {self.threat.label()}"


def _latest_per_config(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    """Keep the latest run per (defense, config hash); runs without a hash are kept as they are."""
    latest: dict[tuple[str, str], Run] = {}
    kept: list[Run] = []
    for run in runs:
        if run.config_hash is None:
            kept.append(run)
            continue
        key = (run.defense, run.config_hash)
        current = latest.get(key)
        if current is None or (run.date or "", run.path) > (current.date or "", current.path):
            latest[key] = run
    kept.extend(latest.values())
    kept_ids = {id(r) for r in kept}
    superseded = [r for r in runs if id(r) not in kept_ids]
    return kept, sorted(superseded, key=lambda r: r.path)


def _sort_key(row: Run) -> tuple:
    def desc(v: Optional[float]) -> tuple:
        return (v is None, -(v or 0.0))

    return (*desc(row.robust), *desc(row.clean), row.defense, row.config_hash or "", row.run, row.path)


def _ranks(rows: list[Run]) -> list[int]:
    """Competition ranking by robust accuracy (equal robust accuracy, equal rank; unknown last)."""
    ranks: list[int] = []
    for i, row in enumerate(rows):
        if i and row.robust == rows[i - 1].robust:
            ranks.append(ranks[-1])
        else:
            ranks.append(i + 1)
    return ranks


def slug_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def _default_threat(dataset: str) -> Optional[ThreatKey]:
    from ..data import DatasetError, threat_model

    try:
        tm = threat_model(dataset)
    except DatasetError:
        return None
    return ThreatKey("linf", tm.linf, tm.l2)


def _same_threat(a: ThreatKey, b: Optional[ThreatKey]) -> bool:
    if b is None or a.norm != b.norm:
        return False
    pairs = ((a.eps, b.eps), (a.l2_eps, b.l2_eps))
    return all(x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9) for x, y in pairs)


def _slug(dataset: str, threat: ThreatKey, only_one: bool) -> str:
    """``<dataset>`` for the dataset's default threat model (or the only one of an unknown dataset), else suffixed."""
    default = _default_threat(dataset)
    if _same_threat(threat, default) or (default is None and only_one):
        return slug_part(dataset)
    if not threat.known:
        return slug_part(f"{dataset}-threat-unrecorded")
    text = f"{dataset}-{threat.norm}-{fmt_number(threat.eps)}"
    if threat.l2_eps is not None and threat.norm != "l2":
        text += f"-l2-{fmt_number(threat.l2_eps)}"
    return slug_part(text)


def build_boards(summaries: list[Run]) -> list[Board]:
    """Group runs into boards (dataset x threat model), newest run per config, sorted rows."""
    groups: dict[tuple[str, ThreatKey], list[Run]] = {}
    for s in summaries:
        groups.setdefault((s.dataset, s.threat), []).append(s)
    keys = sorted(groups, key=lambda k: (k[0], not _same_threat(k[1], _default_threat(k[0])), k[1].sort_key()))
    per_dataset: dict[str, int] = {}
    for dataset, _ in keys:
        per_dataset[dataset] = per_dataset.get(dataset, 0) + 1
    boards: list[Board] = []
    used: set[str] = set()
    for dataset, threat in keys:
        kept, superseded = _latest_per_config(groups[(dataset, threat)])
        rows = sorted(kept, key=_sort_key)
        slug = _slug(dataset, threat, per_dataset[dataset] == 1)
        base, i = slug, 2
        while slug in used:
            slug, i = f"{base}-{i}", i + 1
        used.add(slug)
        ranks = _ranks(rows)
        cols = columns_for(rows, threat, ranks)
        boards.append(Board(dataset, threat, slug, rows, ranks, cols, superseded))
    return boards


def to_frame(board: Board) -> pd.DataFrame:
    """The board as CSV-ready strings (blank where a run had no value)."""
    data = {c.key: [c.csv(r) for r in board.rows] for c in board.columns}
    return pd.DataFrame(data, columns=[c.key for c in board.columns], dtype=object)


def to_csv(board: Board) -> str:
    return to_frame(board).to_csv(index=False, lineterminator="\n")


_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")  # where Markdown would start raw HTML or an autolink


def _md_cell(text: str) -> str:
    """Text from a summary as one Markdown table cell: no raw HTML (``<script>`` shows as text), no cell breaks.

    Only a ``<`` that could open a tag, comment or autolink is escaped, so
    ordinary text such as "<= 0.02" is written as it is.
    """
    text = _HTML_START.sub("&lt;", text)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("\n", " ")


def _md_code(text: str) -> str:
    """Text from a summary as an inline code span (a backtick in it would end the span early)."""
    return "`" + text.replace("`", "'").replace("\n", " ") + "`"


def markdown_table(board: Board) -> str:
    """A GitHub-flavoured Markdown table; flagged defenses carry a ⚠."""
    cols = board.columns
    lines = [
        "| " + " | ".join(_md_cell(c.header) for c in cols) + " |",
        "|" + "|".join("---:" if c.numeric else "---" for c in cols) + "|",
    ]
    for row in board.rows:
        cells = []
        for c in cols:
            text = c.text(row)
            if c.key == "defense" and row.flags:
                text = "⚠ " + text
            cells.append(_md_cell(text))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_page(board: Board, plot_files: list[tuple[str, str]], siblings: list[Board]) -> str:
    """``<slug>.md``: heading, how to read it, the table, flags in full, notes and links to the plots."""
    lines = [
        f"# Leaderboard: {_md_cell(board.dataset)} ({board.threat.label()})",
        "",
        "Accuracies are fractions of the evaluated test points; robust = per-sample worst case over every attack "
        "at the headline budget. ⚠ marks defenses the evaluation flagged (e.g. gradient masking): their robust "
        "accuracy may only reflect hidden gradients. Latest run per defense and config hash; "
        "regenerate with `bench report`.",
    ]
    others = [b for b in siblings if b.dataset == board.dataset and b.slug != board.slug]
    if others:
        links = ", ".join(f"[{b.threat.label()}]({b.slug}.md)" for b in others)
        lines += ["", f"Other threat models for {_md_cell(board.dataset)} (separate tables, never mixed): {links}."]
    lines += ["", markdown_table(board).rstrip("\n")]
    flagged = [r for r in board.rows if r.flags]
    if flagged:
        lines += ["", "## Flags", ""]
        lines += [f"- ⚠ **{_md_cell(r.defense)}** ({_md_code(r.run)}): " + _md_cell("; ".join(r.flags)) for r in flagged]
    noted = [r for r in board.rows if r.notes]
    if noted or board.superseded:
        lines += ["", "## Notes", ""]
        lines += [f"- {_md_code(r.run)}: " + _md_cell("; ".join(r.notes)) for r in noted]
        if board.superseded:
            runs = ", ".join(_md_code(r.path) for r in board.superseded)
            lines.append(f"- {len(board.superseded)} older run(s) with the same config hash not shown: {runs}")
    if plot_files:
        lines += ["", "## Plots", ""]
        lines += [f"![{title}]({filename})" for filename, title in plot_files]
    return "\n".join(lines) + "\n"
