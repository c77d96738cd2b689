"""One page per defense: every attack with its n and interval, the flags in full with what to do, certification
up to the largest certifiable radius, the config and provenance, and the defense's plots.

Written as ``doc`` blocks, rendered to ``leaderboards/<board>/<run>.md`` and
to the defense's section of ``index.html``.
"""
from __future__ import annotations

import json
from typing import Optional

from ..attacks.registry import attack_names
from .advice import advise
from .doc import Block, Bullets, Code, Heading, Image, Link, Para, Small, Strong, Table
from .headline import Cell
from .keys import fmt_number
from .load import Certification, Run
from .samples import accuracy_interval, certified_accuracy, mean_interval, radius_values
from .tables import Board

RADIUS_STEP = 0.25


def _num(value: Optional[float], digits: int = 3) -> str:
    if value is None:
        return "—"
    return "∞" if value == float("inf") else f"{value:.{digits}f}"


def _interval(ci: Optional[tuple[float, float]]) -> str:
    return "—" if ci is None else f"[{_num(ci[0])}, {_num(ci[1])}]"


def figure(label: str, cell: Cell) -> list:
    """``label 0.818 [0.793, 0.841], n = 1000`` as inline parts."""
    extra = ", ".join(x for x in (cell.interval_text, f"n = {cell.n}" if cell.n is not None else "") if x)
    return [f"{label} ", Strong(cell.text)] + ([" ", Small(extra)] if extra else [])


def _attack_order(row: Run) -> list[str]:
    known = attack_names()
    return sorted(row.attacks, key=lambda n: (known.index(n) if n in known else len(known), n))


def _attacks_table(row: Run) -> Table:
    rows = []
    for name in _attack_order(row):
        a = row.attacks[name]
        rows.append([name, a.kind or "—", a.norm or "—", fmt_number(a.eps) if a.eps is not None else "—",
                     _num(a.accuracy), _interval(accuracy_interval(a.accuracy, a.n, a.interval)),
                     str(a.n) if a.n is not None else "—", _num(a.median_norm), _num(a.seconds, 1)])
    return Table(["attack", "kind", "norm", "eps", "accuracy", "95% interval", "n", "median min ‖δ‖", "seconds"],
                 rows, [False, False, False, True, True, True, True, True, True])


def _worst_case(row: Run) -> list[Block]:
    rows = [[norm, fmt_number(e["eps"]) if e["eps"] is not None else "—", _num(e["accuracy"]),
             _interval(accuracy_interval(e["accuracy"], row.n_test, e.get("interval"))), str(row.n_test or "—"),
             ", ".join(e["attacks"])] for norm, e in sorted(row.robust_by_norm.items())]
    if not rows:
        return []
    return [Table(["threat model", "eps", "robust (worst case)", "95% interval", "n", "over the attacks"], rows,
                  [False, True, True, True, True, False])]


def _sweeps(row: Run, level: int) -> list[Block]:
    blocks: list[Block] = []
    for name, sweep in sorted(row.sweeps.items()):
        blocks.append(Para(f"{name} ({sweep.norm or 'norm not recorded'}), on n = {sweep.n or '?'} points:"))
        blocks.append(Table(["eps", "accuracy", "95% interval"],
                            [[fmt_number(e), _num(a), _interval(accuracy_interval(a, sweep.n))] for e, a in sweep.points],
                            [True, True, True]))
    return ([Heading(level, "Accuracy as eps grows")] + blocks) if blocks else []


def _radii(cert: Certification) -> list[float]:
    """0, 0.25, 0.5, ... up to the largest certifiable radius, and that radius itself."""
    top = cert.max_radius if cert.max_radius is not None else max((r for r, _ in cert.curve), default=0.0)
    grid = [k * RADIUS_STEP for k in range(int(top / RADIUS_STEP + 1e-9) + 1)]
    return grid + ([top] if cert.max_radius is not None and grid[-1] < top - 1e-9 else [])


def _certification(row: Run, level: int) -> list[Block]:
    blocks: list[Block] = []
    for sigma, cert in row.certification.items():
        values = radius_values(cert)
        acr = Cell(cert.average_radius, mean_interval(values) if values else None, cert.points)
        facts = [f"σ = {fmt_number(sigma)}: ", *figure("average certified radius", acr),
                 f"; {cert.samples or '?'} noise samples per point (α = {cert.alpha if cert.alpha is not None else '?'}),"
                 f" abstain rate {_num(cert.abstain_rate)}."]
        blocks.append(Para(facts))
        rows = [[f"{fmt_number(r)}" + (" (largest certifiable)" if cert.max_radius is not None and abs(
            r - cert.max_radius) < 1e-9 else ""), _num(acc := certified_accuracy(cert, r)),
                 _interval(accuracy_interval(acc, cert.points))] for r in _radii(cert)]
        blocks.append(Table(["L2 radius", "certified accuracy", "95% interval"], rows, [True, True, True]))
        if cert.max_radius is not None:
            blocks.append(Para(f"Nothing can be certified beyond r = {fmt_number(cert.max_radius)} with "
                               f"{cert.samples} samples at α = {cert.alpha}: the table and the curve stop there "
                               "(more samples, the full profile, certify larger radii)."))
        if cert.radii is None:
            blocks.append(Para("Per-point records not found: values from the summary's fixed radii."))
    if not blocks:
        return []
    return [Heading(level, "Certification (randomized smoothing, Cohen et al. 2019)")] + blocks


