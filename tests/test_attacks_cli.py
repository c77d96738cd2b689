"""`bench run` end to end through the CLI: every attack of the battery lands in summary.json."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bench

EXPECTED = {
    "fgsm", "pgd-linf", "pgd-linf-margin", "pgd-l2", "cw-l2", "autoattack", "square", "transfer",
    "fmn-l2", "fmn-linf", "pgd-linf-strong",
}


def test_bench_run_reports_every_attack(bench_home):
    # A fresh interpreter, as a user runs it (bench sets its OpenMP policy before torch loads).
    root = Path(bench.__file__).resolve().parent.parent
    env = {**os.environ, "BENCH_HOME": str(bench_home), "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "bench", "run", "--defense", "plain", "--n-test", "10", "--config", "epochs=1",
               "--out", str(bench_home / "run")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "robust (worst case)" in result.stdout
    summary = json.loads((bench_home / "run" / "summary.json").read_text())
    assert EXPECTED <= set(summary["attacks"]), set(summary["attacks"])
    for name, entry in summary["attacks"].items():
        assert entry["norm"] in ("linf", "l2")
        if entry.get("cascade"):  # runs only on the points every earlier attack left robust (maybe none)
            assert entry["n"] == entry["attempted"] <= 10, name
            assert entry["accuracy"] is None if entry["attempted"] == 0 else 0.0 <= entry["accuracy"] <= 1.0
            continue
        assert 0.0 <= entry["accuracy"] <= 1.0, name
        assert entry["n"] == 10, name  # the quick profile's subsets are capped by n-test
    assert summary["attacks"]["cw-l2"]["median_norm"] is None or summary["attacks"]["cw-l2"]["median_norm"] >= 0
    assert summary["attacks"]["fmn-l2"]["norm"] == "l2" and "median_norm" in summary["attacks"]["fmn-l2"]
    sweep = summary["sweeps"]["worst-case"]  # the per-sample worst case over CE and margin PGD at each eps
    assert len(sweep["eps"]) >= 6 and sweep["eps"][0] == 0.0 and sweep["eps"][-1] == 1.0
    assert sweep["eps"] == sorted(sweep["eps"]) and sweep["attacks"] == ["pgd-linf", "pgd-linf-margin"]
    assert isinstance(summary["flags"], list)
    assert summary["battery"]["profile"]["name"] == "quick"
    assert 0.0 <= summary["robust_accuracy"] <= min(a["accuracy"] for a in summary["attacks"].values()
                                                     if a["norm"] == "linf" and not a.get("cascade"))
    # the transfer source came from the zoo in BENCH_HOME, trained with another seed
    cards = list((bench_home / "models" / "mnist5k").glob("plain-*.json"))
    seeds = sorted(json.loads(c.read_text())["config"]["seed"] for c in cards)
    assert seeds == [0, 1]
    # per-sample records exist for every attack and sweep point (the unit of resume)
    records = {p.stem for p in (bench_home / "run" / "records").glob("*.json")}
    assert EXPECTED <= records
    assert any(r.startswith("pgd-linf@") for r in records)

    # an interrupted run (no summary yet, one attack unfinished) resumes: the rest is reloaded
    (bench_home / "run" / "summary.json").unlink()
    (bench_home / "run" / "records" / "cw-l2.json").unlink()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    lines = {line.split()[0]: line for line in again.stderr.splitlines() if line.startswith("  ")}
    assert "reused from records" not in lines["cw-l2"]
    assert all("reused from records" in lines[name] for name in EXPECTED - {"cw-l2"})
    resumed = json.loads((bench_home / "run" / "summary.json").read_text())
    assert resumed["attacks"]["fgsm"]["accuracy"] == summary["attacks"]["fgsm"]["accuracy"]
