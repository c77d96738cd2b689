"""The run stages beyond attacks and smoothing (bench.extrastages) and how summaries and the reporter carry them.

Representation vulnerability (Zhu, Zhang, Evans, ICML 2020) is a block for
a model with a representation and absent for one without; the typed summary
fields survive a round trip and old summaries without them still read; the
leaderboard's CSV, detail page and plots show them.
"""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from bench.contract import ClassifierModel, DefendedModel
from bench.extrastages import representation_stage, vulnerability_settings
from bench.information import MIEstimator
from bench.representation import VulnerabilitySettings
from bench.schema import Summary
from bench.schema.read import read_summary

SMALL = VulnerabilitySettings(mi=MIEstimator(steps=60, batch_size=64, hidden=32, embed=16),
                              rounds=2, round_steps=20, attack_steps=5)


class Features(DefendedModel):
    """g(x) = W x on 8x8 images, read by a linear head."""

    def __init__(self) -> None:
        super().__init__(num_classes=2)
        torch.manual_seed(0)
        self.w, self.head = nn.Linear(64, 8), nn.Linear(8, 2)

    def representation(self, x):
        return self.w(x.flatten(1))

    def forward(self, x):
        return self.head(self.representation(x))


class Opaque(nn.Module):  # not a Sequential: ClassifierModel finds no representation in it
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(64, 2)

    def forward(self, x):
        return self.lin(x.flatten(1))


def _images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 1, 1, generator=g) + 0.02 * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 1)


def test_a_model_with_a_representation_gets_a_block_and_worst_case_never_exceeds_clean():
    block = representation_stage(Features(), _images(160), 0.1, "quick", settings=SMALL)
    assert block["applicable"] is True and block["units"] == "nats" and block["points"] == 160
    assert block["worst_case_mi"] <= block["clean_mi"]
    assert block["vulnerability"] == pytest.approx(block["clean_mi"] - block["worst_case_mi"])
    assert block["eps"] == 0.1 and block["settings"]["rounds"] == 2 and block["settings"]["mi"]["steps"] == 60
    values = [block["clean_mi"], *block["clean_mi_other_seeds"]]  # the estimator's noise, reported beside it
    assert len(values) == 3 and block["clean_mi_spread"] == pytest.approx(max(values) - min(values))
    json.dumps(block)  # JSON-ready


def test_a_model_without_a_representation_gets_none_not_an_error():
    assert representation_stage(ClassifierModel(Opaque(), 2), _images(160), 0.1, "quick") is None


def test_too_few_points_say_so_instead_of_a_number():
    block = representation_stage(Features(), _images(40), 0.1, "quick", settings=SMALL)
    assert block["applicable"] is False and "at least 100" in block["reason"] and block["points"] == 40


def test_profiles_choose_the_estimator_budget():
    quick, full = vulnerability_settings("quick"), vulnerability_settings("full")
    assert full == VulnerabilitySettings()  # the module's paper-like defaults
    assert quick.rounds < full.rounds and quick.mi.steps < full.mi.steps


def _summary_with_blocks() -> dict:
    radii = [0.5, 0.0, 1.2, 0.3]
    return Summary(
        defense="plain", dataset="mnist5k", n_test=4, clean_accuracy=0.75, robust_accuracy=0.5,
        threat_model=None, provenance={"schema_version": 2, "run_id": "r"},
        deterministic_certification={"applicable": True, "bound": "liplt", "mean_radius": 0.5, "n": 4, "radii": radii,
                                     "correct": [True, False, True, True], "certified_accuracy": {"0": 0.75, "1": 0.25}},
        representation_vulnerability={"applicable": True, "clean_mi": 2.0, "worst_case_mi": 1.25, "vulnerability": 0.75,
                                      "eps": 0.3, "n_fit": 150, "n_eval": 150, "profile": "quick", "clean_mi_spread": 0.5,
                                      "settings": {"rounds": 2, "mi": {"bound": "dv", "steps": 150}}},
    ).to_dict()


def test_the_blocks_are_typed_fields_that_round_trip_and_old_summaries_still_read():
    raw = _summary_with_blocks()
    summary, notes, problem = read_summary(json.loads(json.dumps(raw)))
    assert problem is None and not notes and summary.extra == {}
    assert summary.deterministic_certification == raw["deterministic_certification"]
    assert summary.representation_vulnerability["worst_case_mi"] == 1.25
    old = {k: v for k, v in raw.items() if k not in ("deterministic_certification", "representation_vulnerability")}
    summary, notes, _ = read_summary(old)
    assert summary.deterministic_certification is None and summary.representation_vulnerability is None and not notes
    summary, notes, _ = read_summary({**old, "representation_vulnerability": "garbled"})
    assert summary.representation_vulnerability is None and notes == ["representation vulnerability unreadable"]


def test_the_leaderboard_shows_both_blocks(tmp_path):
    from bench.report import write_report

    results = tmp_path / "results"
    (results / "r").mkdir(parents=True)
    raw = _summary_with_blocks()
    raw["threat_model"] = {"norm": "linf", "eps": 0.3, "l2_eps": 2.0, "sigma": 0.25}
    (results / "r" / "summary.json").write_text(json.dumps(raw))
    write_report(results, tmp_path / "boards")
    csv = (tmp_path / "boards" / "mnist5k.csv").read_text()
    assert "deterministic_mean_radius" in csv and "representation_vulnerability" in csv
    assert "representation_worst_case_mi" in csv.splitlines()[0]
    pages = "".join(p.read_text() for p in (tmp_path / "boards").rglob("*.md"))
    assert "Representation vulnerability" in pages and "worst-case MI 1.25" in pages and "spans 0.500 nats" in pages
    assert "deterministic cert. radius" in (tmp_path / "boards" / "mnist5k.md").read_text()
    assert "Representation" not in (tmp_path / "boards" / "mnist5k.md").read_text().split("\n\n")[0]
    assert list((tmp_path / "boards").rglob("*.png"))  # the per-run certified panel (deterministic curve only)
