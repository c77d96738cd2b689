"""What the commands print: the run's table of results and certification lines (stdout)."""
from __future__ import annotations

from typing import Any, Optional


def certification_lines(summary: dict[str, Any], only: Optional[tuple[float, ...]] = None) -> list[str]:
    """One line per sigma: certified accuracy at r = 0, 0.25, 0.5, 1.0 and the average certified radius."""
    lines = []
    for key, block in sorted((summary.get("certification") or {}).items(), key=lambda kv: float(kv[0])):
        if only is not None and float(key) not in only:
            continue
        curve = block.get("certified_accuracy", {})
        at = "  ".join(f"r={r}:{curve.get(r, 0.0):.3f}" for r in ("0.0", "0.25", "0.5", "1.0"))
        lines.append(
            f"  {'certified (sigma ' + key + ')':<34}{at}  ACR={block.get('average_certified_radius', 0.0):.3f}"
            f"  abstain={block.get('abstain_rate', 0.0):.3f}  (n={block.get('n')}, {block.get('n_test')} points)"
        )
    return lines


def summary_table(summary: dict[str, Any], results: Optional[str] = None) -> str:
    """The run's figures as a short table: clean, every attack (with its n when on a subset), worst case, flags,
    and where the summary is (``results``, a path the user can paste; else the run id)."""
    lines = [
        f"{summary['defense']} on {summary['dataset']} ({summary['n_test']} test points, {summary['seconds']:.1f} s)",
        f"  {'clean accuracy':<34}{summary['clean_accuracy']:.3f}",
    ]
    for name, a in summary["attacks"].items():
        subset = f", n={a['n']}" if a.get("n", summary["n_test"]) < summary["n_test"] else ""
        lines.append(f"  {name + ' (' + a['norm'] + ' ' + format(a['eps'], 'g') + subset + ')':<34}{a['accuracy']:.3f}")
    lines.append(f"  {'robust (worst case)':<34}{summary['robust_accuracy']:.3f}")
    lines += certification_lines(summary)
    for flag in summary.get("flags", []):
        lines.append(f"  FLAG: {flag}")
    run = summary.get("provenance", {}).get("run_id")
    if results or run:
        lines.append(f"  results: {results or run + '/summary.json'}")
    return "\n".join(lines)
