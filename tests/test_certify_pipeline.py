"""Certification records, resume, shards, the summary block, `bench certify` and `bench run`."""
from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
import torch

from bench.certification import (
    CertifySettings,
    certify_points,
    format_key,
    merge_records,
    read_records,
    records_path,
    spread_indices,
    summarize,
)
from bench.certification.certify import records_fingerprint
from cli_helpers import run_cli
from bench.contract import DefendedModel

SETTINGS = CertifySettings(sigma=0.5, n0=100, n=400, alpha=0.01, seed=3)


class Margin(DefendedModel):
    """A 3-class linear classifier on 4x4 inputs that counts its forwards and can be told to fail."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__(num_classes=3)
        self.weight = torch.nn.Parameter(torch.randn(16, 3, generator=torch.Generator().manual_seed(0)))
        self.calls = 0
        self.fail_after = fail_after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt
        return x.reshape(len(x), -1) @ self.weight


@pytest.fixture(scope="module")
def points():
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(12, 1, 4, 4, generator=gen) * 2
    y = torch.randint(0, 3, (12,), generator=gen)
    return x, y


def run_points(model, points, path, indices=range(12), settings=SETTINGS):
    x, y = points
    fp = records_fingerprint(settings, "model-a", "toy")
    # batch of 500 >= n0 + n: exactly one forward per point, so model.calls counts points
    return certify_points(model, x, y, list(indices), settings, records_file=path, fingerprint=fp, batch_size=500)


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["seconds"]).reset_index(drop=True)


def test_interrupted_certification_resumes_only_missing_points(points, tmp_path):
    reference = run_points(Margin(), points, tmp_path / "ref.csv")
    assert len(reference) == 12 and reference["index"].tolist() == list(range(12))

    path = tmp_path / "records" / "certify-sigma0.5.csv"
    with pytest.raises(KeyboardInterrupt):
        run_points(Margin(fail_after=5), points, path)
    partial = read_records(path, records_fingerprint(SETTINGS, "model-a", "toy"))
    assert partial["index"].tolist() == [0, 1, 2, 3, 4], "finished points are on disk after Ctrl-C"

    resumed_model = Margin()
    resumed = run_points(resumed_model, points, path)
    assert resumed_model.calls == 7, "only the 7 missing points are computed"
    pd.testing.assert_frame_equal(comparable(resumed), comparable(reference))

    again = Margin()
    run_points(again, points, path)
    assert again.calls == 0

    other = CertifySettings(sigma=0.5, n0=100, n=400, alpha=0.05, seed=3)  # new fingerprint: nothing reusable
    changed = Margin()
    run_points(changed, points, path, settings=other)
    assert changed.calls == 12


def test_shards_merge_into_one_run(points, tmp_path):
    full = run_points(Margin(), points, tmp_path / "full.csv")
    even = run_points(Margin(), points, tmp_path / "even.csv", indices=range(0, 12, 2))
    odd = run_points(Margin(), points, tmp_path / "odd.csv", indices=range(1, 12, 2))
    pd.testing.assert_frame_equal(comparable(merge_records([odd, even])), comparable(full))


def test_records_have_cohens_columns_and_reread_exactly(points, tmp_path):
    path = records_path(tmp_path, 0.5)
    assert path.name == "certify-sigma0.5.csv"
    records = run_points(Margin(), points, path)
    header = path.read_text().splitlines()[0].split(",")
    assert header[:6] == ["index", "label", "prediction", "radius", "correct", "seconds"]
    reread = read_records(path, records_fingerprint(SETTINGS, "model-a", "toy"))
    pd.testing.assert_frame_equal(reread, records)
    assert ((records["correct"] == 1) == (records["prediction"] == records["label"])).all()
    assert (records.loc[records["prediction"] == -1, "radius"] == 0.0).all()


def test_summary_block_from_records():
    records = pd.DataFrame({
        "index": range(5),
        "label": [0, 1, 2, 3, 4],
        "prediction": [0, 1, 9, -1, 4],
        "radius": [0.3, 0.8, 0.9, 0.0, 0.5],
        "correct": [1, 1, 0, 0, 1],
        "seconds": [0.1] * 5,
        "fingerprint": ["f"] * 5,
    })
    block = summarize(records, SETTINGS).to_dict()
    # correct with radius >= r: r=0 -> 3 of 5; 0.25 -> 3; 0.5 -> 2 (0.8, 0.5); 0.75 -> 1; 1.0 -> 0 (stop)
    assert block["certified_accuracy"] == {"0.0": 0.6, "0.25": 0.6, "0.5": 0.4, "0.75": 0.2, "1.0": 0.0}
    assert block["average_certified_radius"] == pytest.approx((0.3 + 0.8 + 0.5) / 5)  # wrong/abstained count 0
    assert block["abstain_rate"] == pytest.approx(0.2)
    assert (block["n0"], block["n"], block["alpha"], block["n_test"], block["sigma"]) == (100, 400, 0.01, 5, 0.5)
    assert [format_key(v) for v in (0.25, 0.5, 1.0, 0)] == ["0.25", "0.5", "1.0", "0.0"]


def test_spread_indices_cover_a_class_sorted_test_set():
    assert spread_indices(1000, 100)[:3] == [0, 10, 20] and len(spread_indices(1000, 100)) == 100
    assert spread_indices(10, 50) == list(range(10)) and spread_indices(7, None) == list(range(7))
    assert len(set(spread_indices(1000, 300))) == 300


def test_bad_settings_are_refused():
    for kwargs in ({"sigma": 0.0}, {"sigma": -1.0}, {"n": 0}, {"n0": 0}, {"alpha": 1.0}, {"alpha": 0.0}):
        with pytest.raises(ValueError):
            CertifySettings(**{"sigma": 0.25, "n0": 10, "n": 10, "alpha": 0.01, **kwargs})


# -- the command line ------------------------------------------------------------------------




@pytest.mark.parametrize(
    "extra, bad, valid",
    [
        (["--sigma", "0"], "'0'", "> 0"),
        (["--sigma", "-0.5"], "'-0.5'", "> 0"),
        (["--sigma", "inf"], "'inf'", "> 0"),
        (["--sigma", "0.25", "--alpha", "1"], "'1'", "(0, 1)"),
        (["--sigma", "0.25", "--alpha", "0"], "'0'", "(0, 1)"),
        (["--sigma", "0.25", "--n", "0"], "'0'", ">= 1"),
        (["--sigma", "0.25", "--n0", "-3"], "'-3'", ">= 1"),
        (["--sigma", "0.25", "--n-test", "many"], "'many'", ">= 1"),
        (["--sigma", "0.25", "--profile", "paper"], "'paper'", "quick"),
    ],
)
def test_certify_bad_input_is_one_line_with_exit_2(monkeypatch, capsys, bench_home, extra, bad, valid):
    code, out, err = run_cli(monkeypatch, capsys, "certify", "--defense", "plain", *extra)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and bad in lines[0] and valid in lines[0], err
    assert not any(bench_home.iterdir())


@pytest.mark.slow
def test_certify_alone_then_merges_into_run_summary(monkeypatch, capsys, bench_home):
    common = ["--defense", "plain", "--config", "epochs=1", "--seed", "2"]
    code, out, err = run_cli(monkeypatch, capsys, "certify", *common, "--sigma", "0.25", "--n", "200", "--n-test", "6")
    assert code == 0, err
    assert "certified (sigma 0.25)" in out
    (summary_path,) = (bench_home / "results").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["evaluation"]["kind"] == "certify" and summary["evaluation"]["certify"]["n"] == 200
    block = summary["certification"]["0.25"]
    assert (block["n"], block["n0"], block["alpha"], block["n_test"]) == (200, 100, 0.001, 6)
    assert list(block["certified_accuracy"])[0] == "0.0" and list(block["certified_accuracy"].values())[-1] == 0.0
    records = pd.read_csv(summary_path.parent / block["records"])
    assert records["index"].tolist() == spread_indices(1000, 6)

    # `bench run` is another evaluation: its own run directory, certified with the quick profile
    code, out, err = run_cli(monkeypatch, capsys, "run", *common, "--n-test", "12", "--attacks", "fgsm")
    assert code == 0, err
    assert "certified (sigma 0.25)" in out
    (run_path,) = [p for p in (bench_home / "results").glob("*/summary.json") if p != summary_path]
    run_summary = json.loads(run_path.read_text())
    run_block = run_summary["certification"]["0.25"]
    assert (run_block["n"], run_block["n0"], run_block["alpha"], run_block["n_test"], run_block["profile"]) == (
        1000, 100, 0.001, 12, "quick")
    curve = run_block["certified_accuracy"]
    assert all(0.0 <= v <= 1.0 for v in curve.values()) and list(curve.values()) == sorted(curve.values(), reverse=True)
    assert 0.0 <= run_block["average_certified_radius"] <= run_block["max_certifiable_radius"]
    assert json.loads(summary_path.read_text()) == summary  # the certification run is untouched

    # certifying another sigma with the same settings adds a key to the certification run
    code, out, err = run_cli(monkeypatch, capsys, "certify", *common, "--sigma", "0.5", "--n", "200", "--n-test", "6")
    assert code == 0, err
    merged = json.loads(summary_path.read_text())
    assert set(merged["certification"]) == {"0.25", "0.5"} and merged["certification"]["0.25"] == block
    assert "robust (worst case)" not in out

    # --out merges a certification into the run's summary and keeps the run's results
    code, out, err = run_cli(monkeypatch, capsys, "certify", *common, "--sigma", "0.5", "--n", "200", "--n-test", "6",
                             "--out", str(run_path.parent))
    assert code == 0, err
    merged = json.loads(run_path.read_text())
    assert set(merged["certification"]) == {"0.25", "0.5"} and merged["certification"]["0.25"] == run_block
    assert merged["attacks"] == run_summary["attacks"] and merged["evaluation"] == run_summary["evaluation"]
