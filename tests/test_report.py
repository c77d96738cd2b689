"""The reporter: boards per dataset and threat model, tolerant loading, byte-for-byte regeneration."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import run_cli

from bench.schema import SCHEMA_VERSION
from bench.report import build_boards, load_summaries, regeneration_diff, write_report
from report_synthetic import COMMIT, standard_set, summary, write_results

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("results"), standard_set())


@pytest.fixture(scope="module")
def written(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("leaderboards")
    return out, write_report(results, out)


def _board(report, slug):
    return next(b for b in report.boards if b.slug == slug)


def test_boards_never_mix_datasets_or_threat_models(written):
    out, report = written
    slugs = [b.slug for b in report.boards]
    assert slugs == ["cifar10", "mnist5k", "mnist5k-linf-0.1-l2-2", "mnist5k-threat-unrecorded"]
    for board in report.boards:
        assert {r.dataset for r in board.rows} == {board.dataset}
        assert {r.threat for r in board.rows} == {board.threat}
        assert (out / f"{board.slug}.md").is_file() and (out / f"{board.slug}.csv").is_file()
    assert _board(report, "mnist5k-linf-0.1-l2-2").rows[0].robust == 0.40
    text = (out / "mnist5k.md").read_text()
    assert "(linf eps=0.3, l2 eps=2)" in text and "[linf eps=0.1, l2 eps=2](mnist5k-linf-0.1-l2-2.md)" in text


def test_rows_sorted_by_robust_accuracy_latest_run_per_config(written):
    _, report = written
    board = _board(report, "mnist5k")
    got = [(r.defense, r.config_hash, r.robust) for r in board.rows]
    assert got == [
        ("feature_squeezing", "aaaaaaaaaaa4", 0.95),
        ("trades", "aaaaaaaaaaa3", 0.88),  # tie on robust: higher clean accuracy first
        ("adversarial_training", "aaaaaaaaaaa2", 0.88),
        ("vib", "aaaaaaaaaaa6", 0.30),
        ("vib", "aaaaaaaaaaa5", 0.12),  # the February run of this config, not January's 0.10
        ("plain", "aaaaaaaaaaa1", 0.0),
    ]
    assert board.ranks == [1, 2, 2, 4, 5, 6]
    assert [s.path for s in board.superseded] == ["vib-old/summary.json"]


def test_csv_carries_every_figure_unchanged(written):
    out, _ = written
    runs = standard_set()
    df = pd.read_csv(out / "mnist5k.csv", dtype=str, keep_default_na=False)
    row = df[df["defense"] == "plain"].iloc[0]
    src = runs["mnist5k-plain-aaaaaaaaaaa1-s0"]
    assert float(row["clean_accuracy"]) == src["clean_accuracy"]
    assert float(row["robust_accuracy"]) == src["robust_accuracy"]
    for name, a in src["attacks"].items():
        eps = format(a["eps"], ".4g")
        assert float(row[f"{name}[{a['norm']} {eps}]"]) == a["accuracy"]
    assert float(row["median_norm[fmn-l2]"]) == src["attacks"]["fmn-l2"]["median_norm"]
    assert float(row["median_norm[cw-l2]"]) == src["attacks"]["cw-l2"]["median_norm"]
    for sigma, cert in src["certification"].items():
        for radius, acc in cert["certified_accuracy"].items():
            assert float(row[f"certified[sigma={sigma},r={format(float(radius), '.4g')}]"]) == acc
        assert float(row[f"acr[sigma={sigma}]"]) == cert["average_certified_radius"]
    assert float(row["train_seconds"]) == 12.5 and float(row["eval_seconds"]) == 30.25 - 12.5
    assert row["git_commit"] == COMMIT and row["config_hash"] == "aaaaaaaaaaa1"
    assert row["date"] == "2026-01-01T00:00:00+00:00" and row["n_test"] == "100"
    # autoattack is present as its own column; absent certification is blank, not zero
    fs = df[df["defense"] == "feature_squeezing"].iloc[0]
    assert fs["autoattack[linf 0.3]"] == "0.95" and fs["acr[sigma=0.25]"] == ""
    assert "gradient masking" in fs["flags"]


def test_markdown_marks_flags_and_formats_numbers(written):
    out, _ = written
    text = (out / "mnist5k.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in table[0].strip("|").split(" | ")]
    for needed in ("clean", "robust (worst case)", "AutoAttack (linf 0.3)", "pgd-l2 (l2 2)", "median ‖δ‖_l2 (fmn-l2)",
                   "certified r=0.5 (σ=0.25)", "ACR (σ=0.5)", "flags", "train s", "eval s", "date", "config", "commit"):
        assert needed in header, needed
    assert table[1].startswith("| 1 | ⚠ feature_squeezing | 0.990 | 0.950 |")
    assert "\\| non-converged" in table[1]  # a pipe inside a flag does not break the table
    assert "## Flags" in text and "![Clean vs robust accuracy](plots/mnist5k-clean-vs-robust.png)" in text
    assert sum(1 for line in table[1:] if "⚠" in line) == 1


def test_old_schema_and_unreadable_files_are_reported_not_fatal(written, results):
    out, report = written
    assert report.warnings == [
        "broken-json/summary.json: unreadable (invalid JSON); skipped",
        "no-dataset/summary.json: no dataset; skipped",
    ]
    old = _board(report, "mnist5k-threat-unrecorded").rows[0]
    assert old.defense == "distillation"
    assert f"no schema version (reporter reads {SCHEMA_VERSION})" in old.notes
    assert "missing seconds, threat_model, model" in old.notes
    md = (out / "mnist5k-threat-unrecorded.md").read_text()
    assert "threat model not recorded" in md and "no schema version" in md
    page = (out / "index.html").read_text()
    assert "broken-json/summary.json: unreadable" in page and "no schema version" in page


def test_accepts_both_sweep_shapes_and_odd_values(tmp_path):
    a = summary("a", 0.9, 0.5, sweep=[0.9, 0.7, 0.5], config_hash="c1")
    b = summary("b", 0.9, 0.6, sweep=[0.9, 0.8, 0.6], sweep_as_mapping=True, config_hash="c2")
    b["clean_accuracy"] = "0.9"  # a number written as a string still reads
    b["attacks"]["fgsm"]["accuracy"] = None
    b["flags"] = "one flag as a bare string"
    b["certification"] = {"0.25": {"certified_accuracy": "garbage"}}
    write_results(tmp_path, {"a": a, "b": b})
    runs, warnings = load_summaries(tmp_path)
    assert warnings == []
    by = {r.defense: r for r in runs}
    assert by["a"].sweeps["pgd-linf"] == ("linf", [(0.0, 0.9), (0.1, 0.7), (0.2, 0.5)])
    assert by["b"].sweeps["pgd-linf"] == ("linf", [(0.0, 0.9), (0.1, 0.8), (0.2, 0.6)])
    assert by["b"].clean == 0.9 and by["b"].flags == ["one flag as a bare string"]
    assert "attack fgsm has no accuracy" in by["b"].notes
    assert "certification at sigma 0.25 unreadable" in by["b"].notes
    [board] = build_boards(runs)
    assert [r.defense for r in board.rows] == ["b", "a"]


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return chunks


def test_regeneration_is_byte_for_byte(written, results, tmp_path):
    out, _ = written
    # the same summaries copied in another order, with other mtimes: identical bytes
    shuffled = tmp_path / "results"
    for name in sorted((p.name for p in results.iterdir()), reverse=True):
        shutil.copytree(results / name, shuffled / name)
    again = write_report(shuffled, tmp_path / "again")
    first = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path / "again").as_posix(): p.read_bytes() for p in again.files}
    assert first.keys() == second.keys() and len(first) >= 10
    for name in first:
        assert first[name] == second[name], name
    for name, data in first.items():
        if name.endswith(".png"):
            assert b"tEXt" not in _png_chunks(data) and b"tIME" not in _png_chunks(data), name
        else:
            assert not re.search(rb"generated (at|on)", data), name


def test_html_is_self_contained_sortable_and_marks_flags(written):
    out, report = written
    page = (out / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", page), "the page must not need the network"
    assert not re.search(r"<(link|script)[^>]*\b(src|href)=", page)
    assert page.count('<table class="board"') == len(report.boards)
    assert "addEventListener('click'" in page and "function sortTable" in page
    assert page.count('data-type="num"') > 10 and "data-v=" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    plot_files = sorted((out / "plots").glob("*.png"))
    assert len(images) == len(plot_files) == 7
    assert sorted(base64.b64decode(i) for i in images) == sorted(p.read_bytes() for p in plot_files)
    flagged = re.findall(r'<tr data-i="\d+" class="flagged" title="flagged: ([^"]*)">', page)
    assert flagged == ["single-step beats iterative: fgsm breaks 12 samples that pgd-linf does not "
                       "(gradient masking | non-converged)"]
    assert '<span class="flag-mark" title="single-step beats iterative' in page


def test_plots_show_the_data(written):
    out, _ = written
    import matplotlib.image

    names = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert "mnist5k-robust-vs-eps-pgd-linf.png" in names
    assert {"mnist5k-certified-sigma-0.25.png", "mnist5k-certified-sigma-0.5.png"} <= set(names)
    img = matplotlib.image.imread(io.BytesIO((out / "plots" / "mnist5k-clean-vs-robust.png").read_bytes()))
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert (img[..., :3].std(axis=(0, 1)) > 0.05).all()  # not a blank canvas


def test_cli_report(results, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "report", "--results", str(results), "--out", str(tmp_path / "lb"))
    assert code == 0
    assert str(tmp_path / "lb" / "index.html") in out.splitlines()
    assert "bench: warning: broken-json/summary.json: unreadable (invalid JSON); skipped" in err
    code, out, err = run_cli(monkeypatch, capsys, "report", "--results", str(tmp_path / "nowhere"))
    assert code == 2
    assert err.count("\n") == 1 and "nowhere" in err and "valid choices" in err


def _mpl_skip(committed: Path) -> tuple[str, ...]:
    """PNG bytes depend on matplotlib's version: compare them only under the version that drew them."""
    import matplotlib

    page = (committed / "index.html").read_text(encoding="utf-8")
    meta = re.search(r'name="generator" content="bench report; matplotlib ([^"]+)"', page)
    return () if meta is not None and meta.group(1) == matplotlib.__version__ else (".png", ".html")


