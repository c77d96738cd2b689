"""A certified radius never exceeds a perturbation that was found: certificates checked against attacks.

If the deterministic (Lipschitz) certificate says the prediction at x cannot
change within L2 radius r, then no attack can change it with a perturbation
of L2 norm below r. C&W and FMN report, per point, the L2 norm of the
misclassifying perturbation they found; so on every correctly classified
point radius / found norm <= 1, whatever the model. Checked on the committed
runs (from their per_sample.csv alone) and end to end on a model trained here.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.extrastages import CONTRADICTION_TOLERANCE, RADIUS_COLUMN, contradiction_flag

REPO = Path(__file__).resolve().parents[1]
L2_ATTACK_NORMS = ("cw-l2_norm", "fmn-l2_norm")  # per_sample.csv columns: the found perturbation's L2 norm


def _truth(value) -> bool:
    return value is True or str(value).strip().lower() == "true"


def ratios(per_sample: pd.DataFrame) -> list[tuple[int, str, float]]:
    """(index, attack column, certified radius / found L2 norm) on each correct point with both numbers."""
    out = []
    for column in [c for c in L2_ATTACK_NORMS if c in per_sample.columns]:
        for _, row in per_sample.iterrows():
            radius, found = pd.to_numeric(row[RADIUS_COLUMN], errors="coerce"), pd.to_numeric(row[column], errors="coerce")
            if not _truth(row["clean_correct"]) or pd.isna(radius) or pd.isna(found) or not math.isfinite(found):
                continue
            out.append((int(row["index"]), column, float(radius) / found if found > 0 else math.inf * (radius > 0)))
    return out


def check_run(directory: Path) -> int:
    """Assert the ratio bound on one run directory; the number of points compared."""
    found = ratios(pd.read_csv(directory / "per_sample.csv"))
    worst = max(found, key=lambda t: t[2], default=None)
    assert worst is None or worst[2] <= 1 + CONTRADICTION_TOLERANCE, (
        f"{directory.name}: point {worst[0]}'s certified radius is {worst[2]:.4g} times the L2 perturbation "
        f"{worst[1]} found for it")
    return len(found)


def test_committed_runs_never_certify_beyond_a_found_perturbation():
    runs = [d for d in sorted((REPO / "results").glob("*/")) if (d / "per_sample.csv").exists()]
    headers = {d: set(pd.read_csv(d / "per_sample.csv", nrows=0).columns) for d in runs}
    carrying = [d for d in runs if RADIUS_COLUMN in headers[d] and headers[d] & set(L2_ATTACK_NORMS)]
    if not carrying:
        pytest.skip(f"none of the {len(runs)} committed runs has both a {RADIUS_COLUMN} column and a found "
                    f"L2 perturbation ({', '.join(L2_ATTACK_NORMS)}); regenerate results/ to check them")
    assert sum(check_run(d) for d in carrying) > 0


def test_a_radius_beyond_a_found_perturbation_is_a_masking_flag():
    block = {"applicable": True, "radii": [0.5, 1.0, 2.0, 3.0], "correct": [True, True, True, False]}
    found = {"cw-l2": [0.6, 0.9, math.inf, 0.1], "fmn-l2": [None, 1.0, 1.5, 0.2]}
    flag = contradiction_flag(block, [True, True, True, False], found)
    # point 1 (1.0 > 0.9 by cw-l2) and point 2 (2.0 > 1.5 by fmn-l2); point 3 is wrong, inf/None are "not found"
    assert flag.check == "certificate-contradiction" and flag.severity == "masking"
    assert "on 2 point(s)" in flag.message and "point 2" in flag.message  # the worst ratio is named
    assert contradiction_flag(block, [True] * 4, {"cw-l2": [0.6, 1.0, 2.0, 0.1]}) is None  # equal is no contradiction
    assert contradiction_flag({"applicable": False, "reason": "stochastic"}, [True], found) is None


def _linear(mnist5k) -> torch.nn.Sequential:
    """Softmax regression on the 4,000 training digits: 300 full-batch Adam steps (a second or two)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(mnist5k.x_train), mnist5k.y_train).backward()
        opt.step()
    return net.eval()


def test_a_model_trained_here_keeps_certificates_below_found_perturbations_end_to_end(mnist5k, tmp_path):
    import bench

    net = _linear(mnist5k)
    summary = bench.evaluate(net, "mnist5k", n_test=60, attacks=["fmn-l2"], out=tmp_path / "run",
                             device="cpu", log=lambda _: None).to_dict()
    block = summary["deterministic_certification"]
    assert block["applicable"] is True and block["n"] == 60 and len(block["radii"]) == 60
    # Closed form: for a linear model the exact L2 distance to the boundary is min_j (z_y - z_j) / ||w_y - w_j||,
    # which the certificate must reach (LipLT is exact on one layer) but never exceed.
    w, x = net[1].weight.detach().double(), mnist5k.x_test[:60].flatten(1).double()
    z = x @ w.T + net[1].bias.detach().double()
    pred = z.argmax(1)
    gaps = (z.gather(1, pred[:, None]) - z) / (w[pred][:, None, :] - w[None]).norm(dim=2).squeeze(0).clamp_min(1e-12)
    exact = gaps.scatter(1, pred[:, None], math.inf).amin(1)
    assert torch.tensor(block["radii"], dtype=torch.float64) == pytest.approx(exact, rel=1e-4, abs=1e-6)
    per_sample = pd.read_csv(tmp_path / "run" / "per_sample.csv")
    assert per_sample[RADIUS_COLUMN].tolist() == pytest.approx(block["radii"])
    assert check_run(tmp_path / "run") > 30  # most correct points have a found perturbation to compare with
    assert block["mean_radius"] == pytest.approx(sum(r for r, c in zip(block["radii"], block["correct"]) if c) / 60)
    assert not [f for f in summary["flags"] if f["check"] == "certificate-contradiction"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["deterministic_certification"] == block
    # a Sequential ending in a Linear has a representation (its input); 60 points are too few to estimate it
    rep = summary["representation_vulnerability"]
    assert rep["applicable"] is False and "at least" in rep["reason"]
