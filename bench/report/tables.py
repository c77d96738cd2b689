"""Leaderboard tables: which runs are compared, in what order, and how numbers are written.

One board per (dataset, threat model): rows from different datasets or
threat models are never compared. Per defense and config hash only the
latest run is shown. Rows are sorted by robust accuracy (worst case over
the battery), ties broken by clean accuracy, then defense name, config hash
and run id, so the order never depends on the file system. Every number is
formatted here, once, so Markdown, CSV and HTML agree and regenerate
byte-for-byte.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pandas as pd

from .load import AttackResult, Summary, ThreatKey, fmt_number

# Columns for known attacks come in this order; unknown (defense-specific) ones follow alphabetically.
ATTACK_ORDER = (
    "autoattack", "fgsm", "pgd-linf", "pgd-l2", "cw-l2", "square", "transfer", "fmn-linf", "fmn-l2",
)
ATTACK_TITLES = {"autoattack": "AutoAttack"}
MAX_RADII = 6  # more certified radii than this: show a headline subset (the plots show all)
MISSING = "—"


@dataclass(frozen=True)
class Column:
    """One leaderboard column: CSV key, display header, kind of value, and how to get it from a run."""

    key: str
    header: str
    kind: str  # "int", "frac", "norm", "seconds", "commit" or "text"
    get: Callable[[Summary], Any]
    help: str = ""

    def raw(self, row: Summary) -> Any:
        return self.get(row)

    def text(self, row: Summary) -> str:
        """The cell as Markdown and HTML show it."""
        return format_value(self.kind, self.get(row))

    def csv(self, row: Summary) -> str:
        value = self.get(row)
        if value is None:
            return ""
        if isinstance(value, float):
            return format(value, ".6g")
        return str(value)

    @property
    def numeric(self) -> bool:
        return self.kind not in ("text", "commit")


def format_value(kind: str, value: Any) -> str:
    if value is None:
        return MISSING
    if kind in ("frac", "norm"):
        return f"{value:.3f}"
    if kind == "seconds":
        return f"{value:.1f}"
    if kind == "commit":
        return str(value)[:12]
    return str(value)


@dataclass
class Board:
    """The rows and columns of one leaderboard: one dataset under one threat model."""

    dataset: str
    threat: ThreatKey
    slug: str  # file stem: leaderboards/<slug>.md, .csv and plots/<slug>-*.png
    rows: list[Summary]
    ranks: list[int]
    columns: list[Column]
    superseded: list[Summary] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.dataset}, {self.threat.label()}"


def _latest_per_config(runs: list[Summary]) -> tuple[list[Summary], list[Summary]]:
    """Keep the latest run per (defense, config hash); runs without a hash are kept as they are."""
    latest: dict[tuple[str, str], Summary] = {}
    kept: list[Summary] = []
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


def _sort_key(row: Summary) -> tuple:
    def desc(v: Optional[float]) -> tuple:
        return (v is None, -(v or 0.0))

    return (*desc(row.robust), *desc(row.clean), row.defense, row.config_hash or "", row.run, row.path)


def _ranks(rows: list[Summary]) -> list[int]:
    """Competition ranking by robust accuracy (equal robust accuracy, equal rank; unknown last)."""
    ranks: list[int] = []
    for i, row in enumerate(rows):
        if i and row.robust == rows[i - 1].robust:
            ranks.append(ranks[-1])
        else:
            ranks.append(i + 1)
    return ranks


def headline_radii(radii: list[float], l2_eps: Optional[float]) -> list[float]:
    """All certified radii if there are few; else evenly spaced ones plus the threat model's L2 eps."""
    if len(radii) <= MAX_RADII:
        return radii
    step = (len(radii) - 1) / (MAX_RADII - 2)
    chosen = {radii[round(i * step)] for i in range(MAX_RADII - 1)}
    chosen.update(r for r in radii if l2_eps is not None and math.isclose(r, l2_eps))
    return sorted(chosen)


def _attack_column(name: str, norm: Optional[str], eps: Optional[float]) -> Column:
    budget = " ".join(x for x in (norm or "", "" if eps is None else fmt_number(eps)) if x)
    title = ATTACK_TITLES.get(name, name)

    def get(row: Summary) -> Optional[float]:
        a = row.attacks.get(name)
        return a.accuracy if a is not None and a.norm == norm and a.eps == eps else None

    return Column(
        key=f"{name}[{budget}]" if budget else name,
        header=f"{title} ({budget})" if budget else title,
        kind="frac",
        get=get,
        help=f"accuracy under {title} at {budget or 'an unrecorded budget'}",
    )


def _attack_sort(item: tuple[str, Optional[str], Optional[float]]) -> tuple:
    name, norm, eps = item
    known = ATTACK_ORDER.index(name) if name in ATTACK_ORDER else len(ATTACK_ORDER)
    return (known, name, norm or "", eps if eps is not None else -1.0)


def _median_column(name: str) -> Column:
    def get(row: Summary) -> Optional[float]:
        a: Optional[AttackResult] = row.attacks.get(name)
        return a.median_norm if a is not None else None

    norm = next((n for n in ("linf", "l2") if name.endswith(n)), "")
    return Column(
        key=f"median_norm[{name}]",
        header=f"median ‖δ‖{'_' + norm if norm else ''} ({name})",
        kind="norm",
        get=get,
        help=f"median minimal adversarial perturbation found by {name}",
    )


