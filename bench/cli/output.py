"""What the commands print: the run's table of results and certification lines (stdout)."""
from __future__ import annotations

from typing import Any, Optional


def certification_lines(summary: dict[str, Any], only: Optional[tuple[float, ...]] = None) -> list[str]:
    """One line per sigma: certified accuracy at the measured radii up to the largest certifiable one, and the ACR.

    Radii beyond ``max_certifiable_radius`` are not shown: nothing can be certified there at this sample size,
    so a 0 there is the sample size speaking, not the model."""
    lines = []
    for key, block in sorted((summary.get("certification") or {}).items(), key=lambda kv: float(kv[0])):
        if only is not None and float(key) not in only:
            continue
        cap = block.get("max_certifiable_radius")
        curve = sorted((float(r), v) for r, v in (block.get("certified_accuracy") or {}).items()
                       if cap is None or float(r) <= cap + 1e-9)
        at = "  ".join(f"r={r:g}:{v:.3f}" for r, v in curve) + (f"  (max certifiable r={cap:.3f})" if cap else "")
        lines.append(
            f"  {'certified (sigma ' + key + ')':<34}{at}  ACR={block.get('average_certified_radius', 0.0):.3f}"
            f"  abstain={block.get('abstain_rate', 0.0):.3f}  (n={block.get('n')}, {block.get('n_test')} points)"
        )
    return lines


def _with_interval(value: Optional[float], interval: Optional[list]) -> str:
    if value is None:
        return "  —"
    if not interval or interval[0] is None:
        return f"{value:.3f}"
    return f"{value:.3f}  [{interval[0]:.3f}, {interval[1]:.3f}]"


def _attack_label(name: str, a: dict[str, Any], n_test: int) -> str:
    n = a.get("n", n_test)
    if a.get("cascade"):
        scope = f", cascade: broke {a.get('broken', 0)} of {n}"
    else:
        scope = f", n={n}" if n < n_test else ""
    return f"{name} ({a['norm']} {format(a['eps'], 'g')}{scope})"


def summary_table(summary: dict[str, Any], results: Optional[str] = None) -> str:
    """The run's figures with their 95% intervals: clean, every attack (its n, or what a cascade attack
    attempted and broke), the worst case, certification, flags (masking evidence) and notes, and where the
    summary is (``results``, a path the user can paste; else the run id)."""
    labels = {name: _attack_label(name, a, summary["n_test"]) for name, a in summary["attacks"].items()}
    width = max([34, *(len(label) + 2 for label in labels.values())])
    lines = [
        f"{summary['defense']} on {summary['dataset']} ({summary['n_test']} test points, {summary['seconds']:.1f} s)",
        f"  {'':<{width}}accuracy  [95% interval]",
        f"  {'clean accuracy':<{width}}"
        f"{_with_interval(summary['clean_accuracy'], summary.get('clean_accuracy_interval'))}",
    ]
    lines += [f"  {labels[name]:<{width}}{_with_interval(a.get('accuracy'), a.get('interval'))}"
              for name, a in summary["attacks"].items()]
    robust = _with_interval(summary["robust_accuracy"], summary.get("robust_accuracy_interval"))
    lines.append(f"  {'robust (worst case)':<{width}}{robust}")
    lines += certification_lines(summary)
    for flag in summary.get("flags", []):
        severity = flag.get("severity", "masking") if isinstance(flag, dict) else "masking"
        message = flag.get("message", "") if isinstance(flag, dict) else str(flag)
        lines.append(f"  {'FLAG' if severity == 'masking' else 'NOTE'}: {message}")
    run = summary.get("provenance", {}).get("run_id")
    if results or run:
        lines.append(f"  results: {results or run + '/summary.json'}")
    return "\n".join(lines)
