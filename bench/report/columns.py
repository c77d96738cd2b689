"""The CSV: every figure of every row, with its n and 95% interval, for readers who compute.

The headline table shows ten columns; the CSV keeps everything a run
measured (each attack, each certified radius up to the largest certifiable
one, timings, provenance). Numbers are written once here with ``.6g`` so
regeneration is byte-for-byte.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import pandas as pd

from ..attacks.registry import attack_names
from .keys import fmt_number
from .load import Run
from .samples import accuracy_interval, certified_accuracy
from .tables import Board


@dataclass(frozen=True)
class CsvColumn:
    key: str
    get: Callable[[Run], Any]

    def text(self, row: Run) -> str:
        value = self.get(row)
        if value is None:
            return ""
        if isinstance(value, float):
            return format(value, ".6g")
        return str(value)


def _with_interval(key: str, value: Callable[[Run], Optional[float]], n: Callable[[Run], Optional[int]],
                   given: Callable[[Run], Any] = lambda r: None) -> list[CsvColumn]:
    def bound(k: int) -> Callable[[Run], Optional[float]]:
        def get(r: Run) -> Optional[float]:
            ci = accuracy_interval(value(r), n(r), given(r))
            return None if ci is None else ci[k]
        return get

    return [CsvColumn(key, value), CsvColumn(f"{key}_n", n), CsvColumn(f"{key}_lo", bound(0)),
            CsvColumn(f"{key}_hi", bound(1))]


def _attack_columns(rows: list[Run]) -> list[CsvColumn]:
    known = attack_names()
    keys = sorted({(a.name, a.norm, a.eps) for r in rows for a in r.attacks.values()},
                  key=lambda k: (known.index(k[0]) if k[0] in known else len(known), k[0], k[1] or "", k[2] or -1.0))
    cols: list[CsvColumn] = []
    for name, norm, eps in keys:
        def attack(r: Run, name=name, norm=norm, eps=eps):
            a = r.attacks.get(name)
            return a if a is not None and a.norm == norm and a.eps == eps else None

        budget = " ".join(x for x in (norm or "", "" if eps is None else fmt_number(eps)) if x)
        key = f"{name}[{budget}]" if budget else name
        cols += _with_interval(key, lambda r, f=attack: f(r).accuracy if f(r) else None,
                               lambda r, f=attack: f(r).n if f(r) else None,
                               lambda r, f=attack: f(r).interval if f(r) else None)
        if any(attack(r) is not None and attack(r).median_norm is not None for r in rows):
            cols.append(CsvColumn(f"median_norm[{name}]", lambda r, f=attack: f(r).median_norm if f(r) else None))
    return cols


def _certification_columns(rows: list[Run]) -> list[CsvColumn]:
    cols: list[CsvColumn] = []
    for sigma in sorted({s for r in rows for s in r.certification}):
        s = fmt_number(sigma)
        cert = lambda r, sigma=sigma: r.certification.get(sigma)  # noqa: E731
        cols.append(CsvColumn(f"acr[sigma={s}]", lambda r, c=cert: c(r).average_radius if c(r) else None))
        cols.append(CsvColumn(f"max_certifiable_radius[sigma={s}]", lambda r, c=cert: c(r).max_radius if c(r) else None))
        radii = sorted({rad for r in rows if sigma in r.certification for rad, _ in r.certification[sigma].curve})
        for radius in radii:
            cols += _with_interval(f"certified[sigma={s},r={fmt_number(radius)}]",
                                   lambda r, c=cert, x=radius: certified_accuracy(c(r), x) if c(r) else None,
                                   lambda r, c=cert: c(r).points if c(r) else None)
    return cols


def csv_columns(board: Board) -> list[CsvColumn]:
    rows = board.rows
    rank_of = {id(r): (k, p) for r, k, p in zip(rows, board.ranks, board.tie_p)}
    l2 = lambda r: r.robust_by_norm.get("l2") or {}  # noqa: E731
    cols = [CsvColumn("rank", lambda r: rank_of[id(r)][0]), CsvColumn("tie_p_vs_above", lambda r: rank_of[id(r)][1]),
            CsvColumn("defense", lambda r: r.defense), CsvColumn("config_hash", lambda r: r.config_hash),
            CsvColumn("n_test", lambda r: r.n_test), CsvColumn("profile", lambda r: r.profile),
            CsvColumn("attacks_selected", lambda r: " ".join(r.settings.attacks) if r.settings.attacks else None)]
    cols += _with_interval("clean_accuracy", lambda r: r.clean, lambda r: r.n_test, lambda r: r.intervals.get("clean"))
    cols += _with_interval("robust_accuracy", lambda r: r.robust, lambda r: r.n_test,
                           lambda r: r.intervals.get("robust"))
    cols += _with_interval("l2_robust_accuracy", lambda r: l2(r).get("accuracy"), lambda r: r.n_test,
                           lambda r: l2(r).get("interval"))
    cols += _attack_columns(rows) + _certification_columns(rows)
    if any(r.deterministic is not None for r in rows):
        cols.append(CsvColumn("deterministic_mean_radius", lambda r: (r.deterministic or {}).get("mean_radius")))
    if any(r.representation is not None for r in rows):  # Zhu, Zhang & Evans 2020, in nats
        cols += [CsvColumn(f"representation_{k}", lambda r, k=k: (r.representation or {}).get(k))
                 for k in ("clean_mi", "worst_case_mi", "vulnerability", "clean_mi_spread")]
    cols += [
        CsvColumn("flag_count", lambda r: len(r.flags)), CsvColumn("flags", lambda r: "; ".join(r.flags) or None),
        CsvColumn("train_seconds", lambda r: r.train_seconds), CsvColumn("eval_seconds", lambda r: r.eval_seconds),
        CsvColumn("date", lambda r: r.date), CsvColumn("git_commit", lambda r: r.commit),
        CsvColumn("run", lambda r: r.run), CsvColumn("notes", lambda r: "; ".join(r.run_notes + r.notes) or None),
    ]
    return cols


def to_csv(board: Board) -> str:
    cols = csv_columns(board)
    data = {c.key: [c.text(r) for r in board.rows] for c in cols}
    return pd.DataFrame(data, columns=[c.key for c in cols], dtype=object).to_csv(index=False, lineterminator="\n")