def _cert_column(sigma: float, radius: float) -> Column:
    def get(row: Summary) -> Optional[float]:
        cert = row.certification.get(sigma)
        if cert is None:
            return None
        return next((acc for r, acc in cert.curve if math.isclose(r, radius)), None)

    s, r = fmt_number(sigma), fmt_number(radius)
    return Column(
        key=f"certified[sigma={s},r={r}]",
        header=f"certified r={r} (σ={s})",
        kind="frac",
        get=get,
        help=f"certified accuracy at L2 radius {r}, randomized smoothing with sigma {s}",
    )


def _acr_column(sigma: float) -> Column:
    def get(row: Summary) -> Optional[float]:
        cert = row.certification.get(sigma)
        return cert.average_radius if cert is not None else None

    s = fmt_number(sigma)
    return Column(
        key=f"acr[sigma={s}]",
        header=f"ACR (σ={s})",
        kind="norm",
        get=get,
        help=f"average certified L2 radius, sigma {s} (abstentions and errors count as 0)",
    )


def columns_for(rows: list[Summary], threat: ThreatKey, ranks: list[int]) -> list[Column]:
    """The columns this board needs: fixed ones plus one per attack, minimal-norm attack and radius seen."""
    rank_of = {id(r): k for r, k in zip(rows, ranks)}
    cols = [
        Column("rank", "#", "int", lambda r: rank_of.get(id(r)), "rank by robust accuracy (ties share a rank)"),
        Column("defense", "defense", "text", lambda r: r.defense, "registered defense name"),
        Column("clean_accuracy", "clean", "frac", lambda r: r.clean, "accuracy on unperturbed test points"),
        Column(
            "robust_accuracy", "robust (worst case)", "frac", lambda r: r.robust,
            "per-sample worst case over every attack at the headline budget",
        ),
    ]
    attack_keys = {(a.name, a.norm, a.eps) for r in rows for a in r.attacks.values()}
    if not any(name == "autoattack" for name, _, _ in attack_keys):
        attack_keys.add(("autoattack", threat.norm, threat.eps))  # always shown, empty when not run
    cols += [_attack_column(*k) for k in sorted(attack_keys, key=_attack_sort)]
    with_median = sorted(
        {a.name for r in rows for a in r.attacks.values() if a.median_norm is not None},
        key=lambda n: _attack_sort((n, None, None)),
    )
    cols += [_median_column(name) for name in with_median]
    sigmas = sorted({s for r in rows for s in r.certification})
    for sigma in sigmas:
        radii = sorted({rad for r in rows if sigma in r.certification for rad, _ in r.certification[sigma].curve})
        cols += [_cert_column(sigma, radius) for radius in headline_radii(radii, threat.l2_eps)]
    cols += [_acr_column(sigma) for sigma in sigmas]
    cols += [
        Column("flags", "flags", "text", lambda r: "; ".join(r.flags) or None, "warnings the battery raised"),
        Column("n_test", "n", "int", lambda r: r.n_test, "test points evaluated"),
        Column("profile", "profile", "text", lambda r: r.profile, "attack settings: quick or full"),
        Column("train_seconds", "train s", "seconds", lambda r: r.train_seconds, "training time of the model"),
        Column("eval_seconds", "eval s", "seconds", lambda r: r.eval_seconds, "run time without training"),
        Column("date", "date", "text", lambda r: r.date, "when the run finished (UTC)"),
        Column("config_hash", "config", "text", lambda r: r.config_hash, "hash of defense, dataset and config"),
        Column("git_commit", "commit", "commit", lambda r: r.commit, "source commit (full hash in the CSV)"),
        Column("run", "run", "text", lambda r: r.run, "run id: results/<run>/summary.json"),
        Column("notes", "notes", "text", lambda r: "; ".join(r.notes) or None, "what the summary lacked"),
    ]
    return cols


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


def build_boards(summaries: list[Summary]) -> list[Board]:
    """Group runs into boards (dataset x threat model), newest run per config, sorted rows."""
    groups: dict[tuple[str, ThreatKey], list[Summary]] = {}
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


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


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
        f"# Leaderboard: {board.dataset} ({board.threat.label()})",
        "",
        "Accuracies are fractions of the evaluated test points; robust = per-sample worst case over every attack "
        "at the headline budget. ⚠ marks defenses the evaluation flagged (e.g. gradient masking): their robust "
        "accuracy may only reflect hidden gradients. Latest run per defense and config hash; "
        "regenerate with `bench report`.",
    ]
    others = [b for b in siblings if b.dataset == board.dataset and b.slug != board.slug]
    if others:
        links = ", ".join(f"[{b.threat.label()}]({b.slug}.md)" for b in others)
        lines += ["", f"Other threat models for {board.dataset} (separate tables, never mixed): {links}."]
    lines += ["", markdown_table(board).rstrip("\n")]
    flagged = [r for r in board.rows if r.flags]
    if flagged:
        lines += ["", "## Flags", ""]
        lines += [f"- ⚠ **{r.defense}** (`{r.run}`): " + _md_cell("; ".join(r.flags)) for r in flagged]
    noted = [r for r in board.rows if r.notes]
    if noted or board.superseded:
        lines += ["", "## Notes", ""]
        lines += [f"- `{r.run}`: " + _md_cell("; ".join(r.notes)) for r in noted]
        if board.superseded:
            runs = ", ".join(f"`{r.path}`" for r in board.superseded)
            lines.append(f"- {len(board.superseded)} older run(s) with the same config hash not shown: {runs}")
    if plot_files:
        lines += ["", "## Plots", ""]
        lines += [f"![{title}]({filename})" for filename, title in plot_files]
    return "\n".join(lines) + "\n"
