"""The `bench` command end to end: bad input, a small run, the model zoo, tampered weights."""
from __future__ import annotations

import json
import sys

import pytest

from cli_helpers import run_cli




@pytest.mark.parametrize(
    "args, bad, choice",
    [
        (["run", "--defense", "nope"], "'nope'", "plain"),
        (["run", "--defense", "plain", "--dataset", "imagenet"], "'imagenet'", "mnist5k"),
        (["run", "--defense", "plain", "--device", "gpu"], "'gpu'", "cpu"),
        (["run", "--defense", "plain", "--eps", "1.5"], "'1.5'", "[0, 1]"),
        (["run", "--defense", "plain", "--eps", "-0.1"], "'-0.1'", "[0, 1]"),
        (["run", "--defense", "plain", "--seed", "abc"], "'abc'", "integer"),
        (["run", "--defense", "plain", "--seed", "-3"], "'-3'", "integer"),
        (["run", "--defense", "plain", "--config", "nope=1"], "'nope'", "epochs"),
        (["run", "--defense", "plain", "--profile", "slow"], "'slow'", "quick"),
    ],
)
def test_bad_input_is_one_line_with_exit_2(monkeypatch, capsys, bench_home, args, bad, choice):
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert bad in lines[0] and choice in lines[0]
    assert not any(bench_home.iterdir()), "a rejected command must write nothing"


def test_defenses_lists_one_per_line(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "defenses")
    assert code == 0
    rows = out.strip().splitlines()
    names = [row.split()[0] for row in rows]
    assert {"plain", "vib", "tight_vib"} <= set(names)
    assert all(len(row.split(maxsplit=1)) == 2 for row in rows), "each line: name then a description"


def test_run_writes_summary_reuses_model_and_refuses_tampered_weights(monkeypatch, capsys, bench_home):
    args = ["run", "--defense", "plain", "--n-test", "10", "--config", "epochs=1", "--seed", "3"]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "clean accuracy" in out and "robust (worst case)" in out

    summaries = list((bench_home / "results").glob("*/summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    for key in ("defense", "dataset", "n_test", "clean_accuracy", "robust_accuracy", "attacks",
                "certification", "flags", "seconds", "provenance"):
        assert key in summary
    assert summary["defense"] == "plain" and summary["dataset"] == "mnist5k" and summary["n_test"] == 10
    assert {"fgsm", "pgd-linf"} <= set(summary["attacks"])
    for attack in summary["attacks"].values():
        assert attack["norm"] in ("linf", "l2")
        if attack.get("cascade") and attack["attempted"] == 0:  # no point was left for it to attack
            assert attack["accuracy"] is None
        else:
            assert 0.0 <= attack["accuracy"] <= 1.0
    assert summary["attacks"]["pgd-linf"]["eps"] == 0.3
    assert 0.0 <= summary["robust_accuracy"] <= min(a["accuracy"] for a in summary["attacks"].values() if not a.get("cascade"))
    assert summary["provenance"]["seed"] == 3 and summary["config"]["seed"] == 3
    assert summary["provenance"]["packages"]["torch"]
    assert summary["model"]["reused"] is False
    assert (summaries[0].parent / "per_sample.csv").exists()
    assert (bench_home / "leaderboards" / "mnist5k.md").read_text().count("| [plain](mnist5k/plain.md) |") == 1

    card_path = bench_home / summary["model"]["card"]
    assert card_path.exists()
    card = json.loads(card_path.read_text())
    assert card["config_hash"] == summary["provenance"]["config_hash"] and card["sha256"] == summary["model"]["sha256"]
    for key in ("defense", "dataset", "config", "config_hash", "clean_accuracy", "sha256", "packages", "date"):
        assert key in card

    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and "reused cached model" in err
    assert json.loads(summaries[0].read_text())["model"]["reused"] is True

    weights = card_path.with_suffix(".pt")
    weights.write_bytes(weights.read_bytes() + b"tampered")
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("bench: error: refusing") and "sha256" in last and "--retrain" in last

    code, out, err = run_cli(monkeypatch, capsys, *args, "--retrain")
    assert code == 0, err