def test_regeneration_diff_finds_stale_files(results, written):
    out, _ = written
    committed = Path(str(out) + "-copy")
    shutil.copytree(out, committed)
    assert regeneration_diff(results, committed) == []
    (committed / "mnist5k.csv").write_bytes((committed / "mnist5k.csv").read_bytes().replace(b"0.95", b"0.96"))
    (committed / "extra.md").write_text("x")
    (committed / "cifar10.md").unlink()
    assert regeneration_diff(results, committed) == [
        "cifar10.md: not committed", "extra.md: not made by bench report", "mnist5k.csv: differs",
    ]


def test_committed_leaderboards_regenerate_byte_for_byte():
    """When the repository ships leaderboards/ and results/, `bench report` must reproduce them exactly."""
    committed, results = REPO / "leaderboards", REPO / "results"
    if not (committed / "index.html").is_file() or not results.is_dir():
        pytest.skip("no committed leaderboards on this branch")
    assert regeneration_diff(results, committed, skip_suffixes=_mpl_skip(committed)) == []


def test_bench_run_refreshes_the_leaderboard(bench_home, monkeypatch):
    """`bench run` hands its summary to the reporter; the summary is a real one from
    `bench run --defense plain --n-test 100` (training it here would cost ~40 s of the suite)."""
    from click.testing import CliRunner

    import bench.pipeline
    from bench.cli import main

    raw = json.loads((REPO / "tests" / "data" / "report_real_plain_summary.json").read_text())

    def fake_pipeline(opts, log=print):
        assert opts.defense == "plain"
        path = bench_home / "results" / raw["provenance"]["run_id"] / "summary.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(raw))
        return raw

    monkeypatch.setattr(bench.pipeline, "run", fake_pipeline)
    result = CliRunner().invoke(main, ["run", "--defense", "plain", "--n-test", "100"])
    assert result.exit_code == 0, result.output
    md = (bench_home / "leaderboards" / "mnist5k.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 1 | plain"))
    assert f"| {raw['clean_accuracy']:.3f} | {raw['robust_accuracy']:.3f} |" in row
    assert f"| {raw['attacks']['pgd-linf']['accuracy']:.3f} |" in row
    assert raw["provenance"]["config_hash"] in row and raw["provenance"]["git_commit"][:12] in row
    page = (bench_home / "leaderboards" / "index.html").read_text()
    assert 'id="table-mnist5k"' in page and "data:image/png;base64," in page
    runs, warnings = load_summaries(bench_home / "results")
    assert warnings == [] and runs[0].notes == []  # today's runner writes every key the reporter expects


def test_headline_radii_thin_out_long_grids():
    from bench.report.columns import headline_radii

    grid = [i * 0.25 for i in range(9)]  # 0 .. 2
    assert headline_radii(grid[:6], 2.0) == grid[:6]
    assert headline_radii(grid, 2.0) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert headline_radii(grid, 0.75) == [0.0, 0.5, 0.75, 1.0, 1.5, 2.0]  # the threat model's L2 eps is kept