def _deterministic(row: Run, level: int) -> list[Block]:
    block = row.deterministic
    if block is None:
        return []
    if block.get("applicable") is False:
        text = f"Not applicable: {block.get('reason') or 'no reason given'}."
    else:
        curve = block.get("certified_accuracy") or {}
        at = ", ".join(f"{k}: {_num(v)}" for k, v in sorted(curve.items(), key=lambda kv: float(kv[0])))
        text = (f"Mean certified L2 radius {_num(block.get('mean_radius'))} on n = {block.get('n', '?')} points "
                f"(bound: {block.get('bound') or '?'}); certified accuracy by radius: {at or '—'}.")
    return [Heading(level, "Deterministic certification"), Para(text)]


def _representation(row: Run, level: int) -> list[Block]:
    block = row.representation
    if block is None:
        return []
    if block.get("applicable") is False:
        text = f"Not measured: {block.get('reason') or 'no reason given'}."
    else:
        settings = block.get("settings") or {}
        mi = settings.get("mi") or {}
        text = (f"Clean MI {_num(block.get('clean_mi'))} nats, worst-case MI {_num(block.get('worst_case_mi'))} nats "
                f"within L-inf eps {_num(block.get('eps'))}: vulnerability {_num(block.get('vulnerability'))} nats "
                f"(Zhu, Zhang & Evans 2020; {mi.get('bound', '?')} bound, {block.get('n_fit', '?')} fit / "
                f"{block.get('n_eval', '?')} held-out points, {settings.get('rounds', '?')} rounds, "
                f"{mi.get('steps', '?')} critic steps; profile {block.get('profile') or '?'}).")
        if block.get("clean_mi_spread") is not None:
            text += (f" The clean estimate spans {_num(block['clean_mi_spread'])} nats over critic seeds: a smaller "
                     "vulnerability is within the estimator's noise.")
    return [Heading(level, "Representation vulnerability"), Para(text)]


def _flags(row: Run, level: int, anchor: str) -> list[Block]:
    blocks: list[Block] = [Heading(level, f"Flags ({len(row.flags)})", anchor)]
    if not row.flags:
        return blocks + [Para("None: the battery's checks found no sign of gradient masking or an unconverged attack.")]
    for k, flag in enumerate(row.flags, 1):
        advice = advise(flag)
        blocks.append(Para([Strong(f"⚠ {k}. {advice.title}."), " ", flag]))
        blocks.append(Bullets([f"What it means: {advice.meaning}", f"What to do: {advice.action}"]))
    if row.flag_notes:  # within noise, or not moving the headline figure: not marked on the row
        blocks.append(Para([Strong(f"Notes ({len(row.flag_notes)})."), " Within noise or not "
                            "affecting the robust accuracy; worth knowing:"]))
        blocks.append(Bullets(list(row.flag_notes)))
    return blocks


def _provenance(row: Run, level: int) -> list[Block]:
    prov, model = row.provenance, row.model
    packages = prov.get("packages") if isinstance(prov.get("packages"), dict) else {}
    items = [f"run: {row.directory} (results/{row.path})", f"config hash: {row.config_hash or '—'}",
             f"seed: {prov.get('seed', '—')}; device: {prov.get('device', '—')}; date: {row.date or '—'}",
             f"source commit: {row.commit or '—'}"]
    if model is not None:
        items.append(f"model: {model.card or model.source or '—'} (sha256 {model.sha256 or '—'})")
    if packages:
        items.append("packages: " + ", ".join(f"{k} {v}" for k, v in sorted(packages.items()) if v))
    return [Heading(level, "Config and provenance"), Bullets(items),
            Code(json.dumps(row.config, indent=2, sort_keys=True, default=str))]


def detail_blocks(board: Board, i: int, png: Optional[bytes], level: int = 1, html_home: str = "") -> list[Block]:
    """The page of row ``i`` of ``board``; headings start at ``level`` (1 on its own page)."""
    row = board.rows[i]
    cols = {c.key: c.cell(row) for c in board.columns}
    anchor = board.anchor(row)
    blocks: list[Block] = [
        Heading(level, f"#{board.ranks[i]} {board.label(row)}: {board.title}", anchor),
        Para([Link("← leaderboard", f"../{board.slug}.md", html_home or f"#board-{board.slug}"),
              f" · {board.settings.label()} · profile settings and subsets in the attacks table"], cls="meta"),
        Para(figure("clean", cols["clean"]) + ["; "] + figure("robust (worst case)", cols["robust"])),
    ]
    if i and board.tie_p[i] is not None:
        above = board.rows[i - 1]
        verdict = "cannot be told apart from" if board.tied(i) else "differs significantly from"
        blocks.append(Para(f"{verdict.capitalize()} #{board.ranks[i - 1]} {board.label(above)} above: McNemar's "
                           f"exact test on per-sample robustness at the same {row.n_test} points, "
                           f"p = {board.tie_p[i]:.3g}."))
    blocks += _flags(row, level + 1, f"{anchor}-flags")
    blocks += [Heading(level + 1, "Attacks"), _attacks_table(row)] + _worst_case(row)
    blocks += _sweeps(row, level + 1) + _certification(row, level + 1) + _deterministic(row, level + 1)
    blocks += _representation(row, level + 1)
    if png:
        blocks += [Heading(level + 1, "Plots"), Image(f"{board.stem(row)}.png",
                                                      f"{board.label(row)}: accuracy vs eps and certified accuracy "
                                                      "vs radius", png)]
    notes = row.run_notes + row.notes
    if notes:
        blocks += [Heading(level + 1, "Notes"), Bullets(notes)]
    return blocks + _provenance(row, level + 1)
