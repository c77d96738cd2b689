"""`bench sweep`: the grid, reuse of finished cells, reading cells back, the paired tests, the page.

Everything but the last test works on synthetic runs written by
``sweep_synthetic`` (the sweep only reads results on disk), so the figures
can be checked against closed forms; the last one runs two real cells
through the command, interrupted and resumed.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from bench.sweep import build_spec
from bench.sweep.analysis import Group, Metric, PairedTest, Stat, holm, paired_test
from bench.sweep.cells import CellRun, Settings, _Expected, mismatch
from bench.sweep.collect import CellData, load_cell

from cli_helpers import run_cli
from sweep_synthetic import write_run

ROOT = Path(__file__).resolve().parents[1]


def test_the_grid_is_every_defense_at_every_value_for_every_seed():
    spec = build_spec("vib,tight_vib", ("beta=1e-4,1e-3", "epochs=1,2"), "0,1", ("samples=1",))
    assert len(spec.cells) == 2 * 2 * 2 * 2
    assert spec.name == "vib-vs-tight_vib-beta-epochs"
    first = spec.cells[0]
    assert (first.defense, first.seed, first.point) == ("vib", 0, (("beta", "1e-4"), ("epochs", "1")))
    assert dict(first.config) == {"beta": 1e-4, "epochs": 1, "samples": 1}
    assert isinstance(dict(first.config)["epochs"], int)
    assert [c.seed for c in spec.cells] == [0] * 8 + [1] * 8  # seed first: whole comparisons finish early
    assert [c.defense for c in spec.cells[:2]] == ["vib", "tight_vib"]


@pytest.mark.parametrize("args, named", [
    (["--grid", "beta="], "'beta='"),
    (["--grid", "beta=x"], "'x'"),
    (["--grid", "beta=1e-3,"], "'1e-3,'"),
    (["--grid", "nokey=1"], "'nokey'"),
    (["--grid", "beta=-1"], "-1"),
    (["--grid", "beta=1e-3,0.001"], "same setting"),
    (["--grid", "seed=1,2"], "--seeds"),
    (["--seeds", "a"], "'a'"),
    (["--seeds", "0,0"], "twice"),
    (["--name", "a/b"], "'a/b'"),
    (["--profile", "nope"], "'nope'"),
    (["--eps", "2"], "'2'"),
])
def test_a_malformed_sweep_is_refused_in_one_line(monkeypatch, capsys, bench_home, args, named):
    code, out, err = run_cli(monkeypatch, capsys, "sweep", "--defense", "vib,tight_vib", *args)
    assert code == 2, err
    assert err.startswith("bench: error:") and err.strip().count("\n") == 0 and named in err
    assert not (bench_home / "results").exists()


@pytest.mark.parametrize("defenses, grid, named", [("vib,nosuch", (), "'nosuch'"),
                                                    ("plain,vib", ("--grid", "beta=1e-3"), "'plain'")])
def test_an_unknown_defense_or_a_key_a_defense_lacks_is_refused(monkeypatch, capsys, bench_home, defenses, grid, named):
    code, _, err = run_cli(monkeypatch, capsys, "sweep", "--defense", defenses, *grid)
    assert code == 2 and err.strip().count("\n") == 0 and named in err and "valid" in err


def _breaks(n: int, value: float, every: int = 0, other: float = 0.0) -> list[float]:
    return [other if every and i % every == 0 else value for i in range(n)]


def test_a_cell_is_read_back_with_its_per_sample_outcomes(tmp_path):
    clean = [i % 5 != 0 for i in range(20)]
    breaks = [0.02 * (i % 10) for i in range(20)]
    summary = write_run(tmp_path / "run", clean=clean, breaks=breaks, subset=list(range(0, 20, 2)))
    cell = load_cell(tmp_path / "run")
    assert cell.values["clean"] == summary["clean_accuracy"] == 0.8
    assert cell.values["robust@0.1"] == summary["sweeps"]["worst-case"]["accuracy"][2]
    assert cell.values["fmn-linf"] == summary["attacks"]["fmn-linf"]["median_norm"]
    assert cell.values["acr"] == 0.5 and cell.headline_eps == 0.3
    assert cell.outcomes["robust@0.1"] == {i: clean[i] and 0.1 < breaks[i] for i in range(0, 20, 2)}
    assert cell.outcomes["robust@0.3"] == {i: clean[i] and 0.3 < breaks[i] for i in range(0, 20, 2)}  # headline records
    assert cell.norms["fmn-linf"] == {i: breaks[i] for i in range(20) if clean[i]} and cell.notes == []


def test_records_that_disagree_with_the_summary_are_left_out_and_said(tmp_path):
    write_run(tmp_path / "run", clean=[True] * 10, breaks=_breaks(10, 0.15), sweep_shift=0.1)
    cell = load_cell(tmp_path / "run")
    assert "robust@0.1" not in cell.outcomes and any("robust@0.1" in note for note in cell.notes)


def test_an_infinite_median_is_read_as_infinite(tmp_path):
    write_run(tmp_path / "run", clean=[True] * 10, breaks=_breaks(10, math.inf, every=3, other=0.1))
    assert load_cell(tmp_path / "run").values["fmn-linf"] == math.inf  # 4 of 10 broken: the median is infinite


def _data(**outcomes) -> CellData:
    return CellData(out=Path("."), headline_eps=0.3, values={}, sweep=[], outcomes=dict(outcomes))


def test_mcnemar_pools_the_discordant_points_of_each_seed():
    a = [_data(robust={i: i < 6 for i in range(10)}), _data(robust={i: i < 4 for i in range(10)})]
    b = [_data(robust={i: False for i in range(10)}), _data(robust={i: False for i in range(10)}),
         _data(robust={i: True for i in range(10)})]  # seed 7 has no partner in a: left out
    test = paired_test(Group("a", (), [0, 1], a), Group("b", (), [0, 1, 7], b), Metric("robust", "robust", "mcnemar"))
    assert (test.a_wins, test.b_wins, test.n_pairs, test.seeds, test.seeds_for_a) == (10, 0, 20, 2, 2)
    assert test.p == pytest.approx(2 * 0.5**10)  # exact two-sided binomial on 10 of 10 discordant points
    assert test.favours == "a"


def test_wilcoxon_on_the_minimal_norms_both_attacks_found():
    a = CellData(Path("."), 0.3, {}, [], norms={"fmn-l2": {i: 1.0 + 0.1 * i for i in range(10)}})
    b = CellData(Path("."), 0.3, {}, [], norms={"fmn-l2": {**{i: 0.5 for i in range(8)}, 8: math.inf, 9: 0.2}})
    b.norms["fmn-l2"].pop(9)  # point 9: b misclassified it clean, so no norm; point 8: b's attack found nothing
    test = paired_test(Group("a", (), [0], [a]), Group("b", (), [0], [b]), Metric("fmn-l2", "l2", "wilcoxon", "norm"))
    assert (test.n_pairs, test.a_wins, test.b_wins) == (8, 8, 0)
    assert test.p == pytest.approx(2 / 2**8)  # exact: all 8 differences positive


def test_holm_adjusts_the_whole_family():
    metric = Metric("robust", "robust", "mcnemar")
    tests = [PairedTest((), "a", "b", metric, 10, 5, 0, 1, 1, 0, p) for p in (0.01, 0.04, 0.03, None)]
    assert holm(tests) == 3
    assert [t.p_holm for t in tests[:3]] == pytest.approx([0.03, 0.06, 0.06], abs=1e-12) and tests[3].p_holm is None


def test_spread_over_seeds():
    stat = Stat((0.5, 0.7, 0.9))
    assert (stat.mean, stat.sd, stat.low, stat.high, stat.n) == (pytest.approx(0.7), pytest.approx(0.2), 0.5, 0.9, 3)
    assert Stat((1.0,)).sd is None and Stat((1.0, math.inf)).mean == math.inf and Stat((1.0, math.inf)).sd is None


def _synthetic_sweep(root: Path) -> tuple:
    """vib vs tight_vib at two betas over 3 seeds: tight_vib survives to eps 0.15 at beta=1e-3 on most points."""
    spec = build_spec("vib,tight_vib", ("beta=1e-4,1e-3",), "0,1,2")
    runs = []
    for k, cell in enumerate(spec.cells):
        stronger = cell.defense == "tight_vib" and dict(cell.point)["beta"] == "1e-3"
        breaks = _breaks(60, 0.15 if stronger else 0.08, every=7 + cell.seed, other=0.04)
        write_run(root / f"run{k}", clean=[i % 11 != 0 for i in range(60)], breaks=breaks, acr=0.4 + 0.01 * cell.seed)
        runs.append(CellRun(cell, root / f"run{k}", False))
    return spec, runs


def test_the_page_states_only_what_the_tests_support(tmp_path):
    from bench.sweep.page import build_experiment, write_experiment

    spec, runs = _synthetic_sweep(tmp_path / "results")
    command = "bench sweep --defense vib,tight_vib --grid beta=1e-4,1e-3 --seeds 0,1,2"
    exp = build_experiment(spec, runs, Settings(n_test=60), command)
    files = write_experiment(exp, tmp_path / "experiments")
    md = (tmp_path / "experiments" / f"{spec.name}.md").read_text()
    assert md.splitlines()[:4] == [f"# Experiment: {spec.name}", "", "```bash", command]
    row = next(line for line in md.splitlines() if line.startswith("| tight_vib | 1e-3 | 3 |"))
    assert "| 0.900 ± 0.000 |" in row and "0.410 ± 0.010" in row  # clean 54 of 60 every seed; ACR 0.40/0.41/0.42
    conclusions = md.split("## Conclusions")[1].split("## Paired tests")[0]
    assert "At beta=1e-3, **tight_vib** beats vib on robust accuracy at eps 0.1" in conclusions
    assert "beta=1e-4" not in conclusions  # identical methods there: nothing is concluded
    # 2 settings x 1 pair x 10 metrics; testable (some point differs): eps 0.1 and the 3 norms at beta=1e-3
    assert "(4 tests)" in conclusions
    html = (tmp_path / "experiments" / f"{spec.name}.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and 'src="plots/' not in html
    before = {f: f.read_bytes() for f in files}
    write_experiment(build_experiment(spec, runs, Settings(n_test=60), command), tmp_path / "experiments")
    assert {f: f.read_bytes() for f in files} == before  # deterministic bytes, plots included


def test_a_finished_run_is_reused_only_with_the_sweeps_settings(tmp_path):
    s = Settings(n_test=10)
    expected = _Expected(s)
    write_run(tmp_path / "same", clean=[True] * 10, breaks=_breaks(10, 0.1))
    assert mismatch(tmp_path / "same", s, expected) is None
    write_run(tmp_path / "full", clean=[True] * 10, breaks=_breaks(10, 0.1), profile="full")
    assert "profile='full'" in mismatch(tmp_path / "full", s, expected)
    write_run(tmp_path / "old", clean=[True] * 10, breaks=_breaks(10, 0.1), schema=1)
    assert "schema=1" in mismatch(tmp_path / "old", s, expected)
    write_run(tmp_path / "small", clean=[True] * 8, breaks=_breaks(8, 0.1))
    expected._size = 1000  # mnist5k's test set, without loading it
    assert "n_test=8" in mismatch(tmp_path / "small", s, expected)
    assert mismatch(tmp_path / "none", s, expected) == "no summary yet"


def test_an_interrupted_sweep_reuses_its_finished_cells(monkeypatch, bench_home):
    from bench.sweep import cells

    calls, lines = [], []

    def fake_run(cell, out, s, log):  # stands in for bench.pipeline.run: writes a finished run
        calls.append(cell.defense)
        if len(calls) == 2:
            raise KeyboardInterrupt
        write_run(out, clean=[True] * 10, breaks=_breaks(10, 0.1), defense=cell.defense)

    monkeypatch.setattr(cells, "run_cell", fake_run)
    spec = build_spec("vib,tight_vib", ("beta=1e-3",), "0")
    with pytest.raises(KeyboardInterrupt):
        cells.run_sweep(spec, Settings(n_test=10), lines.append)
    runs = cells.run_sweep(spec, Settings(n_test=10), lines.append)
    assert calls == ["vib", "tight_vib", "tight_vib"] and [r.reused for r in runs] == [True, False]
    assert runs[0].out.parent == bench_home / "results" and runs[0].out.name.startswith("mnist5k-vib-")
    assert "reused" in lines[-2] and "running" in lines[-1]


@pytest.mark.slow
def test_bench_sweep_end_to_end_resumes_after_an_interrupt(monkeypatch, capsys, bench_home):
    """Two real cells (vib and tight_vib, 1 epoch, 20 points); the second is interrupted, then the rerun
    reuses the first and writes the page."""
    import bench.pipeline as pipeline

    zoo = bench_home / "models" / "mnist5k"
    zoo.mkdir(parents=True)
    for path in (ROOT / "models" / "mnist5k").glob("plain-6418132e4e21.*"):  # the committed transfer source
        shutil.copy(path, zoo / path.name)
    real, calls = pipeline.run, []

    def interrupting(opts, log=print):
        calls.append(opts.defense)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(opts, log)

    monkeypatch.setattr(pipeline, "run", interrupting)
    args = ("sweep", "--defense", "vib,tight_vib", "--grid", "beta=1e-3", "--config", "epochs=1", "--n-test", "20")
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 130, err
    first = next((bench_home / "results").glob("mnist5k-vib-*/summary.json"))
    stamp = first.stat().st_mtime_ns
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert calls == ["vib", "tight_vib", "tight_vib"] and first.stat().st_mtime_ns == stamp
    md = (bench_home / "leaderboards" / "experiments" / "vib-vs-tight_vib-beta.md").read_text()
    assert ("bench sweep --defense vib,tight_vib --grid beta=1e-3 --seeds 0 --config epochs=1 --dataset mnist5k "
            "--profile quick --n-test 20") in md
    assert md.count("| vib | 1e-3 | 1 |") == 1 and md.count("| tight_vib | 1e-3 | 1 |") == 1
    assert md.count("| beta=1e-3 | vib vs tight_vib |") == 10  # every per-sample metric compared
    board = (bench_home / "leaderboards" / "mnist5k.md").read_text()
    assert "[vib](" in board and "[tight_vib](" in board  # the cells are ordinary runs: bench report lists them


def test_a_conclusion_says_when_not_every_seed_agrees():
    from bench.sweep.page import conclusions

    metric = Metric("robust", "robust accuracy", "mcnemar")
    point = (("beta", "1e-3"),)
    groups = [Group(d, point, [0, 1, 2], [], {"robust": Stat((0.5, 0.6, 0.7))}) for d in ("vib", "tight_vib")]
    agreed = PairedTest(point, "vib", "tight_vib", metric, 300, 3, 40, 3, 0, 3, 1e-6, 1e-5)
    split = PairedTest(point, "vib", "tight_vib", metric, 300, 3, 40, 3, 1, 2, 1e-6, 1e-5)
    weak = PairedTest(point, "vib", "tight_vib", metric, 300, 3, 9, 3, 0, 3, 0.01, 0.2)
    assert "Not every seed" not in conclusions([agreed], groups, 1)[0]
    assert "2 of 3 seeds" in conclusions([split], groups, 1)[0] and "Not every seed" in conclusions([split], groups, 1)[0]
    assert conclusions([weak], groups, 1)[0].startswith("No difference")  # p = 0.01 but 0.2 after Holm
