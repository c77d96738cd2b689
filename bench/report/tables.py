"""Leaderboard boards: which runs are compared, in what order, and which adjacent ranks are ties.

One board per dataset, threat model and evaluation settings (test points,
profile, attack selection): rows judged on different points, budgets or
batteries are never ranked in one table. Per defense and config hash only
the latest run is shown. Rows are sorted by robust accuracy (worst case over
the battery), ties broken by clean accuracy, then defense name, config hash
and run id, so the order never depends on the file system. Adjacent rows
whose per-sample robustness McNemar's exact test cannot tell apart
(p >= 0.05, on the same points) are marked as ties.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

from .headline import Column, number_columns
from .keys import Settings, ThreatKey, fmt_number
from .load import Run
from .samples import SIGNIFICANCE, tie_pvalue


def slug_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


@dataclass
class Board:
    """The rows of one leaderboard: one dataset, threat model and set of evaluation settings."""

    dataset: str
    threat: ThreatKey
    settings: Settings
    slug: str  # file stem: leaderboards/<slug>.md, .csv, <slug>/<run>.md and plots/<slug>-*.png
    rows: list[Run]
    ranks: list[int]
    tie_p: list[Optional[float]]  # McNemar p-value against the row above (None: first row, or not testable)
    columns: list[Column]  # the headline's number columns
    superseded: list[Run] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.dataset}, {self.threat.label()}"

    def tied(self, i: int) -> bool:
        """Row i cannot be told apart from row i - 1 (McNemar p >= 0.05 on the same points)."""
        p = self.tie_p[i]
        return p is not None and p >= SIGNIFICANCE

    def stem(self, row: Run) -> str:
        """The defense's file stem in this board: its name, with the config hash (or run) when the name repeats."""
        twice = sum(1 for r in self.rows if r.defense == row.defense) > 1
        return slug_part(f"{row.defense}-{row.config_hash or row.directory}" if twice else row.defense)

    def page(self, row: Run) -> str:
        """The defense's detail page, relative to the leaderboards directory."""
        return f"{self.slug}/{self.stem(row)}.md"

    def anchor(self, row: Run) -> str:
        """The defense's section id on the HTML page."""
        return f"d-{self.slug}-{self.stem(row)}"

    def label(self, row: Run) -> str:
        """The defense's name, plus its config hash when the board has the defense twice."""
        twice = sum(1 for r in self.rows if r.defense == row.defense) > 1
        return f"{row.defense} ({row.config_hash or row.directory})" if twice else row.defense


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


def _threat_slug(dataset: str, threat: ThreatKey, only_one: bool) -> str:
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


def _main_settings(groups: dict[Settings, list[Run]]) -> Settings:
    """The settings most runs of a threat model share (more points, then the profile name, on a tie)."""
    return min(groups, key=lambda s: (-len(groups[s]), s.sort_key()))


def _board(dataset: str, threat: ThreatKey, settings: Settings, slug: str, runs: list[Run]) -> Board:
    kept, superseded = _latest_per_config(runs)
    rows = sorted(kept, key=_sort_key)
    tie_p = [None] + [tie_pvalue(rows[i - 1], rows[i]) for i in range(1, len(rows))]
    return Board(dataset, threat, settings, slug, rows, _ranks(rows), tie_p, number_columns(rows, threat), superseded)


def build_boards(summaries: list[Run]) -> list[Board]:
    """Group runs into boards (dataset x threat model x settings), newest run per config, sorted rows."""
    groups: dict[tuple[str, ThreatKey], dict[Settings, list[Run]]] = {}
    for s in summaries:
        groups.setdefault((s.dataset, s.threat), {}).setdefault(s.settings, []).append(s)
    keys = sorted(groups, key=lambda k: (k[0], not _same_threat(k[1], _default_threat(k[0])), k[1].sort_key()))
    per_dataset: dict[str, int] = {}
    for dataset, _ in keys:
        per_dataset[dataset] = per_dataset.get(dataset, 0) + 1
    boards: list[Board] = []
    used: set[str] = set()
    for dataset, threat in keys:
        by_settings = groups[(dataset, threat)]
        main = _main_settings(by_settings)
        base = _threat_slug(dataset, threat, per_dataset[dataset] == 1)
        for settings in sorted(by_settings, key=lambda s: (s != main, s.sort_key())):
            slug = base if settings == main else slug_part(f"{base}-{settings.slug()}")
            unique, i = slug, 2
            while unique in used:
                unique, i = f"{slug}-{i}", i + 1
            used.add(unique)
            boards.append(_board(dataset, threat, settings, unique, by_settings[settings]))
    return boards
