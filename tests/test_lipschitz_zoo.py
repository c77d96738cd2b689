"""Deterministic certificates on the committed zoo: never larger than a real adversarial perturbation.

For every model in models/mnist5k/, each correctly classified test point's
certified radius must be at most the L2 norm of any adversarial example that
C&W or FMN finds for it (a found example is a point where the deployed
prediction changed, so the true distance to the boundary is at most its
norm). Also the contract hook: what each model declares, and that a wrong
declaration is refused.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.attacks import CarliniWagnerL2, FMN
from bench.certification.lipschitz import lipschitz_certificates
from bench.contract import ClassifierModel
from bench.registry import create_defense

ZOO = Path(__file__).resolve().parents[1] / "models" / "mnist5k"
CARDS = sorted(ZOO.glob("*.json"))
RADII = [0.0, 0.25, 0.5, 1.0]


def load(card_path: Path, data):
    card = json.loads(card_path.read_text())
    model = create_defense(card["defense"], **card["config"]).build(data)
    model.load_state_dict(torch.load(card_path.with_suffix(".pt"), weights_only=True))
    return card, model.eval()


@pytest.mark.slow
@pytest.mark.parametrize("card_path", CARDS, ids=[c.stem for c in CARDS])
def test_certified_radius_never_exceeds_a_found_adversarial_perturbation(card_path, mnist5k):
    card, model = load(card_path, mnist5k)
    x, y = mnist5k.x_test[:8], mnist5k.y_test[:8]
    block = lipschitz_certificates(model, x, y, RADII)
    if card["defense"] == "feature_squeezing":
        assert not block["applicable"] and "quantises" in block["reason"] and block["mean_radius"] is None
        return
    if card["defense"] == "worst_case_mi":  # its encoder + head declare no network: a reason, never a number
        assert not block["applicable"] and "declares no network" in block["reason"] and block["mean_radius"] is None
        return
    assert block["applicable"], block["reason"]
    radii = torch.tensor(block["radii"], dtype=torch.float64)
    correct = torch.tensor(block["correct"])
    found = torch.full_like(radii, float("inf"))
    for attack in (FMN(norm="l2", steps=100), CarliniWagnerL2(search_steps=4, steps=200)):
        norms = attack.perturb(model, x, y, eps=10.0).norms
        found = torch.minimum(found, norms.double())
    checked = correct & torch.isfinite(found)
    assert int(checked.sum()) >= 4
    assert (radii[checked] <= found[checked]).all(), (radii[checked], found[checked])


def test_declarations_of_the_built_in_models(mnist5k):
    declared = {}
    for card_path in CARDS:
        card, model = load(card_path, mnist5k)
        net, reason = model.deterministic_network()
        declared[card["defense"]] = net is not None
        if net is not None:
            with torch.no_grad():
                assert torch.allclose(net(mnist5k.x_test[:4]), model(mnist5k.x_test[:4]), atol=1e-5)
        else:
            assert reason
    assert declared.get("plain") and declared.get("vib") and declared.get("distillation")
    assert declared.get("feature_squeezing") is False


def test_stochastic_bottleneck_and_wrong_declarations_are_not_applicable(mnist5k):
    vib = create_defense("vib", samples=8).build(mnist5k).eval()
    block = lipschitz_certificates(vib, mnist5k.x_test[:4], mnist5k.y_test[:4], RADII)
    assert not block["applicable"] and "stochastic" in block["reason"] and block["certified_accuracy"] is None

    class Lies(ClassifierModel):  # declares net but adds an offset to the deployed logits
        def deterministic_network(self):
            return self.net, ""

        def forward(self, x):
            return self.net(x) + torch.arange(10.0)

    plain = create_defense("plain").build(mnist5k).eval()
    liar = Lies(plain.net, 10).eval()
    block = lipschitz_certificates(liar, mnist5k.x_test[:4], mnist5k.y_test[:4], RADII)
    assert not block["applicable"] and "does not reproduce the deployed logits" in block["reason"]


def test_certificate_and_bounds_do_not_import_the_attacks():
    """Data flows one way: neither the certificate nor the bounds may depend on bench.attacks."""
    import ast
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1] / "bench"
    for path in [root / "certification" / "lipschitz.py", *sorted((root / "lipschitz").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "attacks" not in (node.module or ""), f"{path.name} imports {node.module}"
            elif isinstance(node, ast.Import):
                assert not any("attacks" in a.name for a in node.names), path.name
    code = "import sys, bench.lipschitz; print(any(k.startswith('bench.attacks') for k in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
