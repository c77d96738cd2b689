"""Leaderboard columns: what each column shows, taken from a run, and how its numbers are written.

Every number is formatted here, once, so Markdown, CSV and HTML agree and
regenerate byte-for-byte. Attack columns use the attack registry's canonical
names and titles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..attacks.registry import AUTOATTACK, CW_L2, FGSM, FMN_L2, FMN_LINF, PGD_L2, PGD_LINF, SQUARE, TRANSFER_ATTACK, get_attack
from .load import AttackResult, Run, ThreatKey, fmt_number

# Columns for these attacks come in this order; others (defense-specific ones) follow alphabetically.
ATTACK_ORDER = (AUTOATTACK, FGSM, PGD_LINF, PGD_L2, CW_L2, SQUARE, TRANSFER_ATTACK, FMN_LINF, FMN_L2)
MAX_RADII = 6  # more certified radii than this: show a headline subset (the plots show all)
MISSING = "—"




@dataclass(frozen=True)
class Column:
    """One leaderboard column: CSV key, display header, kind of value, and how to get it from a run."""

    key: str
    header: str
    kind: str  # "int", "frac", "norm", "seconds", "commit" or "text"
    get: Callable[[Run], Any]
    help: str = ""

    def raw(self, row: Run) -> Any:
        return self.get(row)

    def text(self, row: Run) -> str:
        """The cell as Markdown and HTML show it."""
        return format_value(self.kind, self.get(row))

    def csv(self, row: Run) -> str:
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



def headline_radii(radii: list[float], l2_eps: Optional[float]) -> list[float]:
    """All certified radii if there are few; else evenly spaced ones plus the threat model's L2 eps."""
    if len(radii) <= MAX_RADII:
        return radii
    step = (len(radii) - 1) / (MAX_RADII - 2)
    chosen = {radii[round(i * step)] for i in range(MAX_RADII - 1)}
    chosen.update(r for r in radii if l2_eps is not None and math.isclose(r, l2_eps))
    return sorted(chosen)


def attack_title(name: str) -> str:
    """The registry's display title of an attack (its canonical name when it has none or is unknown)."""
    try:
        return get_attack(name).display
    except KeyError:
        return name


def _attack_column(name: str, norm: Optional[str], eps: Optional[float]) -> Column:
    budget = " ".join(x for x in (norm or "", "" if eps is None else fmt_number(eps)) if x)
    title = attack_title(name)

    def get(row: Run) -> Optional[float]:
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
    def get(row: Run) -> Optional[float]:
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
    def get(row: Run) -> Optional[float]:
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
    def get(row: Run) -> Optional[float]:
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


def columns_for(rows: list[Run], threat: ThreatKey, ranks: list[int]) -> list[Column]:
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
