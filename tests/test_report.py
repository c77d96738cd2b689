"""The reporter: boards per dataset, threat model and settings, tolerant loading, byte-for-byte regeneration."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import run_cli

from bench import stats
from bench.schema import SCHEMA_VERSION
from bench.report import build_boards, load_summaries, regeneration_diff, write_report
from report_synthetic import COMMIT, standard_set, summary, write_results

REPO = Path(__file__).resolve().parents[1]
CELL = re.compile(r"^(\d+\.\d{3}|∞) (\[(\d+\.\d{3}|∞), (\d+\.\d{3}|∞)\]|\[—\])( n = \d+)?$")
NO_NUMBER = {"—", "not run", "no L2 attack", "not certified", "n/a"}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("results"), standard_set())


@pytest.fixture(scope="module")
def written(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("leaderboards")
    return out, write_report(results, out)


def _board(report, slug):
    return next(b for b in report.boards if b.slug == slug)


def _table(text: str) -> list[list[str]]:
    """The first Markdown table of a page, as stripped cells (header first, alignment row dropped)."""
    block = []
    for line in text.splitlines():
        if line.startswith("|"):
            block.append(line)
        elif block:
            break
    rows = [re.split(r"(?<!\\) \| ", line.strip().strip("|").strip()) for line in block if not line.startswith("|--")]
    assert rows, "no table"
    return [[c.strip() for c in row] for row in rows]


def test_boards_never_mix_datasets_threat_models_or_settings(written):
    out, report = written
    slugs = [b.slug for b in report.boards]
    assert slugs == ["cifar10", "mnist5k", "mnist5k-n100-quick-fgsm_pgd-linf", "mnist5k-n50-quick",
                     "mnist5k-linf-0.1-l2-2", "mnist5k-threat-unrecorded"]
    for board in report.boards:
        assert {r.dataset for r in board.rows} == {board.dataset}
        assert {r.threat for r in board.rows} == {board.threat}
        assert {r.settings for r in board.rows} == {board.settings}
        assert (out / f"{board.slug}.md").is_file() and (out / f"{board.slug}.csv").is_file()
    partial = _board(report, "mnist5k-n100-quick-fgsm_pgd-linf")
    assert [r.defense for r in partial.rows] == ["trades"] and partial.settings.attacks == ("fgsm", "pgd-linf")
    assert _board(report, "mnist5k-n50-quick").rows[0].n_test == 50
    text = (out / "mnist5k.md").read_text()
    assert "Evaluated on 100 test points, quick profile, the whole battery." in text
    assert "(never ranked together with this one)" in text and "(mnist5k-n50-quick.md)" in text


def test_evaluation_block_decides_the_settings(tmp_path):
    a = summary("a", 0.9, 0.5, config_hash="c1")
    b = summary("b", 0.9, 0.4, config_hash="c2")
    b["evaluation"] = {"n_test": 100, "profile": "quick", "attacks": ["pgd-linf"]}  # another branch's block
    c = summary("c", 0.9, 0.3, config_hash="c3")
    c["evaluation"] = {"n_test": 100, "profile": "quick"}
    write_results(tmp_path, {"a": a, "b": b, "c": c})
    boards = build_boards(load_summaries(tmp_path)[0])
    assert [[r.defense for r in board.rows] for board in boards] == [["a", "c"], ["b"]]


def test_rows_sorted_latest_run_per_config_and_paired_ties(written):
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
    # robust sets are nested prefixes, so McNemar's exact p is 2 * 0.5^d for d discordant points
    assert board.tie_p[0] is None
    assert board.tie_p[1] == pytest.approx(2 * 0.5 ** 7) and not board.tied(1)  # 95 vs 88 robust points
    assert board.tie_p[2] == 1.0 and board.tied(2)  # the same points robust: a tie
    assert board.tie_p[5] == pytest.approx(2 * 0.5 ** 12) and not board.tied(5)


def test_headline_has_at_most_ten_columns_each_number_with_interval_and_n(written):
    out, report = written
    for board in report.boards:
        rows = _table((out / f"{board.slug}.md").read_text())
        header, body = rows[0], rows[1:]
        assert len(header) <= 10 and header[0] == "#" and header[1] == "defense" and header[-1] == "flags"
        for row in body:
            assert len(row) == len(header)
            for head, cell in zip(header[2:-1], row[2:-1]):
                if cell in NO_NUMBER:
                    continue
                assert CELL.match(cell), (board.slug, head, cell)
                assert (" n = " in cell) != (", n = " in head), (head, cell)  # n once: in the header or the cell
    header = _table((out / "mnist5k.md").read_text())[0]
    assert header[2:5] == ["clean, n = 100", "robust, worst case (L∞ 0.3), n = 100", "AutoAttack (L∞ 0.3), n = 100"]
    assert "deterministic cert. radius" not in " ".join(header)  # no row has one
    cifar = _table((out / "cifar10.md").read_text())
    assert "deterministic cert. radius, n = 100" in cifar[0] and cifar[1][cifar[0].index(
        "deterministic cert. radius, n = 100")].startswith("0.040 [")


def test_headline_figures_and_intervals(written):
    out, _ = written
    rows = _table((out / "mnist5k.md").read_text())
    header, by_name = rows[0], {re.sub(r"\[(.*?)\]\(.*?\)", r"\1", r[1]): r for r in rows[1:]}
    plain = by_name["plain"]
    lo, hi = stats.clopper_pearson(99, 100)
    assert plain[header.index("clean, n = 100")] == f"0.990 [{lo:.3f}, {hi:.3f}]"
    assert plain[0] == "6" and by_name["adversarial_training"][0] == "2 ≈" and by_name["trades"][0] == "2"
    fs = by_name["feature_squeezing"]
    assert fs[-1] == "[⚠ 1](mnist5k/feature_squeezing.md#flags-1)"
    assert fs[1] == "[feature_squeezing](mnist5k/feature_squeezing.md)" and by_name["plain"][-1] == "—"
    # the median's interval comes from per_sample.csv: 99 clean-correct norms 0.5 + k / 1000, k = 0 .. 98
    median = plain[header.index("median min ‖δ‖₂")]
    lo, hi = (float(v) for v in re.search(r"\[(.*?), (.*?)\]", median).groups())
    assert median.startswith("0.500 [") and median.endswith(" n = 99")  # the run's median; n clean-correct points
    assert 0.5 < lo < 0.549 < hi < 0.598  # order-statistic interval around the sample median 0.549 of 0.500..0.598
    acr = plain[header.index("smoothing ACR (σ 0.25), n = 100")]
    assert acr.startswith("0.274 [") and by_name["adversarial_training"][header.index(
        "smoothing ACR (σ 0.25), n = 100")] == "0.384 [—]"  # no per-point records: no interval, and it says so


def test_certified_curve_is_continuous_and_stops_at_the_largest_certifiable_radius(written):
    from bench.report.samples import certified_accuracy, certified_steps

    _, report = written
    cert = next(r for r in _board(report, "mnist5k").rows if r.defense == "plain").certification[0.25]
    assert cert.max_radius == 0.6 and len(cert.radii) == 100
    xs, ys = certified_steps(cert)
    assert xs[:2] == [0.0, 0.006] and xs[-2:] == [pytest.approx(0.57), 0.6] and len(xs) == 97  # to the cap, no further
    assert ys[-1] == 0.0 and ys[0] == 0.95
    for x, y in zip(xs[1:], ys[1:]):  # Cohen et al.: the fraction correct with radius >= r; radius_k = 0.006 k
        assert y == pytest.approx(sum(1 for k in range(1, 96) if k * 0.006 >= x - 1e-12) / 100)
    assert certified_accuracy(cert, 0.3) == pytest.approx(46 / 100)
    assert certified_accuracy(cert, 0.75) is None  # beyond the cap: not reported


def test_detail_page_has_every_attack_the_flags_in_full_and_provenance(written):
    out, report = written
    board = _board(report, "mnist5k")
    for row in board.rows:
        assert (out / board.page(row)).is_file()
    fs = (out / "mnist5k" / "feature_squeezing.md").read_text()
    assert fs.startswith("# #1 feature_squeezing: mnist5k, linf eps=0.3, l2 eps=2")
    assert "## Flags (1)" in fs and "single-step beats iterative" in fs and "What to do:" in fs
    assert "gradient masking: one step beats many" in fs
    attacks = _table(fs[fs.index("## Attacks"):])
    assert attacks[0] == ["attack", "kind", "norm", "eps", "accuracy", "95% interval", "n", "median min ‖δ‖",
                          "seconds"]
    assert {r[0] for r in attacks[1:]} == set(summary("x", 1, 1)["attacks"])
    lo, hi = stats.clopper_pearson(95, 100)
    assert ["pgd-linf", "—", "linf", "0.3", "0.950", f"[{lo:.3f}, {hi:.3f}]", "100", "—", "1.5"] in attacks
    assert COMMIT in fs and '"seed": 0' in fs and "[← leaderboard](../mnist5k.md)" in fs
    plain = (out / "mnist5k" / "plain.md").read_text()
    cert = _table(plain[plain.index("σ = 0.25"):])
    assert [r[0] for r in cert[1:]] == ["0", "0.25", "0.5", "0.6 (largest certifiable)"]
    assert "Nothing can be certified beyond r = 0.6 with 1000 samples" in plain
    assert "![plain: accuracy vs eps and certified accuracy vs radius](plain.png)" in plain
    assert (out / "mnist5k" / "plain.png").is_file()


def test_old_alias_of_an_attack_is_one_column(tmp_path):
    s = summary("distillation", 0.95, 0.0, config_hash="c1", attacks={"pgd-linf": 0.9, "pgd-margin-linf": 0.0})
    write_results(tmp_path / "r", {"d": s})
    [run], _ = load_summaries(tmp_path / "r")
    assert set(run.attacks) == {"pgd-linf", "pgd-linf-margin"} and run.attacks["pgd-linf-margin"].accuracy == 0.0
    both = summary("distillation", 0.95, 0.0, config_hash="c1", attacks={"pgd-linf-margin": 0.0, "pgd-margin-linf": 0.1})
    write_results(tmp_path / "r2", {"d": both})
    [run], _ = load_summaries(tmp_path / "r2")
    assert run.attacks["pgd-linf-margin"].accuracy == 0.0 and "pgd-margin-linf" not in run.attacks
    assert any("old name of pgd-linf-margin" in n for n in run.notes)
    frame = pd.read_csv(io.StringIO(write_report(tmp_path / "r", tmp_path / "lb") and
                                    (tmp_path / "lb" / "mnist5k.csv").read_text()))
    assert not any("pgd-margin-linf" in c for c in frame.columns)


def test_csv_carries_every_figure_with_n_and_interval(written):
    out, _ = written
    runs = standard_set()
    df = pd.read_csv(out / "mnist5k.csv", dtype=str, keep_default_na=False)
    row = df[df["defense"] == "plain"].iloc[0]
    src = runs["mnist5k-plain-aaaaaaaaaaa1-s0"]
    assert float(row["clean_accuracy"]) == src["clean_accuracy"] and row["clean_accuracy_n"] == "100"
    assert float(row["clean_accuracy_lo"]) == pytest.approx(stats.clopper_pearson(99, 100)[0], abs=1e-6)
    assert float(row["robust_accuracy"]) == src["robust_accuracy"]
    for name, a in src["attacks"].items():
        eps = format(a["eps"], ".4g")
        assert float(row[f"{name}[{a['norm']} {eps}]"]) == a["accuracy"] and row[f"{name}[{a['norm']} {eps}]_n"] == "100"
    assert float(row["median_norm[fmn-l2]"]) == src["attacks"]["fmn-l2"]["median_norm"]
    assert float(row["acr[sigma=0.5]"]) == src["certification"]["0.5"]["average_certified_radius"]
    assert float(row["certified[sigma=0.25,r=0.25]"]) == pytest.approx(54 / 100)  # from the records
    assert row["certified[sigma=0.25,r=0.75]"] == ""  # beyond the largest certifiable radius 0.6
    assert row["certified[sigma=0.5,r=0.75]"] != ""  # no cap recorded for sigma 0.5: the summary's value
    assert float(row["train_seconds"]) == 12.5 and float(row["eval_seconds"]) == 30.25 - 12.5
    assert row["git_commit"] == COMMIT and row["config_hash"] == "aaaaaaaaaaa1" and row["date"].startswith("2026")
    fs = df[df["defense"] == "feature_squeezing"].iloc[0]
    assert fs["autoattack[linf 0.3]"] == "0.95" and fs["acr[sigma=0.25]"] == "" and fs["flag_count"] == "1"
    assert "gradient masking" in fs["flags"]


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
    write_results(tmp_path, {"a": a, "b": b}, per_sample=False)
    runs, warnings = load_summaries(tmp_path)
    assert warnings == []
    by = {r.defense: r for r in runs}
    assert by["a"].sweeps["pgd-linf"].points == [(0.0, 0.9), (0.1, 0.7), (0.2, 0.5)]
    assert by["b"].sweeps["pgd-linf"].points == [(0.0, 0.9), (0.1, 0.8), (0.2, 0.6)]
    assert by["b"].clean == 0.9 and by["b"].flags == ["one flag as a bare string"]
    assert "attack fgsm has no accuracy" in by["b"].notes
    assert "certification at sigma 0.25 unreadable" in by["b"].notes
    [board] = build_boards(runs)
    assert [r.defense for r in board.rows] == ["b", "a"] and board.tie_p == [None, None]  # no per-sample files


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
    shuffled = tmp_path / "results"  # the same files copied in another order, with other mtimes
    for name in sorted((p.name for p in results.iterdir()), reverse=True):
        shutil.copytree(results / name, shuffled / name)
    again = write_report(shuffled, tmp_path / "again")
    first = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path / "again").as_posix(): p.read_bytes() for p in again.files}
    assert first.keys() == second.keys() and len(first) >= 30
    for name in first:
        assert first[name] == second[name], name
    for name, data in first.items():
        if name.endswith(".png"):
            assert b"tEXt" not in _png_chunks(data) and b"tIME" not in _png_chunks(data), name
        else:
            assert not re.search(rb"generated (at|on)", data), name


def test_html_is_self_contained_sortable_and_links_every_number(written):
    out, report = written
    page = (out / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", page), "the page must not need the network"
    assert not re.search(r"<(link|script)[^>]*\b(src|href)=", page)
    assert page.count('<table class="board"') == len(report.boards)
    assert "addEventListener('click'" in page and "function sortTable" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    pngs = sorted(p.read_bytes() for p in out.rglob("*.png"))
    assert sorted(base64.b64decode(i) for i in images) == pngs and len(pngs) >= 10
    table = page[page.index('id="table-mnist5k"'):]
    table = table[:table.index("</table>")]
    assert len(re.findall(r"<th ", table)) <= 10
    numbers = re.findall(r'<a class="v" href="#(d-mnist5k-[^"]+)">([^<]+)</a><span class="sub">([^<]*)</span>', table)
    assert len(numbers) == len(re.findall(r'<a class="v"', table)) >= 30  # every number: a link, its interval beside
    assert all(f'id="{anchor}"' in page for anchor, _, _ in numbers)
    flagged = re.findall(r'<tr data-i="\d+" class="flagged">', table)
    assert len(flagged) == 1 and 'href="#d-mnist5k-feature_squeezing-flags"' in table
    assert 'id="d-mnist5k-feature_squeezing-flags"' in page


def test_plots_show_the_data(written):
    out, _ = written
    import matplotlib.image

    names = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert "mnist5k-robust-vs-eps-pgd-linf.png" in names
    assert {"mnist5k-certified-sigma-0.25.png", "mnist5k-certified-sigma-0.5.png"} <= set(names)
    img = matplotlib.image.imread(io.BytesIO((out / "plots" / "mnist5k-clean-vs-robust.png").read_bytes()))
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert (img[..., :3].std(axis=(0, 1)) > 0.05).all()  # not a blank canvas


def test_scatter_labels_never_overlap(written):
    from bench.report.plots import clean_vs_robust_figure, style

    _, report = written
    board = _board(report, "mnist5k")
    with style():
        fig = clean_vs_robust_figure(board)
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert len(boxes) == len(board.rows)  # three rows share robust 0.88 or sit near 0: labels still apart
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)


def test_a_board_of_many_runs_keeps_every_legend_entry_on_its_plots(tmp_path):
    """A sweep's home holds dozens of runs: the legend beside a board plot grows the figure instead of being
    cut at the top and squeezing the axes to nothing (matplotlib's 'axes sizes collapsed' warning)."""
    import warnings

    import matplotlib.image

    runs = {}
    for k in range(40):
        s = summary("vib", 0.97, 0.1, config_hash=f"{k:012x}", sweep=[0.97, 0.5, 0.1, 0.0, 0.0],
                    sigmas={"0.25": 0.9})
        runs[s["provenance"]["run_id"]] = s
    from bench.report.plots import board_plots

    board = next(b for b in build_boards(load_summaries(write_results(tmp_path, runs))[0]) if b.slug == "mnist5k")
    assert len(board.rows) == 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots = {p.filename: p.png for p in board_plots(board)}
    for name in ("plots/mnist5k-certified-sigma-0.25.png", "plots/mnist5k-robust-vs-eps-pgd-linf.png"):
        height = matplotlib.image.imread(io.BytesIO(plots[name])).shape[0]
        assert height > 40 * 8 * 1.45 / 72 * 100, name  # every legend line has its height (DPI 100)


def test_spread_keeps_order_and_gap():
    from bench.report.layout import spread

    ys = spread([0.0, 0.0, 0.0, 0.5, 0.9, 1.0], 0.1, -0.02, 1.02)
    assert ys == pytest.approx([-0.02, 0.08, 0.18, 0.5, 0.9, 1.0])  # closed form: only the crowded ones move
    assert spread([0.3, 0.31], 0.1, 0.0, 1.0) == pytest.approx([0.255, 0.355])  # least squares: both move half
    assert spread([1.0, 1.0], 0.1, 0.0, 1.0, tiebreak=[0.9, 0.95]) == pytest.approx([1.0, 0.9])


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
    row = next(line for line in md.splitlines() if line.startswith("| 1 | [plain]"))
    assert f"| {raw['clean_accuracy']:.3f} [" in row and f"| {raw['robust_accuracy']:.3f} [" in row
    detail = next((bench_home / "leaderboards" / "mnist5k").glob("*.md")).read_text()
    assert f"| pgd-linf | — | linf | 0.3 | {raw['attacks']['pgd-linf']['accuracy']:.3f} |" in detail
    assert raw["provenance"]["config_hash"] in detail and raw["provenance"]["git_commit"] in detail
    page = (bench_home / "leaderboards" / "index.html").read_text()
    assert 'id="table-mnist5k"' in page and "data:image/png;base64," in page
    runs, warnings = load_summaries(bench_home / "results")
    assert warnings == [] and runs[0].notes == []  # today's runner writes every key the reporter expects


def test_every_flag_the_battery_writes_has_specific_advice():
    """The openings of bench/attacks/flags.py's sentences, and every committed run's flags, get their own advice."""
    from bench.report.advice import GENERAL, advise

    written = [  # one sentence per check, as flags.py words it
        "single-step beats iterative: fgsm breaks 12 samples that pgd-linf does not",
        "black-box attack square breaks 3 of 100 samples that every white-box linf attack failed on",
        "transfer attack transfer breaks 5 of 100 samples that every white-box linf attack failed on",
        "not converged: pgd-linf with 100 steps x 2 restarts gives 0.875 vs 0.915",
        "cross-entropy PGD is weaker than margin-loss PGD (0.918 vs 0.000)",
        "unbounded attack fmn-l2 found no adversarial example at any size for 4 of 90 clean-correct samples",
        "accuracy does not fall to about 0 at a very large eps: pgd-linf gives 0.375 at L-inf eps 1",
        "accuracy is not monotone in eps: 0.890 at eps 0.2 but 0.915 at eps 0.3",
        "non-finite input gradients (ce loss) on 3 of 200 clean samples",
        "zero input gradients (margin loss) on 6 of 200 clean samples",
        "randomness observed where none was declared: two forwards of the same inputs differ by 0.3",
        "the defense has a detector but no detect_margin: attacks cannot optimise against it jointly",
        "autoattack check: Square Attack has decreased the robust accuracy of 1.00%.",
    ]
    titles = [advise(flag).title for flag in written]
    assert GENERAL.title not in titles and len(set(titles)) == len(titles)
    for summary_file in (REPO / "results").glob("*/summary.json"):
        for flag in json.loads(summary_file.read_text()).get("flags", []):
            message = flag["message"] if isinstance(flag, dict) else flag  # schema 2: {check, severity, message}
            assert advise(message) is not GENERAL, flag
